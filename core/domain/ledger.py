"""Ledger rules: entry kinds, their direction, how low each may take a balance.

Pure functions over plain values; the store makes a plan durable in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from core.domain.errors import AccountClosed, InsufficientFunds, ValidationError
from core.domain.money import require_fen, yuan
from core.domain.naming import DERIVED_ID_MAX, require_id  # the one id rule; re-exported


class EntryKind(StrEnum):
    OPENING = "opening"  # opening balance, signed, only when an account is opened
    RECHARGE = "recharge"  # tenant payment (WeChat Pay, counter cash)
    REFUND = "refund"  # money back to the tenant for a recharge
    WITHDRAWAL = "withdrawal"  # balance paid out (e.g. move-out)
    ENERGY = "energy"  # electricity usage
    WATER = "water"  # water usage
    FEE = "fee"  # other charges (service fee, penalty)
    ADJUST_CREDIT = "adjust_credit"  # admin correction in the tenant's favour
    ADJUST_DEBIT = "adjust_debit"  # admin correction against the tenant
    METER_TRANSFER = "meter_transfer"  # money moved into a meter that keeps it (meter-side billing)
    REFUND_REVERSAL = "refund_reversal"  # a refund that failed gives the money back


CREDIT_KINDS = frozenset({EntryKind.RECHARGE, EntryKind.ADJUST_CREDIT, EntryKind.REFUND_REVERSAL})
# Debits that pay money out never take the balance below zero.
NEVER_BELOW_ZERO = frozenset({EntryKind.REFUND, EntryKind.WITHDRAWAL, EntryKind.METER_TRANSFER})
# Charges decided by people may use the account's overdraft and no more.
OVERDRAFT_KINDS = frozenset({EntryKind.FEE, EntryKind.ADJUST_DEBIT})
# Metered usage has already been delivered: it is always recorded, even past the
# overdraft (the debt is real). The overdraft is the cut-off line that stops further
# supply (core/domain/control.py), not a reason to lose what was used before the cut.
METERED_KINDS = frozenset({EntryKind.ENERGY, EntryKind.WATER})
POSTABLE_KINDS = CREDIT_KINDS | NEVER_BELOW_ZERO | OVERDRAFT_KINDS | METERED_KINDS

ACCOUNT_OPEN = "OPEN"
ACCOUNT_CLOSED = "CLOSED"

_TEXT_MAX = 500


def _require_text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} 不能为空", code="field_required", field=field)
    if len(value) > _TEXT_MAX:
        raise ValidationError(f"{field} 过长", code="field_too_long", field=field)
    return value


@dataclass(frozen=True)
class PostingRequest:
    """What a caller asks the ledger to do. ``amount`` is a positive number of fen;
    the kind decides whether it is a credit or a debit."""

    account_id: str
    entry_id: str
    kind: EntryKind
    amount: int
    cause: str
    actor: str
    occurred_at: str | None = None
    memo: str = ""

    @classmethod
    def build(cls, **kw: object) -> PostingRequest:
        """Validate raw input into a request; raises ValidationError, never writes."""
        unknown = set(kw) - {"account_id", "entry_id", "kind", "amount", "cause", "actor", "occurred_at", "memo"}
        if unknown:
            raise ValidationError(f"未知字段: {', '.join(sorted(unknown))}", code="field_unknown")
        account_id = require_id(kw.get("account_id"), "account_id")
        entry_id = require_id(kw.get("entry_id"), "entry_id", DERIVED_ID_MAX)
        raw_kind = kw.get("kind")
        try:
            kind = EntryKind(raw_kind)
        except ValueError:
            raise ValidationError(
                f"未知的记账类型: {raw_kind}", code="kind_invalid", field="kind"
            ) from None
        if kind not in POSTABLE_KINDS:
            raise ValidationError(
                f"记账类型 {kind} 不能直接记账", code="kind_not_postable", field="kind"
            )
        amount = require_fen(kw.get("amount"), "amount")
        cause = _require_text(kw.get("cause"), "cause")
        actor = _require_text(kw.get("actor"), "actor")
        occurred_at = kw.get("occurred_at")
        if occurred_at is not None:
            occurred_at = format_time(parse_time(occurred_at, "occurred_at"))
        memo = kw.get("memo") or ""
        if not isinstance(memo, str) or len(memo) > _TEXT_MAX:
            raise ValidationError("memo 无效", code="field_invalid", field="memo")
        return cls(account_id, entry_id, kind, amount, cause, actor, occurred_at, memo)

    @property
    def signed_amount(self) -> int:
        return self.amount if self.kind in CREDIT_KINDS else -self.amount


@dataclass(frozen=True)
class AccountState:
    """The part of an account the ledger needs to decide a posting."""

    account_id: str
    balance: int
    version: int  # number of entries posted so far; the next entry's seq is version + 1
    overdraft_limit: int
    status: str = ACCOUNT_OPEN
    last_posted_at: str = ""
    property_id: str = ""
    settings_rev: int = 0  # any settings change bumps it and voids plans made before
    # control fields carried along for the policies that act on balance changes:
    # keep_supply, restore_line, alarm_levels, alarm_repeats, alarm_state, cut_state, cut_due_at
    control: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Entry:
    account_id: str
    entry_id: str
    seq: int
    kind: EntryKind
    amount: int  # signed: credits positive, debits negative
    balance_after: int
    cause: str
    actor: str
    posted_at: str
    occurred_at: str | None = None
    memo: str = ""
    property_id: str = ""
    duplicate: bool = field(default=False, compare=False)

    def as_duplicate(self) -> Entry:
        return replace(self, duplicate=True)

    def same_request(self, req: PostingRequest) -> bool:
        return (
            self.account_id == req.account_id
            and self.kind == req.kind
            and self.amount == req.signed_amount
        )


def floor_for(kind: EntryKind, overdraft_limit: int) -> int | None:
    """Lowest balance a posting of this kind may leave, or None for no floor."""
    if kind in CREDIT_KINDS or kind in METERED_KINDS:
        return None
    if kind in NEVER_BELOW_ZERO:
        return 0
    return -overdraft_limit


def plan_posting(state: AccountState, req: PostingRequest, now: datetime) -> Entry:
    """Decide the entry a request produces against an account state, or refuse it."""
    if state.status != ACCOUNT_OPEN:
        raise AccountClosed("账户已销户，不能记账", account_id=state.account_id)
    after = state.balance + req.signed_amount
    floor = floor_for(req.kind, state.overdraft_limit)
    if floor is not None and after < floor:
        raise InsufficientFunds(
            f"余额不足：当前余额 {yuan(state.balance)} 元，本次 {yuan(req.amount)} 元，"
            f"最低允许 {yuan(floor)} 元",
            account_id=state.account_id,
            balance=state.balance,
            floor=floor,
        )
    return Entry(
        account_id=state.account_id,
        entry_id=req.entry_id,
        seq=state.version + 1,
        kind=req.kind,
        amount=req.signed_amount,
        balance_after=after,
        cause=req.cause,
        actor=req.actor,
        posted_at=next_posted_at(state.last_posted_at, now),
        occurred_at=req.occurred_at,
        memo=req.memo,
        property_id=state.property_id,
    )


def next_posted_at(last: str, now: datetime) -> str:
    """Posting times of one account strictly increase, so time order == seq order."""
    if last:
        floor = parse_time(last, "last_posted_at") + timedelta(microseconds=1)
        if now < floor:
            now = floor
    return format_time(now)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object, field: str) -> datetime:
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(f"{field} 时间格式无效", code="time_invalid", field=field) from None
    else:
        raise ValidationError(f"{field} 时间格式无效", code="time_invalid", field=field)
    if t.tzinfo is None:
        raise ValidationError(f"{field} 必须带时区", code="time_naive", field=field)
    return t
