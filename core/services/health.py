"""Whether the platform's dependencies answer."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from core.store import health as store_health


def check() -> dict:
    try:
        store_health.ping()
        return {"status": "ok", "database": "ok"}
    except (BotoCoreError, ClientError) as e:
        return {"status": "degraded", "database": f"unreachable: {type(e).__name__}"}
