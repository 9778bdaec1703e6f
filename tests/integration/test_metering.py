"""Anomalies and their review, meter replacement, meter-side billing, tariffs and
commands, against the emulator (readings go straight to the ingest service; the queue
path is covered in test_rating_flow.py)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.errors import ConditionFailed, FeikongError, NotFound, ValidationError
from core.domain.events import Subject
from core.domain.rating import MeterReading
from core.services import meters, tariffs
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import commands as cstore
from core.store import events as estore
from core.store import meters as meters_store
from testkit.builders import Clock, Metered, uid
from tests.unit.test_tariff import RESIDENTIAL, TOU

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=2)  # the cloud's clock: after the readings (a reading ahead of it is an anomaly)


@pytest.fixture
def clock():
    return Clock(NOW)


def feed(ingest, w, meter, *rows):
    out = []
    for seq, hours, total in rows:
        out.append(ingest.reading(w.site.site_id, MeterReading(meter, seq, T0 + timedelta(hours=hours),
                                                               Decimal(total))))
    return out


def anomalies(meter):
    return [e for e in estore.events_of(Subject.meter(meter)) if e.type == "anomaly"]


def test_bad_readings_never_make_bad_money(metered, clock):
    ingest = Ingest(clock=clock)
    acct = metered.account(opening=100_000)
    meter = metered.meter(acct, rated_kw="10")
    results = feed(ingest, metered, meter,
                   (1, 0, "100.00"),  # baseline
                   (2, 1, "105.00"),  # billed: 5.00
                   (3, 2, "50.00"),  # backwards: anomaly, baseline moves to 50
                   (4, 3, "53.00"),  # billed from the new baseline: 3.00
                   (5, 4, "90.00"),  # 37 kWh in 1 h on a 10 kW meter: implausible
                   (6, 5, "91.00"),  # billed: 1.00
                   (7, 4.5, "92.00"),  # newer seq, older time: out of order
                   (8, 13, "95.00"),  # 8 h of silence: a gap
                   (4, 3, "53.00"))  # a redelivery of an old one
    assert results == ["baseline", "billed", "register_backwards", "billed", "implausible_jump", "billed",
                       "out_of_order", "gap", "duplicate"]
    assert LedgerService().balance(acct) == 100_000 - 500 - 300 - 100
    kinds = sorted(a.data["kind"] for a in anomalies(meter))
    assert kinds == ["gap", "implausible_jump", "out_of_order", "register_backwards"]
    jump = next(a for a in anomalies(meter) if a.data["kind"] == "implausible_jump")
    assert jump.status == "open" and jump.data["proposed_fen"] == 3700


def test_approving_an_anomaly_bills_it_once_and_rejecting_bills_nothing(metered, clock):
    ingest = Ingest(clock=clock)
    acct = metered.account(opening=10_000)
    meter = metered.meter(acct, rated_kw="10")
    feed(ingest, metered, meter, (1, 0, "0"), (2, 10, "20.00"), (3, 11, "21.00"), (4, 30, "30.00"))
    gap, gap2 = sorted((a for a in anomalies(meter) if a.data["kind"] == "gap"), key=lambda a: a.data["seq"])
    before = LedgerService().balance(acct)
    entry = ingest.approve_anomaly(metered.property_id, meter, gap.event_id, "admin-1")
    assert entry.amount == -2000 and entry.entry_id == f"use:{meter}:2"
    with pytest.raises(ConditionFailed):
        ingest.approve_anomaly(metered.property_id, meter, gap.event_id, "admin-1")
    ingest.reject_anomaly(metered.property_id, meter, gap2.event_id, "admin-1")
    assert LedgerService().balance(acct) == before - 2000
    with pytest.raises(NotFound):  # another property's admin cannot touch it
        ingest.approve_anomaly(uid("p"), meter, gap2.event_id, "intruder")


def test_meter_replacement_carries_balance_and_baseline(clock):
    w = Metered(plan=RESIDENTIAL)
    ingest = Ingest(clock=clock)
    acct = w.account(opening=100_000)
    old = w.meter(acct)
    feed(ingest, w, old, (1, 0, "5000.00"), (2, 1, "5000.01"))  # 0.005283 yuan: remainder carried
    new = uid("m")
    out = meters.replace_meter(w.property_id, old, new, {"read_at": (T0 + timedelta(hours=2)).isoformat(),
                                                         "total": "5010.01"},
                               {"read_at": (T0 + timedelta(hours=2)).isoformat(), "total": "0.50"}, "admin",
                               ingest=ingest)
    assert out["final_reading"] == "billed"
    assert meters_store.load_meter(old).retired
    # the new meter bills from its own first reading, on the same account and bus address
    assert ingest.reading(w.site.site_id, MeterReading(new, 1, T0 + timedelta(hours=3), Decimal("10.50"))) == "billed"
    assert ingest.reading(w.site.site_id, MeterReading(old, 9, T0 + timedelta(hours=3), Decimal("6000"))) == "refused"
    entries = LedgerService().entries(acct, newest_first=False)[0]
    # 10.00 kWh on the old meter (+0.01 before), 10.00 kWh on the new: 20.01 x 0.5283 = 10.571283
    assert sum(-e.amount for e in entries if e.kind == "energy") == 1057
    assert {e.type for e in estore.events_of(Subject.meter(new))} >= {"meter_replaced"}


def test_meter_side_billing_recharge_and_mirror(clock):
    from infra.fakes.sitesim import SimMeter

    w = Metered()
    ingest = Ingest(clock=clock)
    acct = w.account(opening=0)
    meter = w.meter(acct, billing_mode="meter")
    site = w.sim()
    site.add(SimMeter(meter, balance=0, purchase_count=0))
    control = Control(ingest.ledger, clock)
    control.credit(account_id=acct, entry_id="pay:ms-1", kind="recharge", amount=8000, cause="order:ms-1",
                   actor="wechatpay")
    cmds = site.take_commands()
    assert [(c["op"], c["args"]) for c in cmds] == [("RECHARGE", {"amount": 8000, "purchase_count": 1})]
    from core.integrations.queues import uplink_url
    from functions import uplink_consumer
    from infra.fakes.sitesim import drain_uplink

    drain_uplink(uplink_url(), lambda e, c: _with(uplink_consumer, ingest, e, c))
    assert LedgerService().balance(acct) == 0  # the money now sits in the meter
    assert meters_store.load_meter(meter).purchase_expected == 1
    # readings mirror the meter's balance; usage is not billed by the cloud
    ingest.reading(w.site.site_id, MeterReading(meter, 1, T0, Decimal("1.00"), {}, 8000, 1))
    ingest.reading(w.site.site_id, MeterReading(meter, 2, T0 + timedelta(hours=1), Decimal("3.00"), {}, 7000, 1))
    assert meters_store.load_meter(meter).meter_balance == 7000
    assert LedgerService().verify(acct)["entries"] == 3  # opening, recharge, transfer: no energy debits
    # a meter whose count or balance disagrees is flagged
    ingest.reading(w.site.site_id, MeterReading(meter, 3, T0 + timedelta(hours=2), Decimal("4.00"), {}, 9000, 1))
    ingest.reading(w.site.site_id, MeterReading(meter, 4, T0 + timedelta(hours=3), Decimal("5.00"), {}, 9000, 3))
    kinds = {e.message for e in estore.events_of(Subject.meter(meter)) if e.type == "meter_mismatch"}
    assert kinds == {"表内余额无充值却增加", "表内购电次数与平台不一致"}


def _with(module, ingest, event, context):
    saved = module.ingest
    module.ingest = ingest
    try:
        return module.handler(event, context)
    finally:
        module.ingest = saved


def test_relay_commands_supersede_and_expire(metered, clock):
    acct = metered.account(opening=0)
    meter = metered.meter(acct)
    control = Control(LedgerService(), clock)
    trip = control.issue(meter, "TRIP", "admin:1", "admin")
    close = control.issue(meter, "CLOSE", "admin:2", "admin")
    assert cstore.get_command(trip.command_id).state == "superseded"
    assert cstore.get_command(close.command_id).state == "sent"
    assert control.issue(meter, "CLOSE", "admin:2", "admin").command_id == close.command_id  # idempotent
    clock.advance(hours=2)
    assert control.tick()["expired"] >= 1
    assert cstore.get_command(close.command_id).state == "expired"
    assert meters_store.load_meter(meter).relay_command_id is None
    with pytest.raises(ValidationError):
        control.issue(meter, "EXPLODE", "x")


def test_tariff_import_export_assign_and_preview(metered):
    doc = dict(TOU, plan_id=uid("tou"))
    plan = tariffs.import_plan(metered.property_id, doc, "admin")
    assert tariffs.export_plan(metered.property_id, plan.plan_id) == doc
    with pytest.raises(NotFound):  # another property cannot read it
        tariffs.export_plan(uid("p"), plan.plan_id)
    with pytest.raises(FeikongError) as e:
        tariffs.import_plan(metered.property_id, {**doc, "versions": []}, "admin")
    assert e.value.code == "tariff_invalid"
    acct = metered.account()
    water = metered.meter(acct, kind="water")
    with pytest.raises(ValidationError):  # an electricity plan on a water meter
        tariffs.assign(metered.property_id, water, plan.plan_id)
    preview = tariffs.preview(doc, [
        {"read_at": "2026-11-24T07:30:00+08:00", "total": "100.00"},
        {"read_at": "2026-11-24T08:30:00+08:00", "total": "102.00"},
        {"read_at": "2026-11-24T09:30:00+08:00", "total": "103.00"},
    ])
    assert [c["fen"] for c in preview["charges"]] == [160, 100]
    assert preview["total_yuan"] == "2.60"
    assert {line["period"] for line in preview["charges"][0]["lines"]} == {"flat", "peak"}


def test_a_command_whose_send_failed_is_sent_by_the_tick(metered, clock, monkeypatch):
    from core.integrations import queues

    acct = metered.account(opening=0)
    meter = metered.meter(acct)
    control = Control(LedgerService(), clock)

    def sqs_down(*a, **kw):
        raise ConnectionError("injected: SQS unreachable")

    monkeypatch.setattr(queues, "send_command", sqs_down)
    with pytest.raises(ConnectionError):
        control.issue(meter, "TRIP", "admin:9", "admin")
    (command,) = cstore.commands_of_meter(meter)
    assert command.state == "queued"
    monkeypatch.undo()
    clock.advance(minutes=1)
    assert control.tick()["resent"] >= 1
    assert cstore.get_command(command.command_id).state == "sent"
    site = metered.sim()
    assert [c["command_id"] for c in site.take_commands()] == [command.command_id]


# --- a reading dated in the future (a meter clock gone wrong) -------------------------------


def test_a_reading_from_the_future_does_not_stop_billing(metered, clock):
    ingest = Ingest(clock=clock)
    acct = metered.account(opening=100_000)  # flat plan, 1 yuan/kWh
    meter = metered.meter(acct, rated_kw="10")
    site = metered.site.site_id
    assert feed(ingest, metered, meter, (1, 0, "100.00"), (2, 1, "105.00")) == ["baseline", "billed"]
    far = MeterReading(meter, 3, datetime(2099, 1, 1, tzinfo=UTC), Decimal("106.00"))
    assert ingest.reading(site, far) == "read_time_future"
    assert ingest.reading(site, far) == "duplicate"  # a redelivery is recorded once, not retried forever
    baseline = meters_store.load_meter(meter).baseline
    assert (baseline.seq, baseline.read_at, baseline.total) == (2, T0 + timedelta(hours=1), Decimal("105.00"))
    # later normal readings bill normally, from the last good one: 105 -> 108 = 3.00, 108 -> 109 = 1.00
    assert feed(ingest, metered, meter, (4, 2, "108.00"), (5, 3, "109.00")) == ["billed", "billed"]
    assert LedgerService().balance(acct) == 100_000 - 500 - 300 - 100
    (future,) = anomalies(meter)
    assert future.data["kind"] == "read_time_future" and future.status == "recorded"
    assert future.message == "读数时间超前于平台时间（表计时钟错误）"
    # the skew is measured against the cloud's clock: 9 minutes ahead is fine, 11 is not
    other = metered.meter(metered.account(opening=10_000), rated_kw="100")
    clock.now = T0 + timedelta(hours=1)
    assert feed(ingest, metered, other, (1, 0, "1.00"), (2, 1 + 9 / 60, "2.00"), (3, 1 + 11 / 60, "3.00")) == [
        "baseline", "billed", "read_time_future"]
    assert Ingest(clock=clock, max_skew=timedelta(minutes=15)).reading(
        site, MeterReading(other, 3, T0 + timedelta(hours=1, minutes=11), Decimal("3.00"))) == "billed"


def test_a_first_reading_from_the_future_does_not_become_the_baseline(metered, clock):
    ingest = Ingest(clock=clock)
    acct = metered.account(opening=1000)
    meter = metered.meter(acct, rated_kw="10")
    far = MeterReading(meter, 1, datetime(2099, 1, 1, tzinfo=UTC), Decimal("5.00"))
    assert ingest.reading(metered.site.site_id, far) == "read_time_future"
    assert meters_store.load_meter(meter).baseline is None
    assert feed(ingest, metered, meter, (2, 0, "5.00"), (3, 1, "7.00")) == ["baseline", "billed"]
    assert LedgerService().balance(acct) == 1000 - 200


# --- an approved anomaly counts in the month's tiers, like a normal reading ---------------------


def test_an_approved_gap_is_rated_on_the_months_tier_usage(clock):
    # Residential: 0.5283 yuan/kWh; +0.05 from 200 kWh, +0.30 from 400 kWh in a calendar month.
    w = Metered(plan=RESIDENTIAL)
    consumer = Ingest(clock=clock)  # the uplink consumer (a warm Lambda)
    acct = w.account(opening=1_000_000)
    meter = w.meter(acct, rated_kw="100")
    results = feed(consumer, w, meter,
                   (1, 0, "0"),  # baseline
                   # 395 kWh: 395 x 0.5283 = 208.6785 + 195 in band 2 x 0.05 = 9.75 -> 218.4285 yuan
                   # = 21842.85 fen -> 21842, 0.85 carried; month at 395
                   (2, 5, "395"),
                   # 8 h silent: a gap of 10 kWh, not billed. Proposal on the month's usage:
                   # 10 x 0.5283 = 5.283 + 5 x 0.05 + 5 x 0.30 = 7.033 yuan = 703.3 + 0.85 -> 704 fen
                   (3, 13, "405"),
                   # 10 kWh billed on the carry as it stands (the gap is not approved yet):
                   # the same 7.033 yuan + 0.85 -> 704 fen, 0.15 carried, month at 405
                   (4, 14, "415"))
    assert results == ["baseline", "billed", "gap", "billed"]
    (gap,) = anomalies(meter)
    assert gap.data["proposed_fen"] == 704  # a blank carry proposed 528
    # an admin approves it from another process (the console): rated on the meter's carry
    # now (405 kWh, 0.15 fen): 10 kWh in band 3 = 10 x 0.8283 = 8.283 yuan = 828.3 + 0.15
    # -> 828 fen, 0.45 carried, the month at 415
    entry = Ingest(clock=clock).approve_anomaly(w.property_id, meter, gap.event_id, "admin-1")
    assert entry.amount == -828 and entry.entry_id == f"use:{meter}:3"
    carry = meters_store.load_meter(meter).baseline.carry
    assert (carry.remainder_fen, carry.cycle, carry.cycle_usage) == (Decimal("0.45"), "2026-11", Decimal("415"))
    decided = estore.get_event(Subject.meter(meter), gap.event_id)
    assert decided.status == "approved" and decided.data["approved_fen"] == 828
    # the consumer's memory of the meter is stale; its next reading must still build on the
    # approved usage: 10 kWh in band 3 = 828.3 + 0.45 = 828.75 -> 828 fen, 0.75 carried, 425
    assert feed(consumer, w, meter, (5, 15, "425")) == ["billed"]
    carry = meters_store.load_meter(meter).baseline.carry
    assert (carry.remainder_fen, carry.cycle_usage) == (Decimal("0.75"), Decimal("425"))
    # the month rated at once: 425 x 0.5283 = 224.5275 + 200 x 0.05 + 25 x 0.30 = 242.0275 yuan
    # = 24202.75 fen -> 24202 debited, 0.75 carried
    debits = [-e.amount for e in LedgerService().entries(acct, newest_first=False)[0] if e.kind == "energy"]
    assert debits == [21842, 704, 828, 828] and sum(debits) == 24202
