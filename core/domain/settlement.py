"""Move-in, move-out and transfer (新装、退租结算、过户): pure rules (docs/billing.md
"Move-in, move-out and transfer"). core/services/move_out.py reads the facts, calls these
and writes what they decide, one idempotent step at a time.

- **Days.** The move-out day D is the leaving tenant's last day, inclusive. A transfer's
  incoming tenant is charged from D + 1; a move-in (新装) from its move-in day, inclusive.
- **Charge items at move-out.** For every charge item of the room and every billing period
  from the one that charges the cycle holding D up to today's: `due` = what the item's
  own proration (core/domain/charge_items.py `charges_for`) gives with the item ending on D;
  `applied` = what month-end already took under the same charge id (`item:<item>:<period>`,
  deducted and/or billed). Not applied and due > 0: the prorated charge is applied under
  that id (so a later month-end run of the period meets it and changes nothing). Applied
  and applied > due: the unused days, applied − due, are credited back to the prepaid
  balance (ADJUST_CREDIT). A cycle entirely after D has due = 0: all of it comes back.
- **Charge items at move-in.** Every item's current cycle is charged from the move-in day
  (the item's start moved to it), under the period of the move-in day.
- **Money at move-out** (`offset`): net = balance − Σ open bills' outstanding. The deposit
  covers what net leaves owed (min(held, −net)) and the rest of it is refunded; a positive
  balance then pays the open bills, oldest first; what the balance still holds is
  refunded, and a negative balance moves to the final bill (arrears, the account stays
  "closing" until that bill is paid). Everything a tenant reads adds up exactly:
  balance + deposit_applied − Σ bill_payments − refund + arrears = 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from core.domain.charge_items import (
    ONCE,
    AccountRef,
    ItemVersion,
    RoomRef,
    charges_for,
    cycle_span,
    period_of,
)
from core.domain.charges import Charge
from core.domain.errors import ValidationError
from core.domain.money import yuan

SETTLEMENT_NAMES = {"reading": "待抄表", "closing": "待结清", "refunding": "退款处理中", "settled": "已结清"}
METHODS = {"cash": "现金", "wechat": "微信原路退回"}
MAX_READING = Decimal("99999999.99")


def next_month(period: str) -> str:
    y, m = int(period[:4]), int(period[5:])
    return f"{y + (m == 12):04d}-{m % 12 + 1:02d}"


def periods_between(first: str, last: str) -> list[str]:
    out, p = [], first
    while p <= last:
        out.append(p)
        p = next_month(p)
    return out


def charge_period(v: ItemVersion, day: date) -> str:
    """The billing period that charges the cycle holding `day` (its first day, or the
    item's start if later)."""
    if v.cycle == ONCE:
        return period_of(v.start)
    first, _ = cycle_span(v.cycle, day)
    return period_of(max(first, v.start))


@dataclass(frozen=True)
class ItemAdjustment:
    """One charge item in one billing period at move-out: `applied` fen taken before
    (None: never applied), `due` fen the days in use come to."""

    item_id: str
    name: str
    period: str
    applied: int | None
    due: int
    formula: str = ""
    charge: Charge | None = None  # the prorated charge to apply when not applied before

    @property
    def charge_id(self) -> str:
        return f"item:{self.item_id}:{self.period}"

    @property
    def to_charge(self) -> int:
        return self.due if self.applied is None else 0

    @property
    def credit(self) -> int:
        return max(0, self.applied - self.due) if self.applied is not None else 0

    @property
    def credit_id(self) -> str:
        return f"unused:{self.item_id}:{self.period}"

    def text(self) -> str:
        if self.applied is None:
            return self.formula
        if self.credit:
            return (f"已收 {yuan(self.applied)} 元，按实际使用天数应收 {yuan(self.due)} 元（{self.formula or '未使用'}），"
                    f"退还 {yuan(self.credit)} 元")
        return f"已收 {yuan(self.applied)} 元，无需调整"


def _ending(versions: list[ItemVersion], last_day: date) -> list[ItemVersion]:
    return [replace(v, end=min(v.end, last_day) if v.end else last_day) for v in versions]


def _starting(versions: list[ItemVersion], first_day: date) -> list[ItemVersion]:
    return [replace(v, start=max(v.start, first_day)) for v in versions if v.end is None or v.end >= first_day]


def move_out_items(versions: Iterable[ItemVersion], room: RoomRef, account: AccountRef, move_out: date,
                   today_period: str, applied: Mapping[str, int]) -> list[ItemAdjustment]:
    """The charge item adjustments of one account moving out on `move_out` (see the module
    doc). `applied`: charge id -> fen already taken (deducted + billed) for the charge ids
    this asks about (`charge_ids_to_check`). Pure."""
    by_item: dict[str, list[ItemVersion]] = {}
    for v in versions:
        if v.property_id == account.property_id:
            by_item.setdefault(v.item_id, []).append(v)
    ref = replace(account, status="OPEN")
    out = []
    for item_id in sorted(by_item):
        vs = by_item[item_id]
        ended = _ending(vs, move_out)
        for period in _periods_for(vs, move_out, today_period):
            full = charges_for(vs, room, ref, period)
            due = charges_for(ended, room, ref, period)
            charge = due[0] if due else None
            name = (charge or (full[0] if full else None))
            if name is None and f"item:{item_id}:{period}" not in applied:
                continue
            out.append(ItemAdjustment(item_id, name.name if name else item_id, period,
                                      applied.get(f"item:{item_id}:{period}"), charge.amount if charge else 0,
                                      charge.formula if charge else "", charge))
    return [a for a in out if a.to_charge or a.applied is not None]


def _periods_for(vs: list[ItemVersion], move_out: date, today_period: str) -> list[str]:
    latest = max(vs, key=lambda v: v.effective_from)
    if latest.cycle == ONCE:
        return []  # a one-off item is charged once, whoever leaves when
    first = charge_period(latest, move_out)
    return periods_between(first, max(today_period, period_of(move_out)))


def charge_ids_to_check(versions: Iterable[ItemVersion], move_out: date, today_period: str) -> list[str]:
    """Which charge ids `move_out_items` needs the applied amounts of."""
    by_item: dict[str, list[ItemVersion]] = {}
    for v in versions:
        by_item.setdefault(v.item_id, []).append(v)
    return [f"item:{i}:{p}" for i in sorted(by_item) for p in _periods_for(by_item[i], move_out, today_period)]


def move_in_charges(versions: Iterable[ItemVersion], room: RoomRef, account: AccountRef,
                    move_in: date) -> list[Charge]:
    """The charges of a tenant moving in on `move_in`: each periodic item's current cycle
    from that day (prorated by days), charged on the move-in day's period. Pure."""
    by_item: dict[str, list[ItemVersion]] = {}
    for v in versions:
        if v.property_id == account.property_id and v.cycle != ONCE:
            by_item.setdefault(v.item_id, []).append(v)
    period = period_of(move_in)
    ref = replace(account, status="OPEN")
    out = []
    for item_id in sorted(by_item):
        started = _starting(by_item[item_id], move_in)
        if started:
            out += charges_for(started, room, ref, period)
    return out


# --- money ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenBill:
    bill_id: str
    period: str
    outstanding: int


@dataclass(frozen=True)
class Offset:
    balance: int  # the prepaid balance after the final readings and item adjustments
    owed_bills: int  # Σ open bills' outstanding
    held: int  # the deposit held
    deposit_applied: int
    deposit_refunded: int
    bill_payments: tuple[tuple[str, int], ...]  # (bill id, fen paid from the balance)
    refund: int  # the balance refunded
    arrears: int  # the negative balance moved to the final bill

    @property
    def still_owed(self) -> int:
        """What the tenant still owes after the settlement: bills left unpaid + arrears."""
        return self.owed_bills - sum(a for _, a in self.bill_payments) + self.arrears

    @property
    def refund_total(self) -> int:
        return self.refund + self.deposit_refunded


def offset(balance: int, bills: Iterable[OpenBill], held: int) -> Offset:
    """Deposit, balance and open bills against each other (module doc). Pure."""
    bills = sorted((b for b in bills if b.outstanding > 0), key=lambda b: (b.period, b.bill_id))
    if held < 0:
        raise ValueError("held < 0")
    owed = sum(b.outstanding for b in bills)
    net = balance - owed
    applied = min(held, max(0, -net))
    left = balance + applied
    pays = []
    for b in bills:
        if left <= 0:
            break
        part = min(b.outstanding, left)
        pays.append((b.bill_id, part))
        left -= part
    return Offset(balance, owed, held, applied, held - applied, tuple(pays), max(0, left), max(0, -left))


# --- input ---------------------------------------------------------------------------------------


def parse_day(value: object, field: str = "day", label: str = "退租日期") -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{label}格式应为 YYYY-MM-DD", code=f"{field}_invalid", field=field) from None


def check_move_out_day(day: date, opened: date, today: date) -> date:
    """The move-out day: not before the account opened, not after today."""
    if day > today:
        raise ValidationError("退租日期不能晚于今天", code="day_in_future", field="day")
    if day < opened:
        raise ValidationError(f"退租日期不能早于开户日期 {opened.isoformat()}", code="day_before_open", field="day")
    return day


def check_reading(value: object, last: Decimal | None, rated_kw: Decimal, hours: float, label: str,
                  field: str) -> Decimal:
    """An admin-entered final reading of an offline meter: a number, not below the last
    reading, and not above what the meter could have counted since (its rated power × the
    hours since the last reading, at least one hour's worth)."""
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        d = Decimal("NaN")
    if not d.is_finite() or d < 0 or d > MAX_READING or d != d.quantize(Decimal("0.01")):
        raise ValidationError(f"{label}必须是不小于 0 的读数（最多两位小数）", code="reading_invalid", field=field)
    if last is not None and d < last:
        raise ValidationError(f"{label} {d} 低于上次读数 {last}", code="reading_below_last", field=field)
    if last is not None:
        most = last + (rated_kw * Decimal(str(max(hours, 1.0)))).quantize(Decimal("0.01"))
        if d > most:
            raise ValidationError(f"{label} {d} 超出合理范围（上次读数 {last}，自上次抄表以来最多 {most}）",
                                  code="reading_too_high", field=field)
    return d


def transfer_move_in(move_out: date) -> date:
    return move_out + timedelta(days=1)

