"""The ledger service against the AWS emulator over HTTP."""

from datetime import UTC, datetime, timedelta

import pytest

from core.domain.errors import IdempotencyConflict, InsufficientFunds, NotFound, WriteRefused
from core.domain.events import Event, Subject
from core.domain.writes import AddEvent
from core.services.ledger import LedgerService
from core.store import directory as store
from core.store import events as estore
from testkit.builders import uid


def post(ledger, account_id, entry_id, kind, amount, **kw):
    return ledger.post(account_id=account_id, entry_id=entry_id, kind=kind, amount=amount,
                       cause=kw.pop("cause", "test"), actor=kw.pop("actor", "tester"), **kw)


def test_open_account_writes_the_opening_entry(world):
    a = world.account(opening=12_345)
    ledger = LedgerService()
    assert ledger.balance(a) == 12_345
    entries, _ = ledger.entries(a)
    assert [(e.seq, e.kind, e.amount, e.balance_after) for e in entries] == [(1, "opening", 12_345, 12_345)]
    assert ledger.verify(a)["ok"]


def test_posting_records_everything_an_entry_must_carry(world):
    a = world.account(opening=1000)
    e = post(LedgerService(), a, "use:m1:7", "energy", 250, cause="reading:m1:7", actor="rating",
             occurred_at="2026-11-28T10:00:00+08:00", memo="7 号读数")
    stored = LedgerService().entries(a, limit=1)[0][0]
    assert stored == e
    assert (stored.kind, stored.amount, stored.balance_after, stored.seq) == ("energy", -250, 750, 2)
    assert (stored.cause, stored.actor, stored.memo) == ("reading:m1:7", "rating", "7 号读数")
    assert stored.occurred_at == "2026-11-28T02:00:00.000000Z"
    assert stored.posted_at.endswith("Z") and stored.property_id == world.property_id


def test_same_id_twice_returns_the_first_result_and_changes_nothing(world):
    a = world.account(opening=1000)
    first = post(LedgerService(), a, "pay:wx-1", "recharge", 500)
    again = post(LedgerService(), a, "pay:wx-1", "recharge", 500)  # another process, cold memory
    assert again.duplicate and not first.duplicate
    assert again == first
    assert LedgerService().balance(a) == 1500
    assert len(LedgerService().entries(a)[0]) == 2


def test_same_id_with_different_content_is_a_conflict(world):
    a = world.account(opening=1000)
    post(LedgerService(), a, "pay:wx-2", "recharge", 500)
    with pytest.raises(IdempotencyConflict):
        post(LedgerService(), a, "pay:wx-2", "recharge", 600)
    assert LedgerService().balance(a) == 1500


def test_retry_of_an_applied_debit_is_not_refused_for_insufficient_funds(world):
    a = world.account(opening=1000)
    ledger = LedgerService()
    post(ledger, a, "refund:1", "refund", 1000)
    # balance is now 0: a new refund would be refused, the retry of the old one is not
    assert post(ledger, a, "refund:1", "refund", 1000).duplicate
    with pytest.raises(InsufficientFunds):
        post(ledger, a, "refund:2", "refund", 1)


def test_overdraft_and_refund_floor(world):
    a = world.account(opening=1000, overdraft=500)
    ledger = LedgerService()
    assert post(ledger, a, "fee:1", "fee", 1400).balance_after == -400
    with pytest.raises(InsufficientFunds):
        post(ledger, a, "fee:2", "fee", 101)
    assert post(ledger, a, "use:2", "water", 101).balance_after == -501  # usage is always recorded
    post(ledger, a, "pay:0", "recharge", 101)
    with pytest.raises(InsufficientFunds):
        post(ledger, a, "refund:1", "refund", 1)
    post(ledger, a, "pay:1", "recharge", 2000)
    with pytest.raises(InsufficientFunds):
        post(ledger, a, "refund:2", "refund", 1601)
    assert post(ledger, a, "refund:3", "refund", 1600).balance_after == 0
    assert ledger.verify(a)["ok"]


def test_stale_memory_of_a_limit_change_cannot_overdraw(world):
    a = world.account(opening=100, overdraft=1000)
    ledger = LedgerService()
    post(ledger, a, "fee:1", "fee", 50)  # the service now remembers overdraft 1000
    store.set_account_settings(a, overdraft_limit=0)  # an admin lowers it elsewhere
    with pytest.raises(InsufficientFunds):
        post(ledger, a, "fee:2", "fee", 500)
    assert ledger.balance(a) == 50


def test_writes_from_another_process_are_picked_up(world):
    a = world.account(opening=0)
    one, two = LedgerService(), LedgerService()
    post(one, a, "pay:1", "recharge", 100)
    post(two, a, "pay:2", "recharge", 200)  # two's memory is empty; one's is now stale
    e = post(one, a, "pay:3", "recharge", 300)
    assert (e.seq, e.balance_after) == (4, 600)


def test_extra_condition_failing_writes_nothing(world):
    a = world.account(opening=0)
    seen = Event(Subject.account(a), "seen:1", "test", world.property_id, "2030-01-01T00:00:00.000000Z")
    assert estore.put_event(seen)  # a write record whose condition (event absent) will not hold

    with pytest.raises(WriteRefused) as e:
        LedgerService().post(extras=[AddEvent(seen)], account_id=a, entry_id="x:1", kind="recharge",
                             amount=100, cause="t", actor="t")
    assert [r.write for r in e.value.refused] == [AddEvent(seen)]
    assert LedgerService().balance(a) == 0
    assert len(LedgerService().entries(a)[0]) == 1


def test_extra_condition_holding_commits_together(world):
    a = world.account(opening=0)
    new = Event(Subject.account(a), "new:1", "test", world.property_id, "2030-01-01T00:00:00.000000Z", data={"n": 1})

    LedgerService().post(extras=[AddEvent(new)], account_id=a, entry_id="x:2", kind="recharge", amount=100,
                         cause="t", actor="t")
    assert LedgerService().balance(a) == 100
    assert estore.events_of(Subject.account(a)) == [new]


def test_entries_by_time_newest_first_with_range_and_paging(world):
    a = world.account(opening=0)
    t0 = datetime(2030, 1, 1, tzinfo=UTC)  # after the opening entry
    clock_values = iter(t0 + timedelta(hours=h) for h in range(100))
    ledger = LedgerService(clock=lambda: next(clock_values))
    for i in range(10):
        post(ledger, a, f"pay:{i}", "recharge", 100 + i)
    everything = ledger.entries(a, limit=100)[0]
    assert [e.seq for e in everything] == list(range(11, 0, -1))
    page1, cursor = ledger.entries(a, limit=4)
    page2, _ = ledger.entries(a, limit=4, cursor=cursor)
    assert [e.seq for e in page1 + page2] == list(range(11, 3, -1))
    window = ledger.entries(a, since="2030-01-01T02:00:00.000000Z", until="2030-01-01T04:00:00.000000Z",
                            newest_first=False)[0]
    assert [e.entry_id for e in window] == ["pay:2", "pay:3", "pay:4"]


def test_unknown_account(aws):
    with pytest.raises(NotFound) as e:
        LedgerService().post(account_id=uid("nope"), entry_id="e", kind="recharge", amount=1, cause="c", actor="a")
    assert e.value.code == "account_not_found" and e.value.status == 404
    with pytest.raises(NotFound):
        LedgerService().balance(uid("nope"))
    with pytest.raises(NotFound):
        LedgerService().entries(uid("nope"))
