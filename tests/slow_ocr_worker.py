"""A stand-in for :mod:`ingest.ocr_worker` that never answers (a long scan), run as
``python -m tests.slow_ocr_worker FILE MEMORY_MB PAGE…`` like the real one, with no OCR model to load.

Beside the corpus folder (not in it: the job would index the files) it writes its pid to ``slow-ocr.pid``
and, if a SIGINT reaches it, ``slow-ocr.sigint``: a Ctrl+C is for the job to handle, not for its OCR.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def main() -> None:
    beside = Path(sys.argv[1]).resolve().parent.parent
    signal.signal(signal.SIGINT, lambda *_: (beside / "slow-ocr.sigint").touch())
    (beside / "slow-ocr.pid.tmp").write_text(str(os.getpid()), encoding="ascii")
    (beside / "slow-ocr.pid.tmp").rename(beside / "slow-ocr.pid")  # whole, never seen half-written
    time.sleep(600)


if __name__ == "__main__":
    main()
