"""Maps the service's error tree to HTTP responses, in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from service.errors import InvalidRequest, TunesmithError


def _tunesmith_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TunesmithError)
    if isinstance(exc, InvalidRequest):
        loc = ["body", *(exc.field.split(".") if exc.field else [])]
        detail = [{"loc": loc, "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": detail}, status_code=exc.status_code)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(TunesmithError, _tunesmith_error)


Responses = dict[int | str, dict[str, Any]]

ERROR_RESPONSES: Responses = {
    401: {"description": "Missing, invalid or revoked token"},
    403: {"description": "The token's role may not do this"},
    422: {"description": "Invalid request; `detail[].loc` names the field"},
}
NOT_FOUND: Responses = {404: {"description": "No such study, trial or artifact"}}
CONFLICT: Responses = {
    409: {"description": "Stale or wrong lease token, or the study/trial state forbids it"}
}
