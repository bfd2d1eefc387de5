"""An ASGI middleware that refuses request bodies over a size limit with 413.

Pure ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs every
request through an extra task and stream wrapper, a cost paid on each lease and report.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


class BodyLimit:
    """Answers 413 when Content-Length exceeds the limit; artifact uploads get their own."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_artifact_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_artifact_bytes = max_artifact_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            limit = self.max_artifact_bytes if "/artifacts/" in scope["path"] else self.max_bytes
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > limit:
                body = json.dumps(
                    {"detail": f"request body is {int(length)} bytes; at most {limit} are accepted"}
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
