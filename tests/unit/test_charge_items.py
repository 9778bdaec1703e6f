"""Charge items (费用项, docs/billing.md "Charge items"): hand-worked examples of the pure
rules — area × price rounding, proration of the first and last period, quarter and year
proration, version selection, overlap refusal and bad input."""

from __future__ import annotations

from datetime import date

import pytest

from core.domain import charge_items as ci
from core.domain.charge_items import AccountRef, RoomRef, charges_for
from core.domain.errors import ValidationError

P = "p-test"
ROOM = RoomRef("B1", "R101", "85.50", "101")
ACCOUNT = AccountRef("a-101", P)


def version(item_id="rent", version=1, **kw) -> ci.ItemVersion:
    raw = {"name": "租金", "category": "rent", "basis": "fixed", "price": 300000, "cycle": "month",
           "start": "2026-01-01", "mode": "bill", "due_days": 10, **kw}
    return ci.check_version(raw, property_id=P, item_id=item_id, version=version)


def one(vs, period, room=ROOM):
    out = charges_for(vs if isinstance(vs, list) else [vs], room, ACCOUNT, period)
    assert len(out) <= 1
    return out[0] if out else None


# --- area × price -------------------------------------------------------------------------------


def test_area_times_price_rounds_half_up_to_the_fen():
    # 85.50 m² × 2.35 元/m² = 200.925 元 = 20092.5 fen -> 20093 fen (half up)
    c = one(version("fee", category="property_fee", name="物业费", basis="area", price="2.35"), "2026-03")
    assert c.amount == 20093
    assert c.formula == "85.50 m² × 2.35 元/m²/月 = 200.93 元"
    assert c.charge_id == "item:fee:2026-03"
    assert c.inputs["area_m2"] == "85.50"
    # 85.49 m² × 235 fen = 20090.15 fen -> 20090
    c = one(version("fee", category="property_fee", name="物业费", basis="area", price=235), "2026-03",
            RoomRef("B1", "R101", "85.49"))
    assert c.amount == 20090


def test_unit_price_times_quantity():
    # 2.50 units × 150.00 元 = 375.00 元
    c = one(version("park", category="parking", name="停车费", basis="quantity", price="150", quantity="2.5"), "2026-03")
    assert c.amount == 37500


# --- proration ------------------------------------------------------------------------------------


def test_first_partial_month_prorated_by_days():
    # starts 2026-04-10: April has 30 days, in use 10..30 = 21 days; 3000.00 × 21/30 = 2100.00 元
    v = version(start="2026-04-10")
    assert one(v, "2026-03") is None
    c = one(v, "2026-04")
    assert c.amount == 210000
    assert c.inputs["days_in_use"] == 21 and c.inputs["days_in_cycle"] == 30
    assert "× 21/30 天" in c.formula
    assert one(v, "2026-05").amount == 300000


def test_first_partial_month_on_area_rounds_once():
    # 85.50 × 235 × 21/30 = 14064.75 fen -> 14065 (one rounding of the exact amount)
    v = version("fee", category="property_fee", name="物业费", basis="area", price=235, start="2026-04-10")
    assert one(v, "2026-04").amount == 14065


def test_last_partial_month_prorated_by_days_end_inclusive():
    # ends 2026-06-17: June 1..17 = 17 of 30 days; 3000.00 × 17/30 = 1700.00 元; July nothing
    v = version(end="2026-06-17")
    assert one(v, "2026-05").amount == 300000
    assert one(v, "2026-06").amount == 170000
    assert one(v, "2026-07") is None
    # 85.50 × 235 × 17/30 = 11385.75 -> 11386
    a = version("fee", category="property_fee", name="物业费", basis="area", price=235, end="2026-06-17")
    assert one(a, "2026-06").amount == 11386


def test_proration_half_fen_goes_up():
    # 100.01 元 × 15/30 = 50.005 元 = 5000.5 fen -> 5001 (not banker's 5000)
    v = version(price=10001, start="2026-04-16")
    assert one(v, "2026-04").amount == 5001


def test_both_ends_in_one_month():
    # 2026-02-10 .. 2026-02-20: 11 of 28 days; 2800.00 × 11/28 = 1100.00 元
    v = version(price=280000, start="2026-02-10", end="2026-02-20")
    assert one(v, "2026-02").amount == 110000


def test_quarter_prorated_by_days_and_charged_where_the_item_starts():
    # Q1 2026 = 31 + 28 + 31 = 90 days; from 2026-02-16: 13 + 31 = 44 days;
    # 600.00 × 44/90 = 293.333 元 -> 29333 fen, on period 2026-02; Q2 in full on 2026-04
    v = version("q", category="service_fee", name="服务费", price=60000, cycle="quarter", start="2026-02-16")
    assert one(v, "2026-01") is None
    c = one(v, "2026-02")
    assert c.amount == 29333
    assert (c.inputs["days_in_use"], c.inputs["days_in_cycle"]) == (44, 90)
    assert one(v, "2026-03") is None
    assert one(v, "2026-04").amount == 60000
    assert one(v, "2026-05") is None


