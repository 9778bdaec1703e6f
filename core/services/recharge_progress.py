"""Where my money is: gathers the facts of a recharge's chain — order, its ledger credit,
the account's supply state, each meter's restore command and relay as read back, its
site's heartbeat — and hands them to the pure rule core/domain/progress.py.

Reads: the order (1), the account (1), the payment's entry (1), the meters of the account
(query + BatchGet), their newest relay commands (BatchGet) and sites (BatchGet): 7.

`stream` repeats the read every `every` seconds and yields the body whenever it changes,
until a final state or `max_seconds` (injected clock and sleep: tests pass time without
waiting). API Gateway buffers whole responses, so behind it the client gets the events at
once at the end: clients poll the JSON endpoint and use the stream only where it is served
directly (docs/tenant-api.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime

from core.domain import progress as rules
from core.domain.clock import Clock, utcnow
from core.domain.errors import NotFound
from core.domain.ledger import format_time
from core.domain.payments import PAID, check_out_no
from core.domain.progress import Facts, Progress
from core.services import tenancy
from core.store import payments as orders
from core.store import tenant_money as store
from core.store.ledger import LedgerStore

ORDER_NOT_FOUND = "订单不存在"
STREAM_SECONDS = 25.0  # below API Gateway's 29 s integration timeout
STREAM_EVERY = 1.0


def _utc(value: str) -> str:
    """A stored time in one comparable form (format_time); "" when absent or unreadable."""
    if not value:
        return ""
    try:
        return format_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return ""


def order_of(openid: str, out_trade_no: object):
    """The order if the WeChat user paid it or shares its account; else 404 (the same for a
    missing order and another tenant's)."""
    try:
        no = check_out_no(out_trade_no, "out_trade_no")
    except Exception:
        raise NotFound(ORDER_NOT_FOUND, code="order_not_found") from None
    order = orders.get_order(no)
    if order is None:
        raise NotFound(ORDER_NOT_FOUND, code="order_not_found")
    if order.openid != openid:
        try:
            tenancy.require_member(openid, order.account_id)
        except NotFound:
            raise NotFound(ORDER_NOT_FOUND, code="order_not_found") from None
    return order


def facts(order, now: datetime) -> Facts:
    if order.status != PAID:
        return Facts(order_status=order.status)
    ledger = LedgerStore()
    entry_id = f"pay:{order.transaction_id}"
    entry = ledger.get_entry(order.account_id, entry_id)
    state = ledger.load_state(order.account_id)
    meters = tuple(
        replace(m, relay_seen_at=_utc(m.relay_seen_at),
                command=replace(m.command, issued_at=_utc(m.command.issued_at),
                                updated_at=_utc(m.command.updated_at)) if m.command else None)
        for m in store.restore_view(order.account_id, now)
    )
    control = state.control if state else {}
    return Facts(
        order_status=order.status, paid_at=_utc(order.paid_at), credited_at=_utc(entry.posted_at) if entry else "",
        balance=state.balance if state else 0, cut_state=control.get("cut_state") or "none",
        restore_line=int(control.get("restore_line") or 0), overdraft_limit=state.overdraft_limit if state else 0,
        meter_side=bool(control.get("meter_side")), meters=meters, restore_cause=f"entry:{entry_id}",
    )


def progress_of(order, clock: Clock = utcnow) -> Progress:
    return rules.progress(facts(order, clock()))


def progress(openid: str, out_trade_no: object, clock: Clock = utcnow) -> Progress:
    return progress_of(order_of(openid, out_trade_no), clock)


def stream(order, clock: Clock = utcnow, sleep: Callable[[float], None] = time.sleep,
           max_seconds: float = STREAM_SECONDS, every: float = STREAM_EVERY) -> Iterator[Progress]:
    """The progress each time it changes (the first read always), until a final state or
    max_seconds. The caller has checked access (order_of) before the stream starts."""
    start = clock()
    last = None
    while True:
        p = progress_of(orders.get_order(order.out_trade_no) or order, clock)
        if p != last:
            yield p
            last = p
        if p.final or (clock() - start).total_seconds() + every > max_seconds:
            return
        sleep(every)
