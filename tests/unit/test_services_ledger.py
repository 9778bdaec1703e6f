"""The ledger service on the in-memory store (testkit.fakes): posting, idempotency,
refusals, stale memories and write records, without the emulator. The same rules run
against DynamoDB in tests/integration/test_ledger_service.py."""

from datetime import UTC, datetime, timedelta

import pytest

from core.domain.errors import IdempotencyConflict, InsufficientFunds, NotFound, WriteRefused
from core.domain.events import Event, Subject
from core.domain.writes import AddEvent, MarkPaid
from core.services.ledger import LedgerService
from testkit.builders import Clock
from testkit.fakes import InMemoryStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def db() -> InMemoryStore:
    return InMemoryStore()


def post(ledger: LedgerService, entry_id: str, kind: str, amount: int, account_id: str = "a1", **kw):
    return ledger.post(account_id=account_id, entry_id=entry_id, kind=kind, amount=amount, cause="test",
                       actor="tester", **kw)


def test_a_credit_and_a_debit_move_the_balance_and_number_the_entries(db):
    db.open("a1", 1000)
    ledger = LedgerService(db.repos.ledger, Clock(T0))
    credit = post(ledger, "pay:1", "recharge", 500)  # 10.00 + 5.00
    debit = post(ledger, "use:m1:2", "energy", 1800)  # 15.00 - 18.00: metered usage has no floor
    assert (credit.seq, credit.amount, credit.balance_after) == (2, 500, 1500)
    assert (debit.seq, debit.amount, debit.balance_after) == (3, -1800, -300)
    assert ledger.balance("a1") == -300
    assert ledger.verify("a1") == {"account_id": "a1", "balance": -300, "sum_entries": -300, "entries": 3,
                                   "version": 3, "ok": True}


def test_a_repeated_id_is_the_first_posting_and_a_different_one_under_it_is_refused(db):
    db.open("a1", 0)
    ledger = LedgerService(db.repos.ledger, Clock(T0))
    first = post(ledger, "pay:wx-1", "recharge", 700)
    again = post(LedgerService(db.repos.ledger, Clock(T0)), "pay:wx-1", "recharge", 700)  # another process
    assert again.duplicate and again.entry_id == first.entry_id and again.balance_after == 700
    with pytest.raises(IdempotencyConflict):
        post(ledger, "pay:wx-1", "recharge", 701)
    assert ledger.balance("a1") == 700 and len(db.entries["a1"]) == 2


def test_a_refund_never_takes_the_balance_below_zero_and_writes_nothing(db):
    db.open("a1", 1500)
    ledger = LedgerService(db.repos.ledger, Clock(T0))
    with pytest.raises(InsufficientFunds):
        post(ledger, "refund:1", "refund", 1501)
    assert ledger.balance("a1") == 1500 and len(db.entries["a1"]) == 1


def test_a_stale_memory_costs_one_retry_never_a_wrong_balance(db):
    db.open("a1", 1000)
    one, two = LedgerService(db.repos.ledger, Clock(T0)), LedgerService(db.repos.ledger, Clock(T0))
    post(one, "pay:1", "recharge", 100)  # one remembers version 2, balance 1100
    post(two, "pay:2", "recharge", 200)  # two reads version 2, writes version 3, balance 1300
    commits = db.repos.ledger.commits
    e = post(one, "use:m1:1", "energy", 50)  # planned on version 2: stale, retried on version 3
    assert (e.seq, e.balance_after) == (4, 1250)
    assert db.repos.ledger.commits - commits == 2


def test_unknown_account(db):
    with pytest.raises(NotFound):
        post(LedgerService(db.repos.ledger, Clock(T0)), "pay:1", "recharge", 100, account_id="nobody")


def test_write_records_commit_with_the_posting(db):
    db.open("a1", 0)
    ledger = LedgerService(db.repos.ledger, Clock(T0))
    event = Event(Subject.account("a1"), "note:1", "test", "p1", "2026-03-01T08:00:00.000000Z", data={"n": 1})
    post(ledger, "pay:1", "recharge", 300, extras=[AddEvent(event)])
    assert db.repos.events.events_of(Subject.account("a1")) == [event]
    # the same event again: its condition (absent) fails, so the posting is not written either
    with pytest.raises(WriteRefused) as refused:
        post(ledger, "pay:2", "recharge", 300, extras=[AddEvent(event)])
    assert [r.write for r in refused.value.refused] == [AddEvent(event)]
    assert ledger.balance("a1") == 300 and "pay:2" not in db.entries["a1"]


def test_a_refused_order_write_leaves_no_credit(db):
    db.open("a1", 0)
    mark = MarkPaid("R-none", 500, "wx-1", "2026-03-01T08:00:00Z", "2026-03-01")  # no such order
    with pytest.raises(WriteRefused):
        post(LedgerService(db.repos.ledger, Clock(T0)), "pay:wx-1", "recharge", 500, extras=[mark])
    assert db.states["a1"].balance == 0 and db.states["a1"].version == 1


def test_posting_times_increase_even_when_the_clock_steps_back(db):
    db.open("a1", 0, at="2026-03-01T08:00:00.000000Z")
    clock = Clock(T0 + timedelta(seconds=1))
    ledger = LedgerService(db.repos.ledger, clock)
    a = post(ledger, "pay:1", "recharge", 1)
    clock.now = T0  # one second back
    b = post(ledger, "pay:2", "recharge", 1)
    assert (a.posted_at, b.posted_at) == ("2026-03-01T08:00:01.000000Z", "2026-03-01T08:00:01.000001Z")
