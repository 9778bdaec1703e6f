"""Bills (账单), their lines, payments, status and late fees (滞纳金): pure rules
(docs/billing.md "Post-paid mode, bills, late fees, deposits").

A bill belongs to one account and one period; id `<account_id>:<period>`. Its stored
state moves draft → confirmed → issued (people decide that); what a person reads is the
status derived from the state, the sums and today's date:
issued + paid ≥ total → paid; issued + today after the due date + something unpaid →
overdue; issued + something paid → partly_paid; else the state itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from core.domain.charge_items import fen_of, parse_period, round_half_up
from core.domain.charges import Charge
from core.domain.errors import Conflict, ValidationError
from core.domain.events import Event, Subject
from core.domain.money import MAX_POSTING_FEN, yuan
from core.domain.naming import require_id

DRAFT, CONFIRMED, ISSUED = "draft", "confirmed", "issued"
STATES = (DRAFT, CONFIRMED, ISSUED)
PAID, PARTLY_PAID, OVERDUE = "paid", "partly_paid", "overdue"
STATUSES = (DRAFT, CONFIRMED, ISSUED, PARTLY_PAID, OVERDUE, PAID)
STATUS_NAMES = {DRAFT: "草稿", CONFIRMED: "已确认", ISSUED: "待缴费", PARTLY_PAID: "部分缴费", OVERDUE: "已逾期",
                PAID: "已缴清"}
METHODS = {"cash": "现金", "transfer": "转账", "wechat": "微信支付", "balance": "余额抵扣"}
LATE_FEE = "late_fee"
DEFAULT_DUE_DAYS = 15  # a bill issued without a due date is due this many days later


def bill_id_of(account_id: str, period: str) -> str:
    return f"{account_id}:{period}"


def parse_bill_id(value: object) -> tuple[str, str]:
    """'<account_id>:<YYYY-MM>' -> (account_id, period); anything else is a 404-worthy ValidationError."""
    if not isinstance(value, str) or ":" not in value:
        raise ValidationError("账单编号无效", code="bill_id_invalid", field="bill_id")
    account_id, period = value.rsplit(":", 1)
    require_id(account_id, "bill_id")
    parse_period(period)
    return account_id, period


def bill_period_of(charge: Charge) -> str:
    """The bill a charge goes on: a late fee on the bill it is for (its source id), any
    other on its own period's (a day's period 'YYYY-MM-DD' on its month's)."""
    if charge.source == LATE_FEE:
        return parse_bill_id(charge.source_id)[1]
    return charge.period[:7]


@dataclass(frozen=True)
class BillLine:
    account_id: str
    period: str
    charge_id: str
    source: str
    source_id: str
    name: str
    amount: int
    formula: str = ""
    inputs: dict = field(default_factory=dict)
    mode: str = "bill"
    note: str = ""  # e.g. "预付余额不足，差额转入账单"
    created_at: str = ""
    actor: str = ""

    @classmethod
    def of(cls, charge: Charge, amount: int, at: str, actor: str, note: str = "") -> BillLine:
        return cls(charge.account_id, bill_period_of(charge), charge.charge_id, charge.source, charge.source_id,
                   charge.name, amount, charge.formula, dict(charge.inputs), charge.mode, note, at, actor)


@dataclass(frozen=True)
class Payment:
    account_id: str
    period: str
    payment_id: str
    amount: int
    method: str
    actor: str
    paid_at: str
    memo: str = ""

    @property
    def method_name(self) -> str:
        return METHODS.get(self.method, self.method)


@dataclass(frozen=True)
class Bill:
    account_id: str
    period: str
    property_id: str
    building_id: str = ""
    room_id: str = ""
    name: str = ""  # the account's (room's) name
    state: str = DRAFT
    total: int = 0
    paid: int = 0
    late_fee_total: int = 0
    line_count: int = 0
    due_date: date | None = None
    created_at: str = ""
    confirmed_at: str = ""
    confirmed_by: str = ""
    issued_at: str = ""
    issued_by: str = ""
    lines: tuple[BillLine, ...] = ()
    payments: tuple[Payment, ...] = ()

    @property
    def bill_id(self) -> str:
        return bill_id_of(self.account_id, self.period)

    @property
    def outstanding(self) -> int:
        return max(0, self.total - self.paid)

    def status(self, today: date) -> str:
        return status_of(self.state, self.total, self.paid, self.due_date, today)


def status_of(state: str, total: int, paid: int, due: date | None, today: date) -> str:
    if state != ISSUED:
        return state
    if total > 0 and paid >= total:
        return PAID
    if due is not None and today > due:
        return OVERDUE
    if paid > 0:
        return PARTLY_PAID
    return ISSUED