def test_last_quarter_prorated():
    # Q3 2026 = 31 + 31 + 30 = 92 days; to 2026-08-15: 31 + 15 = 46 days; 600.00 × 46/92 = 300.00
    v = version("q", category="service_fee", name="服务费", price=60000, cycle="quarter", end="2026-08-15")
    assert one(v, "2026-07").amount == 30000


def test_year_prorated_in_a_leap_year():
    # 2028 has 366 days; from 2028-07-01: 184 days; 1200.00 × 184/366 = 603.2787 元 -> 60328 fen
    v = version("y", category="garbage", name="垃圾费", price=120000, cycle="year", start="2028-07-01")
    assert one(v, "2028-07").amount == 60328
    assert one(v, "2028-08") is None
    assert one(v, "2029-01").amount == 120000


def test_one_off_charged_once_in_full():
    v = version("once", category="other", name="开户费", price=5000, cycle="once", start="2026-04-20")
    assert one(v, "2026-04").amount == 5000
    assert one(v, "2026-05") is None


# --- scope ------------------------------------------------------------------------------------------


def test_scope_building_and_room():
    b = version(scope="building", scope_ids="B2")
    assert one(b, "2026-03") is None
    assert one(b, "2026-03", RoomRef("B2", "R1", "10")) is not None
    r = version(scope="room", scope_ids="B1/R101, B1/R102")
    assert one(r, "2026-03") is not None
    assert one(r, "2026-03", RoomRef("B1", "R103", "10")) is None


def test_a_closed_account_gets_nothing():
    assert charges_for([version()], ROOM, AccountRef("a-1", P, "CLOSED"), "2026-03") == []


# --- versions -----------------------------------------------------------------------------------------


def test_period_uses_the_version_in_effect_on_its_first_day():
    v1 = version(price=100000)
    v2 = ci.check_new_version([v1], version(price=200000, effective_from="2026-05-01"))
    v3 = ci.check_new_version([v1, v2], version(price=300000, effective_from="2026-05-15"))
    assert (v2.version, v3.version) == (2, 3)
    vs = [v1, v2, v3]
    assert one(vs, "2026-04").amount == 100000
    assert one(vs, "2026-05").amount == 200000  # in effect on May 1 (v3 only from the 15th)
    assert one(vs, "2026-06").amount == 300000


def test_an_item_starting_mid_month_uses_its_first_version():
    v1 = version(start="2026-04-10", effective_from="2026-04-10")
    assert one([v1], "2026-04").amount == 210000


@pytest.mark.parametrize("when", ["2026-05-01", "2026-04-20"])
def test_duplicate_or_overlapping_effective_dates_refused(when):
    v1 = version()
    v2 = ci.check_new_version([v1], version(effective_from="2026-05-01"))
    with pytest.raises(ValidationError) as e:
        ci.check_new_version([v1, v2], version(effective_from=when))
    assert e.value.code == "version_overlap"
    assert "2026-05-01" in e.value.message


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw, code", [
    ({"price": 0}, "price_invalid"),
    ({"price": -100}, "price_invalid"),
    ({"price": "2.355"}, "price_precision"),
    ({"cycle": "week"}, "cycle_invalid"),
    ({"category": "tax"}, "category_invalid"),
    ({"basis": "weight"}, "basis_invalid"),
    ({"start": "2026-05-01", "end": "2026-04-30"}, "end_before_start"),
    ({"start": "2026-13-01"}, "start_invalid"),
    ({"name": " "}, "name_required"),
    ({"mode": "steal"}, "mode_invalid"),
    ({"due_days": -1}, "due_days_invalid"),
    ({"basis": "quantity", "quantity": "-2"}, "quantity_invalid"),
    ({"scope": "room", "scope_ids": "R101"}, "scope_ids_invalid"),
    ({"scope": "building", "scope_ids": ""}, "scope_ids_required"),
])
def test_bad_input_refused_with_a_chinese_message(kw, code):
    with pytest.raises(ValidationError) as e:
        version(**kw)
    assert e.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in e.value.message)


@pytest.mark.parametrize("area", ["-5", "0", "abc", ""])
def test_a_room_without_a_valid_area_is_refused_for_an_area_item(area):
    v = version("fee", category="property_fee", name="物业费", basis="area", price=235)
    with pytest.raises(ValidationError) as e:
        charges_for([v], RoomRef("B1", "R101", area, "101"), ACCOUNT, "2026-03")
    assert e.value.code == "room_area_missing"


def test_bad_period_refused():
    with pytest.raises(ValidationError):
        charges_for([version()], ROOM, ACCOUNT, "2026-3")


def test_version_json_round_trip():
    v = version(scope="room", scope_ids="B1/R101", end="2026-12-31")
    assert ci.ItemVersion.from_json(v.to_json()) == v


def test_due_date():
    assert ci.due_date("2026-04", 10) == date(2026, 4, 11)
