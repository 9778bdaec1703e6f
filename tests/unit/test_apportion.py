"""Common-area apportionment (core/domain/apportion.py) against examples worked by hand,
properties of the split, and bad input refused.

Plans: FLAT 1.0000 yuan/kWh; TOU peak 1.0000 (08:00-24:00) / valley 0.5000 (00:00-08:00).
Each expected figure is worked out in the comment above it (quota = amount × w / Σw; every
room takes the floor; the fen left go by larger remainder, then by room key ascending)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain import apportion as ap
from core.domain.charges import BILL, DEDUCT
from core.domain.errors import ValidationError
from core.domain.tariff import parse_plan

FLAT = parse_plan({"plan_id": "flat", "name": "平价", "utility": "electricity",
                   "versions": [{"effective_from": "2020-01-01T00:00:00+08:00", "prices": {"flat": "1.0000"}}]})
TOU = parse_plan({"plan_id": "tou", "name": "峰谷", "utility": "electricity", "versions": [{
    "effective_from": "2020-01-01T00:00:00+08:00", "prices": {"peak": "1.0000", "valley": "0.5000"},
    "schedules": [{"intervals": [{"start": "00:00", "end": "08:00", "period": "valley"},
                                 {"start": "08:00", "end": "24:00", "period": "peak"}]}]}]})
WATER = parse_plan({"plan_id": "w", "name": "水", "utility": "water", "versions": [{
    "effective_from": "2020-01-01T00:00:00+08:00", "prices": {"flat": "3.5000"},
    "components": [{"code": "sewage", "name": "污水处理费", "price": "0.9500"}]}]})


def group(method: str = ap.AREA, usage_mode: str = ap.MASTER, vacant_share: bool = False, rooms=("R001", "R002", "R003"),
          threshold: str = "5", **member_extra) -> ap.Group:
    members = [{"building_id": "B1", "room_id": r, **member_extra.get(r, {})} for r in rooms]
    return ap.parse_group({"name": "1 号楼公区照明", "master_meter": "m-master", "usage_mode": usage_mode,
                           "method": method, "vacant_share": vacant_share, "loss_threshold_pct": threshold,
                           "members": members}, "p1", "g1", version=3)


def room(r: str, area: str = "30", usage: str = "0", account: str | None = "auto", ratio: str | None = None):
    return ap.RoomInput("B1", r, r, f"a-{r}" if account == "auto" else account, D(area), D(usage),
                        D(ratio) if ratio is not None else None)


def amounts(result: ap.Result) -> dict[str, int]:
    return {s.room_id: s.amount for s in result.shares}


# --- the split -------------------------------------------------------------------------------------


def test_split_three_equal_rooms_the_left_fen_goes_to_the_lowest_room_key():
    # 10000 / 3 = 3333.33 each: floors 9999, one fen left, equal remainders -> key "a" first
    assert ap.split(10000, [D(30), D(30), D(30)], ["c", "a", "b"]) == [3333, 3334, 3333]


def test_split_by_area_with_a_remainder():
    # 10001 fen over 85.50 / 100.00 / 114.50 m² (Σ 300): quotas 2850.285, 3333.667, 3817.048;
    # floors 2850 + 3333 + 3817 = 10000; the one fen left -> the largest remainder (.667)
    assert ap.split(10001, [D("85.50"), D("100.00"), D("114.50")]) == [2850, 3334, 3817]


def test_split_refuses_zero_total_and_negative_weights():
    with pytest.raises(ValidationError) as e:
        ap.split(100, [D(0), D(0)])
    assert e.value.code == "apportion_weights_zero" and "合计为 0" in e.value.message
    with pytest.raises(ValidationError) as e:
        ap.split(100, [D(1), D(-1), D(2)])
    assert e.value.code == "apportion_weight_negative"
    with pytest.raises(ValidationError):
        ap.split(-1, [D(1)])


weights_st = st.lists(st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False),
                      min_size=1, max_size=40).filter(lambda ws: sum(ws) > 0)


@settings(max_examples=300, deadline=None)
@given(amount=st.integers(min_value=0, max_value=10**9), ws=weights_st, data=st.data())
def test_any_split_sums_exactly_and_does_not_depend_on_the_order(amount, ws, data):
    keys = [f"B1/R{i:03d}" for i in range(len(ws))]
    parts = ap.split(amount, ws, keys)
    assert sum(parts) == amount
    total = sum(ws)
    for w, p in zip(ws, parts, strict=True):
        quota = amount * w / total
        assert p >= 0 and abs(p - quota) < 1  # each is its quota's floor or ceiling
        if w == 0:
            assert p == 0
    order = data.draw(st.permutations(range(len(ws))))
    shuffled = ap.split(amount, [ws[i] for i in order], [keys[i] for i in order])
    assert {keys[i]: p for i, p in zip(order, shuffled, strict=True)} == dict(zip(keys, parts, strict=True))


# --- periods, worked by hand ---------------------------------------------------------------------------


def test_area_split_with_the_formula_the_tenant_reads():
    # 120 kWh × 1.00 = 12000 fen over 85.50 / 100.00 / 114.50 m²: 3420, 4000, 4580 exactly
    g = group()
    rooms = [room("R001", "85.50"), room("R002", "100.00"), room("R003", "114.50")]
    r = ap.compute(g, "2026-11", FLAT, {"flat": D("120")}, rooms)
    assert r.amount == 12000 and amounts(r) == {"R001": 3420, "R002": 4000, "R003": 4580}
    assert r.shares[0].formula == "公摊电量 120.00 kWh × 1.00 元/kWh = 120.00 元，按面积 85.50/300.00 m² 分摊 = 34.20 元"
    charges = ap.charges(g, r)
    assert [c.amount for c in charges] == [3420, 4000, 4580] and sum(c.amount for c in charges) == 12000
    c = charges[0]
    assert (c.account_id, c.source, c.source_id, c.period, c.mode, c.name) == \
        ("a-R001", "apportion", "g1", "2026-11", BILL, "公摊电费")
    assert c.charge_id == "apportion:g1:2026-11" and c.inputs["weight"] == "85.50"


def test_area_split_with_a_remainder_in_a_period():
    # 100.01 kWh -> 10001 fen; the split above: 2850, 3334, 3817
    r = ap.compute(group(), "2026-11", FLAT, {"flat": D("100.01")},
                   [room("R001", "85.50"), room("R002", "100.00"), room("R003", "114.50")])
    assert amounts(r) == {"R001": 2850, "R002": 3334, "R003": 3817} and sum(amounts(r).values()) == 10001


def test_usage_split_with_a_room_at_zero_on_master_minus_subs():
    # master 100, sub-meters 40 + 0 + 20 = 60 -> 40 kWh to share = 4000 fen; loss 40 % > 5 % flagged.
    # by usage 40 / 0 / 20: quotas 2666.67, 0, 1333.33 -> 2666 + 1333 = 3999, +1 to R001 (.67)
    g = group(ap.USAGE, ap.NET)
    r = ap.compute(g, "2026-11", FLAT, {"flat": D(100)},
                   [room("R001", usage="40"), room("R002", usage="0"), room("R003", usage="20")])
    assert (r.master_usage, r.sub_usage, r.shared_usage, r.amount) == (D(100), D(60), D(40), 4000)
    assert r.loss_ratio_pct == D("40.00") and r.loss_flag
    assert amounts(r) == {"R001": 2667, "R002": 0, "R003": 1333}
    assert "按用量 0.00/60.00 kWh 分摊 = 0.00 元" in r.shares[1].formula
    assert [c.account_id for c in ap.charges(g, r)] == ["a-R001", "a-R003"]  # no charge of 0


def test_master_minus_subs_below_zero_shares_nothing_and_says_why():
    # master 50, subs 30 + 30 = 60: -10 kWh -> no share; loss ratio -20 % flagged
    g = group(ap.AREA, ap.NET, rooms=("R001", "R002"))
    r = ap.compute(g, "2026-11", FLAT, {"flat": D(50)}, [room("R001", usage="30"), room("R002", usage="30")])
    assert r.amount == 0 and r.shares == () and ap.charges(g, r) == []
    assert r.loss_ratio_pct == D("-20.00") and r.loss_flag
    assert any("不大于 0：本期不分摊" in n for n in r.notes) and any("大于总表" in n for n in r.notes)


def test_ratio_split():
    # 10 kWh = 1000 fen by 1 : 2 : 3: quotas 166.67, 333.33, 500 -> 999, +1 to R001 (.67)
    g = group(ap.RATIO, R001={"ratio": "1"}, R002={"ratio": "2"}, R003={"ratio": "3"})
    r = ap.compute(g, "2026-11", FLAT, {"flat": D(10)},
                   [room("R001", ratio="1"), room("R002", ratio="2"), room("R003", ratio="3")])
    assert amounts(r) == {"R001": 167, "R002": 333, "R003": 500}
    assert "按固定比例 1/6 分摊 = 1.67 元" in r.shares[0].formula


@pytest.mark.parametrize("vacant_share, expected, posted", [
    # off: R002 (vacant) left out; 30 / 40 of 10000: 4285.71, 5714.29 -> 9999, +1 to R001 (.71)
    (False, {"R001": 4286, "R003": 5714}, 10000),
    # on: 30 / 30 / 40 of 10000: 3000 / 3000 / 4000; R002's 3000 is the owner's, not posted
    (True, {"R001": 3000, "R002": 3000, "R003": 4000}, 7000),
])
def test_vacant_rooms_on_and_off(vacant_share, expected, posted):
    g = group(vacant_share=vacant_share)
    r = ap.compute(g, "2026-11", FLAT, {"flat": D(100)},
                   [room("R001", "30"), room("R002", "30", account=None), room("R003", "40")])
    assert amounts(r) == expected
    assert sum(c.amount for c in ap.charges(g, r)) == posted == r.posted_total
    assert r.owner_total == 10000 - posted


def test_all_rooms_at_zero_usage_fall_back_to_area():
    # usage split, every room used 0: by area 30 / 30 / 40 of 10000 -> 3000 / 3000 / 4000
    r = ap.compute(group(ap.USAGE), "2026-11", FLAT, {"flat": D(100)},
                   [room("R001", "30"), room("R002", "30"), room("R003", "40")])
    assert r.method == ap.AREA and amounts(r) == {"R001": 3000, "R002": 3000, "R003": 4000}
    assert "各户本期用量均为 0，改按面积分摊" in r.notes


def test_time_of_use_master_priced_on_its_bands():
    # master 60 kWh peak + 40 kWh valley = 60.00 + 20.00 = 80.00 yuan on MASTER;
    # NET with subs 50: 50 kWh scaled 30 peak + 20 valley = 30.00 + 10.00 = 40.00 yuan
    rooms = [room("R001", "50", usage="25"), room("R002", "50", usage="25")]
    r = ap.compute(group(rooms=("R001", "R002")), "2026-11", TOU, {"peak": D(60), "valley": D(40)}, rooms)
    assert r.amount == 8000 and amounts(r) == {"R001": 4000, "R002": 4000}
    n = ap.compute(group(usage_mode=ap.NET, rooms=("R001", "R002")), "2026-11", TOU, {"peak": D(60), "valley": D(40)},
                   rooms)
    assert n.amount == 4000 and n.loss_ratio_pct == D("50.00")
    assert n.price_text == "公摊电量 50.00 kWh（峰时段 30.00 kWh × 1.00 元 + 谷时段 20.00 kWh × 0.50 元）= 40.00 元"


def test_water_with_a_component_and_a_loss_under_the_threshold():
    # 10 m³ master, subs 9.7: loss 3 % (not flagged at 5 %); NET 0.3 m³ × (3.50 + 0.95) = 1.335 yuan -> 133 fen
    # (rounded down); by area 1 : 1 -> 66.5 each: 66 + 66, the fen left -> R001 (tie, lower key)
    rooms = [room("R001", usage="5"), room("R002", usage="4.7")]
    r = ap.compute(group(usage_mode=ap.NET, rooms=("R001", "R002")), "2026-11", WATER, {"flat": D(10)}, rooms)
    assert (r.amount, r.loss_ratio_pct, r.loss_flag) == (133, D("3.00"), False)
    assert amounts(r) == {"R001": 67, "R002": 66}
    assert r.price_text.startswith("公摊水量 0.30 m³（") and "污水处理费" in r.price_text
    assert ap.charges(group(usage_mode=ap.NET, rooms=("R001", "R002")), r)[0].name == "公摊水费"


def test_a_result_survives_its_stored_form():
    g = group(ap.USAGE, ap.NET)
    r = ap.compute(g, "2026-11", FLAT, {"flat": D(100)},
                   [room("R001", usage="40"), room("R002", usage="0", account=None), room("R003", usage="20")])
    assert ap.Result.from_dict(r.to_dict()) == r


# --- bad input -------------------------------------------------------------------------------------------


def refused(doc_changes: dict, code: str, members=None):
    doc = {"name": "公区", "master_meter": "m-master", "method": ap.AREA,
           "members": members if members is not None else [{"building_id": "B1", "room_id": "R001"}], **doc_changes}
    with pytest.raises(ValidationError) as e:
        ap.parse_group(doc, "p1", "g1")
    assert e.value.code == code, e.value.message
    return e.value


def test_zero_total_ratio_is_refused():
    e = refused({"method": ap.RATIO}, "apportion_ratio_zero",
                [{"building_id": "B1", "room_id": "R001", "ratio": "0"}, {"building_id": "B1", "room_id": "R002", "ratio": "0"}])
    assert e.message == "分摊比例合计为 0，无法分摊"
    refused({"method": ap.RATIO}, "apportion_ratio_required", [{"building_id": "B1", "room_id": "R001"}])


def test_negative_area_and_bad_numbers_are_refused():
    e = refused({}, "area_m2_negative", [{"building_id": "B1", "room_id": "R001", "area_m2": "-30"}])
    assert "不能为负数" in e.message and e.details["field"] == "members[0].area_m2"
    refused({}, "area_m2_invalid", [{"building_id": "B1", "room_id": "R001", "area_m2": 30.5}])  # a float
    refused({}, "area_m2_invalid", [{"building_id": "B1", "room_id": "R001", "area_m2": "30.123"}])
    refused({"loss_threshold_pct": "101"}, "loss_threshold_pct_invalid")


def test_bad_settings_are_refused_with_the_field():
    refused({"method": "equal"}, "method_invalid")
    refused({"usage_mode": "sum"}, "usage_mode_invalid")
    refused({"vacant_share": "yes"}, "vacant_share_invalid")
    refused({"mode": "cash"}, "charge_mode_invalid")
    refused({"name": " "}, "field_required")
    refused({"master_meter": "m#1"}, "id_invalid")
    refused({}, "members_required", [])
    refused({}, "member_duplicate", [{"building_id": "B1", "room_id": "R001"}, {"building_id": "B1", "room_id": "R001"}])
    refused({}, "master_is_sub_meter", [{"building_id": "B1", "room_id": "R001", "sub_meters": ["m-master"]}])
    refused({}, "sub_meter_duplicate", [{"building_id": "B1", "room_id": "R001", "sub_meters": ["m1"]},
                                        {"building_id": "B1", "room_id": "R002", "sub_meters": ["m1"]}])


def test_a_room_in_two_groups_of_the_same_master_is_refused():
    a, b = group(rooms=("R001", "R002")), ap.parse_group(
        {"name": "另一组", "master_meter": "m-master", "method": ap.AREA,
         "members": [{"building_id": "B1", "room_id": "R002"}]}, "p1", "g2")
    with pytest.raises(ValidationError) as e:
        ap.check_overlap(b, [a])
    assert e.value.code == "member_in_other_group" and "B1/R002" in e.value.message and "1 号楼公区照明" in e.value.message
    other_master = ap.parse_group({**b.to_doc(), "master_meter": "m-other"}, "p1", "g2")
    ap.check_overlap(other_master, [a])  # another master: allowed
    ap.check_overlap(a, [a])  # a group against its own stored version: allowed


def test_group_round_trips_and_keeps_mode():
    g = ap.parse_group({"name": "公区", "master_meter": "m-master", "method": ap.RATIO, "mode": DEDUCT,
                        "members": [{"building_id": "B1", "room_id": "R001", "ratio": "2.5", "area_m2": "12.30",
                                     "sub_meters": ["m1", "m2"]}]}, "p1", "g1", 2)
    assert ap.parse_group(g.to_doc(), "p1", "g1", 2) == g and g.sub_meters == ("m1", "m2")


def test_periods():
    from datetime import UTC, datetime

    start, end = ap.period_bounds("2026-12")
    assert (start.isoformat(), end.isoformat()) == ("2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00")
    for bad in ("2026-13", "2026-1", "26-01", None):
        with pytest.raises(ValidationError):
            ap.parse_period(bad)
    now = datetime(2026, 12, 10, tzinfo=UTC)
    assert ap.check_preview_period("2026-12", now) == "2026-12"
    with pytest.raises(ValidationError) as e:
        ap.check_preview_period("2027-01", now)
    assert e.value.code == "period_future"
    with pytest.raises(ValidationError) as e:
        ap.check_approvable("2026-12", now)
    assert e.value.code == "period_open"
    ap.check_approvable("2026-11", now)
