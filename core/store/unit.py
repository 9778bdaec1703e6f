"""The unit of work: write records (core.domain.writes) turned into the items of one
TransactWriteItems, and the transaction's refusals turned back into records.

A ledger posting is the usual unit (core/store/ledger.py adds the entry and the account
and passes its extras here); a reading that moves no money, or an approved anomaly under
a fen, commits its records alone with `commit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from core.domain.meters import MeterUpdate
from core.domain.writes import (
    AddBillLine,
    AddEvent,
    AddUsage,
    DecideEvent,
    FailRefund,
    IssueRelay,
    MarkPaid,
    MoveCarry,
    MoveDeposit,
    NoBillLine,
    PayBill,
    Refused,
    StartRefund,
    Write,
)
from core.store import bills, commands, deposits, events, meters, payments, usage
from core.store.tx import Failure, Tx

PREFIX = "write:"


def add(tx: Tx, w: Write, tag: str) -> None:
    """Add the transaction items of one record, tagged so that a refusal finds it again."""
    match w:
        case AddEvent():
            events.add_event(tx, w.event, tag)
        case DecideEvent():
            events.add_decision(tx, w, tag)
        case MeterUpdate():
            meters.add_update(tx, w, tag)
        case MoveCarry():
            meters.add_carry(tx, w, tag)
        case MarkPaid():
            payments.add_mark_paid(tx, w, tag)
        case StartRefund():
            payments.add_start_refund(tx, w, tag)
        case FailRefund():
            payments.add_fail_refund(tx, w, tag)
        case IssueRelay():
            commands.add_issue_relay(tx, w, tag)
        case AddUsage():
            usage.add_usage(tx, w.usage, tag)
        case AddBillLine():
            bills.add_line(tx, w, tag)
        case NoBillLine():
            bills.add_no_line(tx, w, tag)
        case MoveDeposit():
            deposits.add_movement(tx, w.movement, tag)
        case PayBill():
            payments.add_pay_bill(tx, w, tag)
        case _:
            raise TypeError(f"not a write record: {w!r}")


def add_all(tx: Tx, writes: Sequence[Write]) -> None:
    for i, w in enumerate(writes):
        add(tx, w, f"{PREFIX}{i}")


def refusals(failures: Iterable[Failure], writes: Sequence[Write]) -> tuple[Refused, ...]:
    """The records whose conditions failed, in transaction order, once each; a meter
    write's refusal carries the meter as it stands (the cancellation's ALL_OLD item)."""
    out: dict[int, Refused] = {}
    for f in failures:
        if f.code != "ConditionalCheckFailed" or not f.tag.startswith(PREFIX):
            continue
        i = int(f.tag[len(PREFIX):])
        if i in out:
            continue
        w = writes[i]
        current = meters.state_from_raw(f.item) if f.item and isinstance(w, (MeterUpdate, MoveCarry)) else None
        out[i] = Refused(w, current)
    return tuple(out.values())


def commit(writes: Iterable[Write]) -> tuple[Refused, ...]:
    """Write every record in one transaction: () if applied, else the refused records."""
    writes = list(writes)
    tx = Tx()
    add_all(tx, writes)
    failures = tx.commit()
    return () if failures is None else refusals(failures, writes)
