"""The tariff forms and the revision rule (core/domain/tariff_edit.py), on hand-written cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.domain.errors import ValidationError
from core.domain.tariff import parse_plan
from core.domain.tariff_edit import FormErrors, check_revision, form_from_version, preview_request, version_from_form

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
LEAD = timedelta(minutes=10)


def rows(*spans) -> dict:
    f = {}
    for i, (a, b, p) in enumerate(spans):
        f.update({f"iv_start_{i}": a, f"iv_end_{i}": b, f"iv_period_{i}": p})
    return f


def test_a_range_across_midnight_makes_a_whole_day():
    f = {"effective_from": "2026-12-01T00:00", "mode": "tou", "price_valley": "0.3", "price_flat": "0.6",
         **rows(("22:00", "06:00", "valley"), ("06:00", "22:00", "flat"))}
    v = version_from_form(f, SH)
    assert v == {"effective_from": "2026-12-01T00:00:00+08:00", "prices": {"valley": "0.3", "flat": "0.6"},
                 "schedules": [{"months": list(range(1, 13)), "day_types": ["workday", "weekend", "holiday"],
                                "intervals": [{"start": "22:00", "end": "06:00", "period": "valley"},
                                              {"start": "06:00", "end": "22:00", "period": "flat"}]}]}
    parse_plan({"plan_id": "p", "name": "n", "utility": "electricity", "versions": [v]})  # a valid plan
    back = form_from_version(v, SH)
    assert back["mode"] == "tou" and back["iv_start_0"] == "22:00" and back["effective_from"] == "2026-12-01T00:00"


@pytest.mark.parametrize("spans,message", [
    ((("00:00", "12:00", "peak"), ("11:00", "24:00", "flat")), "第 2 行与其他时间段在 11:00–12:00 重叠"),
    ((("00:00", "12:00", "peak"), ("13:00", "24:00", "flat")), "12:00–13:00 没有设置时段"),
    ((("06:00", "24:00", "flat"),), "00:00–06:00 没有设置时段"),
    ((("00:00", "25:00", "flat"),), "时间格式应为 HH:MM"),
])
def test_bad_time_ranges_are_named(spans, message):
    f = {"effective_from": "2026-12-01T00:00", "mode": "tou", "price_peak": "1", "price_flat": "0.6", **rows(*spans)}
    with pytest.raises(FormErrors) as e:
        version_from_form(f, SH)
    assert message in e.value.message


def test_tiers_need_rising_bounds_and_an_open_last_band():
    base = {"effective_from": "2026-12-01T00:00", "mode": "flat", "price": "0.5283", "tier_cycle": "month"}
    v = version_from_form({**base, "band_up_to_0": "200", "band_surcharge_0": "0", "band_surcharge_1": "0.05"}, SH)
    assert v["tiers"] == {"cycle": "month", "bands": [{"up_to": "200", "surcharge": "0"},
                                                      {"up_to": None, "surcharge": "0.05"}]}
    with pytest.raises(FormErrors) as e:
        version_from_form({**base, "band_up_to_0": "200", "band_up_to_1": "100", "band_surcharge_2": "0.3"}, SH)
    assert e.value.errors == {"band_up_to_1": "第 2 档上限必须大于上一档"}


def plan(*versions) -> object:
    return parse_plan({"plan_id": "p", "name": "n", "utility": "electricity",
                       "versions": [{"effective_from": t, "prices": {"flat": price}} for t, price in versions]})


def test_versions_in_force_never_change_and_new_ones_start_after_now_plus_the_lead():
    old = plan(("2026-01-01T00:00:00+08:00", "0.5000"))
    check_revision(old, plan(("2026-01-01T00:00:00+08:00", "0.5000"), ("2026-11-29T12:11:00+08:00", "0.6")), NOW,
                   LEAD)
    with pytest.raises(ValidationError) as e:  # 5 minutes ahead: inside the clock-skew lead
        check_revision(old, plan(("2026-01-01T00:00:00+08:00", "0.5000"), ("2026-11-29T12:05:00+08:00", "0.6")),
                       NOW, LEAD)
    assert e.value.code == "tariff_effective_past"
    with pytest.raises(ValidationError) as e:  # the version in force changed
        check_revision(old, plan(("2026-01-01T00:00:00+08:00", "0.4000")), NOW, LEAD)
    assert e.value.code == "tariff_version_in_force"
    future = plan(("2026-01-01T00:00:00+08:00", "0.5000"), ("2026-12-01T00:00:00+08:00", "0.6"))
    check_revision(future, plan(("2026-01-01T00:00:00+08:00", "0.5000"), ("2026-12-02T00:00:00+08:00", "0.7")), NOW,
                   LEAD)  # a version not yet in force may move or change
    check_revision(None, plan(("2020-01-01T00:00:00+08:00", "1")), NOW, LEAD)  # a new plan: any start


def test_the_preview_form_refuses_negative_and_backwards_readings():
    with pytest.raises(FormErrors) as e:
        preview_request({"start_at": "2026-12-01T10:00", "end_at": "2026-12-01T12:00", "start_total": "10",
                         "end_total": "5"}, SH)
    assert e.value.errors == {"end_total": "结束读数不能小于开始读数"}
    with pytest.raises(FormErrors) as e:
        preview_request({"mode": "periods", "start_at": "2026-12-01T10:00", "end_at": "2026-12-01T12:00",
                         "kwh_peak": "-1"}, SH)
    assert e.value.errors == {"kwh_peak": "峰时段用量不能为负数"}
