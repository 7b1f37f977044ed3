"""Shared pieces of the app tests: a corpus with hostile documents, the app served on loopback, and the
headless Chromium of the browser tests.

(No tests here; test_app*.py and the *_browser.py tests import these helpers.)
"""

from __future__ import annotations

import http.client
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from assistant.answer import Assistant
from assistant.settings import Settings
from tests.conftest import test_settings, write_tiny_corpus

HOSTILE_QUESTION = "Que dit la charte des partenariats piégés ?"
HOSTILE_HTML = (
    '<!doctype html>\n<html lang="fr"><head><meta charset="utf-8"><title>Charte des partenariats piégés</title>\n'
    '<script>alert("script-de-page")</script></head>\n'
    "<body onload=\"alert('body-onload')\"><main>\n<h1>Charte des partenariats piégés</h1>\n"
    # One sentence on one line: the extractive answer quotes it whole, markup-like text included.
    "<p>La charte des partenariats piégés exige une alliance transparente &lt;script&gt;alert(1)&lt;/script&gt; "
    "sans image &lt;img src=x onerror=alert(2)&gt; dans la charte des partenariats piégés.</p>\n"
    '<p>Une balise <img src="x" onerror="alert(3)"> et un dessin <svg onload="alert(4)"></svg> accompagnent la '
    'charte des partenariats piégés, avec un lien <a href="javascript:alert(5)">vers la charte</a>.</p>\n'
    "</main></body></html>\n"
)
HOSTILE_MD_QUESTION = "Que contient la fiche des pièges numériques ?"
HOSTILE_MD = (
    "# La fiche des pièges numériques\n\n"
    "La fiche des pièges numériques contient une image ![pixel](http://169.254.169.254/pixel.png) et un lien "
    "[cliquez ici](javascript:alert(6)) que la fiche des pièges numériques ne doit jamais activer.\n"
)
SECRET = "SECRET-NE-JAMAIS-SERVIR"


def write_app_corpus(root: Path) -> Path:
    """The shared tiny corpus, plus hostile documents, a dotfile and a symlink that leaves the corpus."""
    corpus = write_tiny_corpus(root / "corpus")
    (corpus / "charte-piegee.html").write_text(HOSTILE_HTML, encoding="utf-8")
    (corpus / "fiche-pieges.md").write_text(HOSTILE_MD, encoding="utf-8")
    (corpus / ".env").write_text(f"ASSISTANT_LLM_API_KEY={SECRET}\n", encoding="utf-8")
    outside = root / "hors-corpus"
    outside.mkdir(exist_ok=True)
    (outside / "secret.md").write_text(f"# Secret\n\n{SECRET} : ce fichier est hors du corpus.\n", encoding="utf-8")
    (corpus / "fuite.md").symlink_to(outside / "secret.md")
    return corpus


def app_settings(root: Path, corpus: Path, **overrides: Any) -> Settings:
    # Every test client is 127.0.0.1: a module's questions must not hit the per-client limit, except in the
    # tests of that limit (which set it).
    overrides.setdefault("ask_rate_per_minute", 0)
    return test_settings(corpus, root / "data", **overrides)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app with uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on",
                            timeout_graceful_shutdown=1)  # open client streams must not hold the shutdown
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# Debian's chromium: Playwright cannot download its own browser here.
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


def require_chromium() -> None:
    """Skip the test, with the reason, when Chromium or the playwright package is missing."""
    if CHROMIUM is None:
        pytest.skip("Chromium n'est pas installé (apt-get install chromium) : test navigateur ignoré.")
    pytest.importorskip("playwright.sync_api", reason="le paquet Python playwright n'est pas installé")


@contextmanager
def served_app(tmp_path_factory: pytest.TempPathFactory, name: str,
               assistant: Callable[[Settings], Assistant] | None = None,
               **overrides: Any) -> Iterator[tuple[str, Settings]]:
    """For a browser test module: the app corpus indexed in a fresh folder and the app served on loopback;
    yields its base URL and settings. ``assistant`` builds the app's assistant (the app's own by default)."""
    import app as webapp
    from ingest.index import run_ingest

    require_chromium()
    root = tmp_path_factory.mktemp(name)
    settings = app_settings(root, write_app_corpus(root), **overrides)
    run_ingest(settings, progress=False)
    with serve(webapp.build_app(settings, assistant(settings) if assistant else None)) as url:
        yield url, settings


@contextmanager
def chromium(*extra_args: str) -> Iterator[Any]:
    """A headless Chromium driven by Playwright (a ``playwright.sync_api.Browser``), closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def desktop_context(browser: Any, **options: Any) -> Any:
    """A new French desktop context (1280×1000) of ``browser``; ``options`` add to or replace those."""
    return browser.new_context(**({"locale": "fr-FR", "viewport": {"width": 1280, "height": 1000}} | options))


def raw_request(base_url: str, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """An HTTP request with the path sent exactly as written (no client-side normalisation of ``..``)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        received: dict[str, str] = {}
        for key, value in response.getheaders():  # repeated headers (Set-Cookie) joined by newlines
            name = key.lower()
            received[name] = received[name] + "\n" + value if name in received else value
        return response.status, received, response.read()
    finally:
        conn.close()


class TagCollector(HTMLParser):
    """Every start tag with its attributes, to check what a browser would build from some HTML."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    handle_startendtag = handle_starttag


def active_content(fragment: str) -> list[str]:
    """What in an HTML fragment could run or load something: script-like tags, on* handlers,
    javascript: URLs, images and remote resources. Empty when the fragment is inert."""
    parser = TagCollector()
    parser.feed(fragment)
    found = []
    for tag, attrs in parser.tags:
        if tag in ("script", "img", "svg", "iframe", "object", "embed", "style", "link", "meta", "form", "base",
                   "video", "audio", "source", "math"):
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"{tag}[{name}]")
            if name in ("href", "src", "action", "formaction", "xlink:href") and \
                    value.strip().lower().startswith(("javascript:", "data:", "vbscript:")):
                found.append(f"{tag}[{name}={value}]")
            if name == "src":
                found.append(f"{tag}[src]")
    return found
