"""Time is passed in: services take a `Clock` (a function returning an aware UTC datetime)
so that tests compress hours with an injected clock instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
