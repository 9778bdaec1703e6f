"""Rating against worked examples written out by hand, and properties of any split."""

from datetime import date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.domain.calendar import HOLIDAY, WEEKEND, WORKDAY, day_type
from core.domain.errors import ValidationError
from core.domain.tariff import RatingCarry, parse_plan, rate

SH = ZoneInfo("Asia/Shanghai")


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=SH)


TOU = {
    "plan_id": "commercial-tou",
    "name": "工商业分时电价",
    "utility": "electricity",
    "versions": [{
        "effective_from": "2026-01-01T00:00:00+08:00",
        "prices": {"sharp": "1.2000", "peak": "1.0000", "flat": "0.6000", "valley": "0.3000", "deep_valley": "0.2000"},
        "schedules": [
            {"months": [7, 8], "day_types": ["workday"], "intervals": [
                {"start": "22:00", "end": "06:00", "period": "valley"},
                {"start": "06:00", "end": "10:00", "period": "flat"},
                {"start": "10:00", "end": "12:00", "period": "sharp"},
                {"start": "12:00", "end": "17:00", "period": "peak"},
                {"start": "17:00", "end": "22:00", "period": "flat"}]},
            {"day_types": ["workday"], "intervals": [
                {"start": "22:00", "end": "06:00", "period": "valley"},
                {"start": "06:00", "end": "08:00", "period": "flat"},
                {"start": "08:00", "end": "12:00", "period": "peak"},
                {"start": "12:00", "end": "18:00", "period": "flat"},
                {"start": "18:00", "end": "22:00", "period": "peak"}]},
            {"day_types": ["weekend", "holiday"], "intervals": [
                {"start": "23:00", "end": "07:00", "period": "deep_valley"},
                {"start": "07:00", "end": "23:00", "period": "flat"}]},
        ],
    }],
}

RESIDENTIAL = {
    "plan_id": "residential-tiered",
    "name": "居民阶梯电价",
    "utility": "electricity",
    "versions": [{
        "effective_from": "2026-01-01T00:00:00+08:00",
        "prices": {"flat": "0.5283"},
        "tiers": {"cycle": "month", "bands": [
            {"up_to": "200", "surcharge": "0"}, {"up_to": "400", "surcharge": "0.0500"},
            {"up_to": None, "surcharge": "0.3000"}]},
    }],
}


def by_kind(charge):
    out = {}
    for line in charge.lines:
        key = line.period or f"tier{line.tier}" if line.kind != "component" else line.component
        out[key] = out.get(key, D(0)) + line.amount
    return out


def test_calendar_day_types():
    assert day_type(date(2026, 11, 24)) == WORKDAY  # Tuesday
    assert day_type(date(2026, 11, 28)) == WEEKEND  # Saturday
    assert day_type(date(2026, 10, 1)) == HOLIDAY  # National Day
    assert day_type(date(2026, 10, 3)) == HOLIDAY  # a Saturday inside the holiday
    assert day_type(date(2026, 9, 20)) == WORKDAY  # a Sunday made a working day (调休)
    assert day_type(date(2027, 1, 1)) == HOLIDAY  # beyond chinesecalendar: the holidays package
    assert day_type(date(2027, 1, 2)) == WEEKEND


def test_tou_boundary_inside_an_interval():
    # Tue 07:30-08:30, 2 kWh spread evenly: 1 kWh flat (0.60) + 1 kWh peak (1.00)
    c = rate(parse_plan(TOU), at(2026, 11, 24, 7, 30), at(2026, 11, 24, 8, 30), D("2.00"))
    assert by_kind(c) == {"flat": D("0.6"), "peak": D("1.0")}
    assert c.fen == 160


def test_midnight_crossing():
    # Tue 21:00 -> Wed 07:00, 10 kWh over 10 h: 1 h peak, 8 h valley (22:00-06:00), 1 h flat
    c = rate(parse_plan(TOU), at(2026, 11, 24, 21), at(2026, 11, 25, 7), D("10"))
    assert by_kind(c) == {"peak": D("1.0"), "valley": D("2.4"), "flat": D("0.6")}
    assert c.fen == 400


def test_season_switch_at_midnight():
    # Tue 30 Jun 23:00 -> Wed 1 Jul 11:00, 12 kWh over 12 h. June (workday schedule): 1 h
    # valley. July (summer schedule): 6 h valley, 4 h flat (06-10), 1 h sharp (10-11).
    c = rate(parse_plan(TOU), at(2026, 6, 30, 23), at(2026, 7, 1, 11), D("12"))
    assert by_kind(c) == {"valley": D("2.1"), "flat": D("2.4"), "sharp": D("1.2")}
    assert c.fen == 570


def test_holiday_switch():
    # Wed 30 Sep 20:00 -> Thu 1 Oct (National Day) 09:00, 13 kWh over 13 h.
    # 30 Sep: 2 h peak, 2 h valley. 1 Oct, holiday schedule: 7 h deep valley, 2 h flat.
    c = rate(parse_plan(TOU), at(2026, 9, 30, 20), at(2026, 10, 1, 9), D("13"))
    assert by_kind(c) == {"peak": D("2.0"), "valley": D("0.6"), "deep_valley": D("1.4"), "flat": D("1.2")}
    assert c.fen == 520


