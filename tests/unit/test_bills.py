"""Bills (账单) and late fees (滞纳金): hand-worked examples of the pure rules — status
transitions and derived statuses, the deduct/bill split at the overdraft line, payments'
checks and the late fee cap (docs/billing.md "Post-paid mode, bills, late fees, deposits")."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from core.domain import bills as b
from core.domain.bills import Bill, LateFeeRule
from core.domain.charges import Charge
from core.domain.errors import Conflict, ValidationError

DUE = date(2026, 5, 15)


def bill(**kw) -> Bill:
    return Bill(**{"account_id": "a-1", "period": "2026-04", "property_id": "p-1", "state": b.ISSUED,
                   "total": 100000, "paid": 0, "due_date": DUE, **kw})


# --- status --------------------------------------------------------------------------------------


def test_state_transitions_draft_confirmed_issued():
    draft = bill(state=b.DRAFT)
    assert b.next_state(draft, "confirm") == b.CONFIRMED
    assert b.next_state(replace(draft, state=b.CONFIRMED), "issue") == b.ISSUED
    with pytest.raises(Conflict):
        b.next_state(draft, "issue")  # confirm first
    with pytest.raises(Conflict):
        b.next_state(replace(draft, state=b.ISSUED), "confirm")
    with pytest.raises(Conflict) as e:
        b.next_state(replace(draft, total=0), "confirm")
    assert e.value.code == "bill_empty"
    with pytest.raises(ValidationError):
        b.next_state(draft, "delete")


@pytest.mark.parametrize("state, paid, today, status", [
    (b.DRAFT, 0, DUE + timedelta(days=30), b.DRAFT),  # not issued: never overdue
    (b.CONFIRMED, 0, DUE, b.CONFIRMED),
    (b.ISSUED, 0, DUE, b.ISSUED),  # on the due date: not yet overdue
    (b.ISSUED, 0, DUE + timedelta(days=1), b.OVERDUE),
    (b.ISSUED, 40000, DUE, b.PARTLY_PAID),
    (b.ISSUED, 40000, DUE + timedelta(days=1), b.OVERDUE),
    (b.ISSUED, 100000, DUE + timedelta(days=1), b.PAID),
])
def test_derived_status(state, paid, today, status):
    assert bill(state=state, paid=paid).status(today) == status


# --- the deduct split ------------------------------------------------------------------------------


@pytest.mark.parametrize("amount, balance, overdraft, split", [
    (2000, 5000, 0, (2000, 0)),  # enough
    (2000, 1000, 500, (1500, 500)),  # down to -5.00, the rest billed
    (2000, 1000, 0, (1000, 1000)),
    (2000, -600, 500, (0, 2000)),  # already below the line: all billed
    (2000, -500, 500, (0, 2000)),  # exactly on the line
])
def test_deduct_split_stops_at_the_overdraft_line(amount, balance, overdraft, split):
    assert b.deduct_split(amount, balance, overdraft) == split
    assert sum(split) == amount


# --- payments ---------------------------------------------------------------------------------------


def test_payment_checks():
    ok = bill(paid=30000)
    assert b.check_payment(ok, " R-001 ", 70000, "cash") == ("R-001", 70000, "cash")
    with pytest.raises(Conflict) as e:
        b.check_payment(ok, "R-001", 70001, "cash")
    assert e.value.code == "overpayment" and "700.00" in e.value.message
    with pytest.raises(Conflict):
        b.check_payment(bill(state=b.CONFIRMED), "R-001", 100, "cash")
    for pid, amount, method in (("", 100, "cash"), ("R 1", 100, "cash"), ("R1", 0, "cash"), ("R1", 1.5, "cash"),
                                ("R1", 100, "bitcoin")):
        with pytest.raises(ValidationError):
            b.check_payment(ok, pid, amount, method)


def test_bill_ids():
    assert b.bill_id_of("a-1", "2026-04") == "a-1:2026-04"
    assert b.parse_bill_id("a:b-1:2026-04") == ("a:b-1", "2026-04")
    for bad in ("a-1", "a-1:2026-4", ":2026-04", "a#1:2026-04", None):
        with pytest.raises(ValidationError):
            b.parse_bill_id(bad)


def test_a_late_fee_goes_on_the_bill_it_is_for():
    c = Charge("a-1", "p-1", "2026-06-02", "late_fee", "a-1:2026-04", 50, "滞纳金")
    assert c.charge_id == "late_fee:a-1:2026-04:2026-06-02"
    assert b.bill_period_of(c) == "2026-04"
    assert b.bill_period_of(Charge("a-1", "p-1", "2026-04", "item", "rent", 50, "租金")) == "2026-04"


# --- late fees ----------------------------------------------------------------------------------------


def run_days(rule: LateFeeRule, start: Bill, days: int) -> list[int]:
    """Each day's late fee, the bill taking each as a line (total and late fee total grow)."""
    out, current = [], start
    for i in range(1, days + 1):
        c = b.late_fee_for(rule, current, DUE + timedelta(days=i))
        out.append(c.amount if c else 0)
        if c:
            current = replace(current, total=current.total + c.amount, late_fee_total=current.late_fee_total + c.amount)
    return out


