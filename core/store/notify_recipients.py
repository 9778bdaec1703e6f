"""Admin recipients of notifications per property and event type (table
`notify_recipients`; rules: core/domain/notify_recipients.py). The router reads one item
per event (`recipients`); the console reads a property's in one Query and changes one
event type's list conditioned on its version."""

from __future__ import annotations

import json

from core.store.models import NotifyRecipientItem
from core.store.tx import save_if


def _pairs(raw: str | None) -> list[tuple[str, str]]:
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return []
    return [(str(c), str(t)) for c, t in items if isinstance(c, str) and isinstance(t, str)] \
        if isinstance(items, list) else []


def recipients(property_id: str, event_type: str) -> list[tuple[str, str]]:
    """[(channel, to)] of a property's admins to tell of event_type (none: [])."""
    try:
        return _pairs(NotifyRecipientItem.get(property_id, event_type).recipients)
    except NotifyRecipientItem.DoesNotExist:
        return []


def of_property(property_id: str) -> dict[str, tuple[list[tuple[str, str]], int]]:
    """event type -> (recipients, version), one consistent Query."""
    return {i.event_type: (_pairs(i.recipients), int(i.version or 0))
            for i in NotifyRecipientItem.query(property_id, consistent_read=True)}


def set_recipients(property_id: str, event_type: str, items: list[tuple[str, str]], expected_version: int,
                   by: str, at: str) -> bool:
    """Replace one event type's list if its version is still expected_version (0: none
    stored). False if someone changed it meanwhile."""
    item = NotifyRecipientItem(property_id, event_type, recipients=json.dumps([list(p) for p in items]),
                               version=expected_version + 1, updated_at=at, updated_by=by)
    cond = (NotifyRecipientItem.event_type.does_not_exist() if expected_version == 0
            else NotifyRecipientItem.version == expected_version)
    return save_if(item, cond)
