from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.domain.errors import AccountClosed, InsufficientFunds, ValidationError
from core.domain.ledger import (
    ACCOUNT_CLOSED,
    CREDIT_KINDS,
    METERED_KINDS,
    NEVER_BELOW_ZERO,
    POSTABLE_KINDS,
    AccountState,
    PostingRequest,
    next_posted_at,
    plan_posting,
)

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def req(kind="energy", amount=100, entry_id="e1", **kw):
    return PostingRequest.build(
        account_id="a1", entry_id=entry_id, kind=kind, amount=amount, cause="test", actor="tester", **kw
    )


def state(balance=0, overdraft=0, version=1, status="OPEN", last=""):
    return AccountState("a1", balance, version, overdraft, status, last, "p1")


def test_credit_and_debit_signs():
    assert plan_posting(state(0), req("recharge", 500), NOW).amount == 500
    assert plan_posting(state(1000), req("energy", 300), NOW).amount == -300
    assert plan_posting(state(1000), req("energy", 300), NOW).balance_after == 700


def test_fees_may_use_the_overdraft_and_no_more():
    assert plan_posting(state(100, overdraft=500), req("fee", 600), NOW).balance_after == -500
    with pytest.raises(InsufficientFunds) as e:
        plan_posting(state(100, overdraft=500), req("adjust_debit", 601), NOW)
    assert e.value.details["floor"] == -500


@pytest.mark.parametrize("kind", ["energy", "water"])
def test_metered_usage_is_always_recorded_even_past_the_overdraft(kind):
    """Usage already delivered is a real debt; the overdraft is the cut-off line."""
    assert plan_posting(state(100, overdraft=500), req(kind, 10_000), NOW).balance_after == -9900


@pytest.mark.parametrize("kind", ["refund", "withdrawal"])
def test_money_out_never_goes_below_zero_even_with_overdraft(kind):
    assert plan_posting(state(300, overdraft=10_000), req(kind, 300), NOW).balance_after == 0
    with pytest.raises(InsufficientFunds):
        plan_posting(state(300, overdraft=10_000), req(kind, 301), NOW)


def test_credit_to_negative_balance_is_allowed():
    assert plan_posting(state(-5000), req("recharge", 100), NOW).balance_after == -4900


def test_closed_account_refuses():
    with pytest.raises(AccountClosed):
        plan_posting(state(100, status=ACCOUNT_CLOSED), req("recharge", 1), NOW)


def test_seq_follows_version():
    assert plan_posting(state(0, version=7), req("recharge", 1), NOW).seq == 8


def test_opening_is_not_postable():
    with pytest.raises(ValidationError) as e:
        req("opening", 100)
    assert e.value.code == "kind_not_postable"


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("entry_id", "", "id_empty"),
        ("entry_id", "   ", "id_empty"),
        ("entry_id", "has space", "id_invalid"),
        ("entry_id", "x" * 201, "id_invalid"),
        ("entry_id", None, "id_empty"),
        ("kind", "bonus", "kind_invalid"),
        ("amount", 1.5, "amount_not_integer"),
        ("amount", -3, "amount_not_positive"),
        ("amount", "10", "amount_not_integer"),
    ],
)
def test_validation_codes(field, value, code):
    fields = {"account_id": "a1", "entry_id": "e1", "kind": "energy", "amount": 1, "cause": "c", "actor": "x"}
    fields[field] = value
    with pytest.raises(ValidationError) as e:
        PostingRequest.build(**fields)
    assert e.value.code == code
    assert e.value.to_body()["error"]["code"] == code


def test_cause_and_actor_are_required():
    with pytest.raises(ValidationError):
        PostingRequest.build(account_id="a1", entry_id="e1", kind="energy", amount=1, cause="", actor="x")
    with pytest.raises(ValidationError):
        PostingRequest.build(account_id="a1", entry_id="e1", kind="energy", amount=1, cause="c", actor=None)


def test_occurred_at_needs_a_timezone_and_is_normalised_to_utc():
    with pytest.raises(ValidationError):
        req(occurred_at="2026-11-28T08:00:00")
    r = req(occurred_at="2026-11-28T16:00:00+08:00")
    assert r.occurred_at == "2026-11-28T08:00:00.000000Z"


def test_posting_times_strictly_increase_even_when_the_clock_does_not():
    first = next_posted_at("", NOW)
    second = next_posted_at(first, NOW - timedelta(seconds=5))  # clock stepped back
    third = next_posted_at(second, NOW - timedelta(seconds=5))
    assert first < second < third


@given(
    balance=st.integers(-10**7, 10**7),
    overdraft=st.integers(0, 10**6),
    kind=st.sampled_from(sorted(POSTABLE_KINDS)),
    amount=st.integers(1, 10**7),
)
def test_a_plan_is_either_refused_or_respects_its_floor(balance, overdraft, kind, amount):
    s = state(balance, overdraft)
    try:
        e = plan_posting(s, req(kind, amount), NOW)
    except InsufficientFunds:
        assert kind not in CREDIT_KINDS and kind not in METERED_KINDS
        floor = 0 if kind in NEVER_BELOW_ZERO else -overdraft
        assert balance - amount < floor
        return
    assert e.balance_after == balance + e.amount
    assert (e.amount > 0) == (kind in CREDIT_KINDS)
    if kind in NEVER_BELOW_ZERO:
        assert e.balance_after >= 0
    elif kind not in CREDIT_KINDS and kind not in METERED_KINDS:
        assert e.balance_after >= -overdraft
