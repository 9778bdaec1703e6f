"""Tariff plans (a property's JSON documents) and a property's protection settings."""

from __future__ import annotations

import json

from core.store.models import DirectoryItem, TariffItem
from core.store.tx import save, update_item

PROPERTY_SK = "PROPERTY"


def put_tariff(plan_id: str, property_id: str, document: dict, at: str, by: str) -> None:
    save(TariffItem(plan_id, property_id=property_id, document=json.dumps(document, ensure_ascii=False),
                    updated_at=at, updated_by=by))


def get_tariff(plan_id: str) -> tuple[str, dict] | None:
    """(owning property, document) of a plan, None if there is no such plan."""
    try:
        i = TariffItem.get(plan_id, consistent_read=True)
    except TariffItem.DoesNotExist:
        return None
    return i.property_id, json.loads(i.document)


# --- property protection settings (kept on the property's directory item) ---------------


def get_protection(property_id: str) -> dict | None:
    try:
        i = DirectoryItem.get(property_id, PROPERTY_SK)
    except DirectoryItem.DoesNotExist:
        return None
    return i.protection.as_dict() if i.protection else {}


def set_protection(property_id: str, settings: dict) -> None:
    update_item(DirectoryItem(property_id, PROPERTY_SK), [DirectoryItem.protection.set(settings)],
                DirectoryItem.sk.exists())
