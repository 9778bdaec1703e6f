"""Tariff plans (a property's JSON documents) and a property's protection settings."""

from __future__ import annotations

import json

from core.store.models import DirectoryItem, TariffItem
from core.store.tx import save, save_if, update_item

PROPERTY_SK = "PROPERTY"


def put_tariff(plan_id: str, property_id: str, document: dict, at: str, by: str) -> None:
    save(TariffItem(plan_id, property_id=property_id, document=json.dumps(document, ensure_ascii=False),
                    updated_at=at, updated_by=by))


def put_tariff_if(plan_id: str, property_id: str, document: dict, at: str, by: str, expected_at: str | None) -> bool:
    """Store a plan only if it is as the caller read it: absent (expected_at None) or last
    written at expected_at. False otherwise (someone else changed it meanwhile)."""
    cond = TariffItem.plan_id.does_not_exist() if expected_at is None else TariffItem.updated_at == expected_at
    return save_if(TariffItem(plan_id, property_id=property_id, document=json.dumps(document, ensure_ascii=False),
                              updated_at=at, updated_by=by), cond)


def tariff_record(plan_id: str) -> dict | None:
    """The stored plan with who changed it last: {property_id, document, updated_at, updated_by}."""
    try:
        i = TariffItem.get(plan_id, consistent_read=True)
    except TariffItem.DoesNotExist:
        return None
    return _record(i)


def tariffs_of_property(property_id: str) -> list[dict]:
    """A property's plans (by_property index, eventually consistent), by plan id."""
    return [_record(i) for i in TariffItem.by_property.query(property_id)]


def _record(i: TariffItem) -> dict:
    return {"plan_id": i.plan_id, "property_id": i.property_id, "document": json.loads(i.document),
            "updated_at": i.updated_at, "updated_by": i.updated_by}


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
