"""Deposits (押金, docs/billing.md "Deposits"): money a tenant leaves with the property, held
outside the spendable balance. Pure rules; core/store/deposits.py keeps them.

- An account's deposit is a list of **movements**, each idempotent by its id: `take`
  (收取押金, +, at the counter with a receipt number), `refund` (退还押金, −, cash or bank
  transfer with a receipt number) and `apply` (押金抵扣, −: moved into the account's
  prepaid balance, e.g. at move-out to offset a negative balance or a final bill).
- **held = Σ movements, never below zero**: a refund or an application larger than what is
  held is refused, and the store conditions every debit on it.
- Movement ids: `take:<receipt>`, `refund:<receipt>`, `apply:<ref>`; the same id with
  another amount is refused (409), the same id again returns the first movement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.domain.errors import Conflict, ValidationError
from core.domain.money import MAX_POSTING_FEN, yuan
from core.domain.naming import DERIVED_ID_MAX, require_id

TAKE, REFUND, APPLY = "take", "refund", "apply"
KINDS = {TAKE: "收取押金", REFUND: "退还押金", APPLY: "押金抵扣"}
TAKE_METHODS = {"cash": "现金", "bank": "银行转账"}
REFUND_METHODS = {"cash": "现金", "bank": "银行转账"}
APPLY_METHOD = "balance"  # into the account's prepaid balance (ledger ADJUST_CREDIT "押金抵扣")


@dataclass(frozen=True)
class Movement:
    account_id: str
    property_id: str
    movement_id: str
    kind: str
    amount: int  # signed fen: take +, refund / apply −
    method: str
    ref: str  # the receipt number, or what it was applied to
    actor: str
    at: str = ""
    memo: str = ""
    duplicate: bool = False

    @property
    def kind_name(self) -> str:
        return KINDS.get(self.kind, self.kind)

    def same(self, other: Movement) -> bool:
        return (self.account_id, self.kind, self.amount) == (other.account_id, other.kind, other.amount)


def _amount(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError("押金金额必须大于 0（以分为单位的整数）", code="amount_invalid", field="amount")
    if value > MAX_POSTING_FEN:
        raise ValidationError("押金金额超出允许范围", code="amount_too_large", field="amount")
    return value


def _receipt(value: object) -> str:
    if isinstance(value, str):
        value = value.strip()
    if not value:
        raise ValidationError("请填写收据编号", code="receipt_no_required", field="receipt_no")
    return require_id(value, "receipt_no", 64)


def movement(account_id: str, property_id: str, kind: str, amount: object, method: object, ref: object,
             actor: str, at: str, memo: object = "") -> Movement:
    """Validate a movement before anything is written."""
    require_id(account_id, "account_id")
    amount = _amount(amount)
    if kind == TAKE:
        if method not in TAKE_METHODS:
            raise ValidationError("收取押金的方式只能是 现金 或 银行转账", code="method_invalid", field="method")
        ref = _receipt(ref)
    elif kind == REFUND:
        if method not in REFUND_METHODS:
            raise ValidationError("退还押金的方式只能是 现金 或 银行转账", code="method_invalid", field="method")
        ref = _receipt(ref)
    elif kind == APPLY:
        method = APPLY_METHOD
        ref = require_id(ref, "ref", 64)
    else:
        raise ValidationError("未知的押金操作", code="deposit_kind_invalid", field="kind")
    if not isinstance(memo, str) or len(memo) > 100:
        raise ValidationError("备注不能超过 100 个字", code="memo_invalid", field="memo")
    signed = amount if kind == TAKE else -amount
    movement_id = require_id(f"{kind}:{ref}", "movement_id", DERIVED_ID_MAX)
    return Movement(account_id, property_id, movement_id, kind, signed, str(method), str(ref), actor, at,
                    memo.strip())


def check_held(m: Movement, held: int) -> None:
    """A debit may not take what is held below zero."""
    if m.amount < 0 and held + m.amount < 0:
        raise Conflict(f"押金余额 {yuan(held)} 元，不足 {yuan(-m.amount)} 元", code="deposit_insufficient",
                       held=held)


def held_after(movements: list[Movement]) -> int:
    """What is held after these movements (Σ amounts)."""
    return sum(m.amount for m in movements)


def as_duplicate(first: Movement, asked: Movement) -> Movement:
    """The answer to a movement id seen before: the first movement, if it is the same request."""
    if not first.same(asked):
        raise Conflict("该收据编号已用于另一笔不同的押金操作", code="idempotency_conflict")
    return replace(first, duplicate=True)
