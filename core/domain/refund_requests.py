"""A tenant's refund request (退款申请) and its approval by the property's admins.

The tenant asks for part or all of their balance back (fen, with a reason); the request
waits for an admin of the property (console 退款审批), who approves it — the amount is
refunded through WeChat Pay against the account's paid recharges, newest first, split over
several orders if one does not hold enough (`allocate`) — or rejects it with a reason.
One pending request per account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from core.domain.errors import Conflict, ValidationError
from core.domain.money import yuan

PENDING, APPROVING, APPROVED, REJECTED, FAILED = "pending", "approving", "approved", "rejected", "failed"
STATUSES = (PENDING, APPROVING, APPROVED, REJECTED, FAILED)
OPEN_STATUSES = (PENDING, APPROVING)
STATUS_TEXTS = {
    PENDING: "待物业审核",
    APPROVING: "退款处理中",
    APPROVED: "已同意，退款已原路退回微信",
    REJECTED: "已驳回",
    FAILED: "退款未能完成，请联系物业",
}
REASON_MAX = 200
ACTION_APPROVE, ACTION_REJECT = "refund_request_approve", "refund_request_reject"


@dataclass(frozen=True)
class RefundRequest:
    account_id: str
    request_id: str
    property_id: str
    openid: str
    amount: int
    reason: str
    status: str
    created_at: str
    decided_at: str = ""
    decided_by: str = ""
    reject_reason: str = ""
    refunded: int = 0  # fen refunded through WeChat (approved: the amount; failed: what went through)
    refunds: tuple[dict, ...] = field(default_factory=tuple)  # [{out_trade_no, out_refund_no, amount, status}]

    @property
    def status_text(self) -> str:
        text = STATUS_TEXTS.get(self.status, self.status)
        if self.status == REJECTED and self.reject_reason:
            return f"{text}：{self.reject_reason}"
        if self.status == FAILED and self.refunded:
            return f"{text}（已退 {yuan(self.refunded)} 元）"
        return text


def new_request_id(now: datetime) -> str:
    """Time-ordered (a partition's requests sort by it), unique, URL- and id-safe."""
    return f"rr-{now.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(4)}"


def check_reason(value: object, field_name: str = "reason", label: str = "退款原因") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"请填写{label}", code="reason_required", field=field_name)
    text = value.strip()
    if len(text) > REASON_MAX:
        raise ValidationError(f"{label}不能超过 {REASON_MAX} 个字", code="reason_too_long", field=field_name)
    if any(ord(ch) < 32 for ch in text):
        raise ValidationError(f"{label}不能包含控制字符", code="reason_invalid", field=field_name)
    return text


def check_amount(amount: object, balance: int, refundable: int) -> int:
    """The amount a tenant may ask for: a positive integer of fen, at most the spendable
    balance and at most what WeChat can give back (paid recharges not yet refunded)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("退款金额必须是以分为单位的整数", code="amount_not_integer", field="amount")
    if amount <= 0:
        raise ValidationError("退款金额必须大于 0", code="amount_not_positive", field="amount")
    spendable = max(0, balance)
    if amount > spendable:
        raise ValidationError(f"退款金额不能超过可用余额 {yuan(spendable)} 元", code="amount_over_balance",
                              field="amount")
    if amount > refundable:
        raise ValidationError(f"退款金额不能超过可原路退回的微信充值 {yuan(refundable)} 元", code="amount_over_refundable",
                              field="amount")
    return amount


@dataclass(frozen=True)
class PaidOrder:
    out_trade_no: str
    paid_at: str  # UTC ISO time
    refundable: int  # fen: paid amount minus refunds (in flight included)
    created_at: str = ""  # UTC ISO time to the microsecond: orders paid in the same second keep their order


def allocate(amount: int, orders: list[PaidOrder]) -> list[tuple[str, int]]:
    """Split `amount` over paid orders, newest payment first, each taking at most what it
    has left: [(out_trade_no, fen)]. Orders with nothing left are skipped. Refused (409)
    when together they hold less than the amount."""
    if amount <= 0:
        raise ValidationError("退款金额必须大于 0", code="amount_not_positive", field="amount")
    out: list[tuple[str, int]] = []
    left = amount
    for o in sorted(orders, key=lambda o: (o.paid_at, o.created_at, o.out_trade_no), reverse=True):
        if left == 0:
            break
        if o.refundable <= 0:
            continue
        take = min(left, o.refundable)
        out.append((o.out_trade_no, take))
        left -= take
    if left:
        raise Conflict(f"可原路退回的微信充值不足，还差 {yuan(left)} 元", code="refund_not_covered", missing=left)
    return out
