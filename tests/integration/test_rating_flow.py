"""Readings through the real uplink queue and the consumer Lambda handler, against the
emulator: debits, alarms, TRIP on the site's down queue, CLOSE after a credit, duplicate
deliveries, and a protected window that delays the cut."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.events import Subject
from core.integrations.queues import uplink_url
from core.services import control as control_service
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import commands as cstore
from core.store import events as estore
from core.store import meters as meters_store
from functions import control_tick, uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, drain_uplink
from testkit.builders import Clock, Metered

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai


@pytest.fixture
def clock(monkeypatch):
    c = Clock(T0 + timedelta(hours=4))  # after the readings: a reading ahead of the clock is an anomaly
    ingest = Ingest(clock=c)
    monkeypatch.setattr(uplink_consumer, "ingest", ingest)
    monkeypatch.setattr(control_tick, "make_control", lambda: Control(ingest.ledger, c))
    return c


def deliver() -> int:
    return drain_uplink(uplink_url(), uplink_consumer.handler)


def reading(meter: str, seq: int, hours: float, total: str):
    from core.domain.rating import MeterReading

    return MeterReading(meter, seq, T0 + timedelta(hours=hours), Decimal(total))


def test_batch_to_debits_alarms_trip_then_credit_to_close(clock):
    w = Metered()
    acct = w.account(opening=3000)  # 30.00 yuan; flat plan 1 yuan/kWh; cut line 0
    meter = w.meter(acct)
    site = w.sim()
    site.add(SimMeter(meter))
    site.send_readings([
        reading(meter, 1, 0, "1000.00"),  # baseline
        reading(meter, 2, 1, "1010.00"),  # 10 kWh -> 10.00 -> 20.00 left (< 50 alarm)
        reading(meter, 3, 2, "1025.00"),  # 15 kWh -> 15.00 ->  5.00 left (< 20 alarm)
        reading(meter, 4, 3, "1031.00"),  #  6 kWh ->  6.00 -> -1.00      (< 0 alarm, cut)
    ], clock.now)
    assert deliver() >= 1
    ledger = LedgerService()
    entries, _ = ledger.entries(acct, newest_first=False)
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("opening", 3000, 3000), ("energy", -1000, 2000), ("energy", -1500, 500), ("energy", -600, -100),
    ]
    assert [e.entry_id for e in entries[1:]] == [f"use:{meter}:{s}" for s in (2, 3, 4)]
    assert entries[1].occurred_at == "2026-11-24T03:00:00.000000Z"  # the meter's read time
    alarms = [e for e in estore.events_of(Subject.account(acct)) if e.type == "low_balance"]
    assert sorted(a.data["threshold"] for a in alarms) == [0, 2000, 5000]
    assert all(a.status == "to_notify" and "余额" in a.message for a in alarms)
    # TRIP on the site's down queue, signed for that site
    commands = site.take_commands()
    assert [(c["op"], c["meter_id"]) for c in commands] == [("TRIP", meter)]
    assert cstore.get_command(commands[0]["command_id"]).cause == f"reading:{meter}:4"
    deliver()  # the site's command result
    assert cstore.get_command(commands[0]["command_id"]).state == "applied"
    assert meters_store.load_meter(meter).relay_state == "open"
    # a credit lifts the balance above the restore line: CLOSE at once
    Control(ledger, clock).credit(account_id=acct, entry_id="pay:wx-1", kind="recharge", amount=5000,
                                  cause="order:1", actor="wechatpay")
    commands = site.take_commands()
    assert [c["op"] for c in commands] == ["CLOSE"]
    deliver()
    assert meters_store.load_meter(meter).relay_state == "closed"
    assert ledger.verify(acct)["ok"]


def test_same_batch_delivered_twice_changes_nothing(clock):
    w = Metered()
    acct = w.account(opening=100_000)
    meter = w.meter(acct)
    site = w.sim()
    batch = [reading(meter, 1, 0, "500.00"), reading(meter, 2, 1, "503.37"), reading(meter, 3, 2, "507.00")]
    msg = site.send_readings(batch, clock.now)
    deliver()
    before = LedgerService().verify(acct)
    site.send(msg)  # the very same message again (a redelivery)
    site.send_readings(batch, clock.now)  # and the same readings in a new message
    deliver()
    after = LedgerService().verify(acct)
    assert after == before and after["ok"]
    assert after["balance"] == 100_000 - 337 - 363
    assert [e for e in estore.events_of(Subject.meter(meter)) if e.type == "anomaly"] == []


def test_protected_window_delays_the_cut_until_it_ends(clock):
    w = Metered()
    # night protection 22:00-08:00 Shanghai; readings at 23:00 local
    control_service.set_protection(w.property_id, {"night": ["22:00", "08:00"], "weekends": False,
                                                   "holidays": False})
    clock.now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 Shanghai
    acct = w.account(opening=500)
    meter = w.meter(acct)
    site = w.sim()
    from core.domain.rating import MeterReading

    site.send_readings([
        MeterReading(meter, 1, clock.now - timedelta(hours=1), Decimal("10.00")),
        MeterReading(meter, 2, clock.now, Decimal("20.00")),  # 10 yuan: balance -5.00
    ], clock.now)
    deliver()
    assert LedgerService().balance(acct) == -500
    state = LedgerService().state(acct, fresh=True).control
    assert state["cut_state"] == "pending"
    assert state["cut_due_at"].startswith("2026-11-25T00:00")  # 08:00 Shanghai
    assert site.take_commands() == []
    clock.advance(hours=4)  # 03:00 local: still protected
    assert control_tick.handler({}, LambdaContext())["cuts"] == 0
    assert site.take_commands() == []
    clock.now = datetime(2026, 11, 25, 0, 1, tzinfo=UTC)  # 08:01 local
    assert control_tick.handler({}, LambdaContext())["cuts"] == 1
    assert [c["op"] for c in site.take_commands()] == ["TRIP"]
    assert LedgerService().state(acct, fresh=True).control["cut_state"] == "cut"


def test_keep_supply_account_is_never_cut(clock):
    w = Metered()
    acct = w.account(opening=100)
    from core.store import directory as dstore

    dstore.set_account_settings(acct, keep_supply=True)
    meter = w.meter(acct)
    site = w.sim()
    site.send_readings([reading(meter, 1, 0, "1.00"), reading(meter, 2, 1, "9.00")], clock.now)
    deliver()
    assert LedgerService().balance(acct) == -700  # the usage is still billed
    assert site.take_commands() == []


def test_forged_and_foreign_messages_are_refused(clock):
    w = Metered()
    acct = w.account(opening=1000)
    meter = w.meter(acct)
    other = Metered()
    intruder = other.sim()
    # another site's bridge reports readings for our meter, signed with its own secret
    intruder.send_readings([reading(meter, 1, 0, "1.00"), reading(meter, 2, 1, "5.00")], clock.now)
    # a message claiming to be our site, with a wrong signature
    ours = w.sim()
    forged = ours.message("readings", clock.now, readings=[])
    forged["readings"] = [{"meter_id": meter, "seq": 9, "read_at": T0.isoformat(), "total": "99.00"}]
    ours.send(forged)
    deliver()
    assert LedgerService().verify(acct)["entries"] == 1
    assert meters_store.load_meter(meter).baseline is None
    assert any(e.type == "security" for e in estore.events_of(Subject.site(w.site.site_id)))


def test_offline_and_back_online(clock):
    w = Metered()
    acct = w.account(opening=10_000)
    meter = w.meter(acct)
    site = w.sim()
    site.send_readings([reading(meter, 1, 0, "1.00")], clock.now)
    deliver()
    assert meters_store.load_meter(meter).online
    clock.advance(minutes=45)
    assert control_tick.handler({}, LambdaContext())["offline"] >= 1
    assert not meters_store.load_meter(meter).online
    site.send_readings([reading(meter, 2, 1, "2.00")], clock.now)
    deliver()
    kinds = [e.type for e in estore.events_of(Subject.meter(meter))]
    assert "meter_offline" in kinds and "meter_online" in kinds
    assert meters_store.load_meter(meter).online


def test_admin_settings_recut_and_are_audited(clock):
    from core.domain.errors import NotFound, ValidationError

    w = Metered()
    acct = w.account(opening=-300, overdraft=1000)  # within the overdraft: supply on
    meter = w.meter(acct)
    site = w.sim()
    ctl = Control(LedgerService(), clock)
    ctl.configure_account(w.property_id, acct, "admin-1", keep_supply=True)
    assert ctl.configure_account(w.property_id, acct, "admin-1", overdraft_limit=0).cut_state == "none"  # 保电
    assert site.take_commands() == []
    decision = ctl.configure_account(w.property_id, acct, "admin-1", keep_supply=False)
    assert decision.trip_now
    assert [c["op"] for c in site.take_commands()] == ["TRIP"]
    ctl.configure_account(w.property_id, acct, "admin-1", alarm_levels=[10000, 0], alarm_repeats=[2, 1])
    state = LedgerService().state(acct, fresh=True)
    assert state.control["alarm_levels"] == [10000, 0] and state.settings_rev == 4
    audit = [e for e in estore.events_of(Subject.account(acct)) if e.type == "settings"]
    assert len(audit) == 4 and all(e.data["actor"] == "admin-1" for e in audit)
    with pytest.raises(ValidationError):
        ctl.configure_account(w.property_id, acct, "admin-1", alarm_levels=[0, 5000])
    with pytest.raises(NotFound):  # another property's admin
        ctl.configure_account(Metered().property_id, acct, "intruder", overdraft_limit=10**6)
    ctl.set_meter_keep_supply(w.property_id, meter, True, "admin-1")
    Control(LedgerService(), clock).credit(account_id=acct, entry_id="pay:k1", kind="recharge", amount=1000,
                                           cause="order:k1", actor="wechatpay")
    assert [c["op"] for c in site.take_commands()] == ["CLOSE"]


def test_reading_on_a_closed_account_moves_the_baseline_unbilled(clock):
    """A meter still on a closed account (moved out, no new tenant) keeps reporting: the
    usage has nobody to post to, so the baseline moves without a posting and an admin sees
    a reading_after_close event with the quantity; the queue does not retry it forever."""
    from core.domain.ledger import ACCOUNT_CLOSED
    from core.store import directory as dstore

    w = Metered()
    acct = w.account(opening=3000)
    meter = w.meter(acct)
    site = w.sim()
    site.add(SimMeter(meter))
    site.send_readings([reading(meter, 1, 0, "1000.00"), reading(meter, 2, 1, "1002.00")], clock.now)
    deliver()
    assert LedgerService().balance(acct) == 2800  # 30.00 - 2 kWh x 1.00 yuan (the warm consumer knows the meter)
    dstore.set_account_settings(acct, status=ACCOUNT_CLOSED)  # closed under the warm consumer
    site.send_readings([reading(meter, 3, 2, "1003.50")], clock.now)
    deliver()
    assert LedgerService().balance(acct) == 2800 and len(LedgerService().entries(acct)[0]) == 2  # no posting
    assert meters_store.load_meter(meter).baseline.total == Decimal("1003.50")  # the next account starts here
    [after] = [e for e in estore.events_of(Subject.meter(meter)) if e.type == "reading_after_close"]
    assert after.data["quantity"] == "1.50" and after.data["account_id"] == acct
