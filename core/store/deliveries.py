"""The delivery log of notifications and the claim that makes each delivery happen once
(table `deliveries`, keyed by the deterministic delivery id; docs/notifications.md).

A sender claims a delivery with one conditional UpdateItem (absent, or waiting for a retry
or for the end of quiet hours, or claimed by a sender whose lease ran out), sends, then
records the outcome with a second UpdateItem. Both return what they need, so a message
costs two DynamoDB requests (plus the consent for a subscribe message).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from core.domain import notifications as n
from core.domain.ledger import format_time
from core.store.models import DeliveryItem
from core.store.tx import connection, retrying

KEEP = timedelta(days=400)  # the log outlives the yearly questions; the dedupe needs a day


def _delivery(i: DeliveryItem) -> n.Delivery:
    return n.Delivery(i.delivery_id, i.property_id, i.account_id or "", i.event_ref, i.kind, i.channel, i.recipient,
                      i.status, int(i.attempts or 0), i.provider_id or "", i.detail or "", i.created_at,
                      i.updated_at or "")


def _raw(attrs: dict) -> dict:
    return DeliveryItem.from_raw_data(attrs).attribute_values if attrs else {}


def claim(delivery_id: str, *, property_id: str, account_id: str, event_ref: str, kind: str, channel: str,
          recipient: str, now: datetime) -> tuple[bool, dict]:
    """Take a delivery for sending: (True, the item as now) if this caller may send it,
    (False, the item as it was) if it was sent, failed or is being sent by another. The
    attempt count goes up by one with each claim."""
    t, token = format_time(now), uuid.uuid4().hex
    item = DeliveryItem(delivery_id)
    actions = [
        DeliveryItem.property_id.set(property_id), DeliveryItem.event_ref.set(event_ref),
        DeliveryItem.kind.set(kind), DeliveryItem.channel.set(channel), DeliveryItem.recipient.set(recipient),
        DeliveryItem.status.set(n.SENDING), DeliveryItem.attempts.add(1), DeliveryItem.updated_at.set(t),
        DeliveryItem.created_at.set(DeliveryItem.created_at | t),
        DeliveryItem.lease_until.set(format_time(now + n.SENDING_LEASE)), DeliveryItem.next_at.remove(),
        DeliveryItem.purge_at.set(now + KEEP),
    ]
    if account_id:
        actions.append(DeliveryItem.account_id.set(account_id))
    condition = (DeliveryItem.delivery_id.does_not_exist()
                 | DeliveryItem.status.is_in(n.RETRYING, n.QUIET_DEFERRED)
                 | ((DeliveryItem.status == n.SENDING) & (DeliveryItem.lease_until < t)))
    # the claim carries a token: an attempt whose answer was lost is recognised as ours on the retry
    actions.append(DeliveryItem.claim_token.set(token))
    kwargs = item.get_update_kwargs_from_instance(actions=actions, condition=condition, add_version_condition=False)
    kwargs["ReturnValues"] = "ALL_NEW"
    kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    try:
        resp = retrying(lambda: connection().dispatch("UpdateItem", dict(kwargs)))
        return True, _raw(resp.get("Attributes", {}))
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        old = e.response.get("Item") or {}
        if old.get("claim_token", {}).get("S") == token:
            return True, _raw(old)  # our own claim went in and its answer was lost
        return False, _raw(old)


def finish(delivery_id: str, status: str, now: datetime, *, detail: str = "", provider_id: str = "",
           next_at: datetime | None = None, consent: bool | None = None) -> None:
    """Record what came of a claimed delivery (sent, retrying with its next time, failed, no_consent)."""
    actions = [DeliveryItem.status.set(status), DeliveryItem.updated_at.set(format_time(now)),
               DeliveryItem.detail.set(detail[:500]), DeliveryItem.lease_until.remove()]
    if provider_id:
        actions.append(DeliveryItem.provider_id.set(provider_id[:200]))
    if next_at is not None:
        actions.append(DeliveryItem.next_at.set(format_time(next_at)))
    if consent is not None:
        actions.append(DeliveryItem.consent.set(consent))
    kwargs = DeliveryItem(delivery_id).get_update_kwargs_from_instance(actions=actions, add_version_condition=False)
    retrying(lambda: connection().dispatch("UpdateItem", dict(kwargs)))


def defer(delivery_id: str, *, property_id: str, account_id: str, event_ref: str, kind: str, channel: str,
          recipient: str, now: datetime, until: datetime) -> bool:
    """Log a delivery held back by quiet hours (unless it was sent or is being sent): False if not."""
    t = format_time(now)
    actions = [
        DeliveryItem.property_id.set(property_id), DeliveryItem.event_ref.set(event_ref),
        DeliveryItem.kind.set(kind), DeliveryItem.channel.set(channel), DeliveryItem.recipient.set(recipient),
        DeliveryItem.status.set(n.QUIET_DEFERRED), DeliveryItem.updated_at.set(t),
        DeliveryItem.created_at.set(DeliveryItem.created_at | t), DeliveryItem.next_at.set(format_time(until)),
        DeliveryItem.purge_at.set(now + KEEP),
    ]
    if account_id:
        actions.append(DeliveryItem.account_id.set(account_id))
    condition = DeliveryItem.delivery_id.does_not_exist() | DeliveryItem.status.is_in(n.QUIET_DEFERRED, n.RETRYING)
    kwargs = DeliveryItem(delivery_id).get_update_kwargs_from_instance(actions=actions, condition=condition,
                                                                       add_version_condition=False)
    try:
        retrying(lambda: connection().dispatch("UpdateItem", dict(kwargs)))
        return True
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return False


def get(delivery_id: str) -> n.Delivery | None:
    try:
        return _delivery(DeliveryItem.get(delivery_id, consistent_read=True))
    except DeliveryItem.DoesNotExist:
        return None


def of_account(account_id: str, limit: int = 50) -> list[n.Delivery]:
    """An account's deliveries, newest first (one Query of the sparse by_account index)."""
    return [_delivery(i) for i in DeliveryItem.by_account.query(account_id, scan_index_forward=False, limit=limit,
                                                                 page_size=limit)]


