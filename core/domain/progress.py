"""Where my money is: the progress of a recharge from payment to power back on.

The chain (docs/tenant-api.md, "Money chain"): paid (the order is PAID) → credited (its
ledger entry `pay:<transaction id>`; written in the same transaction as PAID) → command
sent (the restore CLOSE of each cut meter: written in the credit's own transaction, or by
the reconciler when a meter moved meanwhile) → relay closed as read back (a command result
or a reading reporting `relay_state` closed, docs/control.md "Supply as reconciled state").

`progress(facts)` is a pure rule over plain facts gathered by
core/services/recharge_progress.py; it names one state with a Chinese message, the four
steps, and whether the state is final (the stream stops there).

Local confirmation: some prepaid meters close their relay only after someone presses the
button on the meter (按键合闸). Nothing in the meter profiles models it, so it is a meter
setting, `close_needs_local_confirm` (core/store/models.py MeterItem); such a meter that
has taken the CLOSE but still reads open asks the tenant to press the button.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.domain.money import yuan

WAITING_PAYMENT, PAID, CREDITED = "waiting_payment", "paid", "credited"
COMMAND_SENT, RESTORED, NOT_NEEDED = "command_sent", "restored", "not_needed"
NEEDS_LOCAL_CONFIRM, SITE_OFFLINE, FAILED = "needs_local_confirm", "site_offline", "failed"
STATES = (WAITING_PAYMENT, PAID, CREDITED, COMMAND_SENT, RESTORED, NOT_NEEDED, NEEDS_LOCAL_CONFIRM, SITE_OFFLINE,
          FAILED)

STEP_KEYS = ("paid", "credited", "command_sent", "relay_closed")
STEP_TEXTS = {"paid": "支付成功", "credited": "已到账", "command_sent": "已发送合闸指令", "relay_closed": "电表已合闸"}

@dataclass(frozen=True)
class CommandFacts:
    """A meter's newest relay command (what the store keeps of it)."""

    op: str  # TRIP | CLOSE
    state: str  # queued | sent | applied | failed | expired | superseded
    issued_at: str
    updated_at: str = ""
    cause: str = ""
    result_relay: str = ""  # the relay state the result read back ("" when none)


@dataclass(frozen=True)
class MeterFacts:
    meter_id: str
    relay_state: str  # open | closed | unknown: only what a read-back confirmed
    relay_seen_at: str = ""
    steered: bool = True  # cloud-billed, not retired: the cloud switches its relay
    keep_supply: bool = False
    manual_open: bool = False  # an admin's manual trip holds it open
    needs_local_confirm: bool = False  # the meter's close_needs_local_confirm setting
    site_online: bool = True  # its site's bridge heartbeat is fresh
    command: CommandFacts | None = None


