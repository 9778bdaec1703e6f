"""Tariff plans: import, export, assignment to meters, and the preview (电价试算)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from core.domain import rating as rules
from core.domain.admins import AdminPrincipal
from core.domain.clock import utcnow
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import format_time, parse_time
from core.domain.money import yuan
from core.domain.rating import Baseline, MeterReading
from core.domain.tariff import PERIODS, Plan, parse_plan
from core.domain.tariff_edit import check_revision, version_state
from core.protocol import messages
from core.services import action_log
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


def edit_lead() -> timedelta:
    """How far ahead of now a new or changed plan version must start: the allowed clock
    skew of a read time (a reading up to that far ahead may be billed already), and at
    least the plan cache's minute (every process sees the change before it applies)."""
    return max(rating_limits()[1], timedelta(minutes=1))


def import_plan(property_id: str, document: dict, actor: str, *, create: bool = False,
                expected_at: str | None = None, now: datetime | None = None) -> Plan:
    """Validate and store a plan. A stored plan keeps every version already in force
    unchanged (readings were rated by them) and gains versions only from now + edit_lead()
    on (core.domain.tariff_edit.check_revision); re-importing the same document changes
    nothing. create: the plan id must be new. expected_at: the plan's updated_at as the
    caller read it (a change made meanwhile by someone else is refused, never overwritten)."""
    plan = parse_plan(document)
    now = now or utcnow()
    found = store.tariff_record(plan.plan_id)
    if found is not None and found["property_id"] != property_id:
        if create:
            raise Conflict("方案编号已被使用，请换一个", code="plan_exists", field="plan_id")
        raise NotFound("电价方案不存在", code="plan_not_found")
    if found is not None and create:
        raise Conflict("方案编号已存在，请换一个或编辑该方案", code="plan_exists", field="plan_id")
    if dstore.get_property(property_id) is None:
        raise NotFound("物业不存在", code="property_not_found")
    old = parse_plan(found["document"]) if found is not None else None
    check_revision(old, plan, now, edit_lead())
    if expected_at is not None and found is not None and found["updated_at"] != expected_at:
        raise Conflict(STALE, code="plan_changed")
    if not store.put_tariff_if(plan.plan_id, property_id, document, format_time(now), actor,
                               found["updated_at"] if found is not None else None):
        raise Conflict(STALE, code="plan_changed")
    _plans.clear()
    return plan


STALE = "方案已被他人修改，请刷新页面后重试"


def property_of(property_id: str):
    """The property record (name, time zone) a console page shows."""
    p = dstore.get_property(property_id)
    if p is None:
        raise NotFound("物业不存在", code="property_not_found")
    return p


def list_plans(property_id: str, now: datetime | None = None) -> list[dict]:
    """A property's plans for the console: each with its versions (local effective time,
    prices, schedules, tiers, components, state past / current / future)."""
    now = now or utcnow()
    return [_summary(r, now) for r in store.tariffs_of_property(property_id)]


def plan_record(property_id: str, plan_id: str, now: datetime | None = None) -> dict:
    """One plan of the property (404 for another property's), summarised as in list_plans,
    with its document."""
    found = store.tariff_record(plan_id)
    if found is None or found["property_id"] != property_id:
        raise NotFound("电价方案不存在", code="plan_not_found")
    return _summary(found, now or utcnow())


def _summary(record: dict, now: datetime) -> dict:
    doc = record["document"]
    p = parse_plan(doc)
    lead = edit_lead()
    raw = sorted(doc["versions"], key=lambda v: parse_plan_time(v["effective_from"]))
    versions = []
    for i, (v, rv) in enumerate(zip(p.versions, raw, strict=True)):
        following = p.versions[i + 1].effective_from if i + 1 < len(p.versions) else None
        state = version_state(v.effective_from, following, now)
        versions.append({
            "index": i, "effective_from": v.effective_from.astimezone(p.tz).isoformat(),
            "effective_local": v.effective_from.astimezone(p.tz).strftime("%Y-%m-%d %H:%M"),
            "state": state, "editable": v.effective_from > now + lead,
            "prices": {k: str(v.prices[k]) for k in PERIODS if k in v.prices},
            "schedules": [{"months": s.get("months", list(range(1, 13))), "day_types": s.get("day_types"),
                           "intervals": s.get("intervals") or []} for s in rv.get("schedules") or []],
            "tiers": rv.get("tiers"), "components": rv.get("components") or [], "document": rv,
        })
    return {"plan_id": p.plan_id, "name": p.name, "utility": p.utility, "unit": p.unit, "timezone": p.timezone,
            "versions": versions, "updated_at": record["updated_at"], "updated_by": record["updated_by"],
            "updated_local": parse_plan_time(record["updated_at"]).astimezone(p.tz).strftime("%Y-%m-%d %H:%M"),
            "document": doc}


