"""The anomaly review queue (异常审核, docs/console.md "Anomalies").

Readings that production ingest held for an admin (core.domain.rating: an implausible jump
or a gap; the event carries the proposed charge) wait here with their meter, room, the
reading and the one before it, why they were held and what approving would charge.
Approving bills them through Ingest.approve_anomaly (the one path: rated on the meter's
carry of that moment, entry `use:<meter>:<seq>`, alarms and cut-off decided in the same
transaction; a second approval is refused, never billed twice); rejecting closes them
unbilled with the admin's reason. Both are recorded in the action log.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.domain import rating as rules
from core.domain.admins import AdminPrincipal
from core.domain.errors import ValidationError
from core.domain.events import Event, Subject
from core.domain.money import yuan
from core.services import action_log
from core.services.ingest import Ingest
from core.store import directory as dstore
from core.store import events as events_store

MAX_REASON = 200


def _describe(events: list[Event], property_id: str) -> list[dict]:
    meter_ids = [e.subject.id for e in events]
    meters = {m.meter_id: m for m in dstore.meters(meter_ids)} if meter_ids else {}
    account_ids = [str(e.data.get("account_id") or (meters[e.subject.id].account_id if e.subject.id in meters
                                                     else "")) for e in events]
    accounts = {a.account_id: a for a in dstore.accounts([a for a in account_ids if a])} if any(account_ids) else {}
    buildings = {b.building_id: b.name for b in dstore.buildings(property_id)} if accounts else {}
    rooms: dict[tuple[str, str], str] = {}
    for bid in {a.building_id for a in accounts.values()}:
        rooms.update({(bid, r.room_id): r.name for r in dstore.rooms(property_id, bid)})
    tenants: dict[str, str] = {}
    for tid in {a.tenant_id for a in accounts.values() if a.tenant_id}:
        t = dstore.get_tenant(tid)
        tenants[tid] = t.name if t else ""
    prop = dstore.get_property(property_id)
    tz = ZoneInfo(prop.timezone if prop is not None and prop.timezone else "Asia/Shanghai")

    def local(t: object) -> str:  # read times as the property's admins read clocks
        try:
            return datetime.fromisoformat(str(t).replace("Z", "+00:00")).astimezone(tz).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return ""

    out = []
    for e, account_id in zip(events, account_ids, strict=True):
        d, m, a = e.data, meters.get(e.subject.id), accounts.get(account_id)
        proposed = d.get("proposed_fen")
        out.append({
            "event_id": e.event_id, "meter_id": e.subject.id, "at": e.at, "status": e.status,
            "kind": d.get("kind", ""), "reason": e.message or rules.ANOMALY_NAMES.get(d.get("kind", ""), ""),
            "detail": d.get("detail", ""),
            "reading": {"seq": d.get("seq"), "read_at": d.get("read_at"), "total": d.get("total"),
                        "read_local": local(d.get("read_at"))},
            "previous": {**(d.get("previous") or {}), "read_local": local((d.get("previous") or {}).get("read_at"))},
            "detected_local": local(e.at),
            "quantity": d.get("quantity"), "unit": "m³" if m is not None and m.kind == "water" else "kWh",
            "proposed_fen": int(proposed) if proposed is not None else None,
            "proposed_yuan": yuan(int(proposed)) if proposed is not None else None,
            "lines": d.get("lines") or [],
            "account_id": account_id,
            "building": buildings.get(a.building_id, a.building_id) if a else "",
            "room": rooms.get((a.building_id, a.room_id), a.room_id) if a else "",
            "building_id": a.building_id if a else "", "room_id": a.room_id if a else "",
            "tenant": tenants.get(a.tenant_id, "") if a else "",
            "decided_by": d.get("decided_by", ""), "rejected_reason": d.get("reason", ""),
            "approved_fen": int(d["approved_fen"]) if d.get("approved_fen") is not None else None,
            "approved_yuan": yuan(int(d["approved_fen"])) if d.get("approved_fen") is not None else None,
        })
    return out


def review_queue(property_id: str) -> list[dict]:
    """The property's anomalies awaiting a decision, oldest first, described for the console."""
    return _describe(events_store.open_anomalies(property_id), property_id)


def recently_decided(property_id: str, limit: int = 20) -> list[dict]:
    """The property's latest approved or rejected anomalies (newest first)."""
    return _describe(events_store.decided_anomalies(property_id, limit), property_id)


def _open(property_id: str, meter_id: str, event_id: str) -> Event | None:
    e = events_store.get_event(Subject.meter(meter_id), event_id)
    return e if e is not None and e.property_id == property_id and e.type == "anomaly" else None


def approve(who: AdminPrincipal, property_id: str, meter_id: str, event_id: str, *, ip: str = "",
            ingest: Ingest | None = None) -> dict:
    """Bill a held reading (Ingest.approve_anomaly) and record it. Returns
    {"event_id", "status": "approved", "fen", "entry_id"} (fen 0 and no entry when less than
    a fen is due). A decided or unknown anomaly raises (409 / 404), nothing is billed."""
    ingest = ingest or Ingest()
    before = _open(property_id, meter_id, event_id)
    entry = ingest.approve_anomaly(property_id, meter_id, event_id, f"admin:{who.admin_id}")
    fen = -entry.amount if entry is not None else 0
    result = {"event_id": event_id, "meter_id": meter_id, "status": "approved", "fen": fen, "yuan": yuan(fen),
              "entry_id": entry.entry_id if entry is not None else None}
    action_log.record(who, "anomaly_approve", property_id=property_id, target=f"meter:{meter_id}:{event_id}",
                      before={"status": "open", "proposed_fen": before.data.get("proposed_fen") if before else None},
                      after={"status": "approved", "approved_fen": fen, "entry_id": result["entry_id"]}, ip=ip)
    return result


def reject(who: AdminPrincipal, property_id: str, meter_id: str, event_id: str, reason: object, *, ip: str = "",
           ingest: Ingest | None = None) -> dict:
    """Close a held reading unbilled, with the admin's reason (required), and record it."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise ValidationError("请填写驳回原因", code="reason_required", field="reason")
    if len(text) > MAX_REASON:
        raise ValidationError(f"驳回原因不能超过 {MAX_REASON} 字", code="reason_too_long", field="reason")
    ingest = ingest or Ingest()
    before = _open(property_id, meter_id, event_id)
    ingest.reject_anomaly(property_id, meter_id, event_id, f"admin:{who.admin_id}", reason=text)
    action_log.record(who, "anomaly_reject", property_id=property_id, target=f"meter:{meter_id}:{event_id}",
                      before={"status": "open", "proposed_fen": before.data.get("proposed_fen") if before else None},
                      after={"status": "rejected", "reason": text}, ip=ip)
    return {"event_id": event_id, "meter_id": meter_id, "status": "rejected", "reason": text}
