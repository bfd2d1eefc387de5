"""An ASGI middleware that refuses request bodies over a size limit with 413.

Rules:
- The limit is `max_bytes`, or `max_artifact_bytes` for artifact uploads
  (PUT /api/v1/trials/{id}/artifacts/...).
- A Content-Length over the limit is refused before any byte is read.
- Every body is also counted as it arrives (chunked bodies have no Content-Length, and a
  client may send more than it announced): the read that passes the limit raises a 413
  inside the application, so the handler stops reading and nothing is stored. The bytes
  held in memory at that moment are at most the limit plus one chunk of the server's.

Pure ASGI rather than `@app.middleware("http")`: Starlette's BaseHTTPMiddleware runs every
request through an extra task and stream wrapper, a cost paid on each lease and report.
"""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ARTIFACT_UPLOAD = re.compile(r"^/api/v1/trials/[^/]+/artifacts/")


class BodyTooLarge(HTTPException):
    """Raised from `receive` when the body passes the limit. FastAPI passes an HTTPException
    raised while reading a body on (it does not become a 400) and answers it with 413."""

    def __init__(self, limit: int, length: int | None = None) -> None:
        size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
        super().__init__(
            status_code=413, detail=f"request body is {size}; at most {limit} are accepted"
        )


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_artifact_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_artifact_bytes = max_artifact_bytes

    def limit_for(self, scope: Scope) -> int:
        if scope["method"] == "PUT" and ARTIFACT_UPLOAD.match(scope["path"]):
            return self.max_artifact_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            await _refuse(send, BodyTooLarge(limit, int(length)))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


async def _refuse(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps({"detail": exc.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
