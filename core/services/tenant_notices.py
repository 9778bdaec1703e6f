"""A tenant's alarm preferences per account (core/domain/alarm_prefs.py) and the
notifications the account has had (core/domain/tenant_feed.py), for /api/v1."""

from __future__ import annotations

from core.domain import alarm_prefs as prefs_rules
from core.domain import tenant_feed as feed_rules
from core.domain.alarm_prefs import AlarmPrefs
from core.domain.clock import Clock, utcnow
from core.domain.errors import ValidationError
from core.domain.ledger import format_time
from core.services import tenancy
from core.store import events as events_store
from core.store import tenant_money as store

PAGE_MAX = 50


def preferences(openid: str, account_id: object) -> AlarmPrefs:
    """The caller's preferences for the account (defaults until saved)."""
    account = tenancy.require_member(openid, account_id)
    return store.get_prefs(openid, account) or AlarmPrefs()


def save_preferences(openid: str, account_id: object, body: object, clock: Clock = utcnow) -> AlarmPrefs:
    account = tenancy.require_member(openid, account_id)
    p = prefs_rules.parse(body)
    store.put_prefs(openid, account, p, format_time(clock()))
    return p


def notifications(openid: str, account_id: object, cursor: object = None,
                  limit: int = 20) -> tuple[list[feed_rules.Notification], str | None]:
    """A page of the account's notifications, newest first, and the next page's cursor:
    one Query of the events' by_account_feed index (plus the access check)."""
    account = tenancy.require_member(openid, account_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_MAX:
        raise ValidationError(f"limit 必须在 1 到 {PAGE_MAX} 之间", code="limit_invalid", field="limit")
    after = feed_rules.decode_cursor(cursor, events_store.FEED_CURSOR_KEYS)
    if after is not None and after["account_feed"] != account:
        raise ValidationError("cursor 无效", code="cursor_invalid", field="cursor")
    events, nxt = events_store.feed_page(account, limit, after)
    return [feed_rules.notification(e) for e in events], feed_rules.encode_cursor(nxt) if nxt else None
