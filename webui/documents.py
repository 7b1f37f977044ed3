"""The one route that serves corpus files: ``/documents/{doc_id}`` (view) and ``…/original`` (download).

A request names a document id, never a path. The id is looked up in the catalog of the current
index generation (the allow-list); the file is then re-checked on every request: it must still
resolve, symlinks followed, to a regular file inside the corpus folder. Anything else — unknown
id, ``..``, encoded traversal, absolute paths, ``.env``, a URL, a symlink leaving the corpus —
gets the same 404, so a refusal never tells whether some file exists.

What is served, and how:
- PDF: the file itself, ``application/pdf`` (the browser's viewer honours ``#page=N``);
- other formats: a text view of the document as it was indexed, built here, every character
  escaped, under a CSP that forbids scripts, images and network access (``sandbox``); the
  original HTML page of a publisher is never rendered in the app's origin;
- ``…/original``: the file as an attachment, ``Content-Security-Policy: sandbox``, ``nosniff``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from assistant.catalog import Catalog, CatalogEntry
from assistant.settings import Settings
from webui.render import document_href, esc, safe_url

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
NOT_FOUND = "Document introuvable."
LOGIN_REQUIRED = "Authentification requise : connectez-vous à l'assistant."

VIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; base-uri 'none'; "
    "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox allow-downloads"
)
ATTACHMENT_CSP = "default-src 'none'; sandbox"
_COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                   "Cache-Control": "private, max-age=300"}


@dataclass(frozen=True)
class ServedDocument:
    doc_id: str
    path: Path
    entry: CatalogEntry

    @property
    def format(self) -> str:
        return self.entry.format


class DocumentLibrary:
    """Finds a catalog document by id and checks its file; ``catalog`` returns the current catalog."""

    def __init__(self, settings: Settings, catalog: Callable[[], Catalog]) -> None:
        self.settings = settings
        self._catalog = catalog
        self._corpus = settings.corpus_dir.resolve()

    def find(self, doc_id: str) -> ServedDocument | None:
        if not isinstance(doc_id, str) or not _ID.match(doc_id):
            return None
        try:
            documents = self._catalog().documents
        except Exception:  # no index yet, or it is being switched: nothing to serve
            return None
        matches = [(rel, entry) for rel, entry in documents.items() if entry.doc_id == doc_id]
        # Ingestion gives every file its own id; should a catalog still hold two files under one id (an old
        # generation), serving either could show another document than the one cited, so none is served.
        if len(matches) != 1:
            return None
        return self._checked(*matches[0])

    def _checked(self, rel: str, entry: CatalogEntry) -> ServedDocument | None:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or any(part in ("", ".", "..") or part.startswith(".") for part in pure.parts):
            return None
        try:
            resolved = (self._corpus / pure).resolve(strict=True)
            resolved.relative_to(self._corpus)
        except (OSError, ValueError, RuntimeError):
            return None
        if not resolved.is_file():
            return None
        return ServedDocument(entry.doc_id, resolved, entry)

    def text_pages(self, doc: ServedDocument) -> list[tuple[int, str]]:
        """The document's text as indexed (light Markdown), page by page."""
        stat = doc.path.stat()
        return _load_pages(doc.path, self._corpus, stat.st_mtime_ns, stat.st_size, self.settings.pdf_timeout_s,
                           self.settings.pdf_memory_mb, self.settings.max_file_mb)


@lru_cache(maxsize=32)
def _load_pages(path: Path, corpus: Path, _mtime: int, _size: int, timeout: float, memory: int,
                max_mb: float) -> list[tuple[int, str]]:
    # The loader is the ingestion's own, so the view shows exactly the text that was indexed.
    from ingest.load import LoadLimits, load_file

    loaded = load_file(path, corpus, LoadLimits(timeout, memory, max_mb))
    return [(int(p.metadata.get("page", i)), p.page_content) for i, p in enumerate(loaded.pages, start=1)]


def not_found() -> Response:
    return PlainTextResponse(NOT_FOUND, status_code=404, headers=_COMMON_HEADERS)


def _download_name(doc: ServedDocument) -> str:
    suffix = doc.path.suffix.lower()
    return (re.sub(r"[^A-Za-z0-9_-]+", "-", doc.doc_id) or "document") + suffix


def document_router(library: DocumentLibrary, authorize: Callable[[Request], bool]) -> APIRouter:
    router = APIRouter()

    def refuse(request: Request) -> Response | None:
        if not authorize(request):
            return PlainTextResponse(LOGIN_REQUIRED, status_code=401, headers=_COMMON_HEADERS)
        return None

    @router.get("/documents/{doc_id}", include_in_schema=False)
    def view(request: Request, doc_id: str, q: list[str] = Query(default=[])) -> Response:  # noqa: B008
        if (denied := refuse(request)) is not None:
            return denied
        doc = library.find(doc_id)
        if doc is None:
            return not_found()
        if doc.format == "pdf":
            return FileResponse(
                doc.path, media_type="application/pdf", filename=_download_name(doc),
                content_disposition_type="inline", headers=_COMMON_HEADERS,
            )
        try:
            pages = library.text_pages(doc)
        except Exception:
            pages = []
        page = render_document_view(doc, pages, q)
        return HTMLResponse(page, headers=_COMMON_HEADERS | {"Content-Security-Policy": VIEW_CSP})

    @router.get("/documents/{doc_id}/original", include_in_schema=False)
    def original(request: Request, doc_id: str) -> Response:
        if (denied := refuse(request)) is not None:
            return denied
        doc = library.find(doc_id)
        if doc is None:
            return not_found()
        media = "application/pdf" if doc.format == "pdf" else "application/octet-stream"
        return FileResponse(
            doc.path, media_type=media, filename=_download_name(doc), content_disposition_type="attachment",
            headers=_COMMON_HEADERS | {"Content-Security-Policy": ATTACHMENT_CSP},
        )

    @router.get("/documents", include_in_schema=False)
    @router.get("/documents/{rest:path}", include_in_schema=False)
    def anything_else(request: Request, rest: str = "") -> Response:
        if (denied := refuse(request)) is not None:
            return denied
        return not_found()

    return router


