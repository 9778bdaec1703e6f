"""The post-paid period bill (core/services/postpaid.py) against the emulator: readings rated
through the uplink consumer fill the monthly usage aggregates; the month's cost becomes the
bill's energy and water lines and leaves the ledger balance by an ADJUST_CREDIT "转入账单"
in the same transaction. A rerun changes nothing; a run that dies between two billings is
finished by the next one; a reading of 30 November delivered after November was billed goes
on December's bill, once. Expected amounts are hand-worked at the test plan's 1 yuan per
kWh and per m³ (0.01 kWh = 1 fen)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.domain.errors import Conflict
from core.services.ledger import LedgerService
from core.services.postpaid import Postpaid
from core.store import bills as bills_store
from infra.fakes.sitesim import SimMeter
from testkit.builders import Clock
from tests.chaos.conftest import Crash, Rig, crash_once

NOV_30_22H = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai


@pytest.fixture
def r(aws, monkeypatch):
    rig = Rig(monkeypatch, clock=Clock(NOV_30_22H))
    yield rig
    rig.held.clear()
    rig.take()  # leave the shared uplink queue empty for the tests after this one
    rig.held.clear()


def postpaid_room(r: Rig) -> tuple[str, str, str]:
    a = r.account(opening=0)
    r.control.configure_account(r.w.property_id, a.account_id, "admin:test", payment_mode="postpaid")
    power = r.meter(a)
    water = r.w.meter(a.account_id, kind="water")
    r.site.add(SimMeter(water, total=Decimal("50.00")))
    a.meters.append(water)
    r.read(minutes=0)  # first readings: the baselines
    r.deliver()
    return a.account_id, power, water


def entries(account_id: str) -> list:
    return LedgerService().store.all_entries(account_id)


def test_a_month_is_billed_once_and_a_late_reading_goes_on_the_next_bill(r):
    acct, power, water = postpaid_room(r)
    r.use(power, "3.00")
    r.use(water, "1.25")
    r.read(minutes=60)  # 23:00 on 30 November: 3.00 kWh and 1.25 m³
    r.deliver()
    r.use(power, "1.50")
    r.read(minutes=59)  # 23:59 on 30 November, delivered only after November is billed
    r.take()
    late, r.held = list(r.held), []
    assert LedgerService().balance(acct) == -425  # rated as a prepaid account would be

    r.clock.advance(hours=1)  # 00:59 on 1 December: November has closed
    pp = Postpaid(clock=r.clock)
    first = pp.bill_period(acct, "2026-11", "month-end")
    assert (first.status, first.billed) == ("billed", 425)
    bill = bills_store.get_bill(acct, "2026-11")
    assert sorted((ln.charge_id, ln.name, ln.amount) for ln in bill.lines) == [
        ("energy:2026-11.1:2026-11", "电费", 300), ("water:2026-11.1:2026-11", "水费", 125)]
    assert bill.total == 425 and bill.state == "draft"
    assert LedgerService().balance(acct) == 0  # what is owed now lives on the bill
    moved = [e for e in entries(acct) if e.entry_id.startswith("tobill:")]
    assert sorted((e.entry_id, e.kind, e.amount, e.memo) for e in moved) == [
        ("tobill:energy:2026-11.1", "adjust_credit", 300, "转入账单"),
        ("tobill:water:2026-11.1", "adjust_credit", 125, "转入账单")]

    # a rerun changes nothing
    count = len(entries(acct))
    again = pp.bill_period(acct, "2026-11", "month-end")
    assert (again.status, again.billed) == ("nothing", 0)
    assert len(entries(acct)) == count and bills_store.get_bill(acct, "2026-11").total == 425

    # the 23:59 reading arrives now: November's aggregate grows by 1.50, the ledger owes it
    r.held = late
    r.deliver()
    r.use(power, "2.00")
    r.read(minutes=60)  # 01:59 on 1 December (an interval across midnight counts on the later day)
    r.deliver()
    assert LedgerService().balance(acct) == -350
    # rerunning November does not grow November's bill; the late 1.50 waits for December's
    assert pp.bill_period(acct, "2026-11", "month-end").billed == 0
    assert bills_store.get_bill(acct, "2026-11").total == 425

    r.clock.now = datetime(2026, 12, 31, 16, 30, tzinfo=UTC)  # 00:30 on 1 January
    dec = pp.bill_period(acct, "2026-12", "month-end")
    assert dec.billed == 350
    bill = bills_store.get_bill(acct, "2026-12")
    assert sorted((ln.charge_id, ln.name, ln.amount) for ln in bill.lines) == [
        ("energy:2026-11.2:2026-12", "电费补计（2026-11）", 150), ("energy:2026-12.1:2026-12", "电费", 200)]
    assert LedgerService().balance(acct) == 0
    assert pp.bill_period(acct, "2026-12", "month-end").billed == 0
    assert LedgerService().verify(acct)["ok"]
    # every fen used is on exactly one bill: 3.00 + 1.25 + 1.50 + 2.00 yuan
    assert bills_store.get_bill(acct, "2026-11").total + bills_store.get_bill(acct, "2026-12").total == 775


def test_a_run_that_dies_between_two_billings_is_finished_by_the_next(r, monkeypatch):
    acct, power, water = postpaid_room(r)
    r.use(power, "2.00")
    r.use(water, "0.50")
    r.read(minutes=60)
    r.deliver()
    r.clock.advance(hours=3)
    state = crash_once(monkeypatch, LedgerService, "post", after=True)  # dies after the first billing's transaction
    with pytest.raises(Crash):
        Postpaid(clock=r.clock).bill_period(acct, "2026-11", "month-end")
    assert state["crashed"] == 1
    half = bills_store.get_bill(acct, "2026-11")
    assert half.total == 200 and len(half.lines) == 1  # energy went, water did not
    assert LedgerService().balance(acct) == -50

    done = Postpaid(clock=r.clock).bill_period(acct, "2026-11", "month-end")
    assert done.billed == 50
    bill = bills_store.get_bill(acct, "2026-11")
    assert bill.total == 250 == sum(ln.amount for ln in bill.lines)
    assert LedgerService().balance(acct) == 0 and LedgerService().verify(acct)["ok"]


def test_an_open_month_and_a_prepaid_account_are_not_billed(r):
    acct, power, _ = postpaid_room(r)
    r.use(power, "1.00")
    r.read(minutes=60)
    r.deliver()
    with pytest.raises(Conflict) as e:  # 23:00 on 30 November: November is still open
        Postpaid(clock=r.clock).bill_period(acct, "2026-11", "month-end")
    assert e.value.code == "period_open"
    prepaid = r.account(opening=1000)
    r.clock.advance(hours=2)
    assert Postpaid(clock=r.clock).bill_period(prepaid.account_id, "2026-11", "month-end").status == "skipped_prepaid"
    assert bills_store.get_bill(acct, "2026-11") is None and LedgerService().balance(acct) == -100
