"""PDF parsing for the loader's child process (:mod:`ingest.load_worker`), under its timeout and a memory cap.

pypdf opens the file (encryption, decompression limits, metadata, page labels, outline). The page
text comes from the character positions pdfminer.six computes, laid out by :mod:`ingest.pdf_layout`
so that what a reader sees on one visual line stays on one line of text (rows, cells joined by « | »,
columns read one after the other).

pypdf's plain text is the fallback for a page pdfminer cannot read, when pdfminer is not
installed, and for the pages left once the time budget is spent. Only pypdf and pdfminer are
imported, so that the child starts fast and its memory cap measures the PDF, not the libraries.
"""

from __future__ import annotations

import time
from typing import Any

from assistant.sandbox import cap_memory
from ingest.pdf_layout import first_heading, layout_lines, words_of_page

# A PDF whose user password is not empty: nothing can be read without it.
ENCRYPTED = "PDF chiffré (mot de passe requis)"


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


def plain_page_text(page: Any) -> str:
    return str(page.extract_text() or "")


def layout_page_texts(path: str, count: int, deadline: float) -> tuple[list[str | None], str]:
    """Laid-out text of each page (None where pdfminer failed or time ran out) and page 1's heading.

    When pdfminer does not see the ``count`` pages pypdf sees, no page is laid out: page numbers must
    stay the physical pages.
    """
    texts: list[str | None] = [None] * count
    try:
        from pdfminer.converter import PDFPageAggregator
        from pdfminer.layout import LTPage
        from pdfminer.pdfdocument import PDFDocument
        from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
        from pdfminer.pdfpage import PDFPage
        from pdfminer.pdfparser import PDFParser
    except ImportError:
        return texts, ""
    heading = ""
    laid_out: list[str | None] = []
    try:
        with open(path, "rb") as fh:
            document = PDFDocument(PDFParser(fh), password="")
            resources = PDFResourceManager(caching=True)
            device = PDFPageAggregator(resources, laparams=None)
            interpreter = PDFPageInterpreter(resources, device)
            for i, page in enumerate(PDFPage.create_pages(document)):
                if i >= count or time.monotonic() > deadline:
                    laid_out.append(None)
                    continue
                try:
                    interpreter.process_page(page)
                    layout = device.get_result()
                    if not isinstance(layout, LTPage):
                        raise TypeError("no page")
                    words, sideways = words_of_page(layout)
                    lines = layout_lines(words)
                    if sideways:
                        lines.append(sideways)
                    laid_out.append("\n".join(lines))
                    if i == 0:
                        heading = first_heading(words)
                except (MemoryError, RecursionError):
                    raise
                except Exception:  # this page falls back to pypdf's text
                    laid_out.append(None)
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return texts, ""
    if len(laid_out) != count:
        return texts, ""
    return laid_out, heading


def parse_pdf(path: str, memory_mb: int, budget_s: float = 30.0) -> dict[str, Any]:
    """{"pages", "labels", "title", "heading", "author", "outline"} or {"error": French reason}."""
    cap_memory(memory_mb)
    deadline = time.monotonic() + budget_s
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

        try:
            reader = PdfReader(path, strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                return {"error": ENCRYPTED}
            count = len(reader.pages)
            laid_out, heading = layout_page_texts(path, count, deadline)
            pages = [text if text is not None else plain_page_text(reader.pages[i]) for i, text in enumerate(laid_out)]
        except FileNotDecryptedError:
            return {"error": ENCRYPTED}
        except DependencyError:
            # AES needs the « cryptography » package (a declared dependency): say so rather than « illisible ».
            return {"error": "PDF chiffré (AES) : le module « cryptography » manque pour le lire"}
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
            "heading": heading,
            "author": str(meta.get("/Author", "") or ""),
            "outline": _outline_entries(reader),
        }
    except MemoryError:
        return {"error": f"PDF trop volumineux une fois décompressé (limite de {memory_mb} Mo dépassée)"}
    except RecursionError:
        return {"error": "PDF malformé (structure récursive)"}
    except Exception as exc:
        return {"error": f"PDF illisible ou tronqué ({type(exc).__name__}: {exc})"}