def test_adjusted_working_sunday_uses_the_workday_schedule():
    # Sun 20 Sep 2026 is a working day: 09:00-10:00 is peak, not the weekend's flat
    c = rate(parse_plan(TOU), at(2026, 9, 20, 9), at(2026, 9, 20, 10), D("1"))
    assert by_kind(c) == {"peak": D("1.0")}


def test_tou_registers_are_priced_as_reported():
    c = rate(parse_plan(TOU), at(2026, 11, 24, 7), at(2026, 11, 24, 9), D("3"),
             by_period={"flat": D("1.00"), "peak": D("2.00")})
    assert by_kind(c) == {"flat": D("0.6"), "peak": D("2.0")}


def test_tier_crossing_inside_one_interval():
    plan = parse_plan(RESIDENTIAL)
    carry = RatingCarry(D(0), "2026-11", D("190"))
    c = rate(plan, at(2026, 11, 20), at(2026, 11, 21), D("30"), carry)
    # 30 x 0.5283 = 15.849; 20 kWh above 200 at +0.05 = 1.00
    assert by_kind(c) == {"flat": D("15.849"), "tier1": D("0"), "tier2": D("1.00")}
    assert (c.fen, c.carry.remainder_fen, c.carry.cycle_usage) == (1684, D("0.9"), D("220"))
    # across two bands at once: 190 -> 420
    c2 = rate(plan, at(2026, 11, 20), at(2026, 11, 21), D("230"), carry)
    assert by_kind(c2) == {"flat": D("121.509"), "tier1": D("0"), "tier2": D("10.00"), "tier3": D("6.00")}


def test_tier_cycle_resets_at_the_month_boundary():
    plan = parse_plan(RESIDENTIAL)
    carry = RatingCarry(D(0), "2026-11", D("500"))
    c = rate(plan, at(2026, 11, 30, 23), at(2026, 12, 1, 1), D("2"), carry)
    # 1 kWh in November (tier 3, +0.30), 1 kWh in December (tier 1)
    assert by_kind(c) == {"flat": D("1.0566"), "tier3": D("0.30"), "tier1": D("0")}
    assert (c.carry.cycle, c.carry.cycle_usage) == ("2026-12", D("1"))


def test_price_change_inside_an_interval():
    plan = parse_plan({"plan_id": "p", "name": "调价", "utility": "electricity", "versions": [
        {"effective_from": "2026-01-01T00:00:00+08:00", "prices": {"flat": "0.5000"}},
        {"effective_from": "2026-12-01T00:00:00+08:00", "prices": {"flat": "0.6000"}},
    ]})
    c = rate(plan, at(2026, 11, 30, 22), at(2026, 12, 1, 2), D("4"))
    assert sorted((str(line.unit_price), line.quantity, line.amount) for line in c.lines) == [
        ("0.5000", D("2"), D("1.0")), ("0.6000", D("2"), D("1.2"))]
    assert c.fen == 220


def test_water_with_sewage_component_shown_separately():
    plan = parse_plan({"plan_id": "w", "name": "居民用水", "utility": "water", "versions": [{
        "effective_from": "2026-01-01T00:00:00+08:00", "prices": {"flat": "3.4500"},
        "tiers": {"cycle": "year", "bands": [{"up_to": "180", "surcharge": "0"},
                                             {"up_to": "260", "surcharge": "1.1500"},
                                             {"up_to": None, "surcharge": "3.4500"}]},
        "components": [{"code": "sewage", "name": "污水处理费", "price": "0.9500"}]}]})
    c = rate(plan, at(2026, 5, 1), at(2026, 6, 1), D("10"), RatingCarry(D(0), "2026", D("175")))
    labels = {line.label: line.amount for line in c.lines}
    assert labels["水量"] == D("34.5") and labels["污水处理费"] == D("9.5")
    assert labels["第2档加价"] == D("5.75")  # 5 m³ above 180
    assert c.fen == 4975


def test_sub_fen_remainder_is_carried():
    plan = parse_plan(RESIDENTIAL)
    carry = RatingCarry(D(0), "2026-11", D(0))
    total = 0
    t = at(2026, 11, 2)
    for _ in range(100):  # 100 readings of 0.01 kWh: 0.005283 yuan each
        c = rate(plan, t, t + timedelta(minutes=1), D("0.01"), carry)
        carry, total, t = c.carry, total + c.fen, t + timedelta(minutes=1)
    once = rate(plan, at(2026, 11, 2), t, D("1.00"), RatingCarry(D(0), "2026-11", D(0)))
    assert total == once.fen == 52


