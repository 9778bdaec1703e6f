"""The control tick on the in-memory store (testkit.fakes): a pending cut that falls
due, offline meters, expired commands. The emulator keeps the conditions and the
queues: tests/integration/test_supply.py, test_rating_flow.py."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import control as policy
from core.domain.directory import Site
from core.domain.events import Subject
from core.domain.meters import MeterState
from testkit.builders import Clock
from testkit.fakes import InMemoryStore

T0 = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai
QUEUE = "https://sqs.local/feikong-test-site-s1-down.fifo"


def meter(meter_id: str, account_id: str = "a1", relay: str = "closed", online: bool = True) -> MeterState:
    return MeterState(meter_id=meter_id, property_id="p1", account_id=account_id, site_id="s1", kind="electric_1p",
                      billing_mode="cloud", rated_kw=Decimal("20"), plan_id=None, baseline=None, online=online,
                      keep_supply=False, relay_state=relay, relay_command_id=None, desired_relay=None,
                      meter_balance=None, purchase_count=None, purchase_expected=0, retired=False)


@pytest.fixture
def db() -> InMemoryStore:
    db = InMemoryStore()
    db.sites["s1"] = Site("s1", "p1", "测试网关", "site-secret", QUEUE)
    return db


def pending_cut(db: InMemoryStore, due: datetime) -> None:
    """a1 owes 1.00 yuan (cut line 0) and its cut waits for `due` (a protected night ended)."""
    db.open("a1", -100, cut_state=policy.CUT_PENDING, cut_due_at=due.isoformat())
    db.supply["a1"] = {"cut_pending": "Y"}
    db.add_meter(meter("m1"), last_seen="2026-03-03T01:59:00.000000Z")


def test_a_pending_cut_that_falls_due_trips_once(db):
    pending_cut(db, T0 - timedelta(minutes=1))
    control = db.build(Clock(T0)).control
    result = control.tick()
    assert (result["cuts"], result["expired"], result["offline"], result["resent"]) == (1, 0, 0, 0)
    assert db.states["a1"].control["cut_state"] == policy.CUT_DONE
    # one TRIP on the site's queue; the reconciler, run by the same tick, sees it live and adds none
    assert [(q, group) for q, _, group, _ in db.sent] == [(QUEUE, "m1")]
    (command,) = db.commands.values()
    assert (command.op, command.state, command.meter_id) == (policy.TRIP, policy.SENT, "m1")
    assert command.command_id == policy.relay_command_id("m1", policy.TRIP, 1)
    m = db.meters["m1"]
    assert (m.relay_command_id, m.desired_relay, m.relay_seq) == (command.command_id, "open", 1)
    assert [e.type for e in db.repos.events.events_of(Subject.meter("m1"))] == ["command"]
    # the next tick a minute later: nothing new (the TRIP is still on its way)
    control.clock.advance(minutes=1)
    assert control.tick()["cuts"] == 0 and len(db.sent) == 1


def test_a_cut_not_due_yet_waits(db):
    pending_cut(db, T0 + timedelta(minutes=5))
    assert db.build(Clock(T0)).control.tick()["cuts"] == 0
    assert db.sent == [] and db.states["a1"].control["cut_state"] == policy.CUT_PENDING


def test_a_meter_silent_for_more_than_half_an_hour_goes_offline_once(db):
    db.open("a1", 1000)
    db.add_meter(meter("m1"), last_seen="2026-03-03T01:29:00.000000Z")  # 31 minutes before T0
    db.add_meter(meter("m2"), last_seen="2026-03-03T01:31:00.000000Z")  # 29 minutes: still online
    control = db.build(Clock(T0)).control
    assert control.tick()["offline"] == 1
    assert (db.meters["m1"].online, db.meters["m2"].online) == (False, True)
    (event,) = db.repos.events.events_of(Subject.meter("m1"))
    assert (event.event_id, event.type, event.data) == (
        "offline:2026-03-03T01:29:00.000000Z", "meter_offline",
        {"last_seen": "2026-03-03T01:29:00.000000Z", "meter_id": "m1", "account_id": "a1", "site_id": "s1"})
    assert control.tick()["offline"] == 0


def test_an_expired_trip_frees_the_meter_and_puts_the_account_up_for_reconciliation(db):
    pending_cut(db, T0 - timedelta(minutes=1))
    control = db.build(Clock(T0)).control
    control.tick()
    (trip,) = db.commands.values()
    control.clock.advance(hours=1, minutes=1)  # commands live an hour
    db.last_seen["m1"] = "2026-03-03T03:00:00.000000Z"  # the meter still reports (closed)
    assert control.tick()["expired"] == 1
    assert db.commands[trip.command_id].state == policy.EXPIRED
    assert db.meters["m1"].relay_command_id != trip.command_id
    # the reconciler looked at a1 in the same tick: the meter still reports closed while it
    # should be open, so the account stays on its list (a retry is due after the backoff)
    assert control.accounts.supply_check("a1") is not None


def test_a_credit_that_restores_writes_its_close_in_the_same_transaction(db):
    """Hand-worked: a1 owes 1.00 and is cut, its meter reads open; 5.00 is paid. The credit,
    the order's events and the CLOSE (the meter's first relay order: seq 1) are one ledger
    commit; the CLOSE is then on the site's queue and marked sent."""
    db.open("a1", -100, cut_state=policy.CUT_DONE)
    db.add_meter(meter("m1", relay="open"), last_seen="2026-03-03T01:59:00.000000Z")
    control = db.build(Clock(T0)).control
    before = db.repos.ledger.commits
    entry = control.credit(account_id="a1", entry_id="pay:tx-1", kind="recharge", amount=500, cause="order:o1",
                           actor="wechatpay")
    assert entry.balance_after == 400 and not entry.duplicate
    assert db.repos.ledger.commits - before == 1  # money and CLOSE together: no second transaction
    (command,) = db.commands.values()
    assert (command.op, command.state, command.cause) == (policy.CLOSE, policy.SENT, "entry:pay:tx-1")
    assert command.command_id == policy.relay_command_id("m1", policy.CLOSE, 1)
    m = db.meters["m1"]
    assert (m.relay_command_id, m.desired_relay, m.relay_seq, m.relay_attempts) == (command.command_id, "closed", 1, 1)
    assert [(q, group) for q, _, group, _ in db.sent] == [(QUEUE, "m1")]
    assert db.states["a1"].control["cut_state"] == policy.CUT_NONE
    # WeChat repeats the notification: a duplicate, and the CLOSE already on its way is not sent again
    again = control.credit(account_id="a1", entry_id="pay:tx-1", kind="recharge", amount=500, cause="order:o1",
                           actor="wechatpay")
    assert again.duplicate and len(db.sent) == 1 and len(db.commands) == 1