def next_state(bill: Bill, action: str) -> str:
    """The state an admin's action leads to, or a Conflict saying why not."""
    if action == "confirm":
        if bill.state != DRAFT:
            raise Conflict(f"账单当前为「{STATUS_NAMES[bill.state]}」，只有草稿可以确认", code="bill_state_invalid")
        if bill.total <= 0:
            raise Conflict("账单没有费用，不能确认", code="bill_empty")
        return CONFIRMED
    if action == "issue":
        if bill.state != CONFIRMED:
            raise Conflict(f"账单当前为「{STATUS_NAMES[bill.state]}」，请先确认再出账", code="bill_state_invalid")
        return ISSUED
    raise ValidationError("未知的账单操作", code="bill_action_invalid", field="action")


def check_payment(bill: Bill, payment_id: object, amount: object, method: object) -> tuple[str, int, str]:
    """Validate a payment of a bill before anything is written."""
    if isinstance(payment_id, str):
        payment_id = payment_id.strip()
    if not payment_id:
        raise ValidationError("请填写收据编号", code="payment_id_required", field="payment_id")
    require_id(payment_id, "payment_id")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError("缴费金额必须大于 0（以分为单位的整数）", code="amount_invalid", field="amount")
    if amount > MAX_POSTING_FEN:
        raise ValidationError("缴费金额超出允许范围", code="amount_too_large", field="amount")
    if method not in METHODS:
        raise ValidationError("缴费方式只能是 现金、转账 或 微信支付", code="method_invalid", field="method")
    if bill.state != ISSUED:
        raise Conflict("账单尚未出账，不能缴费", code="bill_not_issued")
    if amount > bill.outstanding:
        raise Conflict(f"缴费金额 {yuan(amount)} 元超过应缴余额 {yuan(bill.outstanding)} 元", code="overpayment",
                       outstanding=bill.outstanding)
    return payment_id, amount, method


# --- late fees (滞纳金) ---------------------------------------------------------------------

RATE, FIXED_PER_DAY = "rate", "fixed"
LATE_FEE_KINDS = {RATE: "按日费率（‰）", FIXED_PER_DAY: "每日固定金额"}


@dataclass(frozen=True)
class LateFeeRule:
    """A property's late fee rule: each day after the due date, `per_mille` ‰ of the
    outstanding principal (rounded half up to the fen) or `fixed` fen; the late fees of
    one bill together never exceed `cap` fen. Off when not enabled."""

    enabled: bool = False
    kind: str = RATE
    per_mille: str = "0.5"  # per day, e.g. "0.5" = 0.05 %
    fixed: int = 0
    cap: int = 0

    def to_json(self) -> dict:
        return {"enabled": self.enabled, "kind": self.kind, "per_mille": self.per_mille, "fixed": self.fixed,
                "cap": self.cap}

    @classmethod
    def from_json(cls, d: dict | None) -> LateFeeRule:
        if not d:
            return cls()
        return cls(bool(d.get("enabled")), d.get("kind", RATE), str(d.get("per_mille", "0.5")),
                   int(d.get("fixed") or 0), int(d.get("cap") or 0))

    @property
    def text(self) -> str:
        if not self.enabled:
            return "未启用"
        each = f"每日按欠费的 {self.per_mille}‰" if self.kind == RATE else f"每日 {yuan(self.fixed)} 元"
        return f"逾期次日起{each}，每张账单累计不超过 {yuan(self.cap)} 元"


def check_late_fee_rule(raw: dict) -> LateFeeRule:
    enabled = raw.get("enabled") in (True, "on", "true", "1", 1)
    if not enabled:
        return LateFeeRule(enabled=False)
    kind = raw.get("kind") or RATE
    if kind not in LATE_FEE_KINDS:
        raise ValidationError("滞纳金方式只能是 按日费率 或 每日固定金额", code="late_fee_kind_invalid", field="kind")
    per_mille, fixed = "0", 0
    if kind == RATE:
        try:
            pm = Decimal(str(raw.get("per_mille", "")).strip())
        except (InvalidOperation, ValueError):
            pm = Decimal("NaN")
        if not pm.is_finite() or pm <= 0 or pm > 100 or pm != pm.quantize(Decimal("0.001")):
            raise ValidationError("日费率须大于 0、不超过 100‰，最多三位小数", code="per_mille_invalid", field="per_mille")
        per_mille = str(pm)
    else:
        fixed = fen_of(raw.get("fixed"), "fixed", "每日金额")
    cap = fen_of(raw.get("cap"), "cap", "滞纳金上限")
    return LateFeeRule(enabled, kind, per_mille, fixed, cap)