@pytest.mark.parametrize("broken,field", [
    ({"prices": {"flat": 0.5}}, "prices.flat"),  # a float price
    ({"prices": {"flat": "0.52831"}}, "prices.flat"),  # 5 decimals
    ({"prices": {"peak": "1.0", "valley": "0.3"}}, "schedules"),  # TOU without schedule
    ({"prices": {"noon": "1.0"}}, "prices"),
    ({"effective_from": "2026-01-01T00:00:00"}, "effective_from"),  # no time zone
    ({"tiers": {"cycle": "week", "bands": []}}, "tiers.cycle"),
    ({"tiers": {"cycle": "month", "bands": [{"up_to": "200"}, {"up_to": "100"}, {"up_to": None}]}}, "bands[1]"),
])
def test_invalid_plans_name_the_field(broken, field):
    doc = {"plan_id": "x", "name": "x", "utility": "electricity",
           "versions": [{"effective_from": "2026-01-01T00:00:00+08:00", "prices": {"flat": "0.5"}, **broken}]}
    with pytest.raises(ValidationError) as e:
        parse_plan(doc)
    assert field in e.value.details["field"] and e.value.code == "tariff_invalid"


def test_schedule_gaps_and_missing_day_types_are_refused():
    doc = {"plan_id": "x", "name": "x", "utility": "electricity", "versions": [{
        "effective_from": "2026-01-01T00:00:00+08:00", "prices": {"peak": "1", "valley": "0.3"},
        "schedules": [{"intervals": [{"start": "08:00", "end": "22:00", "period": "peak"},
                                     {"start": "23:00", "end": "08:00", "period": "valley"}]}]}]}
    with pytest.raises(ValidationError, match="22:00"):
        parse_plan(doc)
    doc["versions"][0]["schedules"] = [{"day_types": ["workday"], "intervals": [
        {"start": "08:00", "end": "08:00", "period": "peak"}]}]
    with pytest.raises(ValidationError):
        parse_plan(doc)


# --- properties: charges of any split of a period sum to the charge of the whole ---------

minutes = st.lists(st.integers(1, 600), min_size=1, max_size=12)
START = at(2026, 11, 23, 5, 17)


@settings(max_examples=150, deadline=None)
@given(steps=minutes, data=st.data())
def test_split_with_tou_registers_sums_to_the_whole(steps, data):
    plan = parse_plan({**TOU, "versions": [{**TOU["versions"][0], **RESIDENTIAL["versions"][0],
                                            "prices": TOU["versions"][0]["prices"]}]})
    periods = st.sampled_from(["sharp", "peak", "flat", "valley", "deep_valley"])
    usage = st.dictionaries(periods, st.integers(0, 5000).map(lambda n: D(n) / 100), max_size=3)
    carry = RatingCarry(D(0), "2026-11", D(data.draw(st.integers(0, 450))))
    t, split_fen, split_exact, whole = START, 0, D(0), {}
    c = carry
    for m in steps:
        u = data.draw(usage)
        for k, v in u.items():
            whole[k] = whole.get(k, D(0)) + v
        end = t + timedelta(minutes=m)
        r = rate(plan, t, end, sum(u.values(), D(0)), c, u or {"flat": D(0)})
        c, split_fen, split_exact, t = r.carry, split_fen + r.fen, split_exact + r.exact_yuan, end
    once = rate(plan, START, t, sum(whole.values(), D(0)), carry, whole or {"flat": D(0)})
    assert split_exact == once.exact_yuan
    assert split_fen == once.fen


@settings(max_examples=150, deadline=None)
@given(steps=minutes, per_minute=st.integers(1, 30))
def test_split_of_uniform_use_priced_by_schedule_sums_to_the_whole(steps, per_minute):
    plan = parse_plan(TOU)
    rate_q = D(per_minute) / 100  # kWh per minute
    t, fen, exact, c = START, 0, D(0), RatingCarry()
    for m in steps:
        end = t + timedelta(minutes=m)
        r = rate(plan, t, end, rate_q * m, c)
        c, fen, exact, t = r.carry, fen + r.fen, exact + r.exact_yuan, end
    once = rate(plan, START, t, rate_q * sum(steps))
    assert exact == once.exact_yuan
    assert fen == once.fen


def test_each_charge_is_rounded_down_and_the_remainder_carried_hand_worked():
    # flat 0.5283 yuan/kWh, 1 kWh per reading = 52.83 fen each:
    #   1st: 52.83          -> 52 fen debited, 0.83 carried (rounded down, not to nearest)
    #   2nd: 52.83 + 0.83 = 53.66 -> 53 fen, 0.66 carried
    #   3rd: 52.83 + 0.66 = 53.49 -> 53 fen, 0.49 carried
    # 52 + 53 + 53 = 158 fen = floor(3 x 52.83 = 158.49); 0.49 fen waits for the next reading
    plan = parse_plan(RESIDENTIAL)
    carry, t, got = RatingCarry(), at(2026, 11, 2), []
    for _ in range(3):
        c = rate(plan, t, t + timedelta(hours=1), D("1"), carry)
        got.append((c.fen, c.carry.remainder_fen))
        carry, t = c.carry, t + timedelta(hours=1)
    assert got == [(52, D("0.83")), (53, D("0.66")), (53, D("0.49"))]
