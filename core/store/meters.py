"""Meters as rating and control keep them: baselines, the rating carry, relay state and
the outstanding relay command, meter-side purchases, online/offline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from core.domain.events import Event
from core.domain.meters import MeterState, MeterUpdate
from core.domain.monitor import MeterSnapshot as MonitorMeter
from core.domain.rating import Baseline
from core.domain.tariff import RatingCarry
from core.domain.writes import MoveCarry
from core.store.directory import raw_query
from core.store.events import add_event
from core.store.models import MeterItem
from core.store.tx import Tx, update_if, update_item

METER_TAG = "meter"


def state_from_item(i: MeterItem) -> MeterState:
    baseline = None
    if i.rated_seq is not None:
        regs = i.rated_registers.as_dict() if i.rated_registers else {}
        baseline = Baseline(
            seq=int(i.rated_seq),
            read_at=datetime.fromisoformat(i.rated_at),
            total=Decimal(i.rated_total),
            registers={k: Decimal(str(v)) for k, v in regs.items()},
            carry=RatingCarry(Decimal(i.carry_fen or "0"), i.cycle or "", Decimal(i.cycle_usage or "0")),
        )
    return MeterState(
        meter_id=i.meter_id,
        property_id=i.property_id,
        account_id=i.account_id,
        site_id=i.site_id,
        kind=i.kind,
        billing_mode=i.billing_mode,
        rated_kw=Decimal(i.rated_kw),
        plan_id=i.plan_id,
        baseline=baseline,
        online=bool(i.online),
        keep_supply=bool(i.keep_supply),
        relay_state=i.relay_state,
        relay_command_id=i.relay_command_id,
        desired_relay=i.desired_relay,
        meter_balance=int(i.meter_balance) if i.meter_balance is not None else None,
        purchase_count=int(i.purchase_count) if i.purchase_count is not None else None,
        purchase_expected=int(i.purchase_expected or 0),
        retired=bool(i.retired),
        relay_seen_at=i.relay_seen_at or "",
        relay_seq=int(i.relay_seq or 0),
        relay_attempts=int(i.relay_attempts or 0),
        relay_last_try=i.relay_last_try or "",
        purchase_pending=int(i.purchase_pending) if i.purchase_pending is not None else None,
        purchase_pending_amount=int(i.purchase_pending_amount) if i.purchase_pending_amount is not None else None,
        purchase_attempt=int(i.purchase_attempt or 0),
        manual_open=bool(i.manual_open),
    )


def state_from_raw(raw: dict) -> MeterState:
    """A meter as DynamoDB handed it back (a cancellation's ALL_OLD item)."""
    return state_from_item(MeterItem.from_raw_data(raw))


def load_meter(meter_id: str) -> MeterState | None:
    try:
        return state_from_item(MeterItem.get(meter_id, consistent_read=True))
    except MeterItem.DoesNotExist:
        return None


def meters_of_account(account_id: str) -> list[MeterState]:
    """Every meter of an account as control sees it (one query, one consistent batch read)."""
    return load_meters(meter_ids_of_account(account_id))


def meter_ids_of_account(account_id: str) -> tuple[str, ...]:
    return tuple(i.meter_id for i in MeterItem.by_account.query(account_id))


def load_meters(meter_ids: tuple[str, ...]) -> list[MeterState]:
    """Meters as control sees them, read consistently in one batch."""
    return [state_from_item(i) for i in MeterItem.batch_get(list(meter_ids), consistent_read=True)] if meter_ids else []


# --- a reading's meter write and the rating carry --------------------------------------


def baseline_actions(b: Baseline) -> list:
    """SET actions that make b the meter's rating baseline."""
    return [
        MeterItem.rated_seq.set(b.seq),
        MeterItem.rated_at.set(b.read_at.isoformat()),
        MeterItem.rated_total.set(str(b.total)),
        MeterItem.rated_registers.set({k: str(v) for k, v in b.registers.items()}),
        MeterItem.carry_fen.set(str(b.carry.remainder_fen)),
        MeterItem.cycle.set(b.carry.cycle),
        MeterItem.cycle_usage.set(str(b.carry.cycle_usage)),
    ]


def _carry_is(c: RatingCarry):
    """The meter's stored rating carry is c (an absent attribute reads as its default)."""

    def same(attr, value: str, default: str):
        cond = attr == value
        return cond | attr.does_not_exist() if value == default else cond

    return (same(MeterItem.carry_fen, str(c.remainder_fen), "0") & same(MeterItem.cycle, c.cycle, "")
            & same(MeterItem.cycle_usage, str(c.cycle_usage), "0"))


def add_update(tx: Tx, u: MeterUpdate, tag: str = METER_TAG) -> None:
    """Transaction item: a processed reading's change to its meter."""
    actions = [MeterItem.last_seen.set(u.seen_at), MeterItem.online.set(True), MeterItem.online_key.set("ON")]
    if u.reading is not None:
        actions.append(MeterItem.last_reading.set(u.reading))
    if u.baseline is not None:
        actions += baseline_actions(u.baseline)
    if u.meter_balance is not None:
        actions.append(MeterItem.meter_balance.set(u.meter_balance))
    if u.purchase_count is not None:
        actions.append(MeterItem.purchase_count.set(u.purchase_count))
    if u.relay_state is not None and u.reading is not None:
        actions += [MeterItem.relay_state.set(u.relay_state), MeterItem.relay_seen_at.set(u.reading["read_at"])]
    cond = MeterItem.rated_seq.does_not_exist() if u.expected_seq is None else MeterItem.rated_seq == u.expected_seq
    # a retired (replaced) meter takes no more readings, whatever a warm process remembers
    cond &= MeterItem.retired != True  # noqa: E712  (a DynamoDB condition, not a Python test)
    cond = MeterItem.meter_id.exists() & cond
    if u.expected_carry is not None:
        cond &= _carry_is(u.expected_carry)
    tx.update(MeterItem(u.meter_id), actions, cond, tag=tag)


def add_carry(tx: Tx, w: MoveCarry, tag: str = METER_TAG) -> None:
    """Transaction item: move a meter's rating carry from w.expected to w.carry (not for a retired meter)."""
    carry = w.carry
    tx.update(
        MeterItem(w.meter_id),
        [MeterItem.carry_fen.set(str(carry.remainder_fen)), MeterItem.cycle.set(carry.cycle),
         MeterItem.cycle_usage.set(str(carry.cycle_usage))],
        MeterItem.meter_id.exists() & (MeterItem.retired != True) & _carry_is(w.expected),  # noqa: E712
        tag=tag,
    )


# --- life cycle ---------------------------------------------------------------------------


def set_meter_offline(meter_id: str, last_seen: str, event: Event) -> bool:
    """Mark offline (with its event) if it has not been seen since last_seen. False if it has."""
    tx = Tx()
    tx.update(
        MeterItem(meter_id),
        # online_key "OFF": the same sparse index then holds it for the long-offline watch
        # (offline_long_meters below) until it reads again or the watch has noted it
        [MeterItem.online.set(False), MeterItem.online_key.set(OFFLINE_KEY)],
        MeterItem.last_seen == last_seen,
        tag=METER_TAG,
    )
    add_event(tx, event)
    return tx.commit() is None


OFFLINE_KEY = "OFF"


def stale_meters(cutoff: str, limit: int = 500) -> list[tuple[str, str]]:
    """(meter_id, last_seen) of online meters not seen since cutoff."""
    return [
        (i.meter_id, i.last_seen)
        for i in MeterItem.by_last_seen.query("ON", MeterItem.last_seen < cutoff, limit=limit)
    ]


def set_meter_plan(meter_id: str, plan_id: str) -> None:
    update_item(MeterItem(meter_id), [MeterItem.plan_id.set(plan_id)], MeterItem.meter_id.exists())


def retire_meter(meter_id: str, replaced_by: str) -> None:
    update_item(
        MeterItem(meter_id),
        [MeterItem.retired.set(True), MeterItem.replaced_by.set(replaced_by), MeterItem.online_key.remove()],
        MeterItem.meter_id.exists(),
    )


def seed_baseline(meter_id: str, baseline: Baseline) -> None:
    update_item(MeterItem(meter_id), baseline_actions(baseline), MeterItem.meter_id.exists())


# --- relay ----------------------------------------------------------------------------------


def set_relay_state(meter_id: str, state: str) -> None:
    update_item(MeterItem(meter_id), [MeterItem.relay_state.set(state)])


def clear_relay_command(meter_id: str, command_id: str, relay_state: str | None, seen_at: str = "") -> None:
    """The meter's outstanding relay command finished: forget it and record the state the
    meter's read-back reported (never one it did not report)."""
    outstanding = MeterItem.relay_command_id == command_id
    if relay_state:  # the common case in one write: forget the command, record what it read back
        actions = [MeterItem.relay_command_id.remove(), MeterItem.relay_attempts.set(0),
                   MeterItem.relay_state.set(relay_state), MeterItem.relay_seen_at.set(seen_at)]
        if update_if(MeterItem(meter_id), actions, outstanding & _not_older(seen_at)):
            return
    update_if(MeterItem(meter_id), [MeterItem.relay_command_id.remove()], outstanding)
    if relay_state:
        record_relay(meter_id, relay_state, seen_at)


def _not_older(seen_at: str):
    cond = MeterItem.meter_id.exists()
    if seen_at:
        cond &= MeterItem.relay_seen_at.does_not_exist() | (MeterItem.relay_seen_at <= seen_at)
    return cond


def record_relay(meter_id: str, relay_state: str, seen_at: str) -> bool:
    """Record a read-back relay state unless a newer read-back is already recorded."""
    return update_if(MeterItem(meter_id), [MeterItem.relay_state.set(relay_state), MeterItem.relay_seen_at.set(seen_at)],
                     _not_older(seen_at))


def reset_relay_attempts(meter_id: str) -> None:
    update_item(MeterItem(meter_id), [MeterItem.relay_attempts.set(0)], MeterItem.meter_id.exists())


def set_manual_open(meter_id: str, hold: bool, reason: str = "") -> None:
    """An admin's manual trip (hold=True: the relay stays open until a manual close) or its end."""
    actions = [MeterItem.manual_open.set(hold)]
    actions.append(MeterItem.manual_reason.set(reason) if hold and reason else MeterItem.manual_reason.remove())
    update_item(MeterItem(meter_id), actions, MeterItem.meter_id.exists())


# --- meter-side purchases ---------------------------------------------------------------------


def set_purchase_expected(meter_id: str, count: int) -> None:
    """Raise the purchase count the meter should report (never lowers it)."""
    update_if(MeterItem(meter_id), [MeterItem.purchase_expected.set(count)], MeterItem.purchase_expected < count)


def purchase_applied(meter_id: str, count: int) -> None:
    """Purchase `count` is on the meter: it becomes the last applied one and, if it was the
    pending one, nothing is pending any more."""
    set_purchase_expected(meter_id, count)
    update_if(MeterItem(meter_id), [MeterItem.purchase_pending.remove(), MeterItem.purchase_pending_amount.remove()],
              MeterItem.purchase_pending <= count)


# --- the room monitor's read (core/services/monitor.py) ---------------------------------------


def monitor_meters(property_id: str) -> list[MonitorMeter]:
    """Every meter of a property with its relay state as last read back, whether a relay
    command is outstanding, and online: one query of by_property (eventually consistent)."""
    return [
        MonitorMeter(
            meter_id=i["meter_id"],
            account_id=i.get("account_id", ""),
            kind=i.get("kind", ""),
            relay_state=i.get("relay_state") or "unknown",
            online=bool(i.get("online")),
            keep_supply=bool(i.get("keep_supply")),
            in_flight=bool(i.get("relay_command_id")),
            retired=bool(i.get("retired")),
        )
        for i in raw_query(MeterItem, property_id, "by_property")
    ]


# --- the room detail page's read (core/services/room_detail.py) -----------------------------


def meter_details(account_id: str) -> list:
    """Every meter of an account (retired ones too) as the room detail shows it: one query
    of by_account and one consistent BatchGet."""
    from core.domain.room_detail import MeterDetail

    ids = meter_ids_of_account(account_id)
    out = []
    for i in (MeterItem.batch_get(list(ids), consistent_read=True) if ids else []):
        r = i.last_reading
        out.append(MeterDetail(
            meter_id=i.meter_id, account_id=i.account_id or "", site_id=i.site_id, kind=i.kind, model=i.model or "",
            bus=i.bus or "", address=int(i.address or 0), billing_mode=i.billing_mode, rated_kw=i.rated_kw or "",
            plan_id=i.plan_id, relay_state=i.relay_state or "unknown", relay_seen_at=i.relay_seen_at or "",
            relay_command_id=i.relay_command_id, desired_relay=i.desired_relay, online=bool(i.online),
            last_seen=i.last_seen or "", keep_supply=bool(i.keep_supply), retired=bool(i.retired),
            replaced_by=i.replaced_by or "",
            reading_at=r.read_at if r is not None else "", reading_total=r.total if r is not None else "",
            reading_seq=int(r.seq or 0) if r is not None else 0,
            registers={k: str(v) for k, v in r.registers.as_dict().items()} if r is not None and r.registers else {},
            meter_balance=int(i.meter_balance) if i.meter_balance is not None else None,
        ))
    return sorted(out, key=lambda m: (m.retired, m.meter_id))


# --- the long-offline watch (issue 13: core/services/outages.py) ---------------------------


def offline_long_meters(cutoff: str, limit: int = 500) -> list[tuple[str, str]]:
    """(meter_id, last_seen) of meters marked offline, not yet noted as long offline, and
    silent since before cutoff (the sparse by_last_seen index, partition OFFLINE_KEY)."""
    return [(i.meter_id, i.last_seen)
            for i in MeterItem.by_last_seen.query(OFFLINE_KEY, MeterItem.last_seen < cutoff, limit=limit)]


def note_offline_long(meter_id: str, last_seen: str, event: Event | None) -> bool:
    """Take the meter off the watch (with its event, if any) if it is still the same
    outage (not seen since last_seen, still watched). False if it was noted or read meanwhile."""
    tx = Tx()
    tx.update(MeterItem(meter_id), [MeterItem.online_key.remove()],
              (MeterItem.last_seen == last_seen) & (MeterItem.online_key == OFFLINE_KEY), tag=METER_TAG)
    if event is not None:
        add_event(tx, event)
    return tx.commit() is None