def test_daily_rate_late_fee_capped():
    # 0.5‰ of 1000.00 元 = 0.50 元 a day; cap 4.80 元: 9 days × 0.50 = 4.50, day 10: 0.30, then nothing
    rule = LateFeeRule(True, b.RATE, "0.5", 0, 480)
    assert run_days(rule, bill(), 12) == [50] * 9 + [30, 0, 0]


def test_fixed_late_fee_capped():
    # 2.00 元 a day, cap 5.00 元: 2.00, 2.00, 1.00, then nothing
    rule = LateFeeRule(True, b.FIXED_PER_DAY, "0", 200, 500)
    assert run_days(rule, bill(), 5) == [200, 200, 100, 0, 0]


def test_late_fee_on_the_unpaid_principal_rounded_half_up():
    # 0.5‰ of 333.33 元 (1000.00 − 666.67 paid) = 0.166665 元 = 16.6665 fen -> 17
    rule = LateFeeRule(True, b.RATE, "0.5", 0, 10000)
    c = b.late_fee_for(rule, bill(paid=66667), DUE + timedelta(days=1))
    assert c.amount == 17
    assert c.charge_id == "late_fee:a-1:2026-04:2026-05-16"
    assert c.inputs["principal"] == 33333


def test_no_late_fee_on_or_before_the_due_date_unissued_paid_or_disabled():
    rule = LateFeeRule(True, b.RATE, "0.5", 0, 10000)
    assert b.late_fee_for(rule, bill(), DUE) is None
    assert b.late_fee_for(rule, bill(state=b.CONFIRMED), DUE + timedelta(days=3)) is None
    assert b.late_fee_for(rule, bill(paid=100000), DUE + timedelta(days=3)) is None
    # the principal paid, the late fees not: no more late fees on late fees
    assert b.late_fee_for(rule, bill(total=100300, late_fee_total=300, paid=100000), DUE + timedelta(days=9)) is None
    assert b.late_fee_for(LateFeeRule(), bill(), DUE + timedelta(days=3)) is None


def test_late_fee_rule_input():
    r = b.check_late_fee_rule({"enabled": "on", "kind": "rate", "per_mille": "0.5", "cap": "50"})
    assert (r.per_mille, r.cap) == ("0.5", 5000)
    assert b.check_late_fee_rule({"enabled": ""}) == LateFeeRule()
    for bad in ({"enabled": "on", "kind": "rate", "per_mille": "0", "cap": "50"},
                {"enabled": "on", "kind": "rate", "per_mille": "0.5", "cap": "-1"},
                {"enabled": "on", "kind": "fixed", "fixed": "abc", "cap": "50"},
                {"enabled": "on", "kind": "weekly", "cap": "50"}):
        with pytest.raises(ValidationError):
            b.check_late_fee_rule(bad)
