"""Reading the image of PDF pages without a text layer, in a child process (the parent adds the time cap).

    python -m ingest.ocr_worker FILE MEMORY_MB PAGE [PAGE…]  →  {"pages": {"0": "texte…"}} on stdout

Each page's largest embedded image (a scanned page is one image) is read by rapidocr, whose ONNX models
ship in its wheel: nothing is downloaded. A page without any image is left out of the answer. Pillow's
decompression-bomb check stays on, and the address space is capped like the other readers'.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from assistant.sandbox import cap_memory

# A scanned A4 page at 300 dpi is ~8.7 Mpx; past this an « image » is a trap, not a page.
MAX_PIXELS = 40_000_000


def _largest_image(page: Any) -> Any:
    best, best_area = None, 0
    for image in page.images:
        picture = image.image
        area = picture.width * picture.height
        if area > MAX_PIXELS:
            raise ValueError("image trop grande")
        if area > best_area:
            best, best_area = picture, area
    return best


def ocr_pages(path: str, memory_mb: int, pages: list[int]) -> dict[str, Any]:
    cap_memory(memory_mb)
    try:
        import numpy as np
        from pypdf import PdfReader
        from rapidocr import RapidOCR
    except ImportError:
        return {"error": "extension OCR absente"}
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)  # its INFO lines would go to our stdout's neighbour
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            reader.decrypt("")
        engine = RapidOCR()
        found: dict[str, str] = {}
        for index in pages:
            picture = _largest_image(reader.pages[index])
            if picture is None:
                continue
            result = engine(np.array(picture.convert("RGB")))
            lines = [str(t) for t in (getattr(result, "txts", None) or ()) if str(t).strip()]
            if lines:
                found[str(index)] = "\n".join(lines)
        return {"pages": found}
    except MemoryError:
        return {"error": f"mémoire dépassée pendant l'OCR (limite de {memory_mb} Mo)"}
    except Exception as exc:
        return {"error": f"OCR impossible ({type(exc).__name__})"}


if __name__ == "__main__":
    result = ocr_pages(sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]])
    sys.stdout.write(json.dumps(result, ensure_ascii=False))
