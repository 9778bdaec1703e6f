"""Mini-program subscribe-message consents (table `consents`, docs/notifications.md "Channels").

Mini-program subscribe messages are one-time: each "accept" a tenant gives to
wx.requestSubscribeMessage allows one message of that template. `grant` adds to the
(openid, template_key) count, `take` spends one (an atomic conditional decrement: two
senders racing for the last grant cannot both win), `counts` reads a user's counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.store.models import ConsentItem
from core.store.tx import update_if, update_item


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def grant(openid: str, template_key: str, count: int = 1) -> None:
    """Add `count` (>= 1) one-time grants: one UpdateItem ADD (a retry after a lost answer
    may add twice; WeChat itself keeps the real quota and refuses beyond it, 43101)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("count must be a positive integer")
    item = ConsentItem(openid, template_key)
    update_item(item, [ConsentItem.remaining.add(count), ConsentItem.granted_total.add(count),
                       ConsentItem.updated_at.set(_now())])


def take(openid: str, template_key: str) -> bool:
    """Spend one grant: True if there was one (and it is now used), False if none is left.
    One conditional UpdateItem (remaining > 0)."""
    item = ConsentItem(openid, template_key)
    return update_if(item, [ConsentItem.remaining.add(-1), ConsentItem.updated_at.set(_now())],
                     ConsentItem.remaining > 0)


def counts(openid: str) -> dict[str, int]:
    """{template_key: grants left} of a WeChat user (one Query; keys with none left are 0)."""
    return {i.template_key: int(i.remaining or 0) for i in ConsentItem.query(openid, consistent_read=True)}
