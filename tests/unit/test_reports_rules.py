"""Report rules (core/domain/reports.py) on hand-worked figures."""

from decimal import Decimal

from core.domain.reports import (
    MONEY_CATEGORIES,
    Figures,
    bill_key,
    category,
    combine,
    compare,
    figures_of_summary,
    income_of,
    money_key,
    period_totals,
    previous_month,
    ratio,
    room_period,
    totals_delta,
)


def test_every_posting_has_a_money_key_in_the_categories():
    cats = {"rent-1": "rent", "pf": "property_fee"}
    cases = [
        (("recharge", "pay:4200", "order:R1", 5000), "recharge"),
        (("recharge", "cash:RC1", "receipt:RC1", 5000), "cash"),
        (("refund", "refund:X", "order:R1", -2000), "refund"),
        (("refund_reversal", "rr:X", "refund:X", 2000), "refund_reversal"),
        (("fee", "item:rent-1:2026-04", "charge:item:rent-1:2026-04", -100000), "fee:rent"),
        (("fee", "item:pf:2026-04", "charge:item:pf:2026-04", -20093), "fee:property_fee"),
        (("fee", "item:gone:2026-04", "charge:x", -1), "fee:other"),  # an item no longer known
        (("fee", "apportion:g1:2026-04", "charge:apportion:g1:2026-04", -3420), "shared"),
        (("fee", "late_fee:a:2026-04:2026-04-16", "charge:late", -50), "late_fee"),
        (("adjust_credit", "deposit:close", "deposit:m1", 100), "deposit"),
        (("adjust_credit", "adj:1", "admin", 100), "adjust_credit"),
        (("adjust_debit", "adj:2", "admin", -100), "adjust_debit"),
        (("opening", "open:a", "account:a", -300), "opening_debt"),
    ]
    for args, expected in cases:
        key = money_key(*args)
        assert category(key, cats) == expected, args
        assert expected in MONEY_CATEGORIES
    assert money_key("energy", "reading:m:4", "reading:m:4", -150) is None  # in the usage figures
    assert category(bill_key("item", "item:rent-1:2026-04"), cats) == "fee:rent"
    assert bill_key("energy", "energy:a:2026-04") == "postpaid"
    assert bill_key("apportion", "apportion:g:2026-04") == "shared"
    # ids may hold ':' (the id rule allows it): the period is the last part
    assert category(money_key("fee", "item:a:b:2026-04", "c", -1), {"a:b": "parking"}) == "fee:parking"


def test_a_summary_sums_meters_per_utility_and_band_and_names_categories():
    attrs = {
        "q#electricity#m1#peak": Decimal("3.5"), "f#electricity#m1#peak": Decimal(350),
        "q#electricity#m2#peak": Decimal("1.25"), "f#electricity#m2#peak": Decimal(125),
        "q#electricity#m1#valley": Decimal("2"), "f#electricity#m1#valley": Decimal(100),
        "q#water#w1#flat": Decimal("0.75"), "f#water#w1#flat": Decimal(75),
        "m#recharge": Decimal(10000), "m#item:pf": Decimal(3000), "b#item:rent-1": Decimal(100000),
        "ob": Decimal(-200), "cb": Decimal(6150), "v": Decimal(7),
    }
    f = figures_of_summary(attrs, {"pf": "property_fee", "rent-1": "rent"})
    assert f.quantity == {("electricity", "peak"): Decimal("4.75"), ("electricity", "valley"): Decimal(2),
                          ("water", "flat"): Decimal("0.75")}
    assert f.cost == {("electricity", "peak"): 475, ("electricity", "valley"): 100, ("water", "flat"): 75}
    assert f.posted == {"recharge": 10000, "fee:property_fee": 3000} and f.billed == {"fee:rent": 100000}
    assert (f.opening, f.closing, f.version) == (-200, 6150, 7)
    assert Figures.from_flat(f.flat()) == f  # what a rollup stores reads back the same
    r = room_period(f, property_id="p", building_id="B1", room_id="R1", account_id="a", room_name="101",
                    tenant_name="张三", period="2026-04")
    assert r.total_quantity("electricity") == Decimal("6.75") and r.total_cost("electricity") == 575
    assert list(r.quantity["electricity"]) == ["peak", "valley"]  # band order
    assert r.money == {"recharge": 10000, "fee:property_fee": 3000, "fee:rent": 100000}
    # income: 575 + 75 metered, rent 1000.00 (billed), fees 30.00 (deducted); a recharge is not income
    assert r.income() == {"electricity": 575, "water": 75, "rent": 100000, "fees": 3000, "shared": 0,
                          "total": 103650}


def test_totals_move_by_the_difference_and_count_a_room_once():
    old = Figures({("electricity", "flat"): Decimal("1.5")}, {("electricity", "flat"): 150}, {"recharge": 100}, {},
                  0, -50, 3)
    new = Figures({("electricity", "flat"): Decimal("2.5")}, {("electricity", "flat"): 250},
                  {"recharge": 100, "shared": 30}, {"fee:rent": 500}, 0, -180, 5)
    assert totals_delta(old, new) == {"q#electricity": Decimal(1), "f#electricity": 100, "m#shared": 30,
                                      "b#fee:rent": 500}
    assert totals_delta(None, old) == {"q#electricity": Decimal("1.5"), "f#electricity": 150, "m#recharge": 100,
                                       "rooms": 1}
    assert totals_delta(new, new) == {}
    t = period_totals("2026-04", "", [{"q#electricity": Decimal("1.5"), "f#electricity": 150, "m#recharge": 100,
                                       "rooms": 1},
                                      {"q#electricity": Decimal(1), "f#electricity": 100, "b#fee:rent": 500,
                                       "m#recharge": 20, "rooms": 2}])
    assert (t.rooms, t.quantity["electricity"], t.cost["electricity"], t.quantity["water"]) == (3, Decimal("2.5"),
                                                                                                  250, 0)
    assert t.money == {"recharge": 120, "fee:rent": 500}
    assert income_of(t.cost, t.money)["total"] == 750
    year = combine([old, Figures(), new])
    assert (year.opening, year.closing, year.posted["recharge"], year.cost[("electricity", "flat")]) == (0, -180, 200,
                                                                                                          400)


def test_ratios_and_months():
    assert ratio(110, 100) == Decimal("0.1000") and ratio(Decimal("2"), Decimal("3")) == Decimal("-0.3333")
    assert ratio(5, 0) is None
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-03", 12) == "2025-03"
    assert previous_month("2026-12", -1) == "2027-01"
    this = period_totals("2026-04", "B1", [{"q#electricity": Decimal(120), "f#electricity": 12000}])
    prev = period_totals("2026-03", "B1", [{"q#electricity": Decimal(100), "f#electricity": 10000}])
    none = period_totals("2025-04", "B1", [])
    row = compare(this, prev, none)["utilities"]["electricity"]
    assert (row["mom_quantity"], row["mom_cost"], row["yoy_quantity"]) == (Decimal("0.2000"), Decimal("0.2000"), None)
