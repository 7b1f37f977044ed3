"""An ASGI guard in front of the whole app: Gradio's file, upload and monitoring routes are closed,
every response gets security headers, and the app page gets a Content-Security-Policy.

Only ``/documents/…`` serves corpus files. Gradio's own file routes (``/gradio_api/file=…``,
``/proxy=…``, uploads) are not needed by this app — it has no file component — so they answer
404 whatever the path or URL asked for, before Gradio sees the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Path prefixes that answer 404 (after percent-decoding, case-insensitive).
BLOCKED_PREFIXES = (
    "/gradio_api/upload", "/upload", "/gradio_api/file/", "/gradio_api/stream/", "/gradio_api/process_recording",
    "/gradio_api/vibe", "/gradio_api/undo-vibe", "/gradio_api/run-history", "/gradio_api/runs",
    "/gradio_api/deep_link", "/gradio_api/dev/", "/gradio_api/custom_component/", "/gradio_api/mcp",
    "/monitoring", "/gradio_api/monitoring", "/openapi.json", "/docs", "/redoc", "/gradio_api/profiling",
)
# Anywhere in the path: Gradio's file and proxy routes, in every spelling.
BLOCKED_MARKERS = ("file=", "proxy=")

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


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, csp: str = APP_CSP) -> None:
        self.app = app
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path") or scope.get("path", "").encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        if is_blocked(path) or is_blocked(scope.get("path", "")):
            await _not_found(send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if b"content-security-policy" not in names and content_type.startswith(b"text/html"):
                    headers.append((b"content-security-policy", self.csp))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _not_found(send: Send) -> None:
    body = b"Page introuvable."
    await send({
        "type": "http.response.start",
        "status": 404,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS],
    })
    await send({"type": "http.response.body", "body": body})
