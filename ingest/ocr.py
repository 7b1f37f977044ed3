"""OCR of scanned PDF pages (pages without a text layer), when the optional extra is installed.

``pip install ".[ocr]"`` brings rapidocr (Apache-2.0; its ONNX models ship in the wheel) and onnxruntime.
Without it a PDF with no text at all is refused as before, with the line that says how to enable OCR.
The reading runs in :mod:`ingest.ocr_worker`, a child process under a time cap (start-up, then a budget
per page) and a memory cap (the models need more than the text readers: the PDF cap plus
:data:`MODEL_MEMORY_MB`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from assistant.sandbox import WorkerTimeout, run_worker

ENABLE_HINT = 'installez l\'extension OCR (pip install ".[ocr]") pour lire les PDF numérisés'
DISABLED_HINT = "la lecture par OCR est désactivée sur ce serveur (réglage ASSISTANT_OCR=0)"
MODEL_MEMORY_MB = 2048
START_S = 60.0  # loading the models: ~12 s cold on the reference machine, more on a busy one
WORKER = "ingest.ocr_worker"  # the module run in the child process


@dataclass(frozen=True)
class OcrLimits:
    page_timeout_s: float = 60.0
    max_pages: int = 300
    memory_mb: int = 1024


class OcrFailure(Exception):
    """OCR was tried and failed; ``reason`` is French."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ocr_available() -> bool:
    return importlib.util.find_spec("rapidocr") is not None and importlib.util.find_spec("onnxruntime") is not None


def read_pages(path: Path, pages: list[int], limits: OcrLimits = OcrLimits()) -> dict[int, str]:
    """The text read on each of ``pages`` (0-based) that has an image; raises :class:`OcrFailure`."""
    if not pages:
        return {}
    if len(pages) > limits.max_pages:
        raise OcrFailure(f"trop de pages à lire par OCR ({len(pages)}, limite {limits.max_pages})")
    timeout = START_S + limits.page_timeout_s * len(pages)
    try:
        # Its own process group, as the readers of files: a Ctrl+C stops the job, which decides, instead of
        # failing this file's OCR on its way (see run_worker); the child still dies with the job.
        done = run_worker(WORKER, [str(path), str(limits.memory_mb + MODEL_MEMORY_MB), *map(str, pages)],
                          timeout_s=timeout, own_group=True)
    except WorkerTimeout:
        raise OcrFailure(f"OCR interrompu après {timeout:g} s") from None
    result = done.checked(OcrFailure, "l'OCR a échoué (mémoire dépassée ou image malformée)")
    return {int(k): str(v) for k, v in result.get("pages", {}).items()}
