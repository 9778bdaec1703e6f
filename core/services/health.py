"""Whether the platform's dependencies answer."""

from __future__ import annotations

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import EndpointConnectionError

from core.store import health as store_health


def is_backend_down(exc: BaseException) -> bool:
    """True if exc (or what caused it, through the store's own wrapping) is a failure to
    reach AWS at all, as opposed to a bug or a refused request."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (EndpointConnectionError, BotoConnectionError, ConnectionError)):
            return True
        exc = getattr(exc, "cause", None) or exc.__cause__ or exc.__context__
    return False


def check() -> dict:
    try:
        store_health.ping()
        return {"status": "ok", "database": "ok"}
    except Exception as e:
        if not is_backend_down(e):
            raise
        return {"status": "degraded", "database": "unreachable"}
