"""One error tree for the service; the API maps each class to one HTTP status in one place."""

from __future__ import annotations


class TunesmithError(Exception):
    """Base of every error the service raises on purpose."""

    status_code = 400


class InvalidRequest(TunesmithError):
    """The request is well-formed JSON but its content is not acceptable."""

    status_code = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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


class Retryable(TunesmithError):
    """A transient failure; the caller may try again (database busy, lock timeout)."""

    status_code = 503
