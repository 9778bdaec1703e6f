"""Errors that cross layers.

Each carries a stable machine ``code`` (English, for clients and logs), an HTTP-like
``status`` and a ``message`` a person can act on (Simplified Chinese, shown to tenants
and admins). Entry points turn them into ``{"error": {"code", "message"}}`` bodies.
"""

from __future__ import annotations


class FeikongError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, **details: object) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def to_body(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return {"error": body}


class ValidationError(FeikongError):
    status = 400
    code = "invalid_input"


class Unauthorized(FeikongError):
    status = 401
    code = "unauthorized"


class Forbidden(FeikongError):
    status = 403
    code = "forbidden"


class NotFound(FeikongError):
    status = 404
    code = "not_found"


class Conflict(FeikongError):
    status = 409
    code = "conflict"


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class AccountClosed(Conflict):
    code = "account_closed"


class IdempotencyConflict(Conflict):
    """The same entry id was posted before with different content."""

    code = "idempotency_conflict"


class ConditionFailed(Conflict):
    """A caller-supplied extra condition of a posting did not hold."""

    code = "condition_failed"


class ContentionError(FeikongError):
    """Too many concurrent writers on one account; the caller may retry."""

    status = 503
    code = "contention"


class WriteRefused(ConditionFailed):
    """A write that joined a posting (core.domain.writes) was refused; `refused` holds the
    refusals (record and, when known, what stands now). Not shown to clients."""

    def __init__(self, message: str, refused: tuple = (), **details: object) -> None:
        super().__init__(message, **details)
        self.refused = tuple(refused)
