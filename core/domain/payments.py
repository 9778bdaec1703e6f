"""Recharge orders, refunds and the checks a payment notification must pass.

Paid-but-not-credited and credited-twice are made impossible by construction: an order
turns PAID in the same transaction that credits the ledger under the entry id
`pay:<WeChat transaction id>`, and only from PENDING (or from CLOSED, when WeChat says the
money arrived after we gave up on it: money received is always credited).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.domain.errors import ValidationError
from core.domain.money import yuan

PENDING, PAID, CLOSED = "PENDING", "PAID", "CLOSED"
RECHARGE, BILL = "recharge", "bill"  # an order's purpose
ORDER_STATES = (PENDING, PAID, CLOSED)
REFUND_PROCESSING, REFUND_SUCCESS, REFUND_FAILED = "PROCESSING", "SUCCESS", "FAILED"
NOTIFICATION_MAX_SKEW = timedelta(minutes=5)
ORDER_TTL = timedelta(minutes=15)
CHANNELS = ("wechat", "cash", "bank")
CURRENCY = "CNY"
_OUT_NO_RE = re.compile(r"^[A-Za-z0-9_\-*]{6,32}$")  # "|" breaks wechatpayv3 signing of query URLs


@dataclass(frozen=True)
class Limits:
    min_fen: int = 100  # 1.00 yuan
    max_fen: int = 500_000  # 5,000.00 yuan


def check_amount(amount: object, limits: Limits) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValidationError("充值金额必须是以分为单位的整数", code="amount_not_integer", field="amount")
    if amount < limits.min_fen:
        raise ValidationError(f"单次充值不能少于 {yuan(limits.min_fen)} 元", code="amount_too_small", field="amount")
    if amount > limits.max_fen:
        raise ValidationError(f"单次充值不能超过 {yuan(limits.max_fen)} 元", code="amount_too_large", field="amount")
    return amount


def new_out_trade_no(now: datetime, prefix: str = "R") -> str:
    """Unique, 32 characters at most, only the characters WeChat Pay accepts."""
    return f"{prefix}{now.strftime('%Y%m%d%H%M%S')}{secrets.token_hex(6)}"


def check_out_no(value: object, field: str) -> str:
    if not isinstance(value, str) or not _OUT_NO_RE.fullmatch(value):
        raise ValidationError(f"{field} 格式无效", code="out_no_invalid", field=field)
    return value


@dataclass(frozen=True)
class Order:
    out_trade_no: str
    property_id: str
    account_id: str
    tenant_id: str
    openid: str
    amount: int
    status: str
    created_at: str
    expires_at: str
    channel: str = "wechat"
    transaction_id: str = ""
    paid_at: str = ""
    refunded: int = 0  # fen refunded or being refunded
    receipt_no: str = ""
    actor: str = ""
    purpose: str = RECHARGE  # recharge | bill (paying a bill: docs/billing.md)
    bill_id: str = ""  # the bill an order of purpose "bill" pays


@dataclass(frozen=True)
class Refund:
    out_refund_no: str
    out_trade_no: str
    property_id: str
    account_id: str
    amount: int
    status: str
    reason: str
    actor: str
    created_at: str
    refund_id: str = ""


def transaction_problem(tx: dict, order: Order | None, appid: str, mchid: str) -> str | None:
    """Why a decrypted transaction must not be credited, or None if it may."""
    if order is None:
        return "unknown_order"
    if tx.get("appid") != appid:
        return "appid_mismatch"
    if tx.get("mchid") != mchid:
        return "mchid_mismatch"
    if tx.get("trade_state") != "SUCCESS":
        return "not_success"
    if not isinstance(tx.get("transaction_id"), str) or not tx["transaction_id"]:
        return "no_transaction_id"
    amount = tx.get("amount") if isinstance(tx.get("amount"), dict) else {}
    if amount.get("currency") != CURRENCY:  # orders are placed in CNY; anything else is not our order's money
        return "currency_mismatch"
    total = amount.get("total")
    if isinstance(total, bool) or total != order.amount:
        return "amount_mismatch"
    payer = tx.get("payer") if isinstance(tx.get("payer"), dict) else {}
    if order.openid and payer.get("openid") not in (None, order.openid):
        return "payer_mismatch"
    return None


def notification_problem(event_type: str, resource: dict) -> str | None:
    """Why an authenticated notification's decrypted resource cannot be handled (it is
    answered 400 before any work), or None. Money mismatches are not shape problems:
    `transaction_problem` reports those, with an alert."""
    if event_type == "TRANSACTION.SUCCESS":
        no = resource.get("out_trade_no")
        if not isinstance(no, str) or not 0 < len(no) <= 64:
            return "no_out_trade_no"
        for key in ("amount", "payer"):
            if key in resource and not isinstance(resource[key], dict):
                return f"{key}_malformed"
        when = resource.get("success_time")
        if when is not None:
            try:
                if not isinstance(when, str) or datetime.fromisoformat(when.replace("Z", "+00:00")).tzinfo is None:
                    return "success_time_malformed"
            except ValueError:
                return "success_time_malformed"
        return None
    if event_type.startswith("REFUND."):
        no = resource.get("out_refund_no")
        if not isinstance(no, str) or not _OUT_NO_RE.fullmatch(no):
            return "no_out_refund_no"
        if "amount" in resource and not isinstance(resource["amount"], dict):
            return "amount_malformed"
        return None
    return "unknown_event"


def timestamp_fresh(timestamp: object, now: datetime) -> bool:
    text = str(timestamp)
    if not text.isascii() or not text.isdigit() or len(text) > 12:  # a 400-digit number overflows a float
        return False
    ts = int(text)
    return abs(now.timestamp() - ts) <= NOTIFICATION_MAX_SKEW.total_seconds()


def refundable(order: Order) -> int:
    """What of a recharge may go back by WeChat refund. A bill's payment is not refunded this
    way (it paid a bill, not the balance; its excess, credited to the balance, is refunded
    from the balance like any money there)."""
    if order.purpose != RECHARGE:
        return 0
    return order.amount - order.refunded if order.status == PAID else 0


def bill_settlement(order_amount: int, bill_state: str | None, total: int, paid: int) -> tuple[int, int]:
    """(to the bill, to the prepaid balance) of a paid bill order: at most what the bill still
    owes, and only while it is issued; the rest (paid at the counter meanwhile, or the bill
    gone) is credited to the account's prepaid balance, so money received is never lost."""
    owed = max(0, total - paid) if bill_state == "issued" else 0
    to_bill = min(order_amount, owed)
    return to_bill, order_amount - to_bill
