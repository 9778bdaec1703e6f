"""Tariff plans: import, export, assignment to meters, and the preview (电价试算)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from core.domain import rating as rules
from core.domain.clock import utcnow
from core.domain.errors import NotFound, ValidationError
from core.domain.ledger import format_time, parse_time
from core.domain.money import yuan
from core.domain.rating import Baseline, MeterReading
from core.domain.tariff import Plan, parse_plan
from core.protocol import messages
from core.services.cache import TTLCache
from core.settings import get_settings
from core.store import directory as dstore
from core.store import meters as meters_store
from core.store import tariffs as store

_plans = TTLCache(ttl=60.0)
PREVIEW_RATED_KW = "10"  # the preview's meter: a new meter's default rated power (directory.add_meter)


def rating_limits() -> tuple[timedelta, timedelta]:
    """(max gap between readings, max clock skew of a read time) for judging readings:
    the deployment's FEIKONG_MAX_GAP_HOURS / FEIKONG_MAX_CLOCK_SKEW_MINUTES, else the
    domain defaults. Production ingest and the preview both use these."""
    s = get_settings()
    gap, skew = s.max_gap_hours, s.max_clock_skew_minutes
    return (timedelta(hours=gap) if gap else rules.DEFAULT_MAX_GAP,
            timedelta(minutes=skew) if skew is not None else rules.MAX_CLOCK_SKEW)


def import_plan(property_id: str, document: dict, actor: str) -> Plan:
    """Validate and store a plan (a new version replaces the document; past versions
    must be kept in it, since readings are rated by the version in force at their time)."""
    plan = parse_plan(document)
    existing = store.get_tariff(plan.plan_id)
    if existing and existing[0] != property_id:
        raise NotFound("电价方案不存在", code="plan_not_found")
    if dstore.get_property(property_id) is None:
        raise NotFound("物业不存在", code="property_not_found")
    store.put_tariff(plan.plan_id, property_id, document, format_time(utcnow()), actor)
    _plans.clear()
    return plan


def export_plan(property_id: str, plan_id: str) -> dict:
    found = store.get_tariff(plan_id)
    if found is None or found[0] != property_id:
        raise NotFound("电价方案不存在", code="plan_not_found")
    return found[1]


def plan(plan_id: str) -> Plan:
    def load(pid: str) -> Plan:
        found = store.get_tariff(pid)
        if found is None:
            raise NotFound("电价方案不存在", code="plan_not_found", plan_id=pid)
        return parse_plan(found[1])

    return _plans.get(plan_id, load)


def assign(property_id: str, meter_id: str, plan_id: str) -> None:
    m = dstore.get_meter(meter_id)
    if m is None or m.property_id != property_id:
        raise NotFound("表计不存在", code="meter_not_found")
    export_plan(property_id, plan_id)
    p = plan(plan_id)
    if (p.utility == "water") != (m.kind == "water"):
        raise ValidationError("电价方案与表计类型不符", code="plan_kind_mismatch")
    meters_store.set_meter_plan(meter_id, plan_id)


def preview(document: dict, readings: list[dict], rated_kw: object = PREVIEW_RATED_KW,
            max_gap: timedelta | None = None, max_skew: timedelta | None = None) -> dict:
    """Rate one meter's readings against a plan exactly as production ingest would: the
    same judgement (core.domain.rating.judge: verdicts, anomaly rules, rating, carried
    remainder and tier usage), so a reading production flags is flagged here, never
    billed. Shows every charge with its breakdown and every anomaly.

    readings: [{"read_at": iso, "total": "123.45", "registers": {"peak": "...", ...}?,
    "seq": n?, "received_at": iso?}, ...] in the order the cloud receives them. seq
    defaults to the position (1, 2, ...); received_at, the cloud's clock when it judges
    the reading, defaults to the read time.
    """
    p = parse_plan(document)
    try:
        kw = Decimal(str(rated_kw))
    except InvalidOperation:
        kw = Decimal(0)
    if not kw.is_finite() or kw <= 0:
        raise ValidationError("额定功率必须是正数", code="rated_kw_invalid", field="rated_kw")
    default_gap, default_skew = rating_limits()
    max_gap = max_gap or default_gap
    max_skew = max_skew if max_skew is not None else default_skew
    if not isinstance(readings, list) or len(readings) < 2:
        raise ValidationError("至少需要两条读数", code="readings_too_few")
    parsed: list[tuple[MeterReading, datetime]] = []
    for i, r in enumerate(readings):
        where = f"readings[{i}]"
        if not isinstance(r, dict):
            raise ValidationError(f"第 {i + 1} 条读数无效", code="reading_invalid", field=where)
        try:  # the production parser of the uplink's readings
            reading = messages.parse_reading({**r, "meter_id": "preview", "seq": r.get("seq", i + 1)})
        except messages.BadMessage as e:
            raise ValidationError(f"第 {i + 1} 条读数无效：{e.message}", code="reading_invalid", field=where) from None
        received = parse_time(r["received_at"], f"{where}.received_at") if "received_at" in r else reading.read_at
        parsed.append((reading, received))
    def local(t: datetime) -> str:  # times shown in the plan's business time zone
        return t.astimezone(p.tz).isoformat()

    baseline: Baseline | None = None
    outcomes, steps, charges, anomalies = [], [], [], []
    total_fen = 0
    for r, received in parsed:
        o = rules.judge(p, baseline, r, kw, now=received, max_gap=max_gap, max_skew=max_skew)
        v = o.verdict
        outcomes.append("billed" if v.action == rules.BILL else v.action)
        steps.append({"seq": r.seq, "read_at": local(r.read_at), "outcome": outcomes[-1]})
        if v.action == rules.BILL:
            c = o.charge
            total_fen += c.fen
            charges.append({
                "seq": r.seq, "from": local(baseline.read_at), "to": local(r.read_at),
                "quantity": str(c.quantity), "fen": c.fen, "yuan": yuan(c.fen),
                "exact_yuan": str(c.exact_yuan.normalize()), "lines": [line.to_dict() for line in c.lines],
            })
        elif v.is_anomaly:
            a = {"seq": r.seq, "read_at": local(r.read_at), "kind": v.action, "name": rules.ANOMALY_NAMES[v.action],
                 "detail": v.detail}
            if v.action in rules.PROPOSED and o.charge is not None:  # needs an admin's approval to be billed
                a.update(quantity=str(v.quantity), proposed_fen=o.charge.fen, proposed_yuan=yuan(o.charge.fen),
                         lines=[line.to_dict() for line in o.charge.lines])
            anomalies.append(a)
        if o.baseline is not None:
            baseline = o.baseline
    remainder = baseline.carry.remainder_fen if baseline is not None else Decimal(0)
    return {"plan_id": p.plan_id, "unit": p.unit, "outcomes": outcomes, "readings": steps,
            "charges": charges, "anomalies": anomalies,
            "total_fen": total_fen, "total_yuan": yuan(total_fen), "remainder_fen": str(remainder.normalize())}


def describe(p: Plan, at: datetime | None = None) -> dict:
    v = p.version_at(at or utcnow()) or p.versions[0]
    return {"plan_id": p.plan_id, "name": p.name, "utility": p.utility, "unit": p.unit,
            "prices": {k: str(x) for k, x in v.prices.items()}, "tiered": bool(v.bands),
            "components": [{"code": c.code, "name": c.name, "price": str(c.price)} for c in v.components]}
