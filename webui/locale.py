"""Gradio's own strings (buttons, login form, « queue full », errors) in French whatever the browser's language.

Gradio's front end picks its language from ``navigator.language`` as soon as its scripts start, before the
app's ``head`` is added to the page. This middleware puts a small script at the very top of the app page's
``<head>`` (the HTML Gradio serves at ``/``) so that the browser says French first.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRENCH_FIRST = (
    b'<script>try { Object.defineProperty(navigator, "language", {get: () => "fr-FR"});'
    b' Object.defineProperty(navigator, "languages", {get: () => ["fr-FR", "fr"]}); } catch (e) {}</script>'
)
_MAX_PAGE = 2 * 1024 * 1024  # the app page is a few kB: anything larger is passed through untouched


class FrenchLocaleMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in ("/", ""):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        body = b""
        passthrough = False

        async def rewrite(message: Message) -> None:
            nonlocal start, body, passthrough
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                if b"text/html" not in headers.get(b"content-type", b""):
                    passthrough = True
                    await send(message)
                    return
                start = message
                return
            if passthrough or start is None:
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body") and len(body) < _MAX_PAGE:
                return
            head = body.find(b"<head>")
            if head >= 0 and not message.get("more_body"):
                body = body[:head + 6] + FRENCH_FIRST + body[head + 6:]
            kept = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            kept.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": kept})
            await send({"type": "http.response.body", "body": body, "more_body": bool(message.get("more_body"))})
            start, passthrough = None, True  # whatever follows (a body too large to edit) goes as it comes

        await self.app(scope, receive, rewrite)
