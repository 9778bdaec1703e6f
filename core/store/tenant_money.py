"""Tenant self-service records (docs/tenant-api.md, "Money chain, refunds, preferences,
notifications"): the reads behind a recharge's progress, refund requests, alarm
preferences, and the meter setting `close_needs_local_confirm`."""

from __future__ import annotations

import json
from datetime import datetime

from core.domain import refund_requests as rr
from core.domain.alarm_prefs import AlarmPrefs
from core.domain.control import CLOSE, TRIP, relay_command_id
from core.domain.progress import CommandFacts, MeterFacts
from core.domain.refund_requests import RefundRequest
from core.store.models import AlarmPreferenceItem, CommandItem, MeterItem, RefundRequestItem, SiteItem
from core.store.tx import Tx, save, update_if, update_item

OPEN_MARKER = "~open"  # sorts after every request id ("rr-...")


# --- a recharge's progress ----------------------------------------------------------------


def restore_view(account_id: str, now: datetime) -> list[MeterFacts]:
    """The account's meters as the progress rule sees them: relay as read back, settings,
    the newest relay command and whether the meter's site is online. Three reads plus one:
    the by_account query, one consistent BatchGet of the meters, one of their newest relay
    commands (TRIP and CLOSE of the meter's last relay_seq: one of them exists) and one of
    their sites."""
    from core.domain.sites import online
    from core.store.sites import _heartbeat

    ids = [i.meter_id for i in MeterItem.by_account.query(account_id)]
    meters = list(MeterItem.batch_get(ids, consistent_read=True)) if ids else []
    keys = []
    for m in meters:
        if m.relay_seq:
            keys += [relay_command_id(m.meter_id, TRIP, int(m.relay_seq)), relay_command_id(m.meter_id, CLOSE,
                                                                                          int(m.relay_seq))]
    commands = {c.meter_id: c for c in CommandItem.batch_get(keys, consistent_read=True)} if keys else {}
    site_ids = sorted({m.site_id for m in meters})
    sites = {s.site_id: s for s in SiteItem.batch_get(site_ids, consistent_read=True)} if site_ids else {}
    out = []
    for m in sorted(meters, key=lambda m: m.meter_id):
        if m.account_id != account_id:
            continue
        c = commands.get(m.meter_id)
        site = sites.get(m.site_id)
        hb = _heartbeat(site) if site is not None else None
        result = c.result.as_dict() if c is not None and c.result else {}
        out.append(MeterFacts(
            meter_id=m.meter_id, relay_state=m.relay_state or "unknown", relay_seen_at=m.relay_seen_at or "",
            steered=m.billing_mode == "cloud" and not m.retired, keep_supply=bool(m.keep_supply),
            manual_open=bool(m.manual_open), needs_local_confirm=bool(m.close_needs_local_confirm),
            # no heartbeat stored yet (an older bridge): the meter's own online state speaks for its site
            site_online=online(hb, now) if hb is not None else bool(m.online),
            command=CommandFacts(op=c.op, state=c.state, issued_at=c.issued_at, updated_at=c.updated_at or "",
                                 cause=c.cause or "", result_relay=str(result.get("relay_state") or ""))
            if c is not None else None,
        ))
    return out


def set_close_needs_local_confirm(meter_id: str, needed: bool) -> bool:
    """Mark a meter as one that closes only after a press of its button (按键合闸)."""
    return update_if(MeterItem(meter_id), [MeterItem.close_needs_local_confirm.set(needed)],
                     MeterItem.meter_id.exists())


# --- refund requests -------------------------------------------------------------------------


def _request(i: RefundRequestItem) -> RefundRequest:
    try:
        refunds = tuple(json.loads(i.refunds)) if i.refunds else ()
    except ValueError:
        refunds = ()
    return RefundRequest(
        account_id=i.account_id, request_id=i.request_id, property_id=i.property_id or "", openid=i.openid or "",
        amount=int(i.amount or 0), reason=i.reason or "", status=i.status or "", created_at=i.created_at or "",
        decided_at=i.decided_at or "", decided_by=i.decided_by or "", reject_reason=i.reject_reason or "",
        refunded=int(i.refunded or 0), refunds=refunds,
    )


