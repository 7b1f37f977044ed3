"""Page previews of cited PDF pages: ``/documents/{doc_id}/pages/{n}/apercu`` (image) and ``…/pages/{n}`` (large).

The document is named by id and looked up through the same allow-list as the document route
(:class:`webui.documents.DocumentLibrary`); the request carries only a page number and the quoted
sentences to highlight (``?q=…``, text to search for, never a path). Each page is rendered by
:mod:`assistant.page_preview_worker` in a child process under a time and memory cap, at most two at a
time; images are kept in an LRU cache bounded in bytes, keyed by the file's content hash (a new
edition of a file never shows the old one's page). When rendering fails, the image is a French notice
and the card keeps its « Ouvrir à la page » link.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from assistant.page_preview import Box, Preview
from assistant.sandbox import WorkerTimeout, run_worker
from assistant.settings import Settings
from webui.documents import LOGIN_REQUIRED, DocumentLibrary, ServedDocument, not_found
from webui.render import document_href, esc

log = logging.getLogger("assistant.preview")

MAX_QUOTES = 6
MAX_QUOTE_CHARS = 1500
PREVIEW_WIDTH_PX = 1000
_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, max-age=3600"}
_IMAGE_CSP = "default-src 'none'; sandbox"
_VIEW_CSP = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'; "
             "frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox")
UNAVAILABLE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="120" viewBox="0 0 600 120" role="img">'
    '<rect width="600" height="120" fill="#f6f6f6" stroke="#929292"/>'
    '<text x="300" y="55" font-family="Arial, sans-serif" font-size="20" fill="#161616" text-anchor="middle">'
    "Aperçu de la page indisponible</text>"
    '<text x="300" y="85" font-family="Arial, sans-serif" font-size="16" fill="#3a3a3a" text-anchor="middle">'
    "Utilisez le lien « Ouvrir à la page » de la source.</text></svg>"
)


class PreviewError(Exception):
    """A preview could not be made (message in French)."""


class PreviewCache:
    """Rendered previews, least recently used first out, bounded by the bytes of their images."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], Preview] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...]) -> Preview | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[object, ...], preview: Preview) -> None:
        size = len(preview.image)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= len(self._items.pop(key).image)
            self._items[key] = preview
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old.image)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)


def clean_quotes(quotes: Sequence[str]) -> list[str]:
    """At most ``MAX_QUOTES`` non-empty quotes of at most ``MAX_QUOTE_CHARS`` characters each."""
    return [q.strip()[:MAX_QUOTE_CHARS] for q in quotes if q and q.strip()][:MAX_QUOTES]


class PreviewService:
    """Renders previews in child processes, at most ``workers`` at a time, and caches them."""

    def __init__(self, settings: Settings, workers: int = 2) -> None:
        self.settings = settings
        self.cache = PreviewCache(settings.preview_cache_mb * 1024 * 1024)
        self._slots = threading.BoundedSemaphore(workers)

    @property
    def enabled(self) -> bool:
        return self.settings.preview_cache_mb > 0

    def excerpt(self, doc: ServedDocument, page: int, quotes: Sequence[str]) -> Preview:
        """The preview cut around the quotes (see :func:`excerpt_of`), cached too."""
        full = self.preview(doc, page, quotes)
        key = ("excerpt", doc.entry.file_hash or _file_signature(doc.path), page, tuple(clean_quotes(quotes)))
        cached = self.cache.get(key)
        if cached is None:
            cached = excerpt_of(full)
            self.cache.put(key, cached)
        return cached

    def preview(self, doc: ServedDocument, page: int, quotes: Sequence[str]) -> Preview:
        if doc.format != "pdf":
            raise PreviewError("l'aperçu n'existe que pour les PDF")
        quotes = clean_quotes(quotes)
        edition = doc.entry.file_hash or _file_signature(doc.path)
        key: tuple[object, ...] = (edition, page, PREVIEW_WIDTH_PX, tuple(quotes))
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        with self._slots:
            cached = self.cache.get(key)  # rendered by another request while this one waited
            if cached is not None:
                return cached
            preview = self._render(doc.path, page, quotes)
        self.cache.put(key, preview)
        return preview

    def _render(self, path: Path, page: int, quotes: list[str]) -> Preview:
        request = json.dumps({"path": str(path), "page": page, "quotes": quotes, "width": PREVIEW_WIDTH_PX})
        timeout = self.settings.preview_timeout_s
        try:
            done = run_worker("assistant.page_preview_worker", [str(self.settings.pdf_memory_mb)],
                              stdin=request.encode("utf-8"), timeout_s=timeout)
        except WorkerTimeout:
            raise PreviewError(f"rendu de la page interrompu après {timeout:g} s") from None
        answer = done.checked(PreviewError, "le rendu de la page a échoué (mémoire dépassée ou PDF malformé)")
        boxes = tuple(Box(b["left"], b["top"], b["width"], b["height"]) for b in answer["boxes"])
        return Preview(base64.b64decode(answer["image"]), int(answer["width"]), int(answer["height"]), boxes,
                       bool(answer["found"]))


