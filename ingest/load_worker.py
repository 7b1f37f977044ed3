"""Reading one corpus file, of any format, in a child process with a memory cap (the parent adds the time cap).

    python -m ingest.load_worker FORMAT FILE MEMORY_MB BUDGET_S  →  one JSON object on stdout

A PDF goes to :func:`ingest.pdf_worker.parse_pdf`; the other formats to :mod:`ingest.formats`. The
answer is ``{"pages": [...], "title", "author", ...}`` or ``{"error": French reason}``. A fresh interpreter:
a hang or a memory blow-up costs this file only, and the parent's threads (Chroma, the embedder) are never
forked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from assistant.sandbox import cap_memory


def read_file(fmt: str, path: str, memory_mb: int, budget_s: float) -> dict[str, Any]:
    if fmt == "pdf":
        from ingest.pdf_worker import parse_pdf

        return parse_pdf(path, memory_mb, budget_s)
    cap_memory(memory_mb)
    from ingest.formats import LoadError, read_text_format

    try:
        raw = read_text_format(Path(path), fmt)
    except LoadError as exc:
        return {"error": exc.reason}
    except MemoryError:
        return {"error": f"mémoire dépassée à la lecture (limite de {memory_mb} Mo)"}
    except RecursionError:
        return {"error": "fichier malformé (structure trop profonde)"}
    except Exception as exc:
        return {"error": f"fichier illisible ({type(exc).__name__})"}
    return {"pages": raw.pages, "title": raw.title, "author": raw.author}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(read_file(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])),
                                ensure_ascii=False))
