"""Tenant sessions: the rules of access and refresh tokens (docs/tenant-auth.md). Pure.

A login opens a session. The tenant holds a short-lived access token (a JWT naming the
session) and a refresh token; the server keeps only the SHA-256 of the refresh token
that is current and of the last few spent ones. Each refresh spends the presented token
and issues a new one (rotation). A spent token presented again means two parties hold
the session's tokens (one of them a thief): the whole session is revoked.

A refresh token reads `<openid, base64url>.<session id, 32 hex>.<secret, 32 random bytes
base64url>`: the store finds the session by its key, and only the hash proves the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum

from core.protocol.ids import id_problem

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)  # sliding: each refresh moves the end on...
SESSION_MAX = timedelta(days=90)  # ...but never past this long after the login
SPENT_KEPT = 20  # spent refresh-token hashes a session remembers (reuse detection)
STORE_GRACE = timedelta(days=1)  # a session item stays this long past its end (then TTL deletes it)

_SID = re.compile(r"[0-9a-f]{32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
_B64 = re.compile(r"[A-Za-z0-9_-]{1,120}")
REFRESH_TOKEN_MAX = 256


@dataclass(frozen=True)
class TenantSession:
    openid: str
    session_id: str
    refresh_hash: str  # SHA-256 (hex) of the current refresh token
    spent: tuple[str, ...]  # hashes of the last SPENT_KEPT spent refresh tokens, oldest first
    generation: int  # refreshes made so far
    created_at: datetime
    refreshed_at: datetime
    expires_at: datetime  # the current refresh token's end
    revoked_at: datetime | None = None
    revoked_reason: str = ""

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    @property
    def purge_at(self) -> datetime:
        """When the store may delete the item (DynamoDB TTL; deletion is lazy, so expiry is
        always checked on read as well)."""
        return self.expires_at + STORE_GRACE


class Refresh(Enum):
    ROTATE = "rotate"  # the current token: spend it, issue the next
    REUSED = "reused"  # a spent token: revoke the session
    REVOKED = "revoked"  # the session was revoked before
    EXPIRED = "expired"  # the current token, past its end
    UNKNOWN = "unknown"  # no such session, or a token this session never issued (recently)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(openid: str, session_id: str, refresh_hash: str, now: datetime) -> TenantSession:
    return TenantSession(openid, session_id, refresh_hash, (), 0, now, now, min(now + REFRESH_TTL, now + SESSION_MAX))


def judge_refresh(session: TenantSession | None, token_hash: str, now: datetime) -> Refresh:
    if session is None:
        return Refresh.UNKNOWN
    if session.revoked_at is not None:
        return Refresh.REVOKED if token_hash == session.refresh_hash or token_hash in session.spent else Refresh.UNKNOWN
    if token_hash == session.refresh_hash:
        return Refresh.ROTATE if now < session.expires_at else Refresh.EXPIRED
    if token_hash in session.spent:
        return Refresh.REUSED
    return Refresh.UNKNOWN


def rotated(session: TenantSession, new_hash: str, now: datetime) -> TenantSession:
    """The session after its current refresh token is spent for one hashing to new_hash."""
    return replace(
        session,
        refresh_hash=new_hash,
        spent=(*session.spent, session.refresh_hash)[-SPENT_KEPT:],
        generation=session.generation + 1,
        refreshed_at=now,
        expires_at=min(now + REFRESH_TTL, session.created_at + SESSION_MAX),
    )


def access_expiry(session: TenantSession, now: datetime) -> datetime:
    """An access token never outlives its session."""
    return min(now + ACCESS_TTL, session.expires_at)


def refresh_token(openid: str, session_id: str, secret: str) -> str:
    encoded = base64.urlsafe_b64encode(openid.encode()).decode().rstrip("=")
    return f"{encoded}.{session_id}.{secret}"


def parse_refresh_token(token: object) -> tuple[str, str] | None:
    """(openid, session id) of a well-formed refresh token, else None."""
    if not isinstance(token, str) or len(token) > REFRESH_TOKEN_MAX:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not _B64.fullmatch(parts[0]) or not _SID.fullmatch(parts[1]) or not _SECRET.fullmatch(parts[2]):
        return None
    try:
        openid = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if id_problem(openid) or refresh_token(openid, parts[1], parts[2]) != token:
        return None  # the canonical spelling only: one session, one token string
    return openid, parts[1]
