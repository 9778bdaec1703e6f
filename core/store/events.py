"""Events (anomalies, alarms, meter, command and payment events: the audit trail).

The events table is keyed by `scope` (`<subject kind>#<subject id>`: `meter#m1`,
`account#a1`, `payments#p1`…) and `event_id`; only this module knows it. Every write is
put-if-absent on the event's key, so an event with a deterministic id is recorded once.
"""

from __future__ import annotations

import json

from core.domain.events import Event, Subject, SubjectKind
from core.domain.tenant_feed import feed_account
from core.domain.writes import DecideEvent
from core.store.models import EventItem
from core.store.tx import Tx, save_if, update_if


def scope(subject: Subject) -> str:
    return f"{subject.kind}#{subject.id}"


def subject_of(scope_key: str) -> Subject:
    kind, _, ident = scope_key.partition("#")
    return Subject(SubjectKind(kind), ident)


def event_item(e: Event) -> EventItem:
    return EventItem(scope(e.subject), e.event_id, property_id=e.property_id, at=e.at, type=e.type, status=e.status,
                     message=e.message, data=e.data,
                     # the sparse review-queue index: only an anomaly awaiting a decision
                     open_anomaly=e.property_id if e.type == "anomaly" and e.status == "open" else None,
                     # the sparse tenant-notifications index: only tenant-facing events
                     account_feed=feed_account(e))


def add_event(tx: Tx, e: Event, tag: str = "") -> None:
    """Transaction item: record e unless it exists."""
    tx.put(event_item(e), EventItem.event_id.does_not_exist(), tag=tag or f"event:{e.event_id}")


def put_event(e: Event) -> bool:
    """Record e; False if it was recorded before."""
    return save_if(event_item(e), EventItem.event_id.does_not_exist())


def _event(i: EventItem) -> Event:
    return Event(
        subject=subject_of(i.scope), event_id=i.event_id, type=i.type, property_id=i.property_id, at=i.at,
        status=i.status or "", message=i.message or "",
        data=json.loads(json.dumps(i.data.as_dict() if i.data else {}, default=str)),
    )


def from_image(image: dict) -> Event:
    """An event from its item as a DynamoDB stream record carries it (NewImage, typed JSON)."""
    return _event(EventItem.from_raw_data(image))


def events_of(subject: Subject) -> list[Event]:
    return [_event(i) for i in EventItem.query(scope(subject), consistent_read=True)]


def events_of_property(property_id: str, since: str = "", limit: int = 200) -> list[Event]:
    cond = EventItem.at >= since if since else None
    return [_event(i) for i in EventItem.by_property.query(property_id, cond, limit=limit, scan_index_forward=False)]


def get_event(subject: Subject, event_id: str) -> Event | None:
    try:
        return _event(EventItem.get(scope(subject), event_id, consistent_read=True))
    except EventItem.DoesNotExist:
        return None


def set_event_status(subject: Subject, event_id: str, expected: str, status: str, by: str,
                     data: dict | None = None) -> bool:
    """Decide an event on its own (status expected -> status, with `data` keys set in its
    data); False if it was decided before."""
    actions = [EventItem.status.set(status), EventItem.data["decided_by"].set(by), EventItem.open_anomaly.remove()]
    actions += [EventItem.data[k].set(v) for k, v in (data or {}).items()]
    return update_if(EventItem(scope(subject), event_id), actions, EventItem.status == expected)


def open_anomalies(property_id: str, limit: int = 500) -> list[Event]:
    """A property's anomalies awaiting a decision, oldest first (the sparse index)."""
    return [_event(i) for i in EventItem.by_open_anomaly.query(property_id, limit=limit)]


def decided_anomalies(property_id: str, limit: int = 50) -> list[Event]:
    """A property's most recently recorded anomalies that an admin has decided (newest first)."""
    out: list[Event] = []
    for i in EventItem.by_property.query(property_id, scan_index_forward=False, page_size=200,
                                         filter_condition=(EventItem.type == "anomaly")
                                         & EventItem.status.is_in("approved", "rejected")):
        out.append(_event(i))
        if len(out) >= limit:
            break
    return out


def add_decision(tx: Tx, d: DecideEvent, tag: str = "") -> None:
    """Transaction item: decide an event (status expected -> status) with who decided and what came of it."""
    actions = [EventItem.status.set(d.status), EventItem.data["decided_by"].set(d.by), EventItem.open_anomaly.remove()]
    actions += [EventItem.data[k].set(v) for k, v in d.data.items()]
    tx.update(EventItem(scope(d.subject), d.event_id), actions, EventItem.status == d.expected,
              tag=tag or f"decision:{d.event_id}")


# --- a tenant's notifications (core/domain/tenant_feed.py) -----------------------------------

FEED_CURSOR_KEYS = ("account_feed", "at", "scope", "event_id")


def feed_page(account_id: str, limit: int, after: dict | None = None) -> tuple[list[Event], dict | None]:
    """The account's tenant-facing events newest first, `limit` of them after the previous
    page's last (its keys: FEED_CURSOR_KEYS), and the keys of this page's last for the next
    page (None on the last page). One Query of the sparse by_account_feed index for limit + 1."""
    start = None
    if after is not None:
        if after.get("account_feed") != account_id:
            return [], None  # a cursor of another account's feed reads nothing
        start = {k: {"S": after[k]} for k in FEED_CURSOR_KEYS}
    items = list(EventItem.by_account_feed.query(account_id, scan_index_forward=False, limit=limit + 1,
                                                 page_size=limit + 1, last_evaluated_key=start))
    page = items[:limit]
    last = page[-1] if len(items) > limit and page else None
    nxt = {"account_feed": account_id, "at": last.at, "scope": last.scope, "event_id": last.event_id} if last else None
    return [_event(i) for i in page], nxt