def parse_plan_time(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _log_view(doc: dict) -> dict:
    """A plan document as the action log keeps it (bounded): name and versions' prices."""
    versions = [{"effective_from": v.get("effective_from"), "prices": v.get("prices"),
                 "tiers": bool(v.get("tiers")), "components": [c.get("code") for c in v.get("components") or []]}
                for v in doc.get("versions") or []]
    return {"name": doc.get("name"), "utility": doc.get("utility"), "versions": versions[-12:]}


def save_plan(who: AdminPrincipal, property_id: str, document: object, *, action: str, ip: str = "",
              create: bool = False, expected_at: str | None = None, now: datetime | None = None) -> Plan:
    """A console change of a plan (form, JSON or file import), recorded in the action log
    with the plan before and after."""
    if not isinstance(document, dict):
        raise ValidationError("电价方案必须是 JSON 对象", code="tariff_invalid")
    plan_id = document.get("plan_id")
    found = store.tariff_record(plan_id) if isinstance(plan_id, str) and plan_id else None
    before = _log_view(found["document"]) if found is not None and found["property_id"] == property_id else None
    plan = import_plan(property_id, document, f"admin:{who.admin_id}", create=create, expected_at=expected_at,
                       now=now)
    action_log.record(who, action, property_id=property_id, target=f"tariff:{plan.plan_id}", before=before,
                      after=_log_view(document), ip=ip)
    return plan


def with_version(document: dict, version: dict, index: int | None = None, name: str | None = None) -> dict:
    """The document with `version` added (index None) or in place of version `index` (in
    effective order), and the plan renamed if `name` is given."""
    doc = json.loads(json.dumps(document))
    versions = sorted(doc["versions"], key=lambda v: parse_plan_time(v["effective_from"]))
    if index is None:
        versions.append(version)
    elif 0 <= index < len(versions):
        versions[index] = version
    else:
        raise NotFound("版本不存在", code="version_not_found")
    doc["versions"] = versions
    if name is not None:
        doc["name"] = name
    return doc


def preview_usage(document: dict, start: datetime, end: datetime, *, start_total: str | None = None,
                  end_total: str | None = None, by_period: dict[str, str] | None = None,
                  rated_kw: object = PREVIEW_RATED_KW) -> dict:
    """电价试算 of one interval: the meter read `start_total` at start and `end_total` at
    end, or (by_period) it used those quantities per TOU register. Two readings judged and
    rated by preview (production's rating.judge) with the offline-gap limit raised to the
    interval (one long interval is what is asked about, not a meter gone silent); the
    result adds `by_period`: the charge per period, tier and component."""
    if end <= start:
        raise ValidationError("结束时间必须晚于开始时间", code="interval_invalid", field="end_at")
    if by_period:
        zero = {p: "0" for p in by_period}
        total = sum((Decimal(q) for q in by_period.values()), Decimal(0))
        readings = [{"read_at": start.isoformat(), "total": "0", "registers": zero},
                    {"read_at": end.isoformat(), "total": str(total), "registers": dict(by_period)}]
    else:
        readings = [{"read_at": start.isoformat(), "total": start_total},
                    {"read_at": end.isoformat(), "total": end_total}]
    gap = max(rating_limits()[0], end - start + timedelta(seconds=1))
    result = preview(document, readings, rated_kw, gap)
    lines = []
    for c in result["charges"]:
        lines += c["lines"]
    for a in result["anomalies"]:
        lines += a.get("lines") or []
    result["lines"] = lines
    result["exact_yuan"] = format(sum((Decimal(x["amount"]) for x in lines), Decimal(0)).normalize(), "f")
    return result


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
                "exact_yuan": format(c.exact_yuan.normalize(), "f"), "lines": [line.to_dict() for line in c.lines],
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
            "total_fen": total_fen, "total_yuan": yuan(total_fen), "remainder_fen": format(remainder.normalize(), "f")}


def describe(p: Plan, at: datetime | None = None) -> dict:
    v = p.version_at(at or utcnow()) or p.versions[0]
    return {"plan_id": p.plan_id, "name": p.name, "utility": p.utility, "unit": p.unit,
            "prices": {k: str(x) for k, x in v.prices.items()}, "tiered": bool(v.bands),
            "components": [{"code": c.code, "name": c.name, "price": str(c.price)} for c in v.components]}
