"""Persistence of tenant sessions (docs/tenant-auth.md): one item per session in the
`tenant_sessions` table, keyed (openid, session_id). Every read is consistent: a revoked
session must stop working at once, and revoking a WeChat user's sessions must see one
that was opened a moment ago (a base-table query can be consistent; an index cannot)."""

from __future__ import annotations

from datetime import datetime

from core.domain.ledger import format_time, parse_time
from core.domain.sessions import TenantSession
from core.store.models import TenantSessionItem
from core.store.tx import save_if, update_if


def _time(value: str | None) -> datetime | None:
    return parse_time(value, "time") if value else None


def _session(i: TenantSessionItem) -> TenantSession:
    return TenantSession(
        openid=i.openid,
        session_id=i.session_id,
        refresh_hash=i.refresh_hash,
        spent=tuple(i.spent or ()),
        generation=int(i.generation or 0),
        created_at=parse_time(i.created_at, "created_at"),
        refreshed_at=parse_time(i.refreshed_at, "refreshed_at"),
        expires_at=parse_time(i.expires_at, "expires_at"),
        revoked_at=_time(i.revoked_at),
        revoked_reason=i.revoked_reason or "",
    )


def create(s: TenantSession) -> bool:
    """Put a new session; False if the (random) session id was somehow taken."""
    item = TenantSessionItem(
        s.openid,
        s.session_id,
        refresh_hash=s.refresh_hash,
        spent=list(s.spent),
        generation=s.generation,
        created_at=format_time(s.created_at),
        refreshed_at=format_time(s.refreshed_at),
        expires_at=format_time(s.expires_at),
        purge_at=s.purge_at,
    )
    return save_if(item, TenantSessionItem.session_id.does_not_exist())


def raw_key(openid: str, session_id: str) -> dict:
    """The session item's key as DynamoDB's API spells it (core/store/tenant_batch.py)."""
    return {"openid": {"S": openid}, "session_id": {"S": session_id}}


def from_raw(item: dict) -> TenantSession:
    """A session from a raw item of a BatchGetItem answer."""
    return _session(TenantSessionItem.from_raw_data(item))


def get(openid: str, session_id: str) -> TenantSession | None:
    try:
        return _session(TenantSessionItem.get(openid, session_id, consistent_read=True))
    except TenantSessionItem.DoesNotExist:
        return None


def of_openid(openid: str) -> list[TenantSession]:
    return [_session(i) for i in TenantSessionItem.query(openid, consistent_read=True)]


def rotate(before: TenantSession, after: TenantSession) -> bool:
    """Spend before's refresh token for after's: True if done, False if the session moved
    on meanwhile (another refresh spent the same token first) or was revoked. A retry of
    our own write that went in (its answer lost) finds after's hash already and succeeds."""
    i = TenantSessionItem
    return update_if(
        i(before.openid, before.session_id),
        [
            i.refresh_hash.set(after.refresh_hash),
            i.spent.set(list(after.spent)),
            i.generation.set(after.generation),
            i.refreshed_at.set(format_time(after.refreshed_at)),
            i.expires_at.set(format_time(after.expires_at)),
            i.purge_at.set(after.purge_at),
        ],
        i.session_id.exists()
        & i.revoked_at.does_not_exist()
        & ((i.refresh_hash == before.refresh_hash) | (i.refresh_hash == after.refresh_hash)),
    )


def revoke(openid: str, session_id: str, now: datetime, reason: str) -> bool:
    """Mark a session revoked: True if this call revoked it, False if it was already
    revoked or does not exist."""
    i = TenantSessionItem
    return update_if(
        i(openid, session_id),
        [i.revoked_at.set(format_time(now)), i.revoked_reason.set(reason)],
        i.session_id.exists() & i.revoked_at.does_not_exist(),
    )