def _file_signature(path: Path) -> str:
    stat = path.stat()
    return hashlib.sha256(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()


def preview_href(doc_id: str, page: int, quotes: Sequence[str], *, view: str = "page") -> str:
    """Link to a cited page, the quotes to highlight in the query. ``view``: "page" (the whole page's
    image), "excerpt" (its image cut around the quotes, for a source card), "large" (the page view)."""
    base = document_href(doc_id, page).split("#")[0] + f"/pages/{max(int(page), 1)}"
    params = [("q", q) for q in clean_quotes(quotes)]
    if view == "excerpt":
        params.append(("vue", "extrait"))
    query = urlencode(params)
    return (base if view == "large" else base + "/apercu") + (f"?{query}" if query else "")


def excerpt_of(preview: Preview, margin: float = 0.06, min_height: float = 0.22) -> Preview:
    """The page image cut to the band that holds the highlighted boxes (whole width), with some margin;
    the whole page when nothing is highlighted."""
    if not preview.boxes:
        return preview
    from PIL import Image

    top = max(0.0, min(b.top for b in preview.boxes) - margin)
    bottom = min(1.0, max(b.top + b.height for b in preview.boxes) + margin)
    if bottom - top < min_height:  # a one-line quote still shows the lines around it
        middle = (top + bottom) / 2
        top, bottom = max(0.0, middle - min_height / 2), min(1.0, middle + min_height / 2)
    with Image.open(io.BytesIO(preview.image)) as image:
        y0, y1 = round(top * preview.height), round(bottom * preview.height)
        band = image.convert("RGB").crop((0, y0, preview.width, y1))
        out = io.BytesIO()
        band.save(out, "WEBP", quality=82, method=4)
    span = max(bottom - top, 1e-6)
    boxes = tuple(Box(b.left, (b.top - top) / span, b.width, b.height / span) for b in preview.boxes)
    return Preview(out.getvalue(), preview.width, y1 - y0, boxes, preview.found)


_VIEW_STYLE = """
body{font-family:Arial,system-ui,sans-serif;color:#161616;background:#fff;margin:0 auto;padding:1rem;max-width:1040px;
line-height:1.5}h1{font-size:1.4rem;color:#000091;margin:.2rem 0}a{color:#000091}
a:focus-visible{outline:2px solid #0a76f6;outline-offset:2px}.meta{color:#3a3a3a}
.page{position:relative;display:inline-block;max-width:100%;border:1px solid #929292;line-height:0}
.page img{display:block;max-width:100%;height:auto}
.zone{position:absolute;outline:2px solid #000091;outline-offset:1px}
blockquote{margin:.5rem 0;padding:.4rem .8rem;border-left:4px solid #000091;background:#f6f6f6}
"""


def render_page_view(doc: ServedDocument, page: int, quotes: Sequence[str], preview: Preview | None) -> str:
    """The large view: the page image with its highlighted zones, the quoted text, links."""
    title = esc(doc.entry.title or doc.doc_id)
    quoted = "".join(f"<blockquote>« {esc(q)} »</blockquote>" for q in clean_quotes(quotes))
    pdf_link = (f'<a href="{esc(document_href(doc.doc_id, page))}">Ouvrir le PDF à la page {page}</a>')
    if preview is None:
        figure = '<p class="meta">L\'aperçu de cette page est indisponible : ouvrez le PDF à la page citée.</p>'
    else:
        zones = "".join(
            f'<span class="zone" style="left:{b.left * 100:.3f}%;top:{b.top * 100:.3f}%;'
            f'width:{b.width * 100:.3f}%;height:{b.height * 100:.3f}%"></span>' for b in preview.boxes)
        alt = f"Page {page} de « {title} »" + (", passage cité surligné en jaune" if preview.boxes else "")
        figure = (f'<div class="page"><img src="{esc(preview_href(doc.doc_id, page, quotes))}" alt="{alt}" '
                  f'width="{preview.width}" height="{preview.height}">{zones}</div>')
        if quotes and not preview.found:
            figure += '<p class="meta">Le passage cité n\'a pas été retrouvé en entier sur l\'image de la page.</p>'
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Page {page} — {title} — Assistant des alliances territoriales</title>
<style>{_VIEW_STYLE}</style></head>
<body><header><h1>{title}</h1><p class="meta">Page {page} · {pdf_link}</p></header>
<main>{('<h2 style="font-size:1.1rem">Passage cité</h2>' + quoted) if quoted else ''}{figure}</main></body></html>"""


def preview_router(library: DocumentLibrary, authorize: Callable[[Request], bool],
                   service: PreviewService) -> APIRouter:
    """Mounted before :func:`webui.documents.document_router`, whose catch-all would answer 404 first."""
    router = APIRouter()

    def find(request: Request, doc_id: str, page: str) -> tuple[ServedDocument, int] | Response:
        if not authorize(request):
            return PlainTextResponse(LOGIN_REQUIRED, status_code=401, headers=_HEADERS)
        doc = library.find(doc_id)
        # Same refusal for a bad page number as for an unknown document: no FastAPI error page in English.
        if doc is None or doc.format != "pdf" or not service.enabled or not page.isdigit() or len(page) > 5:
            return not_found()
        return doc, int(page)

    def make(doc: ServedDocument, page: int, quotes: list[str], excerpt: bool = False) -> Preview | None:
        try:
            return service.excerpt(doc, page, quotes) if excerpt else service.preview(doc, page, quotes)
        except (PreviewError, OSError) as exc:
            log.info("Aperçu indisponible (%s, page %s) : %s", doc.doc_id, page, exc)
            return None

    @router.get("/documents/{doc_id}/pages/{page}/apercu", include_in_schema=False)
    def image(request: Request, doc_id: str, page: str, q: list[str] = Query(default=[]),  # noqa: B008
              vue: str = "") -> Response:
        found = find(request, doc_id, page)
        if isinstance(found, Response):
            return found
        preview = make(*found, q, excerpt=vue == "extrait")
        headers = _HEADERS | {"Content-Security-Policy": _IMAGE_CSP}
        if preview is None:
            return Response(UNAVAILABLE_SVG, media_type="image/svg+xml",
                            headers=headers | {"Cache-Control": "no-store"})
        return Response(preview.image, media_type="image/webp", headers=headers)

    @router.get("/documents/{doc_id}/pages/{page}", include_in_schema=False)
    def view(request: Request, doc_id: str, page: str, q: list[str] = Query(default=[])) -> Response:  # noqa: B008
        found = find(request, doc_id, page)
        if isinstance(found, Response):
            return found
        html_ = render_page_view(*found, q, make(*found, q))
        return HTMLResponse(html_, headers=_HEADERS | {"Content-Security-Policy": _VIEW_CSP})

    return router
