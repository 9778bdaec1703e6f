"""Charge items (费用项) and the late fee rule in DynamoDB (table `charge_items`,
core/store/models.py ChargeItemItem): one partition per property; each version is an item
of its own, written once (condition: absent), so two admins saving a version at the same
moment cannot both win."""

from __future__ import annotations

import json

from core.domain.bills import LateFeeRule
from core.domain.charge_items import ItemVersion
from core.store.models import ChargeItemItem
from core.store.tx import save, save_if

RULE_SK = "RULE#late_fee"


def version_sk(item_id: str, version: int) -> str:
    return f"ITEM#{item_id}#{version:04d}"


def put_version(v: ItemVersion) -> bool:
    """Write a new version; False if that version number exists (someone saved first)."""
    item = ChargeItemItem(v.property_id, version_sk(v.item_id, v.version), body=v.to_json(), created_at=v.created_at,
                          created_by=v.created_by)
    return save_if(item, ChargeItemItem.sk.does_not_exist())


def versions(property_id: str, item_id: str | None = None) -> list[ItemVersion]:
    """Every version of one item (or of all the property's items), in key order."""
    prefix = f"ITEM#{item_id}#" if item_id else "ITEM#"
    return [ItemVersion.from_json(i.body)
            for i in ChargeItemItem.query(property_id, ChargeItemItem.sk.startswith(prefix), consistent_read=True)]


def late_fee_rule(property_id: str) -> LateFeeRule:
    try:
        return LateFeeRule.from_json(json.loads(ChargeItemItem.get(property_id, RULE_SK, consistent_read=True).body))
    except ChargeItemItem.DoesNotExist:
        return LateFeeRule()


def put_late_fee_rule(property_id: str, rule: LateFeeRule, at: str, by: str) -> None:
    save(ChargeItemItem(property_id, RULE_SK, body=json.dumps(rule.to_json()), created_at=at, created_by=by))
