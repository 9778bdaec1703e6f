"""Binding codes and counter receipt numbers (the console_codes table; docs/console.md,
"Room actions"): each is claimed once, by a conditional put."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.store.models import ConsoleCodeItem
from core.store.tx import save_if, update_if


@dataclass(frozen=True)
class BindingCode:
    code: str
    property_id: str
    tenant_id: str
    account_id: str
    created_at: str
    created_by: str
    expires_at: str
    used_at: str = ""
    used_by: str = ""


@dataclass(frozen=True)
class Receipt:
    receipt_no: str
    property_id: str
    account_id: str
    amount: int
    channel: str
    created_at: str
    created_by: str


def _binding_key(code: str) -> str:
    return f"binding#{code}"


def _receipt_key(property_id: str, receipt_no: str) -> str:
    return f"receipt#{property_id}#{receipt_no}"


def put_binding(b: BindingCode, purge_at: datetime) -> bool:
    """Store a new binding code; False if the code is taken (draw another)."""
    item = ConsoleCodeItem(_binding_key(b.code), kind="binding", property_id=b.property_id, tenant_id=b.tenant_id,
                           account_id=b.account_id, created_at=b.created_at, created_by=b.created_by,
                           expires_at=b.expires_at, purge_at=purge_at)
    return save_if(item, ConsoleCodeItem.code_key.does_not_exist())


def get_binding(code: str) -> BindingCode | None:
    try:
        i = ConsoleCodeItem.get(_binding_key(code), consistent_read=True)
    except ConsoleCodeItem.DoesNotExist:
        return None
    if i.kind != "binding":
        return None
    return BindingCode(code, i.property_id, i.tenant_id or "", i.account_id or "", i.created_at, i.created_by or "",
                       i.expires_at or "", i.used_at or "", i.used_by or "")


def use_binding(code: str, openid: str, at: str) -> bool:
    """Mark a binding code used by `openid`, if it is unused and not expired at `at`."""
    cond = ConsoleCodeItem.code_key.exists() & ConsoleCodeItem.used_at.does_not_exist() \
        & (ConsoleCodeItem.expires_at > at)
    return update_if(ConsoleCodeItem(_binding_key(code)),
                     [ConsoleCodeItem.used_at.set(at), ConsoleCodeItem.used_by.set(openid)], cond)


def claim_receipt(r: Receipt) -> bool:
    """Claim a receipt number of a property for one account and amount; False if it was
    claimed before (get_receipt says by what)."""
    item = ConsoleCodeItem(_receipt_key(r.property_id, r.receipt_no), kind="receipt", property_id=r.property_id,
                           account_id=r.account_id, amount=r.amount, channel=r.channel, created_at=r.created_at,
                           created_by=r.created_by)
    return save_if(item, ConsoleCodeItem.code_key.does_not_exist())


def get_receipt(property_id: str, receipt_no: str) -> Receipt | None:
    try:
        i = ConsoleCodeItem.get(_receipt_key(property_id, receipt_no), consistent_read=True)
    except ConsoleCodeItem.DoesNotExist:
        return None
    return Receipt(receipt_no, i.property_id, i.account_id or "", int(i.amount or 0), i.channel or "", i.created_at,
                   i.created_by or "")
