"""Usage aggregates' rules (core/domain/usage.py) with hand-worked numbers: the band split of
a charge, the local day and month of a reading, the recent daily costs kept on the
account, the forecast, and how aggregate items read back as points."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.domain import usage as u
from core.domain.tariff import parse_plan, rate

TOU_PLAN = {
    "plan_id": "tou", "name": "峰谷", "utility": "electricity", "timezone": "Asia/Shanghai",
    "versions": [{
        "effective_from": "2020-01-01T00:00:00+08:00",
        "prices": {"peak": "1.0000", "valley": "0.5000"},
        "schedules": [{"intervals": [{"start": "00:00", "end": "08:00", "period": "valley"},
                                     {"start": "08:00", "end": "24:00", "period": "peak"}]}],
    }],
}


def local(y, mo, d, h, mi=0, s=0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=u.LOCAL_TZ)


def test_a_two_band_reading_splits_quantity_and_fen_by_band():
    plan = parse_plan(TOU_PLAN)
    # 07:00 -> 09:00 local, 2 kWh spread by time: 1 kWh valley (0.50) + 1 kWh peak (1.00) = 150 fen
    charge = rate(plan, local(2026, 11, 24, 7), local(2026, 11, 24, 9), Decimal("2"))
    assert charge.fen == 150
    usage = u.usage_of("a1", "m1", "electric_1p", charge, local(2026, 11, 24, 9))
    assert [(b.band, b.quantity, b.fen) for b in usage.bands] == [
        ("peak", Decimal("1"), 100), ("valley", Decimal("1"), 50)]
    assert usage.kind == "electricity" and usage.day == date(2026, 11, 24) and usage.month == "2026-11"
    assert usage.fen == 150 and usage.quantity == Decimal(2)


def test_average_power_over_a_reading_interval():
    assert u.average_power(Decimal(2), local(2026, 11, 24, 7), local(2026, 11, 24, 9)) == Decimal("1.000")
    # 0.1 kWh in 7 minutes: 0.1 / (7/60) = 0.857142... -> 0.857 kW
    assert u.average_power(Decimal("0.1"), local(2026, 11, 24, 7), local(2026, 11, 24, 7, 7)) == Decimal("0.857")
    assert u.average_power(Decimal(1), None, local(2026, 11, 24, 7)) is None


def test_a_component_is_shared_by_quantity_and_the_bands_sum_to_the_charge():
    doc = {**TOU_PLAN, "versions": [{**TOU_PLAN["versions"][0],
                                      "components": [{"code": "fee", "name": "附加费", "price": "0.1000"}]}]}
    plan = parse_plan(doc)
    # 1 kWh over 07:00-09:00: 0.5 valley (0.25) + 0.5 peak (0.50) + 1 kWh x 0.10 = 0.85 -> 85 fen;
    # peak's value 0.50 + 0.05 = 0.55 -> 55 fen, valley's 0.25 + 0.05 = 0.30 -> 30 fen
    charge = rate(plan, local(2026, 11, 24, 7), local(2026, 11, 24, 9), Decimal("1"))
    assert charge.fen == 85
    assert [(b.band, b.quantity, b.fen) for b in u.band_split(charge)] == [
        ("peak", Decimal("0.5"), 55), ("valley", Decimal("0.5"), 30)]


def test_under_a_fen_the_quantity_counts_with_zero_cost():
    plan = parse_plan({**TOU_PLAN, "versions": [{"effective_from": "2020-01-01T00:00:00+08:00",
                                                  "prices": {"flat": "0.0100"}}]})
    charge = rate(plan, local(2026, 11, 24, 10), local(2026, 11, 24, 10, 15), Decimal("0.5"))  # 0.5 fen
    assert charge.fen == 0
    assert [(b.band, b.quantity, b.fen) for b in u.band_split(charge)] == [("flat", Decimal("0.5"), 0)]


def test_fen_apportionment_is_largest_remainder():
    assert u._apportion_fen(10, [Decimal(1)] * 3) == [4, 3, 3]
    assert u._apportion_fen(7, [Decimal("0.2"), Decimal("0.5")]) == [2, 5]
    assert u._apportion_fen(5, [Decimal(0), Decimal(0)]) == [3, 2]


def test_a_month_rolls_over_at_local_midnight_not_utc():
    # both are on 30 November in UTC; the second is 00:00:30 on 1 December in Shanghai
    before = datetime(2026, 11, 30, 15, 59, tzinfo=UTC)
    after = datetime(2026, 11, 30, 16, 0, 30, tzinfo=UTC)
    assert u.local_day(before) == date(2026, 11, 30) and u.month_of(u.local_day(before)) == "2026-11"
    assert u.local_day(after) == date(2026, 12, 1) and u.month_of(u.local_day(after)) == "2026-12"


def test_recent_daily_costs_keep_eight_days():
    costs = {f"2026-11-{d:02d}": 100 for d in range(20, 28)}  # 20..27: eight days
    rolled = u.roll_daily_costs(costs, date(2026, 11, 28), 250)
    assert rolled == {**{f"2026-11-{d:02d}": 100 for d in range(21, 28)}, "2026-11-28": 250}
    assert u.roll_daily_costs(rolled, date(2026, 11, 28), 50)["2026-11-28"] == 300  # same day adds
    # a late approval of a day older than the window is not recent
    assert u.roll_daily_costs(rolled, date(2026, 11, 19), 999) == rolled
    # a long silence: the old days fall out with the first new one
    assert u.roll_daily_costs(rolled, date(2026, 12, 20), 70) == {"2026-12-20": 70}


def test_forecast_cases():
    today = date(2026, 11, 29)
    assert u.forecast(10000, 0, {}, today).to_dict() == {
        "days": None, "daily_cost_fen": 0, "text": "暂无近期用量，无法估算可用天数"}
    costs = {"2026-11-21": 999,  # 8 days ago: outside the 7 complete days
             "2026-11-25": 300, "2026-11-27": 450, "2026-11-28": 150,
             "2026-11-29": 5000}  # today: not complete
    # average of the three days with usage: 900 / 3 = 300; (10000 - (-500)) // 300 = 35
    assert u.forecast(10000, -500, costs, today).to_dict() == {
        "days": 35, "daily_cost_fen": 300, "text": "余额约可用 35 天"}
    zero = u.forecast(-500, -500, costs, today)
    assert (zero.days, zero.text) == (0, "余额已不足 1 天用量，请尽快充值")
    assert u.forecast(-800, -500, costs, today).days == 0
    assert u.forecast(299, 0, costs, today).days == 0
    # only today so far: no complete day, no forecast
    assert u.forecast(10000, 0, {"2026-11-29": 500}, today).days is None
    # the average rounds half up: (100 + 101) / 2 = 100.5 -> 101
    assert u.forecast(1010, 0, {"2026-11-27": 100, "2026-11-28": 101}, today).to_dict()["daily_cost_fen"] == 101


def test_points_fill_every_period_and_a_year_sums_its_months():
    rows = [
        u.Row("2026-01", (u.Cell("electricity", "m1", "peak", Decimal("10.5"), 1050),
                          u.Cell("water", "w1", "flat", Decimal("1.25"), 500))),
        u.Row("2026-02", (u.Cell("electricity", "m1", "valley", Decimal("4"), 200),
                          u.Cell("electricity", "m2", "peak", Decimal("1"), 100))),
        u.Row("2025-12", (u.Cell("electricity", "m1", "peak", Decimal("3"), 300),)),
    ]
    years = u.points("year", date(2025, 1, 1), date(2026, 12, 31), rows)
    assert [(p.period, p.electricity_kwh, p.water_m3, p.cost_fen) for p in years] == [
        ("2025", Decimal(3), Decimal(0), 300), ("2026", Decimal("15.5"), Decimal("1.25"), 1850)]
    assert years[1].band_list() == [("electricity", "peak", Decimal("11.5"), 1150),
                                    ("electricity", "valley", Decimal(4), 200),
                                    ("water", "flat", Decimal("1.25"), 500)]
    months = u.points("month", date(2026, 1, 1), date(2026, 3, 31), rows, meter_id="m1")
    assert [(p.period, p.electricity_kwh, p.cost_fen) for p in months] == [
        ("2026-01", Decimal("10.5"), 1050), ("2026-02", Decimal(4), 200), ("2026-03", Decimal(0), 0)]
    t = u.total(months)
    assert (t.electricity_kwh, t.water_m3, t.cost_fen) == (Decimal("14.5"), Decimal(0), 1250)


def test_ranges_defaults_and_limits():
    today = date(2026, 11, 29)
    assert u.check_range("day", None, None, today) == (date(2026, 10, 31), today)
    assert u.check_range("month", None, None, today) == (date(2025, 12, 1), today)
    assert u.check_range("year", None, None, today) == (date(2022, 1, 1), today)
    assert u.check_range("day", date(2026, 9, 1), date(2026, 11, 30), today) == (date(2026, 9, 1), date(2026, 11, 30))
    for args, message in [
        (("day", date(2026, 8, 29), date(2026, 11, 29)), "最多查询 92 天"),  # 93 days
        (("day", date(2026, 11, 29), date(2026, 11, 28)), "开始日期不能晚于结束日期"),
        (("month", date(2023, 11, 1), date(2026, 11, 1)), "最多查询 36 个月"),
        (("year", date(2016, 1, 1), date(2026, 1, 1)), "最多查询 10 年"),
        (("week", None, None), "统计粒度"),
        (("day", None, date(1, 1, 5)), "日期超出范围"),
        (("month", None, date(1, 3, 1)), "日期超出范围"),
        (("year", date(9999, 1, 1), None), "日期超出范围"),
    ]:
        with pytest.raises(u.RangeError, match=message):
            u.check_range(*args, today)
    assert len(u.periods("day", date(2026, 9, 1), date(2026, 11, 30))) == 91
    assert u.check_range("day", date(2026, 8, 30), date(2026, 11, 29), today)[0] == date(2026, 8, 30)  # 92 days
