"""Page preview benchmark, run by hand: the time to render a cited PDF page with its quote highlighted.

    python -m evals.bench_preview [--pages 8] [--real ../shared/data/real-docs]

For each PDF (the shipped corpus, then the real brochures when their folder exists), a few pages spread
over the document; on each, one sentence of the page (pypdfium2's own text) is the quote. Three figures
per set, measured side by side in one run:
- ``render``: :func:`assistant.page_preview.render_preview` in this process (pdfium's cost alone);
- ``cold``: the app's path, a child process under the time and memory caps (what a first view costs);
- ``warm``: the same request again, served from the cache.
Medians and 95th percentiles, in milliseconds; the image's size in kB.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

from assistant.catalog import CatalogEntry
from assistant.page_preview import render_preview
from assistant.settings import Settings
from webui.documents import ServedDocument
from webui.preview import PreviewService

_ROOT = Path(__file__).resolve().parent.parent


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _quote(path: Path, page: int) -> str:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    try:
        text = pdf[page - 1].get_textpage().get_text_range()
    finally:
        pdf.close()
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s.split()) >= 6]
    return max(sentences, key=len)[:400] if sentences else ""


def _pages(path: Path, wanted: int) -> list[int]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(path))
    count = len(pdf)
    pdf.close()
    step = max(1, count // wanted)
    return list(range(1, count + 1, step))[:wanted]


def bench(files: list[Path], pages_per_file: int, settings: Settings) -> dict[str, list[float]]:
    service = PreviewService(settings)
    figures: dict[str, list[float]] = {"render": [], "cold": [], "warm": [], "kB": [], "found": []}
    for path in files:
        doc = ServedDocument(path.stem, path, CatalogEntry(path.stem, path.name, format="pdf",
                                                           file_hash=f"bench:{path}"))
        for page in _pages(path, pages_per_file):
            quotes = [q] if (q := _quote(path, page)) else []
            start = time.perf_counter()
            preview = render_preview(str(path), page, quotes)
            figures["render"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            service.preview(doc, page, quotes)
            figures["cold"].append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            service.preview(doc, page, quotes)
            figures["warm"].append((time.perf_counter() - start) * 1000)
            figures["kB"].append(len(preview.image) / 1024)
            figures["found"].append(1.0 if preview.found else 0.0)
    return figures


def report(name: str, files: list[Path], figures: dict[str, list[float]]) -> None:
    n = len(figures["render"])
    print(f"\n{name} : {len(files)} PDF, {n} pages")
    for key in ("render", "cold", "warm"):
        values = figures[key]
        print(f"  {key:6s} médiane {statistics.median(values):8.1f} ms   p95 {_p95(values):8.1f} ms")
    print(f"  image  médiane {statistics.median(figures['kB']):.0f} ko ; citation retrouvée sur "
          f"{sum(figures['found']):.0f}/{n} pages")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_preview", description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=8, help="pages par PDF")
    parser.add_argument("--real", type=Path, default=_ROOT.parent / "shared" / "data" / "real-docs",
                        help="dossier des brochures réelles (ignoré s'il n'existe pas)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    sets = [("Corpus livré", sorted((_ROOT / "corpus").glob("*.pdf")))]
    if args.real.is_dir():
        sets.append(("Brochures réelles", sorted(args.real.glob("*.pdf"))))
    else:
        print(f"{args.real} absent : brochures réelles ignorées.")
    for name, files in sets:
        if files:
            report(name, files, bench(files, args.pages, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
