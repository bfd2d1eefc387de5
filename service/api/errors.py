"""Maps the service's error tree to HTTP responses, in one place."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from service.errors import InvalidRequest, TooManyRequests, TunesmithError

log = logging.getLogger(__name__)


def _tunesmith_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TunesmithError)
    if isinstance(exc, InvalidRequest):
        detail = [
            {
                "loc": ["body", *(field.split(".") if field else [])],
                # `loc` names the field; the message does not again (many messages start
                # with it, to read well on their own in logs and exceptions).
                "msg": message.removeprefix(f"{field}: ") if field else message,
                "type": "value_error",
            }
            for field, message in exc.problems
        ]
        return JSONResponse({"detail": detail}, status_code=exc.status_code)
    headers = None
    if exc.status_code == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.RETRY_AFTER_S)}
    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)


def _json_safe(value: Any) -> Any:
    """NaN and infinities (e.g. the rejected `input` of a 422) as strings: JSON has no such
    numbers, and rendering them would turn the 422 into a 500."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(
        {"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422
    )


def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """A lost or refused database connection (PostgreSQL restarting, SQLite busy) is a 503
    that clients retry (the client and workers retry 502/503/504), not a 500."""
    assert isinstance(exc, OperationalError)
    log.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
    return JSONResponse(
        {"detail": "the database is unavailable for a moment; retry"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TunesmithError, _tunesmith_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)


Responses = dict[int | str, dict[str, Any]]

ERROR_RESPONSES: Responses = {
    401: {"description": "Missing, invalid or revoked token"},
    403: {
        "description": "The token's role may not do this; or the study belongs to someone "
        "else, or another token holds the worker id"
    },
    413: {"description": "The body is over the limit (counted as it arrives, chunked too)"},
    422: {"description": "Invalid request; `detail[].loc` names the field"},
    503: {"description": "The database is unavailable for a moment; retry"},
}
NOT_FOUND: Responses = {404: {"description": "No such study, trial or artifact"}}
TOO_MANY: Responses = {429: {"description": "Too many open event streams; retry later"}}
CONFLICT: Responses = {
    409: {"description": "Stale or wrong lease token, or the study/trial state forbids it"}
}
