"""One error tree for the service; the API maps each class to one HTTP status in one place."""

from __future__ import annotations

from collections.abc import Collection

from pydantic import ValidationError


class TunesmithError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 400


class InvalidRequest(TunesmithError):
    """The request is well-formed JSON but its content is not acceptable.

    `field` is the dotted path of the (first) offending field; `problems` lists every
    (field, message) pair when there are several (the API answers one 422 item each).
    """

    status_code = 422

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problems = problems or [(field or "", message)]

    @classmethod
    def from_validation(
        cls, exc: ValidationError, *, prefix: str = "", tags: Collection[str] = ()
    ) -> InvalidRequest:
        """Every error of `exc` as one InvalidRequest naming the fields (see `field_errors`)."""
        problems = field_errors(exc, prefix=prefix, tags=tags)
        message = "; ".join(f"{where}: {msg}" for where, msg in problems)
        return cls(message, field=problems[0][0], problems=problems)


def field_errors(
    exc: ValidationError, *, prefix: str = "", tags: Collection[str] = ()
) -> list[tuple[str, str]]:
    """(dotted field path, message) for each error of `exc`: the one place pydantic's error
    locations become field names. `prefix` is prepended (e.g. "objective_args"); `tags` are
    discriminator values that pydantic puts in locations (a parameter's "float") and that
    name no field, dropped unless they are the first part."""
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = [str(p) for i, p in enumerate(err["loc"]) if i == 0 or str(p) not in tags]
        where = ".".join([prefix, *loc] if prefix else loc)
        out.append((where, str(err["msg"])))
    return out


class InvalidSearchSpace(InvalidRequest):
    """A search space (or one of its parameters) is not valid."""


class InvalidConfiguration(InvalidRequest):
    """A configuration does not belong to the search space."""


class NotFound(TunesmithError):
    status_code = 404


class Conflict(TunesmithError):
    """The request contradicts the current state (stale lease, finished trial, stopped study)."""

    status_code = 409


class Unauthorized(TunesmithError):
    status_code = 401


class Forbidden(TunesmithError):
    status_code = 403


class TooManyRequests(TunesmithError):
    """A per-process cap is reached (open event streams); retry after `RETRY_AFTER_S`."""

    status_code = 429
    RETRY_AFTER_S = 5
