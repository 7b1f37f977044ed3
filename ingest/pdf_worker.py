"""PDF parsing, run as a child process with a wall-clock timeout and a memory cap.

Kept free of heavy imports (only pypdf) so that the child starts fast and its
memory cap measures the PDF, not the libraries.
"""

from __future__ import annotations

import json
import resource
import sys
from typing import Any


def _outline_entries(reader: Any) -> list[tuple[str, int, int]]:
    """(title, depth, 0-based page) for each bookmark of the PDF."""
    entries: list[tuple[str, int, int]] = []

    def walk(items: list[Any], depth: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # a broken bookmark only costs its heading
                continue
            title = str(getattr(item, "title", "") or "").strip()
            if title and page is not None and page >= 0:
                entries.append((title, depth, page))

    try:
        walk(reader.outline, 1)
    except Exception:
        return []
    return entries


def parse_pdf(path: str, memory_mb: int) -> dict[str, Any]:
    """{"pages", "labels", "title", "author", "outline"} or {"error": French reason}."""
    soft = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (soft, soft))
    try:
        from pypdf import PdfReader
        from pypdf.errors import FileNotDecryptedError, LimitReachedError, PdfReadError

        try:
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                return {"error": "PDF chiffré : impossible de l'ouvrir sans mot de passe"}
            pages = [page.extract_text() or "" for page in reader.pages]
        except FileNotDecryptedError:
            return {"error": "PDF chiffré : impossible de l'ouvrir sans mot de passe"}
        except LimitReachedError:
            return {"error": "PDF trop volumineux une fois décompressé (limite de décompression atteinte)"}
        except PdfReadError as exc:
            return {"error": f"PDF illisible ou tronqué ({exc})"}
        try:
            labels = list(reader.page_labels)
        except Exception:
            labels = [str(i + 1) for i in range(len(pages))]
        meta: Any = reader.metadata or {}
        return {
            "pages": pages,
            "labels": labels,
            "title": str(meta.get("/Title", "") or ""),
            "author": str(meta.get("/Author", "") or ""),
            "outline": _outline_entries(reader),
        }
    except MemoryError:
        return {"error": f"PDF trop volumineux une fois décompressé (limite de {memory_mb} Mo dépassée)"}
    except RecursionError:
        return {"error": "PDF malformé (structure récursive)"}
    except Exception as exc:
        return {"error": f"PDF illisible ou tronqué ({type(exc).__name__}: {exc})"}


if __name__ == "__main__":
    # python -m ingest.pdf_worker FILE MEMORY_MB  →  one JSON object on stdout
    sys.stdout.write(json.dumps(parse_pdf(sys.argv[1], int(sys.argv[2])), ensure_ascii=False))
