"""An ASGI guard in front of the whole app: Gradio's file, upload and monitoring routes are closed,
every response gets security headers, and the app page gets a Content-Security-Policy.

With a login (``ASSISTANT_AUTH``), every route answers 401 to a client without a valid session cookie,
except the login page and what it loads (:data:`PUBLIC_PATHS`): Gradio leaves some of its own routes
open (``/gradio_api/cancel``, ``/reset``, ``/heartbeat``…), this guard does not rely on it. Failed logins
are counted per client address: after ``login_max_failures`` in a row, ``/login`` answers 429 for a while.
When Gradio's queue is full, its English refusal of ``/gradio_api/queue/join`` becomes a French one
(:data:`QUEUE_FULL`).

Only ``/documents/…`` serves corpus files. Gradio's own file routes (``/gradio_api/file=…``,
``/proxy=…``, uploads) are not needed by this app — it has no file component — so they answer
404 whatever the path or URL asked for, before Gradio sees the request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import unquote

from starlette.requests import cookie_parser

from webui.limits import LoginGuard, locked_out, too_many_requests

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Gradio refuses a question with 503 « Queue is full… » (or « Queue is stopped. ») when its queue is full,
# and its browser client then shows a fixed English sentence for any 503. Another status with a JSON
# ``detail`` is shown as written: the refusal goes out as 429 with this French sentence.
QUEUE_RETRY_S = 5.0
QUEUE_FULL = too_many_requests(QUEUE_RETRY_S)  # the sentence of the per-client limit, with its delay

# Path prefixes that answer 404 (after percent-decoding, case-insensitive).
BLOCKED_PREFIXES = (
    "/gradio_api/upload", "/upload", "/gradio_api/file/", "/gradio_api/stream/", "/gradio_api/process_recording",
    "/gradio_api/vibe", "/gradio_api/undo-vibe", "/gradio_api/run-history", "/gradio_api/runs",
    "/gradio_api/deep_link", "/gradio_api/dev/", "/gradio_api/custom_component/", "/gradio_api/mcp",
    "/monitoring", "/gradio_api/monitoring", "/openapi.json", "/docs", "/redoc", "/gradio_api/profiling",
)
# Anywhere in the path: Gradio's file and proxy routes, in every spelling.
BLOCKED_MARKERS = ("file=", "proxy=")

# Open without a session when a login is required: the login page, its assets, the login and logout routes.
PUBLIC_PATHS = frozenset({
    "/", "/login", "/login/", "/logout", "/favicon.ico", "/theme.css", "/gradio_api/theme.css", "/robots.txt",
    "/manifest.json", "/gradio_api/login_check", "/gradio_api/login_check/",
    "/accessibilite",  # the accessibility statement must be readable before logging in
})
PUBLIC_PREFIXES = ("/assets/", "/static/", "/svelte/", "/pwa_icon")
LOGIN_PATHS = frozenset({"/login", "/login/"})
LOGIN_REQUIRED = "Connexion requise : connectez-vous d'abord."

# Gradio's own page needs inline scripts (its config) and eval (gr.HTML templates); what the CSP adds
# here is that no remote image, frame, form target or connection is allowed.
APP_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; media-src 'self' blob:; "
    "worker-src 'self' blob:; object-src 'none'; frame-src 'self'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'self'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)


def is_blocked(path: str) -> bool:
    decoded = path
    for _ in range(3):  # double and triple encodings as well
        decoded = unquote(decoded)
    lowered = decoded.lower().replace("\\", "/")
    while "//" in lowered:
        lowered = lowered.replace("//", "/")
    if "\x00" in lowered or any(segment in ("..", ".") for segment in lowered.split("/")):
        return True
    if any(marker in lowered for marker in BLOCKED_MARKERS):
        return True
    return lowered.startswith(BLOCKED_PREFIXES)


def is_public(path: str) -> bool:
    """Whether ``path`` (already decoded by the server) is open without a session when a login is required."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def client_key(scope: Scope) -> str:
    """The client's address, the key of the per-client limits."""
    client = scope.get("client")
    return str(client[0]) if client else "inconnu"


def _cookies(scope: Scope) -> dict[str, str]:
    raw = b"; ".join(v for k, v in scope.get("headers", []) if k.lower() == b"cookie")
    return cookie_parser(raw.decode("latin-1")) if raw else {}


class SecurityMiddleware:
    """``logged_in(cookies)``: whether the request's cookies hold a valid session (None: no login required)."""

    def __init__(self, app: ASGIApp, *, csp: str = APP_CSP,
                 logged_in: Callable[[Mapping[str, str]], bool] | None = None,
                 login_guard: LoginGuard | None = None) -> None:
        self.app = app
        self.csp = csp.encode()
        self.logged_in = logged_in
        self.login_guard = login_guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope.get("path", "").encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        if is_blocked(path) or is_blocked(scope.get("path", "")):
            await _not_found(send)
            return
        route = scope.get("path", "")
        if self.logged_in is not None and not is_public(route) and not self.logged_in(_cookies(scope)):
            await _plain(send, 401, LOGIN_REQUIRED)
            return
        login = self.login_guard is not None and route in LOGIN_PATHS and scope.get("method") == "POST"
        key = client_key(scope)
        if login and self.login_guard is not None and (wait := self.login_guard.wait(key)) > 0:
            await _plain(send, 429, locked_out(wait), retry_after=wait)
            return
        status: list[int] = []
        joining = route.rstrip("/").endswith("/queue/join") and scope.get("method") == "POST"

        async def send_with_headers(message: Message) -> None:
            if joining and (status or [0])[0] == 503:  # the body of Gradio's English refusal: replaced
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    await _plain(send, 429, QUEUE_FULL, retry_after=QUEUE_RETRY_S)
                return
            if joining and message["type"] == "http.response.start" and int(message["status"]) == 503:
                status.append(503)
                return
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if b"content-security-policy" not in names and content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", self.csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
        if login and self.login_guard is not None and status:
            if status[0] == 200:
                self.login_guard.succeeded(key)
            elif status[0] < 500:  # wrong credentials (400), or a malformed form (422)
                self.login_guard.failed(key)


async def _not_found(send: Send) -> None:
    body = b"Page introuvable."
    await send({
        "type": "http.response.start",
        "status": 404,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS],
    })
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, message: str, *, retry_after: float | None = None) -> None:
    """A JSON error ``{"detail": message}`` (what Gradio's client and login page read), in French."""
    body = json.dumps({"detail": message}, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