def of_property(property_id: str, limit: int = 100) -> list[n.Delivery]:
    """A property's deliveries (tenants' and admins'), newest first."""
    return [_delivery(i) for i in DeliveryItem.by_property.query(property_id, scan_index_forward=False, limit=limit,
                                                                  page_size=limit)]


# --- reads for the console, the admin API and the tenant API (engineer N3, issue 13) -------------

PAGE_KEYS = ("property_id", "created_at", "delivery_id")


def page_of_property(property_id: str, *, status: str = "", kind: str = "", limit: int = 50,
                     after: dict | None = None) -> tuple[list[n.Delivery], dict | None]:
    """A property's deliveries newest first, filtered by status and / or kind, `limit` after
    the previous page's last (its keys: PAGE_KEYS), and the next page's keys (None: last page).
    One Query of by_property per DynamoDB page (filters apply after the read)."""
    cond = None
    if status:
        cond = DeliveryItem.status == status
    if kind:
        cond = (DeliveryItem.kind == kind) if cond is None else cond & (DeliveryItem.kind == kind)
    start = None
    if after is not None:
        if after.get("property_id") != property_id:
            return [], None  # a cursor of another property reads nothing
        start = {k: {"S": str(after.get(k, ""))} for k in PAGE_KEYS}
    out: list[n.Delivery] = []
    query = DeliveryItem.by_property.query(property_id, scan_index_forward=False, filter_condition=cond,
                                           page_size=max(limit, 50), last_evaluated_key=start)
    last = None
    for i in query:
        out.append(_delivery(i))
        last = i
        if len(out) >= limit:
            break
    more = len(out) >= limit and last is not None
    nxt = {"property_id": property_id, "created_at": last.created_at, "delivery_id": last.delivery_id} \
        if more else None
    return out, nxt
