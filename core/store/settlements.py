"""Move-out settlements (退租结算) in DynamoDB (table `settlements`, core/store/models.py
SettlementItem): one item per leaving account, written once with the settlement's inputs
(so a rerun after a crash finishes the same settlement), then updated on its version as the
steps complete. Also the one write a transfer (过户) makes to a meter: its account, moved
only while its rating baseline is still the final reading the old account was settled on."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.store.models import MeterItem, SettlementItem
from core.store.tx import save_if, update_if


@dataclass(frozen=True)
class Settlement:
    account_id: str
    property_id: str
    doc: dict
    status: str
    version: int
    statement: dict | None = None
    created_at: str = ""
    created_by: str = ""
    updated_at: str = ""


def _settlement(i: SettlementItem) -> Settlement:
    return Settlement(i.account_id, i.property_id, json.loads(i.doc), i.status or "", int(i.version or 0),
                      json.loads(i.statement) if i.statement else None, i.created_at or "", i.created_by or "",
                      i.updated_at or "")


def get(account_id: str) -> Settlement | None:
    try:
        return _settlement(SettlementItem.get(account_id, consistent_read=True))
    except SettlementItem.DoesNotExist:
        return None


def create(account_id: str, property_id: str, doc: dict, status: str, at: str, by: str) -> bool:
    """The settlement's first write; False if the account has one already."""
    item = SettlementItem(account_id, property_id=property_id, doc=json.dumps(doc, ensure_ascii=False, sort_keys=True),
                          status=status, version=1, created_at=at, created_by=by, updated_at=at)
    return save_if(item, SettlementItem.account_id.does_not_exist())


def update(s: Settlement, *, status: str, at: str, statement: dict | None = None, doc: dict | None = None) -> bool:
    """Move the settlement on from version s.version; False if someone else did first."""
    actions = [SettlementItem.status.set(status), SettlementItem.updated_at.set(at),
               SettlementItem.version.set(s.version + 1)]
    if statement is not None:
        actions.append(SettlementItem.statement.set(json.dumps(statement, ensure_ascii=False, sort_keys=True)))
    if doc is not None:
        actions.append(SettlementItem.doc.set(json.dumps(doc, ensure_ascii=False, sort_keys=True)))
    return update_if(SettlementItem(s.account_id), actions, SettlementItem.version == s.version)


def move_meter(meter_id: str, from_account: str, to_account: str, final_seq: int) -> bool:
    """Give a meter to another account, on the condition that it is still the old account's
    and its rating baseline is still the final reading (seq) the old account was settled
    on: a reading rated in between makes this fail (the caller settles that reading too).
    True if moved (or already moved: the answer of a retried call may have been lost)."""
    moved = update_if(MeterItem(meter_id), [MeterItem.account_id.set(to_account)],
                      (MeterItem.account_id == from_account) & (MeterItem.rated_seq == final_seq))
    if moved:
        return True
    try:
        return MeterItem.get(meter_id, consistent_read=True).account_id == to_account
    except MeterItem.DoesNotExist:
        return False
