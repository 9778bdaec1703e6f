"""Meter life cycle: plan assignment lives in tariffs; replacement lives here."""

from __future__ import annotations

from decimal import Decimal

from core.domain import control as policy
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.events import Event, Subject
from core.domain.ledger import format_time, parse_time
from core.domain.rating import Baseline, MeterReading
from core.domain.tariff import RatingCarry
from core.services import directory
from core.services.ingest import Ingest
from core.store import directory as dstore
from core.store import events as events_store
from core.store import meters as store


def _reading(raw: dict, where: str) -> tuple:
    if not isinstance(raw, dict):
        raise ValidationError(f"{where} 无效", code="reading_invalid")
    t = parse_time(raw.get("read_at"), f"{where}.read_at")
    try:
        total = Decimal(str(raw.get("total")))
        regs = {k: Decimal(str(v)) for k, v in (raw.get("registers") or {}).items()}
    except ArithmeticError:
        raise ValidationError(f"{where} 读数无效", code="reading_invalid") from None
    if not total.is_finite() or total < 0:
        raise ValidationError(f"{where} 读数无效", code="reading_invalid")
    return t, total, regs


def replace_meter(property_id: str, old_meter_id: str, new_meter_id: str, final: dict, initial: dict,
                  actor: str, ingest: Ingest | None = None) -> dict:
    """Swap a meter: bill the old one up to its final reading, retire it, and put a new
    one on the same account and bus address, starting from its own first reading with
    the old meter's rating state (sub-fen remainder, tier usage this cycle) and, for
    meters that keep the money, the old meter's remaining balance."""
    ingest = ingest or Ingest()
    old = dstore.get_meter(old_meter_id)
    if old is None or old.property_id != property_id:
        raise NotFound("表计不存在", code="meter_not_found")
    if old.retired:
        raise Conflict("该表已被更换", code="meter_retired")
    if dstore.get_meter(new_meter_id) is not None:
        raise Conflict("新表编号已存在", code="already_exists")
    t_final, total_final, regs_final = _reading(final, "final")
    t_new, total_new, regs_new = _reading(initial, "initial")
    ctx = store.load_meter(old_meter_id)
    if ctx.baseline is not None:
        result = ingest.reading(old.site_id, MeterReading(old_meter_id, ctx.baseline.seq + 1, t_final, total_final,
                                                          regs_final))
    else:
        result = "no_baseline"
    ctx = store.load_meter(old_meter_id)
    store.retire_meter(old_meter_id, new_meter_id)
    directory.add_meter(property_id, new_meter_id, old.account_id, old.site_id, old.kind, old.model, old.bus,
                        old.address, billing_mode=old.billing_mode, rated_kw=old.rated_kw)
    if old.plan_id:
        store.set_meter_plan(new_meter_id, old.plan_id)
    carry = ctx.baseline.carry if ctx.baseline else None
    store.seed_baseline(new_meter_id, Baseline(0, t_new, total_new, regs_new, carry or RatingCarry()))
    now = format_time(ingest.clock())
    for mid, other in ((old_meter_id, new_meter_id), (new_meter_id, old_meter_id)):
        events_store.put_event(Event(Subject.meter(mid), f"replaced:{old_meter_id}:{new_meter_id}", "meter_replaced",
                                     property_id, now, message="换表",
                                     data={"old": old_meter_id, "new": new_meter_id, "other": other, "actor": actor,
                                           "final_total": str(total_final), "initial_total": str(total_new)}))
    moved = 0
    if old.billing_mode == "meter" and ctx.meter_balance:
        moved = ctx.meter_balance
        ingest.control.issue(new_meter_id, policy.RECHARGE, f"replace:{old_meter_id}", actor,
                             {"amount": moved, "purchase_count": 1, "carry_over": True})
    return {"final_reading": result, "new_meter_id": new_meter_id, "meter_balance_moved": moved}
