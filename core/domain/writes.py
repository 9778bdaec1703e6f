"""Writes that join a ledger posting (or each other) in one transaction, as plain records.

Services say what must change with a posting — an event recorded, an order marked paid,
a meter's baseline moved — and the store turns each record into a transaction item with
its condition (core/store/unit.py); an in-memory store applies the same records
(testkit/fakes.py). A record whose condition does not hold cancels the whole transaction
and comes back as `Refused`, with what stands now when the store can tell (a meter's
state, for a meter write).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.domain.bills import BillLine, Payment
from core.domain.control import Command
from core.domain.deposits import Movement
from core.domain.events import Event, Subject
from core.domain.meters import MeterUpdate
from core.domain.payments import Refund
from core.domain.tariff import RatingCarry
from core.domain.usage import Usage


@dataclass(frozen=True)
class AddEvent:
    """Record an event, unless its (subject, event_id) exists."""

    event: Event


@dataclass(frozen=True)
class DecideEvent:
    """Move an event's status from `expected` to `status`, noting who decided and what came of it."""

    subject: Subject
    event_id: str
    expected: str
    status: str
    by: str
    data: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MoveCarry:
    """Move a meter's rating carry from `expected` to `carry` (not on a retired meter)."""

    meter_id: str
    expected: RatingCarry
    carry: RatingCarry


@dataclass(frozen=True)
class MarkPaid:
    """The order turns PAID, if it is still PENDING or CLOSED and its amount is the one paid."""

    out_trade_no: str
    amount: int
    transaction_id: str
    paid_at: str
    paid_date: str


@dataclass(frozen=True)
class StartRefund:
    """The refund record (PROCESSING) and the order's refunded total, if nobody changed
    that total meanwhile and the order is PAID."""

    refund: Refund
    order_refunded_before: int


@dataclass(frozen=True)
class FailRefund:
    """The refund failed (only from PROCESSING): its amount is refundable again."""

    refund: Refund
    status: str


@dataclass(frozen=True)
class IssueRelay:
    """A relay command (queued, with its audit event) becomes the meter's outstanding one,
    only while the meter has none outstanding and its relay_seq is still `relay_seq - 1`
    (two issuers never both win). The restore after a payment joins the credit this way,
    so a paid tenant's CLOSE is written with the money (docs/control.md)."""

    command: Command
    property_id: str
    relay: str  # the relay state the command is meant to reach
    relay_seq: int
    event: Event


@dataclass(frozen=True)
class AddUsage:
    """Add a rated reading's usage (quantity and fen per band, core/domain/usage.py) to its
    account's day and month aggregates, and (power_kw given) set the meter's latest average
    power on the day's. Unconditioned: it joins a transaction whose other records make the
    reading count once (the entry's id, the meter's baseline seq, the anomaly's status)."""

    usage: Usage


@dataclass(frozen=True)
class AddBillLine:
    """Put a line on an account's bill (core/domain/bills.py), unless a line with its
    charge id is there, and add its amount to the bill's total in the same transaction
    (the bill is created as a draft if it does not exist). `due`: ISO date the bill gets if
    it has none. `late_fee_before`: for a late fee, the bill's late fee total it was
    worked out on (the cap holds under concurrent runs). `issue_by`: month-end writes a
room's last line of a period and issues the bill in one transaction; the write is refused
if the bill is neither new nor a draft or confirmed one (the caller writes the line alone)."""

    line: BillLine
    property_id: str
    due: str | None = None
    late_fee_before: int | None = None
    building_id: str = ""  # the account's room, copied onto a new bill for the console's list
    room_id: str = ""
    account_name: str = ""
    issue_by: str = ""  # set: the same write confirms and issues the bill (a draft, or new) by this actor
    issue_at: str = ""  # the ISO time it is issued at


@dataclass(frozen=True)
class NoBillLine:
    """A condition only: the account's bill for `period` has no line with this charge id
    (a deduct-mode charge is either a FEE posting or a bill line, never both twice)."""

    account_id: str
    period: str
    charge_id: str


@dataclass(frozen=True)
class MoveDeposit:
    """A deposit movement (core/domain/deposits.py), unless its id is there, and its amount
    added to what the account's deposit holds, on the condition that a debit leaves it at
    zero or above (押金抵扣 joins the ledger credit it pays for this way)."""

    movement: Movement


@dataclass(frozen=True)
class PayBill:
    """A bill payment (core/domain/bills.py Payment; id = the order's out_trade_no) added to
    the bill's paid, if the bill is still issued with the total and paid it was read with (so
    it is never over-paid). Joins the order's MarkPaid: an online bill payment is one transaction."""

    payment: Payment
    total_before: int
    paid_before: int


Write = (AddEvent | DecideEvent | MeterUpdate | MoveCarry | MarkPaid | StartRefund | FailRefund | IssueRelay | AddUsage
         | AddBillLine | NoBillLine | MoveDeposit | PayBill)


@dataclass(frozen=True)
class Refused:
    """A write whose condition did not hold; `current` is what stands now when known
    (a MeterState for a meter write), else None."""

    write: Write
    current: object | None = None


def meter_refused(refused: tuple[Refused, ...] | list[Refused]) -> Refused | None:
    """The refusal of a write to a meter (its baseline or carry moved on), if any."""
    return next((r for r in refused if isinstance(r.write, (MeterUpdate, MoveCarry))), None)