def create_request(r: RefundRequest) -> bool:
    """Record a pending request, claiming the account's one open slot in the same
    transaction. False if the account has an open request already."""
    tx = Tx()
    tx.update(RefundRequestItem(r.account_id, OPEN_MARKER), [RefundRequestItem.open_request.set(r.request_id)],
              RefundRequestItem.open_request.does_not_exist(), tag="marker")
    tx.put(RefundRequestItem(r.account_id, r.request_id, property_id=r.property_id, openid=r.openid, amount=r.amount,
                             reason=r.reason, status=rr.PENDING, created_at=r.created_at, refunded=0,
                             pending_property=r.property_id),
           RefundRequestItem.request_id.does_not_exist(), tag="request")
    return tx.commit() is None


def requests_of_account(account_id: str, limit: int = 50) -> list[RefundRequest]:
    """The account's requests, newest first (one Query; the marker is left out)."""
    items = RefundRequestItem.query(account_id, RefundRequestItem.request_id.startswith("rr-"),
                                    scan_index_forward=False, limit=limit, page_size=limit, consistent_read=True)
    return [_request(i) for i in items]


def get_request(account_id: str, request_id: str) -> RefundRequest | None:
    if request_id == OPEN_MARKER:
        return None
    try:
        return _request(RefundRequestItem.get(account_id, request_id, consistent_read=True))
    except RefundRequestItem.DoesNotExist:
        return None


def open_requests(property_id: str, limit: int = 200) -> list[RefundRequest]:
    """The property's open requests, oldest first (the sparse by_pending index)."""
    return [_request(i) for i in RefundRequestItem.by_pending.query(property_id, limit=limit)]


def recent_requests(property_id: str, limit: int = 30) -> list[RefundRequest]:
    """The property's latest requests of any status, newest first (one index Query)."""
    return [_request(i) for i in RefundRequestItem.by_property.query(property_id, scan_index_forward=False,
                                                                     limit=limit, page_size=limit)]


def start_approval(account_id: str, request_id: str, by: str, at: str) -> bool:
    """pending -> approving (an admin took it); False if it was not pending (decided, or
    another admin is approving it)."""
    return update_if(RefundRequestItem(account_id, request_id),
                     [RefundRequestItem.status.set(rr.APPROVING), RefundRequestItem.decided_by.set(by),
                      RefundRequestItem.decided_at.set(at)],
                     RefundRequestItem.status == rr.PENDING)


def reopen(account_id: str, request_id: str) -> bool:
    """approving -> pending (an approval that refunded nothing); it kept its slot and queue entry."""
    return update_if(RefundRequestItem(account_id, request_id),
                     [RefundRequestItem.status.set(rr.PENDING), RefundRequestItem.decided_by.remove(),
                      RefundRequestItem.decided_at.remove()],
                     RefundRequestItem.status == rr.APPROVING)


def record_refunds(account_id: str, request_id: str, refunds: list[dict], refunded: int) -> None:
    """While approving: the refunds made so far (so a crash midway leaves the trace)."""
    update_item(RefundRequestItem(account_id, request_id),
                [RefundRequestItem.refunds.set(json.dumps(refunds, ensure_ascii=False)),
                 RefundRequestItem.refunded.set(refunded)])


def finish_request(account_id: str, request_id: str, status: str, expected: str, by: str, at: str,
                   reject_reason: str = "") -> bool:
    """expected -> status (approved, rejected, failed), and the account's open slot freed:
    one transaction. False if the request was not in `expected`."""
    actions = [RefundRequestItem.status.set(status), RefundRequestItem.decided_by.set(by),
               RefundRequestItem.decided_at.set(at), RefundRequestItem.pending_property.remove()]
    if reject_reason:
        actions.append(RefundRequestItem.reject_reason.set(reject_reason))
    tx = Tx()
    tx.update(RefundRequestItem(account_id, request_id), actions, RefundRequestItem.status == expected, tag="request")
    tx.update(RefundRequestItem(account_id, OPEN_MARKER), [RefundRequestItem.open_request.remove()],
              RefundRequestItem.open_request == request_id, tag="marker")
    return tx.commit() is None


# --- alarm preferences ------------------------------------------------------------------------


def get_prefs(openid: str, account_id: str) -> AlarmPrefs | None:
    try:
        i = AlarmPreferenceItem.get(openid, account_id, consistent_read=True)
    except AlarmPreferenceItem.DoesNotExist:
        return None
    return AlarmPrefs(int(i.low_balance_fen) if i.low_balance_fen is not None else None, tuple(i.channels or ()),
                      i.quiet_start, i.quiet_end)


def put_prefs(openid: str, account_id: str, p: AlarmPrefs, at: str) -> None:
    save(AlarmPreferenceItem(openid, account_id, low_balance_fen=p.low_balance_fen, channels=list(p.channels),
                             quiet_start=p.quiet_start, quiet_end=p.quiet_end, updated_at=at))
