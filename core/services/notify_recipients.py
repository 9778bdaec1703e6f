"""Admin recipients of notifications (通知接收人, docs/console.md "Notification recipients"):
read for the console and the router, changed by an admin with the action log's record."""

from __future__ import annotations

from core.domain import notify_recipients as rules
from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.errors import Conflict, ValidationError
from core.domain.ledger import format_time
from core.services import action_log
from core.store import notify_recipients as store

ACTION_CHANGED = "notify_recipients"


def recipients(property_id: str, event_type: str) -> list[tuple[str, str]]:
    return store.recipients(property_id, event_type)


def of_property(property_id: str) -> dict[str, list[tuple[str, str]]]:
    """Every admin event type (the page's order) with its recipients."""
    stored = store.of_property(property_id)
    return {t: stored.get(t, ([], 0))[0] for t in rules.EVENT_TYPES}


def _change(who: AdminPrincipal, property_id: str, event_type: str, change, ip: str, clock: Clock) -> bool:
    """Apply change(current) -> new list to one event type; recorded once if it changed."""
    for _ in range(3):
        current, version = store.of_property(property_id).get(event_type, ([], 0))
        new = change(current)
        if new == current:
            return False
        if store.set_recipients(property_id, event_type, new, version, who.admin_id, format_time(clock())):
            action_log.record(who, ACTION_CHANGED, property_id=property_id, target=f"notify:{event_type}",
                              before={"recipients": [list(p) for p in current]},
                              after={"recipients": [list(p) for p in new]}, ip=ip, clock=clock)
            return True
    raise Conflict("接收人已被他人修改，请刷新后重试", code="recipients_changed")


def add(who: AdminPrincipal, property_id: str, event_types: list[str], channel: object, to: object, ip: str = "",
        clock: Clock = utcnow) -> int:
    """Add one recipient to each of event_types; how many lists changed."""
    types = [rules.check_event_type(t) for t in event_types]
    if not types:
        raise ValidationError("请选择至少一类事件", code="event_type_required", field="event_type")
    recipient = rules.check_recipient(channel, to)
    return sum(_change(who, property_id, t, lambda cur: rules.with_added(cur, recipient), ip, clock) for t in types)


def remove(who: AdminPrincipal, property_id: str, event_type: str, channel: object, to: object, ip: str = "",
           clock: Clock = utcnow) -> bool:
    t = rules.check_event_type(event_type)
    key = (str(channel), str(to))
    return _change(who, property_id, t, lambda cur: [p for p in cur if p != key], ip, clock)


def replace(who: AdminPrincipal, property_id: str, event_type: str, items: object, ip: str = "",
            clock: Clock = utcnow) -> bool:
    t = rules.check_event_type(event_type)
    new = rules.check_list(items)
    return _change(who, property_id, t, lambda cur: new, ip, clock)