def late_fee_for(rule: LateFeeRule, bill: Bill, day: date) -> Charge | None:
    """The late fee of `bill` for `day`, or None: only for an issued bill past its due date
    (from the day after it), on the principal still unpaid (total − late fees − paid:
    payments count against the principal first), and only up to what is left of the cap."""
    if not rule.enabled or bill.state != ISSUED or bill.due_date is None or day <= bill.due_date:
        return None
    principal = bill.total - bill.late_fee_total - bill.paid
    if principal <= 0:
        return None
    room = rule.cap - bill.late_fee_total
    if room <= 0:
        return None
    if rule.kind == RATE:
        exact = round_half_up(Decimal(principal) * Decimal(rule.per_mille) / 1000)
        how = f"欠费 {yuan(principal)} 元 × {rule.per_mille}‰"
    else:
        exact = rule.fixed
        how = f"每日 {yuan(rule.fixed)} 元"
    amount = min(exact, room)
    if amount <= 0:
        return None
    formula = f"{day.isoformat()} 滞纳金：{how} = {yuan(exact)} 元"
    if amount < exact:
        formula += f"，累计上限 {yuan(rule.cap)} 元，本日计 {yuan(amount)} 元"
    return Charge(account_id=bill.account_id, property_id=bill.property_id, period=day.isoformat(), source=LATE_FEE,
                  source_id=bill.bill_id, amount=amount, name="滞纳金", formula=formula,
                  inputs={"principal": principal, "rule": rule.to_json(), "day": day.isoformat(),
                          "late_fee_before": bill.late_fee_total}, mode="bill")


def days_after(due: date, day: date) -> int:
    return (day - due).days


def first_late_day(due: date) -> date:
    return due + timedelta(days=1)


def deduct_split(amount: int, balance: int, overdraft_limit: int) -> tuple[int, int]:
    """(deducted, billed) of a deduct-mode charge: FEE may take the balance down to the
    overdraft line (−overdraft_limit) and no further; the rest goes on the bill."""
    room = max(0, balance + overdraft_limit)
    deducted = min(amount, room)
    return deducted, amount - deducted


# --- reminders (docs/billing.md "Reminders"): events the notification pipeline sends ------------

BILL_ISSUED, BILL_DUE_SOON, BILL_OVERDUE = "bill_issued", "bill_due_soon", "bill_overdue"
REMINDER_TYPES = (BILL_ISSUED, BILL_DUE_SOON, BILL_OVERDUE)
DUE_SOON_DAYS = 3  # an unpaid bill due within this many days (the due day itself included): one reminder
OVERDUE_EVERY = 7  # an overdue bill: reminded on its first overdue day and every 7th day after


@dataclass(frozen=True)
class Reminder:
    type: str  # BILL_DUE_SOON | BILL_OVERDUE
    event_id: str  # deterministic: once per bill (due soon), once per bill and day (overdue)
    days: int  # days left until the due date (due soon), days past it (overdue)


def reminder_for(bill: Bill, day: date) -> Reminder | None:
    """The reminder an issued, unpaid bill calls for on `day` (local), or None: due in 0 to
    DUE_SOON_DAYS days → due soon (one per bill, whichever day of the window the sweep first
    runs); 1, 8, 15... days after the due date → overdue. Paid, not issued, no due date: None."""
    if bill.state != ISSUED or bill.due_date is None or bill.outstanding <= 0:
        return None
    left = (bill.due_date - day).days
    if 0 <= left <= DUE_SOON_DAYS:
        return Reminder(BILL_DUE_SOON, f"{BILL_DUE_SOON}:{bill.bill_id}", left)
    late = -left
    if late >= 1 and (late - 1) % OVERDUE_EVERY == 0:
        return Reminder(BILL_OVERDUE, f"{BILL_OVERDUE}:{bill.bill_id}:{day.isoformat()}", late)
    return None


def issued_event(account_id: str, period: str, property_id: str, at: str, actor: str) -> Event:
    """The event recorded in the very write that issues a bill (any path), once per bill.
    Amounts are not in it: a line's write that issues the bill only ADDs to the total, so the
    router reads the bill when it routes (core/services/notify.py)."""
    bill_id = bill_id_of(account_id, period)
    return Event(Subject.notice(account_id), f"{BILL_ISSUED}:{bill_id}", BILL_ISSUED, property_id, at,
                 status="to_notify", message=f"{period} 账单已出，请按时缴纳",
                 data={"account_id": account_id, "bill_id": bill_id, "period": period, "issued_by": actor})


def reminder_event(bill: Bill, r: Reminder, day: date, at: str) -> Event:
    """A due-soon or overdue reminder of `bill` found by the daily sweep on `day`."""
    due = bill.due_date.isoformat() if bill.due_date else ""
    if r.type == BILL_DUE_SOON:
        message = f"{bill.period} 账单将于 {due} 到期，尚有 {yuan(bill.outstanding)} 元未缴"
    else:
        message = f"{bill.period} 账单已逾期 {r.days} 天，尚有 {yuan(bill.outstanding)} 元未缴"
    return Event(Subject.notice(bill.account_id), r.event_id, r.type, bill.property_id, at, status="to_notify",
                 message=message,
                 data={"account_id": bill.account_id, "bill_id": bill.bill_id, "period": bill.period,
                       "day": day.isoformat(), "due": due, "days": r.days, "outstanding": bill.outstanding,
                       "late_fee_total": bill.late_fee_total})
