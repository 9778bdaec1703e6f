"""Post-paid accounts (后付费, docs/billing.md): rated like prepaid ones, never cut for money,
no low-balance alarms. Hand-worked cases of the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import control as c
from core.domain import postpaid as pp
from core.domain import tenant_view as v
from core.domain.directory import require_payment_mode
from core.domain.errors import Conflict, ValidationError
from core.domain.ledger import AccountState, Entry, EntryKind
from core.services.control import decide_after

TUE_10 = datetime(2026, 11, 24, 2, tzinfo=UTC)  # Tuesday 10:00 Shanghai: no protected window
OPEN = c.ProtectionSettings(night=None, weekends=False, holidays=False)


def view(balance, *, postpaid, cut=c.CUT_NONE, due="", overdraft=0, restore=0, keep=False):
    return c.ControlView(balance, overdraft, keep, cut, due, restore, postpaid=postpaid)


def test_a_postpaid_account_at_minus_500_yuan_keeps_supply_where_a_prepaid_one_is_cut():
    prepaid = c.decide(view(-50000, postpaid=False), OPEN, TUE_10)
    assert (prepaid.cut_state, prepaid.trip_now) == (c.CUT_DONE, True)
    postpaid = c.decide(view(-50000, postpaid=True), OPEN, TUE_10)
    assert postpaid == c.ControlDecision(c.CUT_NONE)  # nothing to do, nothing changed


def test_a_cut_in_place_is_restored_when_the_account_turns_postpaid():
    # cut at -12.00 with restore line 5.00: a prepaid account stays cut until above 5.00
    assert c.decide(view(-1200, postpaid=False, cut=c.CUT_DONE, restore=500), OPEN, TUE_10).cut_state == c.CUT_DONE
    d = c.decide(view(-1200, postpaid=True, cut=c.CUT_DONE, restore=500), OPEN, TUE_10)
    assert (d.cut_state, d.restore_now, d.changed, d.reason) == (c.CUT_NONE, True, True, "postpaid")


def test_a_pending_cut_is_cancelled_when_the_account_turns_postpaid():
    due = "2026-11-24T14:00:00+00:00"
    d = c.decide(view(-100, postpaid=True, cut=c.CUT_PENDING, due=due), OPEN, TUE_10)
    assert (d.cut_state, d.changed, d.trip_now) == (c.CUT_NONE, True, False)


def test_back_to_prepaid_below_the_line_cuts_again():
    d = c.decide(view(-50000, postpaid=False, overdraft=10000), OPEN, TUE_10)
    assert d.trip_now and d.cut_state == c.CUT_DONE


def _state(balance: int, mode: str) -> AccountState:
    return AccountState("acct-pp", balance, 3, 0, property_id="p1",
                        control={"payment_mode": mode, "cut_state": "none", "alarm_state": {}})


def _debit(before: int, amount: int) -> Entry:
    return Entry("acct-pp", "use:m1:9", 4, EntryKind.ENERGY, -amount, before - amount, "reading", "ingest",
                 "2026-11-24T02:00:00.000000Z")


def test_no_low_balance_alarm_and_no_cut_for_a_postpaid_account_after_a_reading():
    # 60.00 -> -440.00 crosses the default levels 50.00 / 20.00 / 0.00 and the cut-off line 0
    changes, events, decision = decide_after(_state(6000, "prepaid"), _debit(6000, 50000), TUE_10, lambda p: OPEN)
    assert [e.type for e in events] == ["low_balance"] and decision.trip_now
    assert changes["cut_state"] == c.CUT_DONE
    changes, events, decision = decide_after(_state(6000, "postpaid"), _debit(6000, 50000), TUE_10, lambda p: OPEN)
    assert events == [] and changes == {} and not decision.trip_now and decision.cut_state == c.CUT_NONE


def test_the_tenant_reads_postpaid_as_the_reason_supply_stays_on():
    s = v.supply("none", "", -50000, 0, 0, False, postpaid=True)
    assert (s.state, s.text) == ("on", "正常供电") and s.reason.startswith("后付费")
    # a prepaid account at the same balance is told to pay before the cut
    assert v.supply("none", "", -50000, 0, 0, False).reason == "余额 -500.00 元低于断电线 0.00 元，请尽快充值以免停止供电"


@pytest.mark.parametrize("bad", ["", "post", "POSTPAID", None, 1, ["postpaid"]])
def test_payment_mode_is_prepaid_or_postpaid(bad):
    assert require_payment_mode("postpaid") == "postpaid" and require_payment_mode("prepaid") == "prepaid"
    with pytest.raises(ValidationError) as e:
        require_payment_mode(bad)
    assert e.value.code == "payment_mode_invalid"


# --- the period bill: what a run bills (core/domain/postpaid.py) --------------------------------


def usage(month, energy_fen=0, water_fen=0, kwh="0", m3="0"):
    cells = []
    if energy_fen:
        cells += [("electricity", Decimal(kwh) / 2, energy_fen // 2), ("electricity", Decimal(kwh) / 2,
                                                                       energy_fen - energy_fen // 2)]
    if water_fen:
        cells.append(("water", Decimal(m3), water_fen))
    return pp.month_usage(month, cells)


def test_a_closed_month_is_billed_once_per_utility_on_its_own_bill():
    # November: 123.45 kWh for 67.89 yuan (two bands) and 3.5 m³ of water for 14.00 yuan
    u = {"2026-11": usage("2026-11", 6789, 1400, "123.45", "3.5")}
    billings = pp.plan("2026-11", u, {})
    assert [(b.usage.source, b.n, b.amount, b.period, b.entry_id) for b in billings] == [
        ("energy", 1, 6789, "2026-11", "tobill:energy:2026-11.1"),
        ("water", 1, 1400, "2026-11", "tobill:water:2026-11.1")]
    charge = billings[0].charge("acct-1", "p1")
    assert (charge.charge_id, charge.name, charge.mode, charge.amount) == ("energy:2026-11.1:2026-11", "电费", "bill", 6789)
    assert charge.formula == "2026-11 用量 123.45 kWh，按电价方案计费合计 67.89 元"
    # billed already: a rerun plans nothing, even if a late reading grew the month since
    billed = {("energy", "2026-11"): pp.Billed(1, 6789), ("water", "2026-11"): pp.Billed(1, 1400)}
    assert pp.plan("2026-11", u, billed) == []
    assert pp.plan("2026-11", {"2026-11": usage("2026-11", 6939, 1400, "126.45", "3.5")}, billed) == []


def test_late_usage_of_a_billed_month_goes_on_the_next_bill():
    # November billed at 67.89; a 23:59 reading of 30 November (1.50 yuan) arrived after;
    # December used 2.00 yuan. The December run bills 2.00 for December and 1.50 for November.
    u = {"2026-11": usage("2026-11", 6939, 0, "126.45"), "2026-12": usage("2026-12", 200, 0, "2")}
    billed = {("energy", "2026-11"): pp.Billed(1, 6789)}
    billings = pp.plan("2026-12", u, billed)
    assert [(b.usage.month, b.n, b.amount, b.period) for b in billings] == [("2026-11", 2, 150, "2026-12"),
                                                                            ("2026-12", 1, 200, "2026-12")]
    late = billings[0].charge("acct-1", "p1")
    assert (late.charge_id, late.name) == ("energy:2026-11.2:2026-12", "电费补计（2026-11）")
    assert late.formula == "2026-11 迟到抄表补计：当月电费累计 69.39 元，已出账 67.89 元，本次 1.50 元"
    # a month never billed as post-paid (prepaid then) is not picked up by a later run
    assert pp.plan("2026-12", {"2026-10": usage("2026-10", 500), "2026-12": usage("2026-12", 200)}, {}) == [
        pp.Billing(usage("2026-12", 200)["energy"], 1, 200, 0, "2026-12")]
    # three months back is past the look-back: left in the ledger balance
    assert pp.plan("2027-02", {"2026-11": usage("2026-11", 7000)}, billed) == []


def test_only_a_closed_month_is_billed():
    end = datetime(2026, 11, 30, 16, tzinfo=UTC)  # 1 December 00:00 in Shanghai
    pp.require_closed("2026-11", end)
    with pytest.raises(Conflict) as e:
        pp.require_closed("2026-11", end - timedelta(microseconds=1))
    assert e.value.code == "period_open"
    with pytest.raises(Conflict):
        pp.require_closed("2026-11", end + timedelta(minutes=30), settle=timedelta(hours=1))
    for bad in ("2026-13", "2026-1", "26-11", "", None, "2026/11"):
        with pytest.raises(ValidationError):
            pp.parse_period(bad)
