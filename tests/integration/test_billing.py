"""Charge items, bills, deductions, counter payments and late fees against the emulated
DynamoDB (docs/billing.md): applying twice changes nothing, a deduction stops at the
overdraft line and the rest becomes a bill line in the same transaction, a run that
crashed between two charges converges when rerun, a bill's lines always sum to its total.

Expected amounts are worked by hand in each test (rooms of testkit World are 30.00 m²)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.domain.charges import Charge
from core.domain.errors import Conflict, IdempotencyConflict, NotFound
from core.services import charge_items
from core.services.bills import Bills
from core.services.control import Control
from core.services.ledger import LedgerService
from core.store import bills as bstore
from testkit.builders import Clock, World

T0 = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # 09:00 on 2026-04-01 in Shanghai


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def service(aws, clock):
    return Bills(Control(LedgerService(clock=clock), clock=clock), clock=clock)


def charge(w: World, account: str, source_id: str, amount: int, mode: str = "bill", period: str = "2026-04",
           name: str = "物业费") -> Charge:
    return Charge(account, w.property_id, period, "item", source_id, amount, name, formula=f"{amount} 分", mode=mode)


def lines_sum(account: str, period: str) -> tuple[int, int, int]:
    b = bstore.get_bill(account, period)
    return b.total, sum(ln.amount for ln in b.lines), len(b.lines)


def test_applying_twice_is_applying_once(world, service):
    a = world.account(opening=0)
    cs = [charge(world, a, "fee", 20093), charge(world, a, "rent", 300000, name="租金")]
    first = service.apply_charges(cs, actor="test")
    assert [r.status for r in first] == ["billed", "billed"]
    assert first[0].bill_id == f"{a}:2026-04"
    again = service.apply_charges(cs, actor="test")
    assert [r.status for r in again] == ["duplicate", "duplicate"]
    assert [r.billed for r in again] == [0, 0]
    assert lines_sum(a, "2026-04") == (320093, 320093, 2)
    b = service.bill(f"{a}:2026-04")
    assert (b.state, b.property_id, b.room_id, b.building_id) == ("draft", world.property_id, "R001", "B1")


def test_the_same_charge_id_with_another_amount_is_a_conflict_and_changes_nothing(world, service):
    a = world.account()
    service.apply_charges([charge(world, a, "fee", 1000)], actor="test")
    r = service.apply_charges([charge(world, a, "fee", 1200)], actor="test")[0]
    assert r.status == "conflict"
    assert lines_sum(a, "2026-04") == (1000, 1000, 1)


def test_deduct_with_enough_money_is_a_fee_posting(world, service):
    a = world.account(opening=5000)
    r = service.apply_charges([charge(world, a, "svc", 2000, mode="deduct")], actor="test")[0]
    assert (r.status, r.deducted, r.billed, r.bill_id) == ("deducted", 2000, 0, None)
    ledger = LedgerService()
    assert ledger.balance(a) == 3000
    e = ledger.store.get_entry(a, "item:svc:2026-04")
    assert (e.kind, e.amount) == ("fee", -2000)
    assert bstore.get_bill(a, "2026-04") is None
    again = service.apply_charges([charge(world, a, "svc", 2000, mode="deduct")], actor="test")[0]
    assert again.status == "duplicate"
    assert ledger.balance(a) == 3000 and ledger.verify(a)["ok"]


def test_deduct_shortfall_below_the_overdraft_line_becomes_a_bill_line(world, service):
    # balance 10.00, overdraft 5.00: FEE takes 15.00 (down to -5.00), 5.00 goes on the bill
    a = world.account(opening=1000, overdraft=500)
    r = service.apply_charges([charge(world, a, "svc", 2000, mode="deduct")], actor="test")[0]
    assert (r.status, r.deducted, r.billed) == ("split", 1500, 500)
    ledger = LedgerService()
    assert ledger.balance(a) == -500
    assert ledger.store.get_entry(a, "item:svc:2026-04").amount == -1500
    b = service.bill(f"{a}:2026-04")
    assert [(ln.charge_id, ln.amount, ln.note) for ln in b.lines] == [("item:svc:2026-04", 500, "预付余额不足：已从余额扣 15.00 元，差额 5.00 元转入账单")]
    assert b.total == 500
    # rerun: nothing moves
    again = service.apply_charges([charge(world, a, "svc", 2000, mode="deduct")], actor="test")[0]
    assert again.status == "duplicate"
    assert ledger.balance(a) == -500 and ledger.verify(a)["ok"]
    assert lines_sum(a, "2026-04") == (500, 500, 1)


def test_deduct_below_the_line_already_is_billed_whole(world, service):
    a = world.account(opening=0, overdraft=0)
    r = service.apply_charges([charge(world, a, "svc", 2000, mode="deduct")], actor="test")[0]
    assert (r.status, r.deducted, r.billed) == ("billed", 0, 2000)
    assert LedgerService().balance(a) == 0
    assert LedgerService().store.get_entry(a, "item:svc:2026-04") is None
    # money arrives later: the rerun must not take it again
    LedgerService().post(account_id=a, entry_id="pay:test-1", kind="recharge", amount=9000, cause="t", actor="t")
    assert service.apply_charges([charge(world, a, "svc", 2000, mode="deduct")], actor="test")[0].status == "duplicate"
    assert LedgerService().balance(a) == 9000
    assert lines_sum(a, "2026-04") == (2000, 2000, 1)


def test_a_run_that_crashed_between_two_charges_converges_on_rerun(world, service):
    # the run applies rent (bill) then a service fee (deduct); it died after the first
    a = world.account(opening=1000)
    rent, svc = charge(world, a, "rent", 300000, name="租金"), charge(world, a, "svc", 800, mode="deduct")
    service.apply_charges([rent], actor="month-end")  # ... crash
    results = service.apply_charges([rent, svc], actor="month-end")  # the rerun
    assert [r.status for r in results] == ["duplicate", "deducted"]
    assert LedgerService().balance(a) == 200
    assert lines_sum(a, "2026-04") == (300000, 300000, 1)
    assert [r.status for r in service.apply_charges([rent, svc], actor="month-end")] == ["duplicate", "duplicate"]


def test_running_a_period_from_charge_items_twice_changes_nothing(world, service):
    a1, a2 = world.account(opening=100_000), world.account(opening=0)
    charge_items.create(world.property_id, {"item_id": "fee", "name": "物业费", "category": "property_fee",
                                            "basis": "area", "price": "2.35", "cycle": "month", "start": "2026-04-10",
                                            "mode": "bill", "due_days": 10}, "admin-1")
    charge_items.create(world.property_id, {"item_id": "svc", "name": "服务费", "category": "service_fee",
                                            "basis": "fixed", "price": "30", "cycle": "month", "start": "2026-01-01",
                                            "mode": "deduct", "scope": "room", "scope_ids": "B1/R001"}, "admin-1")
    preview = charge_items.preview(world.property_id, "2026-04")
    # 30.00 m² × 2.35 × 21/30 = 49.35 元 for each room; 30.00 元 deducted from R001 only
    assert [(r.account_id, [(c.source_id, c.amount) for c in r.charges]) for r in preview.rooms] == [
        (a1, [("fee", 4935), ("svc", 3000)]), (a2, [("fee", 4935)])]
    _, results = charge_items.run(world.property_id, "2026-04", "admin-1", service)
    assert sorted(r.status for r in results) == ["billed", "billed", "deducted"]
    _, again = charge_items.run(world.property_id, "2026-04", "admin-1", service)
    assert {r.status for r in again} == {"duplicate"}
    assert LedgerService().balance(a1) == 97000
    b = service.bill(f"{a2}:2026-04")
    assert (b.total, b.due_date) == (4935, date(2026, 4, 11))


def test_counter_payment_idempotent_partly_paid_and_overpayment_refused(world, service, clock):
    a = world.account()
    service.apply_charges([charge(world, a, "rent", 100000, name="租金")], actor="test", due=date(2026, 4, 15))
    bill_id = f"{a}:2026-04"
    with pytest.raises(Conflict):  # not issued yet
        service.record_payment(bill_id, "R-001", 30000, "cash", "admin-1")
    service.transition(world.property_id, bill_id, "confirm", "admin-1")
    service.transition(world.property_id, bill_id, "issue", "admin-1")
    first = service.record_payment(bill_id, "R-001", 30000, "cash", "admin-1")
    again = service.record_payment(bill_id, "R-001", 30000, "cash", "admin-1")
    assert (first.duplicate, again.duplicate) == (False, True)
    b = service.bill(bill_id)
    assert (b.paid, len(b.payments), b.status(date(2026, 4, 10))) == (30000, 1, "partly_paid")
    assert b.status(date(2026, 4, 16)) == "overdue"
    with pytest.raises(IdempotencyConflict):
        service.record_payment(bill_id, "R-001", 20000, "cash", "admin-1")
    with pytest.raises(Conflict) as e:
        service.record_payment(bill_id, "R-002", 70001, "transfer", "admin-1")
    assert e.value.code == "overpayment" and "700.00" in e.value.message
    service.record_payment(bill_id, "R-002", 70000, "transfer", "admin-1")
    b = service.bill(bill_id)
    assert (b.paid, b.status(date(2026, 5, 1))) == (100000, "paid")
    assert sum(p.amount for p in b.payments) == b.paid


def test_another_propertys_bill_is_not_found(world, service):
    a = world.account()
    service.apply_charges([charge(world, a, "rent", 100, name="租金")], actor="test")
    with pytest.raises(NotFound):
        service.bill(f"{a}:2026-04", "p-someone-else")
    with pytest.raises(NotFound):
        service.transition("p-someone-else", f"{a}:2026-04", "confirm", "x")


def test_late_fees_posted_once_per_day_up_to_the_cap(world, service):
    # 1000.00 元 due 2026-04-15; 0.5‰ a day = 0.50 元, cap 1.20 元: 0.50, 0.50, 0.20, then nothing
    a = world.account()
    charge_items.set_late_fee_rule(world.property_id, {"enabled": "on", "kind": "rate", "per_mille": "0.5",
                                                       "cap": "1.20"}, "admin-1")
    service.apply_charges([charge(world, a, "rent", 100000, name="租金")], actor="test", due=date(2026, 4, 15))
    bill_id = f"{a}:2026-04"
    service.transition(world.property_id, bill_id, "confirm", "admin-1")
    service.transition(world.property_id, bill_id, "issue", "admin-1")
    assert service.run_late_fees(world.property_id, date(2026, 4, 15)) == []  # the due date itself
    for day, fee in ((16, 50), (17, 50), (18, 20), (19, None)):
        for _ in range(2):  # twice a day: once
            out = service.run_late_fees(world.property_id, date(2026, 4, day))
        if fee is None:
            assert out == []
        else:
            assert [(r.charge_id, r.status) for r in out] == [(f"late_fee:{bill_id}:2026-04-{day}", "duplicate")]
    b = service.bill(bill_id)
    assert [ln.amount for ln in b.lines if ln.source == "late_fee"] == [50, 50, 20]
    assert (b.total, b.late_fee_total) == (100120, 120)
    assert b.total == sum(ln.amount for ln in b.lines)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 500_000),
                          st.sampled_from(["bill", "deduct"])), min_size=1, max_size=8))
def test_a_bills_lines_always_sum_to_its_total(world, service, ops):
    """Any sequence of charges (ids repeating, some with other amounts, some deducted):
    Σ lines = total, and every line's amount plus its FEE entry is its charge's amount."""
    a = world.account(opening=100_000, overdraft=1000)
    first: dict[str, int] = {}
    for source_id, amount, mode in ops:
        c = charge(world, a, source_id, amount, mode=mode)
        r = service.apply_charges([c], actor="prop")[0]
        if source_id in first:
            assert r.status == ("duplicate" if amount == first[source_id] else "conflict")
        else:
            assert r.status in ("billed", "deducted", "split")
            first[source_id] = amount
    b = bstore.get_bill(a, "2026-04")
    if b is not None:
        assert b.total == sum(ln.amount for ln in b.lines) and b.line_count == len(b.lines)
    ledger = LedgerService()
    for source_id, amount in first.items():
        e = ledger.store.get_entry(a, f"item:{source_id}:2026-04")
        line = bstore.get_line(a, "2026-04", f"item:{source_id}:2026-04")
        assert (-e.amount if e else 0) + (line.amount if line else 0) == amount
    assert ledger.verify(a)["ok"]
