"""OCR cost of scanned PDF pages (the « ocr » extra), run by hand:

    python -m evals.bench_ocr [--pages 6] [--repeats 3]

A scanned PDF of accented French text is drawn with Pillow (one image per A4 page at 150 dpi, no text
layer), then read by the ingestion's OCR child process with 1 page and with N pages, side by side, several
times: the median of each, the start-up (models loaded) and the time per page (the difference over N−1),
and the share of the drawn words found again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

LINES = [
    "Délibération du conseil communautaire du 12 février 2026",
    "La communauté de communes crée un fonds de 12 500 euros",
    "pour les écoles élémentaires et les associations sportives.",
    "Les élus désignent un référent chargé du suivi des partenariats",
    "avec les entreprises du territoire et le réseau des pionniers.",
    "Le bilan sera présenté au conseil avant la fin de l'année.",
]


def scanned_pdf(path: Path, pages: int) -> Path:
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 30)
    images = []
    for _ in range(pages):
        image = Image.new("L", (1240, 1754), 255)
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(LINES):
            draw.text((90, 180 + 64 * i), line, fill=0, font=font)
        images.append(image)
    images[0].save(path, "PDF", resolution=150, save_all=True, append_images=images[1:])
    return path


def _words(text: str) -> set[str]:
    return {w.strip(".,;:'").lower() for w in unicodedata.normalize("NFC", text).split() if len(w) > 3}


def bench_ocr(pages: int = 6, repeats: int = 3) -> dict[str, Any]:
    from ingest.ocr import OcrLimits, ocr_available, read_pages

    if not ocr_available():
        return {"error": 'extension OCR absente : pip install ".[ocr]"'}
    expected = _words(" ".join(LINES))
    one, many, found_share = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        single = scanned_pdf(Path(tmp) / "une-page.pdf", 1)
        several = scanned_pdf(Path(tmp) / "plusieurs-pages.pdf", pages)
        limits = OcrLimits(page_timeout_s=300, max_pages=pages)
        for _ in range(repeats):  # alternated, so that both see the same machine load
            started = time.perf_counter()
            text = read_pages(single, [0], limits)
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            read_pages(several, list(range(pages)), limits)
            many.append(time.perf_counter() - started)
            found_share.append(len(expected & _words(text.get(0, ""))) / len(expected))
    m1, mn = statistics.median(one), statistics.median(many)
    per_page = (mn - m1) / (pages - 1) if pages > 1 else m1
    return {
        "pages": pages, "repeats": repeats,
        "median_s_1_page": round(m1, 2), f"median_s_{pages}_pages": round(mn, 2),
        "per_page_s": round(per_page, 2), "startup_s": round(m1 - per_page, 2),
        "words_found_share": round(statistics.median(found_share), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_ocr", description="Coût de l'OCR par page.")
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(bench_ocr(max(1, args.pages), max(1, args.repeats)), ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
