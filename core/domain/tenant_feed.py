"""Notifications a tenant has received: the tenant-facing events of an account.

Which recorded events a tenant sees (`feed_account`: the account an event belongs in the
feed of, or None), and how each reads (`notification`: kind, Chinese title and text).
The events store keeps tenant-facing events in a sparse index by account
(`events.by_account_feed`), so a page is one Query.

Tenant-facing: low-balance alarms (`low_balance`, account scope), the notices recorded for
tenants alone (scope `notice#<account>`: `payment_credited`, written in the credit's
transaction; `refund_approved`, `refund_rejected`), and relay commands to the
account's meters (`command` with op TRIP → supply cut, CLOSE → supply restored; the
reconciler's retries of the same order are not news and are left out).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from core.domain.errors import ValidationError
from core.domain.events import Event, SubjectKind
from core.domain.money import yuan

ACCOUNT_TYPES = ("low_balance",)
KINDS = ("low_balance", "payment_credited", "cut", "restored", "refund_approved", "refund_rejected")


def feed_account(e: Event) -> str | None:
    """The account in whose feed `e` belongs, or None (not for tenants)."""
    if e.subject.kind == SubjectKind.ACCOUNT and e.type in ACCOUNT_TYPES:
        return e.subject.id
    if e.subject.kind == SubjectKind.NOTICE:  # recorded for the tenants alone
        return e.subject.id
    if e.subject.kind == SubjectKind.METER and e.type == "command":
        op, cause, account = e.data.get("op"), str(e.data.get("cause", "")), e.data.get("account_id")
        if op in ("TRIP", "CLOSE") and account and not cause.startswith("reconcile"):
            return str(account)
    return None


@dataclass(frozen=True)
class Notification:
    id: str
    kind: str
    title: str
    text: str
    at: str


def _fen(data: dict, key: str) -> int | None:
    v = data.get(key)
    try:
        return int(v) if v is not None and not isinstance(v, bool) else None
    except (TypeError, ValueError):
        return None


def notification(e: Event) -> Notification:
    d = e.data
    nid = f"{e.subject.kind}:{e.subject.id}:{e.event_id}"
    if e.type == "low_balance":
        return Notification(nid, "low_balance", "余额不足提醒", e.message or "账户余额不足，请及时充值", e.at)
    if e.type == "payment_credited":
        amount, after = _fen(d, "amount"), _fen(d, "balance_after")
        text = f"微信充值 {yuan(amount)} 元已到账" if amount is not None else "微信充值已到账"
        if after is not None:
            text += f"，当前余额 {yuan(after)} 元"
        return Notification(nid, "payment_credited", "充值到账", text, e.at)
    if e.type == "refund_approved":
        amount = _fen(d, "amount")
        text = f"您的退款申请已通过，{yuan(amount)} 元将原路退回微信" if amount is not None else "您的退款申请已通过"
        return Notification(nid, "refund_approved", "退款申请已通过", text, e.at)
    if e.type == "refund_rejected":
        reason = str(d.get("reason", ""))
        return Notification(nid, "refund_rejected", "退款申请被驳回",
                            f"您的退款申请被驳回：{reason}" if reason else "您的退款申请被驳回", e.at)
    if e.type == "command" and d.get("op") == "TRIP":
        manual = str(d.get("cause", "")) == "manual"
        return Notification(nid, "cut", "已停止供电",
                            "物业已对您的表计断电，如有疑问请联系物业" if manual
                            else "账户余额低于断电线，已停止供电。充值到账后将自动恢复", e.at)
    if e.type == "command" and d.get("op") == "CLOSE":
        manual = str(d.get("cause", "")) == "manual"
        return Notification(nid, "restored", "恢复供电",
                            "物业已为您的表计合闸" if manual else "充值已到账，已发出合闸指令恢复供电", e.at)
    if e.type in _TITLES:  # the event's own message is the text (bills: amounts as of the event)
        return Notification(nid, e.type, _TITLES[e.type], e.message, e.at)
    return Notification(nid, e.type, "通知", e.message, e.at)


_TITLES = {"bill_issued": "账单已出", "bill_due_soon": "账单即将到期", "bill_overdue": "账单已逾期",
           "refund_done": "退款已到账"}


def encode_cursor(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: object, keys: tuple[str, ...]) -> dict | None:
    """A cursor made by encode_cursor with exactly `keys` (strings), else a 400."""
    if cursor in (None, ""):
        return None
    try:
        if not isinstance(cursor, str) or len(cursor) > 1000:
            raise ValueError
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(value, dict) or set(value) != set(keys) or not all(
                isinstance(v, str) and 0 < len(v) <= 300 for v in value.values()):
            raise ValueError
        return value
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("cursor 无效", code="cursor_invalid", field="cursor") from None