_VIEW_STYLE = """
body{font-family:Arial,system-ui,sans-serif;color:#161616;background:#fff;max-width:46rem;margin:0 auto;
padding:1.5rem;line-height:1.6;font-size:1.05rem}
header{border-bottom:2px solid #000091;margin-bottom:1.5rem}h1{font-size:1.6rem;color:#000091;margin:.2rem 0}
.meta{color:#3a3a3a;margin:.2rem 0 1rem}a{color:#000091}a:focus-visible{outline:2px solid #0a76f6;outline-offset:2px}
section.page{border-top:1px solid #ddd;padding-top:.5rem;margin-top:1.5rem}
.page-num{font-size:.9rem;color:#3a3a3a;text-transform:uppercase;letter-spacing:.05em}
h2,h3,h4{color:#161616;margin:1.2rem 0 .4rem}mark{background:#ffe552;color:#161616;padding:0 .1em}
mark#citation{scroll-margin-top:40vh}li{margin:.2rem 0}p{margin:.5rem 0}
.avertissement{background:#f6f6f6;border-left:4px solid #000091;padding:.6rem 1rem;font-size:.95rem}
"""


def quote_spans(text: str, quotes: list[str]) -> list[tuple[int, int]]:
    """Where each quote is in ``text``, word for word, whatever the spacing and line breaks between words
    (a quote that spans list items may skip their « - » markers)."""
    spans = []
    for q in quotes:
        words = re.findall(r"\w+|[^\w\s]", q or "")
        if not words:
            continue
        pattern = r"(?:\s|[-*•])*".join(re.escape(w) for w in words)
        match = re.search(pattern, text)
        if match:
            spans.append((match.start(), match.end()))
    return sorted(spans)


class _Marker:
    """Escapes a piece of the page, wrapping what the quotes cover in ``<mark>``; the first mark gets the
    ``citation`` anchor that the card's link scrolls to."""

    def __init__(self) -> None:
        self.first = True

    def __call__(self, text: str, start: int, spans: list[tuple[int, int]]) -> str:
        out, cursor, end = [], start, start + len(text)
        for s, e in spans:
            s, e = max(s, start), min(e, end)
            if s >= e:
                continue
            out.append(esc(text[cursor - start:s - start]))
            anchor = ' id="citation"' if self.first else ""
            self.first = False
            out.append(f"<mark{anchor}>{esc(text[s - start:e - start])}</mark>")
            cursor = e
        out.append(esc(text[cursor - start:]))
        return "".join(out)


def _markdownish(text: str, spans: list[tuple[int, int]] | None = None, marker: _Marker | None = None) -> str:
    """Escaped light Markdown (headings, bullets, paragraphs) → HTML; nothing else is interpreted.

    ``spans``: character ranges of ``text`` to highlight (the quotes of a citation)."""
    out: list[str] = []
    items: list[str] = []
    spans = spans or []
    mark = marker or _Marker()

    def flush() -> None:
        if items:
            out.append("<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
            items.clear()

    offset = 0
    for line in text.split("\n"):
        start, offset = offset, offset + len(line) + 1
        stripped = line.strip()
        first = start + len(line) - len(line.lstrip())
        if not stripped:
            flush()
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 1, 4)  # h1 is the document title
            out.append(f"<h{level}>{mark(heading.group(2), first + heading.start(2), spans)}</h{level}>")
        elif stripped.startswith(("- ", "* ", "• ")):
            items.append(mark(stripped[2:], first + 2, spans))
        else:
            flush()
            out.append(f"<p>{mark(stripped, first, spans)}</p>")
    flush()
    return "\n".join(out)


def render_document_view(doc: ServedDocument, pages: list[tuple[int, str]], quotes: list[str] | None = None) -> str:
    """The text view of a non-PDF document; ``quotes`` are highlighted, the first one anchored ``#citation``."""
    e = doc.entry
    title = esc(e.title or doc.doc_id)
    meta = [esc(e.publisher)] if e.publisher else []
    meta.append(f"format {esc(e.format.upper())}")
    links = [f'<a href="{esc(document_href(doc.doc_id).split("#")[0])}/original">Télécharger le fichier original</a>']
    url = safe_url(e.url)
    if url:
        links.append(f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">Publication d\'origine '
                     "(site externe)</a>")
    marker = _Marker()
    clean = [q[:1500] for q in (quotes or []) if q.strip()][:6]
    if pages:
        body = "\n".join(
            f'<section class="page" id="page={n}" aria-label="Page {n}"><p class="page-num">Page {n}</p>'
            f"{_markdownish(text, quote_spans(text, clean), marker)}</section>"
            for n, text in pages
        )
    else:
        body = '<p class="avertissement">Le texte de ce document ne peut pas être affiché pour le moment.</p>'
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{title} — Assistant des alliances territoriales</title>
<style>{_VIEW_STYLE}</style></head>
<body><header><h1>{title}</h1><p class="meta">{" · ".join(meta)}</p><p>{" · ".join(links)}</p></header>
<p class="avertissement">Texte du document tel qu'il a été indexé par l'assistant (mise en forme simplifiée){
"" if marker.first else " ; le passage cité est surligné en jaune"}.</p>
<main>{body}</main></body></html>"""
