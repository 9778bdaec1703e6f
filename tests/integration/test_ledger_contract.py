"""One contract, two ledger repositories: the in-memory one the unit tests use
(testkit.fakes) must answer a posting as the DynamoDB one does, or the unit tests prove
nothing."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from core.bootstrap import Repositories
from core.domain.events import Event, Subject
from core.domain.ledger import PostingRequest, plan_posting
from core.domain.writes import AddEvent
from testkit.builders import World, uid
from testkit.fakes import InMemoryStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)  # after any opening entry


@pytest.fixture(params=["memory", "dynamodb"])
def repos(request) -> tuple[Repositories, str, str]:
    """(repositories, an account with 10.00 yuan, its property)."""
    if request.param == "memory":
        db = InMemoryStore()
        db.open("a1", 1000, property_id="p1")
        return db.repos, "a1", "p1"
    world = World()
    return Repositories.real(), world.account(opening=1000), world.property_id


def planned(repo, account_id: str, entry_id: str, amount: int, state=None):
    state = state or repo.load_state(account_id)
    req = PostingRequest.build(account_id=account_id, entry_id=entry_id, kind="recharge", amount=amount, cause="c",
                               actor="t")
    return plan_posting(state, req, NOW), state


def test_applied_then_duplicate_then_stale(repos):
    r, account, _ = repos
    entry, before = planned(r.ledger, account, "pay:1", 250)
    assert r.ledger.commit(entry, before).status == "applied"
    assert (r.ledger.load_state(account).balance, r.ledger.load_state(account).version) == (1250, 2)
    assert r.ledger.get_entry(account, "pay:1") == entry
    again = r.ledger.commit(entry, before)
    assert (again.status, again.entry) == ("duplicate", entry)
    other, _ = planned(r.ledger, account, "pay:2", 100, state=before)  # planned on version 1
    stale = r.ledger.commit(other, before)
    assert (stale.status, stale.state.version, stale.state.balance) == ("stale", 2, 1250)


def test_missing_account(repos):
    r, account, _ = repos
    entry, state = planned(r.ledger, account, "pay:1", 100)
    ghost = uid("ghost")
    assert r.ledger.commit(replace(entry, account_id=ghost), replace(state, account_id=ghost)).status == "missing"


def test_a_refused_write_record_cancels_the_posting_and_comes_back(repos):
    r, account, property_id = repos
    event = Event(Subject.account(account), "contract:1", "test", property_id, "2030-01-01T00:00:00.000000Z",
                  message="测试", data={"n": 1})
    entry, state = planned(r.ledger, account, "pay:1", 100)
    assert r.ledger.commit(entry, state, [AddEvent(event)]).status == "applied"
    assert r.events.events_of(Subject.account(account)) == [event]
    second, state = planned(r.ledger, account, "pay:2", 100)
    outcome = r.ledger.commit(second, state, [AddEvent(event)])
    assert (outcome.status, [x.write for x in outcome.refused]) == ("extra_failed", [AddEvent(event)])
    assert r.ledger.get_entry(account, "pay:2") is None and r.ledger.load_state(account).balance == 1100
