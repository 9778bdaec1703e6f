"""Tariff plans: import, export, assignment to meters, and the preview (电价试算)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from core.domain.errors import NotFound, ValidationError
from core.domain.ledger import format_time, parse_time
from core.domain.money import yuan
from core.domain.tariff import Plan, RatingCarry, parse_plan, parse_quantity, rate
from core.services.cache import TTLCache
from core.services.ledger import utcnow
from core.store import directory as dstore
from core.store import metering as store

_plans = TTLCache(ttl=60.0)


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
    store.set_meter_plan(meter_id, plan_id)


def preview(document: dict, readings: list[dict]) -> dict:
    """Rate a list of readings against a plan and show every charge with its breakdown.

    readings: [{"read_at": iso, "total": "123.45", "registers": {"peak": "...", ...}?}, ...]
    in time order; the first is the starting point.
    """
    p = parse_plan(document)
    if not isinstance(readings, list) or len(readings) < 2:
        raise ValidationError("至少需要两条读数", code="readings_too_few")
    parsed = []
    for i, r in enumerate(readings):
        if not isinstance(r, dict):
            raise ValidationError(f"第 {i + 1} 条读数无效", code="reading_invalid")
        t = parse_time(r.get("read_at"), f"readings[{i}].read_at")
        total = Decimal(0) if str(r.get("total")) == "0" else parse_quantity(r.get("total"), f"readings[{i}].total")
        regs = {k: Decimal(str(v)) for k, v in (r.get("registers") or {}).items()}
        parsed.append((t, total, regs))
    carry = RatingCarry()
    charges = []
    total_fen = 0
    for (t0, q0, r0), (t1, q1, r1) in zip(parsed, parsed[1:], strict=False):
        if t1 <= t0 or q1 < q0:
            raise ValidationError("读数必须按时间递增且不倒走", code="readings_not_increasing")
        by_period = {k: r1[k] - r0[k] for k in r1 if k in r0} or None
        c = rate(p, t0, t1, q1 - q0, carry, by_period)
        carry = c.carry
        total_fen += c.fen
        charges.append({
            "from": t0.isoformat(), "to": t1.isoformat(), "quantity": str(c.quantity), "fen": c.fen,
            "yuan": yuan(c.fen), "exact_yuan": str(c.exact_yuan.normalize()),
            "lines": [line.to_dict() for line in c.lines],
        })
    return {"plan_id": p.plan_id, "unit": p.unit, "charges": charges, "total_fen": total_fen,
            "total_yuan": yuan(total_fen), "remainder_fen": str(carry.remainder_fen.normalize())}


def describe(p: Plan, at: datetime | None = None) -> dict:
    v = p.version_at(at or utcnow()) or p.versions[0]
    return {"plan_id": p.plan_id, "name": p.name, "utility": p.utility, "unit": p.unit,
            "prices": {k: str(x) for k, x in v.prices.items()}, "tiered": bool(v.bands),
            "components": [{"code": c.code, "name": c.name, "price": str(c.price)} for c in v.components]}