@dataclass(frozen=True)
class Facts:
    order_status: str  # PENDING | PAID | CLOSED
    paid_at: str = ""
    credited_at: str = ""  # posted_at of the payment's ledger entry ("" if not found)
    balance: int = 0
    cut_state: str = "none"  # none | pending | cut (the account's, now)
    restore_line: int = 0
    overdraft_limit: int = 0
    meter_side: bool = False
    restore_cause: str = ""  # "entry:<the payment's entry id>": the cause of the CLOSE written with the credit
    meters: tuple[MeterFacts, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Step:
    key: str
    text: str
    done: bool
    at: str | None = None


@dataclass(frozen=True)
class Progress:
    state: str
    message: str
    steps: tuple[Step, ...]
    balance_fen: int | None
    final: bool
    shortfall_fen: int | None = None  # still needed to lift the balance above the restore line


def restore_threshold(restore_line: int, overdraft_limit: int) -> int:
    """Supply comes back when the balance is strictly above this (core/domain/control.py decide)."""
    return max(restore_line, -overdraft_limit)


def shortfall(balance: int, restore_line: int, overdraft_limit: int) -> int:
    """Fen still needed to restore supply (0 when the balance is enough)."""
    return max(0, restore_threshold(restore_line, overdraft_limit) + 1 - balance)


def _restore_command(m: MeterFacts, since: str, cause: str) -> CommandFacts | None:
    """The meter's newest command if it is the restore after this payment: a CLOSE caused by
    the payment's entry, or any CLOSE issued at or after the payment (the reconciler's)."""
    c = m.command
    if c is None or c.op != "CLOSE":
        return None
    if (cause and c.cause == cause) or (since and c.issued_at >= since):
        return c
    return None


def meter_state(m: MeterFacts, since: str, cause: str = "") -> str:
    """Where one steered meter stands after the payment."""
    c = _restore_command(m, since, cause)
    if m.manual_open:
        return FAILED
    if c is None:
        # no restore since the payment: an open relay waits for one (or for more money)
        return CREDITED if m.relay_state == "open" else NOT_NEEDED
    if m.relay_state == "closed" and (m.relay_seen_at >= c.issued_at or c.result_relay == "closed"):
        return RESTORED
    if c.state in ("failed", "expired"):
        return FAILED
    if c.state == "applied":
        if m.needs_local_confirm:
            return NEEDS_LOCAL_CONFIRM  # the meter took the order; the relay waits for the button
        if c.result_relay == "open":
            return FAILED  # taken but still open: the reconciler orders it again
        return COMMAND_SENT  # taken; waiting for the read-back
    if not m.site_online:
        return SITE_OFFLINE
    return COMMAND_SENT


# the meter state that speaks for the account: the worst one first
_SEVERITY = (FAILED, SITE_OFFLINE, NEEDS_LOCAL_CONFIRM, CREDITED, COMMAND_SENT, RESTORED, NOT_NEEDED)
FINAL_STATES = (RESTORED, NOT_NEEDED, FAILED)


def progress(f: Facts) -> Progress:
    """The recharge's progress. Times in facts are UTC ISO strings (core.domain.ledger.format_time)."""
    if f.order_status == "PENDING":
        return Progress(WAITING_PAYMENT, "等待支付完成", _steps(), None, final=False)
    if f.order_status != "PAID":
        return Progress(FAILED, "订单已关闭，未扣款", _steps(), None, final=True)
    if not f.credited_at:  # PAID and credited are one transaction: only a read in between sees this
        return Progress(PAID, "支付成功，正在入账", _steps(paid=f.paid_at or None), None, final=False)
    since = min(f.paid_at, f.credited_at) if f.paid_at else f.credited_at
    paid = {"paid": f.paid_at or f.credited_at, "credited": f.credited_at}
    balance = f.balance
    if f.cut_state == "cut":
        need = shortfall(balance, f.restore_line, f.overdraft_limit)
        if need > 0:
            return Progress(CREDITED, f"已到账，余额 {yuan(balance)} 元，仍未达到复电线，还需充值 {yuan(need)} 元才能恢复供电",
                            _steps(**paid), balance, final=True, shortfall_fen=need)
    if f.meter_side:
        return Progress(CREDITED, "已到账，电费将自动下发到电表", _steps(**paid), balance, final=True)
    rows = [(m, meter_state(m, since, f.restore_cause)) for m in f.meters if m.steered]
    if all(s == NOT_NEEDED for _, s in rows):
        return Progress(NOT_NEEDED, f"已到账，余额 {yuan(balance)} 元。供电未中断，无需恢复",
                        _steps(**paid, not_needed=True), balance, final=True)
    worst_meter, state = min(rows, key=lambda r: _SEVERITY.index(r[1]))
    commands = [_restore_command(m, since, f.restore_cause) for m, _ in rows]
    sent = [c.issued_at for c in commands if c is not None]
    done = all(s in (RESTORED, NOT_NEEDED) for _, s in rows)
    seen = [m.relay_seen_at for m, s in rows if s == RESTORED and m.relay_seen_at]
    steps = _steps(**paid, command_sent=max(sent) if sent else None,
                   relay_closed=(max(seen) if seen else f.credited_at) if done else None)
    message = _MESSAGES[state]
    if state == FAILED and worst_meter.manual_open:
        message = "已到账，但该表已被物业手动断电，请联系物业恢复供电"
    return Progress(state, message, steps, balance, final=state in FINAL_STATES)


_MESSAGES = {
    RESTORED: "已恢复供电：电表已合闸",
    COMMAND_SENT: "已到账，合闸指令已发送，等待电表执行",
    CREDITED: "已到账，正在发送合闸指令",
    NEEDS_LOCAL_CONFIRM: "合闸指令已送达，该电表需要现场确认：请到电表处按下合闸按键",
    SITE_OFFLINE: "已到账，但楼栋网关暂时离线，合闸指令将在网关恢复联网后自动执行",
    FAILED: "已到账，但电表暂未执行合闸指令，系统会自动重试；如长时间未恢复请联系物业",
}


def _steps(paid: str | None = None, credited: str | None = None, command_sent: str | None = None,
           relay_closed: str | None = None, not_needed: bool = False) -> tuple[Step, ...]:
    if not_needed:
        return (Step("paid", STEP_TEXTS["paid"], True, paid), Step("credited", STEP_TEXTS["credited"], True, credited),
                Step("command_sent", "未断电，无需合闸指令", True, None),
                Step("relay_closed", "供电正常", True, None))
    return tuple(Step(k, STEP_TEXTS[k], at is not None, at)
                 for k, at in zip(STEP_KEYS, (paid, credited, command_sent, relay_closed), strict=True))
