"""An ASGI middleware that adds security headers to every response.

Rules:
- Every response: `X-Content-Type-Options: nosniff` (a browser never guesses another type
  than the one served), `X-Frame-Options: DENY` (no page of the server inside a frame) and
  `Referrer-Policy: no-referrer`.
- Responses under /api/ also get `Content-Security-Policy: default-src 'none';
  frame-ancestors 'none'; sandbox`: JSON answers and artifacts opened directly in a tab can
  load nothing and run nothing.
- A response that sets its own Content-Security-Policy keeps it (the dashboard's shell:
  service/api/dashboard.py). `/docs` and `/redoc` get none: they load Swagger UI and ReDoc
  from their CDN with inline scripts, and carry no data.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
API_CSP = b"default-src 'none'; frame-ancestors 'none'; sandbox"
CSP = b"content-security-policy"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/api/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in ALWAYS if k not in present]
                if is_api and CSP not in present:
                    headers.append((CSP, API_CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
