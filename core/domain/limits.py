"""Rate limits of the tenant API (docs/tenant-auth.md, "Limits"). Pure.

Fixed windows: a rule allows `limit` hits per subject (an IP address, an openid) in each
window of `window_seconds` that starts at a multiple of it (Unix time). The store keeps
one counter per rule, subject and window; each check adds one and compares.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from core.domain.errors import FeikongError

MESSAGE = "操作过于频繁，请稍后再试"
KEEP_AFTER_WINDOW = 3600  # a counter's item outlives its window this long (then TTL deletes it)


class RateLimited(FeikongError):
    """429: too many hits; `retry_after` seconds until the window ends."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(MESSAGE)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rule:
    name: str  # login_ip, login_openid, order_openid, order_ip
    limit: int
    window_seconds: int


@dataclass(frozen=True)
class Window:
    start: int  # Unix seconds
    end: int


def window(rule: Rule, now: datetime) -> Window:
    t = int(now.timestamp())
    start = t - t % rule.window_seconds
    return Window(start, start + rule.window_seconds)


def counter_key(rule: Rule, subject: str, w: Window) -> str:
    """`<rule>#<subject hash>#<window start>`: no IP address or openid in the table."""
    digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
    return f"{rule.name}#{digest}#{w.start}"


def retry_after(w: Window, now: datetime) -> int:
    """Whole seconds until the window ends (at least 1), for Retry-After."""
    return max(1, math.ceil(w.end - now.timestamp()))


def client_ip(forwarded_for: str | None, remote_addr: str | None, proxy_hops: int) -> str | None:
    """The client's address from X-Forwarded-For as API Gateway passes it on: each proxy
    appends the address it saw, so the last `proxy_hops` entries are our own proxies
    (CloudFront of an edge-optimized API) and the entry before them is the address that
    connected to them. Entries before that are whatever the client sent: never trusted.
    Without enough entries, the socket's address (remote_addr)."""
    entries = [e.strip() for e in (forwarded_for or "").split(",") if e.strip()]
    found = entries[-1 - proxy_hops] if len(entries) > proxy_hops else remote_addr or ""
    return found[:64] or None
