"""Move-out settlement rules (core/domain/settlement.py), every figure worked by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from core.domain.charge_items import AccountRef, ItemVersion, RoomRef
from core.domain.errors import ValidationError
from core.domain.settlement import (
    OpenBill,
    charge_ids_to_check,
    check_move_out_day,
    check_reading,
    move_in_charges,
    move_out_items,
    offset,
    transfer_move_in,
)

P = "p1"
ROOM = RoomRef("B1", "R101", "85.50", "101")
ACCT = AccountRef("a1", P)


def rent(**kw) -> ItemVersion:
    base = dict(property_id=P, item_id="rent", version=1, effective_from=date(2026, 1, 1), name="租金",
                category="rent", basis="fixed", price=300000, cycle="month", start=date(2026, 1, 1), mode="deduct")
    return ItemVersion(**{**base, **kw})


def fee_quarter() -> ItemVersion:
    return ItemVersion(P, "pf", 1, date(2026, 1, 1), "物业费", "property_fee", "area", 235, "quarter", date(2026, 1, 1))


# --- charge items at move-out ----------------------------------------------------------------


def test_a_month_deducted_in_full_gives_back_the_unused_days():
    # 3000.00 yuan/month, out on 10 March: 1..10 March = 10 of 31 days
    # due = 300000 × 10 / 31 = 96774.19 -> 96774 fen; taken 300000 -> back 203226
    [a] = move_out_items([rent()], ROOM, ACCT, date(2026, 3, 10), "2026-03", {"item:rent:2026-03": 300000})
    assert (a.period, a.applied, a.due, a.credit, a.to_charge) == ("2026-03", 300000, 96774, 203226, 0)
    assert a.credit_id == "unused:rent:2026-03"
    assert "退还 2032.26 元" in a.text()


def test_a_month_not_charged_yet_is_charged_to_the_day_under_the_month_end_id():
    [a] = move_out_items([rent()], ROOM, ACCT, date(2026, 3, 10), "2026-03", {})
    assert (a.applied, a.to_charge, a.credit) == (None, 96774, 0)
    assert a.charge.charge_id == "item:rent:2026-03" == a.charge_id
    assert a.charge.mode == "deduct" and a.charge.amount == 96774
    assert "10/31 天" in a.charge.formula


def test_a_quarter_by_area_is_prorated_over_the_quarter_days():
    # 85.50 m² × 2.35 = 200.925 yuan/quarter, charged 20093 fen (half up) in January;
    # out on 14 Feb: 1 Jan..14 Feb = 31 + 14 = 45 of 90 days (Q1 2026)
    # due = 20092.5 × 45/90 = 10046.25 -> 10046; back 20093 - 10046 = 10047
    ids = charge_ids_to_check([fee_quarter()], date(2026, 2, 14), "2026-02")
    assert ids == ["item:pf:2026-01", "item:pf:2026-02"]
    [a] = move_out_items([fee_quarter()], ROOM, ACCT, date(2026, 2, 14), "2026-02", {"item:pf:2026-01": 20093})
    assert (a.period, a.due, a.credit) == ("2026-01", 10046, 10047)


def test_a_month_charged_in_advance_comes_back_whole():
    # out on 31 March (the whole of March used), April already deducted by month-end on 1 April
    adj = move_out_items([rent()], ROOM, ACCT, date(2026, 3, 31), "2026-04",
                         {"item:rent:2026-03": 300000, "item:rent:2026-04": 300000})
    by = {a.period: a for a in adj}
    assert (by["2026-03"].due, by["2026-03"].credit) == (300000, 0)
    assert (by["2026-04"].due, by["2026-04"].credit, by["2026-04"].to_charge) == (0, 300000, 0)


def test_an_item_ended_before_the_move_out_and_a_one_off_are_left_alone():
    ended = rent(end=date(2026, 2, 28))
    once = ItemVersion(P, "key", 1, date(2026, 1, 1), "门卡", "other", "fixed", 5000, "once", date(2026, 1, 5))
    assert move_out_items([ended, once], ROOM, ACCT, date(2026, 3, 10), "2026-03", {}) == []


def test_move_in_starts_each_item_from_the_day():
    # in on 22 March: 22..31 = 10 of 31 days -> 96774; the quarter from 22 March: 10 of 90 days
    # of 200.925 yuan = 22.325 -> 2233 fen (half up of 2232.5)
    charges = {c.source_id: c for c in move_in_charges([rent(), fee_quarter()], ROOM, ACCT, date(2026, 3, 22))}
    assert charges["rent"].amount == 96774 and charges["rent"].charge_id == "item:rent:2026-03"
    assert charges["pf"].amount == 2233 and charges["pf"].charge_id == "item:pf:2026-03"


def test_a_transfer_charges_the_incoming_tenant_from_the_next_day():
    out_day = date(2026, 3, 10)
    new_in = transfer_move_in(out_day)
    assert new_in == date(2026, 3, 11)
    [old] = move_out_items([rent()], ROOM, ACCT, out_day, "2026-03", {})
    [new] = move_in_charges([rent()], ROOM, AccountRef("a2", P), new_in)
    # 10 days + 21 days = the 31 of March, each day charged once: 96774 + 203226 = 300000
    assert old.to_charge == 96774 and new.amount == 203226


# --- money -------------------------------------------------------------------------------------


def test_a_deposit_larger_than_what_is_owed_is_refunded_in_part():
    # balance -50.00, no bills, deposit 100.00: 50.00 applied, 50.00 refunded, nothing else
    o = offset(-5000, [], 10000)
    assert (o.deposit_applied, o.deposit_refunded, o.refund, o.arrears, o.still_owed) == (5000, 5000, 0, 0, 0)
    assert o.refund_total == 5000


def test_a_deposit_smaller_than_what_is_owed_leaves_arrears_on_the_final_bill():
    # balance -80.00, a bill 100.00 open, deposit 50.00: the deposit is all applied,
    # balance -30.00 -> arrears 30.00; owed afterwards 100.00 + 30.00 = 130.00 = 180.00 - 50.00
    o = offset(-8000, [OpenBill("a1:2026-02", "2026-02", 10000)], 5000)
    assert (o.deposit_applied, o.deposit_refunded, o.bill_payments, o.refund, o.arrears) == (5000, 0, (), 0, 3000)
    assert o.still_owed == 13000


def test_a_positive_balance_pays_the_oldest_bills_first_then_is_refunded():
    # balance 250.00, bills 2026-01 100.00 and 2026-02 120.00, deposit 30.00:
    # net = 250 - 220 = +30 -> no deposit needed (30.00 refunded); pays 100 + 120; refund 30.00
    o = offset(25000, [OpenBill("a1:2026-02", "2026-02", 12000), OpenBill("a1:2026-01", "2026-01", 10000)], 3000)
    assert o.bill_payments == (("a1:2026-01", 10000), ("a1:2026-02", 12000))
    assert (o.deposit_applied, o.deposit_refunded, o.refund, o.arrears, o.still_owed) == (0, 3000, 3000, 0, 0)


def test_the_deposit_tops_up_a_balance_short_of_the_bills():
    # balance 200.00, bills 300.00, deposit 50.00: 50.00 applied, 250.00 paid, 50.00 still owed
    o = offset(20000, [OpenBill("a1:2026-03", "2026-03", 30000)], 5000)
    assert (o.deposit_applied, o.bill_payments, o.refund, o.arrears, o.still_owed) == (5000, (("a1:2026-03", 25000),),
                                                                                        0, 0, 5000)


@pytest.mark.parametrize("balance,bills,held", [(0, [], 0), (123, [7, 9], 50), (-999, [1000], 0), (500, [], 20),
                                                (-1, [], 1), (10_000, [3, 4, 5], 0)])
def test_the_books_always_balance(balance, bills, held):
    o = offset(balance, [OpenBill(f"b{i}", f"2026-0{i + 1}", x) for i, x in enumerate(bills)], held)
    assert balance + o.deposit_applied - sum(a for _, a in o.bill_payments) - o.refund + o.arrears == 0
    assert o.deposit_applied + o.deposit_refunded == held
    assert o.refund == 0 or o.arrears == 0


# --- input ---------------------------------------------------------------------------------------


def test_an_entered_reading_is_checked():
    last, kw = Decimal("1200.00"), Decimal("10")
    assert check_reading("1210.5", last, kw, 2.0, "止码", "r") == Decimal("1210.5")
    with pytest.raises(ValidationError) as e:
        check_reading("1199.99", last, kw, 2.0, "止码", "r")
    assert e.value.code == "reading_below_last"
    with pytest.raises(ValidationError) as e:  # 10 kW × 2 h = at most 20 kWh more
        check_reading("1220.01", last, kw, 2.0, "止码", "r")
    assert e.value.code == "reading_too_high"
    for bad in ("abc", "-1", "1.234", "NaN"):
        with pytest.raises(ValidationError):
            check_reading(bad, last, kw, 2.0, "止码", "r")


def test_a_move_out_day_is_between_opening_and_today():
    today = date(2026, 3, 10)
    assert check_move_out_day(date(2026, 3, 1), date(2026, 1, 1), today) == date(2026, 3, 1)
    with pytest.raises(ValidationError):
        check_move_out_day(date(2026, 3, 11), date(2026, 1, 1), today)
    with pytest.raises(ValidationError):
        check_move_out_day(date(2025, 12, 31), date(2026, 1, 1), today)
