"""Rendering one page preview in a child process with a memory cap (the parent adds the time cap).

    python -m assistant.page_preview_worker MEMORY_MB  <  {"path", "page", "quotes", "width"}  →  JSON on stdout

The answer is ``{"image": base64 WebP, "width", "height", "boxes", "found"}`` or ``{"error": French reason}``.
A fresh interpreter: a page that hangs pdfium or blows its memory up costs this preview only, and the
server's threads are never forked.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

from assistant.sandbox import cap_memory


def run(request: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    cap_memory(memory_mb)
    from assistant.page_preview import PreviewError, render_preview

    try:
        preview = render_preview(str(request["path"]), int(request["page"]),
                                 [str(q) for q in request.get("quotes", [])], int(request.get("width", 1000)))
    except PreviewError as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": f"mémoire dépassée au rendu de la page (limite de {memory_mb} Mo)"}
    return preview.to_json() | {"image": base64.b64encode(preview.image).decode("ascii")}


def main() -> int:
    request = json.loads(sys.stdin.read())
    json.dump(run(request, int(sys.argv[1])), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
