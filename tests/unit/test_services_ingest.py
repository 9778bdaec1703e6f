"""Readings through the ingest service on the in-memory store (testkit.fakes): the
verdicts and the postings they make, alarms in the same write, and a stale meter memory
that costs a retry, never a wrong charge. With the emulator and the real queue:
tests/integration/test_rating_flow.py, test_metering.py."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.events import Subject
from core.domain.meters import MeterState
from core.domain.rating import MeterReading
from core.domain.tariff import parse_plan
from testkit.builders import FLAT_PLAN, Clock
from testkit.fakes import InMemoryStore

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
PLANS = {"flat": parse_plan(dict(FLAT_PLAN, plan_id="flat"))}  # 1.0000 yuan per kWh


@pytest.fixture
def db() -> InMemoryStore:
    db = InMemoryStore()
    db.open("a1", 3000)  # 30.00 yuan
    db.add_meter(MeterState(
        meter_id="m1", property_id="p1", account_id="a1", site_id="s1", kind="electric_1p", billing_mode="cloud",
        rated_kw=Decimal("20"), plan_id="flat", baseline=None, online=True, keep_supply=False, relay_state="closed",
        relay_command_id=None, desired_relay=None, meter_balance=None, purchase_count=None, purchase_expected=0,
        retired=False))
    return db


def ingest(db: InMemoryStore):
    return db.build(Clock(T0 + timedelta(hours=6)), plans=PLANS).ingest  # after the readings


def reading(seq: int, hours: float, total: str) -> MeterReading:
    return MeterReading("m1", seq, T0 + timedelta(hours=hours), Decimal(total))


def test_the_first_reading_is_the_baseline_the_next_one_is_billed_once(db):
    i = ingest(db)
    assert i.reading("s1", reading(1, 0, "1000.00")) == "baseline"
    assert db.meters["m1"].baseline.seq == 1 and len(db.entries["a1"]) == 1
    assert i.reading("s1", reading(2, 1, "1010.00")) == "billed"  # 10 kWh x 1.00 = 10.00 yuan
    entry = db.entries["a1"]["use:m1:2"]
    assert (entry.kind, entry.amount, entry.balance_after, entry.memo) == ("energy", -1000, 2000, "10.00 kWh")
    assert (db.meters["m1"].baseline.seq, db.meters["m1"].baseline.total) == (2, Decimal("1010.00"))
    assert i.reading("s1", reading(2, 1, "1010.00")) == "duplicate"  # the queue delivers it again
    assert ingest(db).reading("s1", reading(2, 1, "1010.00")) == "duplicate"  # to another process too
    assert db.states["a1"].balance == 2000 and len(db.entries["a1"]) == 2


def test_an_alarm_is_written_with_the_debit_that_crosses_its_level(db):
    i = ingest(db)
    i.reading("s1", reading(1, 0, "1000.00"))
    i.reading("s1", reading(2, 1, "1011.00"))  # 30.00 - 11.00 = 19.00: below 50.00 and 20.00, above 0
    (alarm,) = db.repos.events.events_of(Subject.account("a1"))
    assert (alarm.type, alarm.status, alarm.data["threshold"], alarm.data["balance"]) == (
        "low_balance", "to_notify", 2000, 1900)  # only the most severe new crossing is sent
    assert db.states["a1"].control["cut_state"] == "none"  # the cut line is 0.00


def test_an_implausible_jump_is_held_for_an_admin_and_bills_nothing(db):
    i = ingest(db)
    i.reading("s1", reading(1, 0, "1000.00"))
    assert i.reading("s1", reading(2, 1, "1100.00")) == "implausible_jump"  # 100 kWh in an hour at 20 kW
    (anomaly,) = db.repos.events.events_of(Subject.meter("m1"))
    assert (anomaly.event_id, anomaly.status, anomaly.data["proposed_fen"]) == ("anomaly:2:implausible_jump", "open",
                                                                               10000)
    assert db.states["a1"].balance == 3000


def test_a_stale_meter_memory_costs_a_retry_never_a_double_charge(db):
    first, second = ingest(db), ingest(db)  # two warm processes
    first.reading("s1", reading(1, 0, "1000.00"))
    assert second.reading("s1", reading(1, 0, "1000.00")) == "duplicate"  # second remembers baseline 1
    first.reading("s1", reading(2, 1, "1010.00"))  # the baseline moves to 2 behind second's back
    commits = db.repos.ledger.commits
    assert second.reading("s1", reading(3, 2, "1015.00")) == "billed"
    # planned on baseline 1 (15 kWh), refused with the meter as it is, billed on baseline 2: 5 kWh
    assert db.entries["a1"]["use:m1:3"].amount == -500
    assert db.states["a1"].balance == 3000 - 1000 - 500
    # second had never posted to a1, so it read the account fresh: one refused write, one applied
    assert db.repos.ledger.commits - commits == 2


def test_a_retired_meter_takes_no_reading(db):
    db.meters["m1"] = replace(db.meters["m1"], retired=True)
    assert ingest(db).reading("s1", reading(1, 0, "1000.00")) == "refused"
    assert db.meters["m1"].baseline is None
