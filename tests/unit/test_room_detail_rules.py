"""The room detail page's wording, usage sums and statement cursor (core/domain/room_detail.py).
Expected texts and sums are written out by hand."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.domain import room_detail as rules
from core.domain.errors import ValidationError
from core.domain.tariff import parse_plan

SH = ZoneInfo("Asia/Shanghai")

TOU = parse_plan({
    "plan_id": "tou", "name": "分时", "utility": "electricity",
    "versions": [{"effective_from": "2026-01-01T00:00:00+08:00", "prices": {"peak": "1.0000", "valley": "0.3000"},
                  "schedules": [{"day_types": ["workday", "weekend", "holiday"], "intervals": [
                      {"start": "08:00", "end": "22:00", "period": "peak"},
                      {"start": "22:00", "end": "08:00", "period": "valley"}]}]}],
})
FLAT = parse_plan({"plan_id": "flat", "name": "平价", "utility": "electricity",
                   "versions": [{"effective_from": "2026-01-01T00:00:00+08:00", "prices": {"flat": "1.0000"}}]})


@pytest.mark.parametrize("kind, entry_id, cause, memo, words", [
    ("opening", "open:a1", "account:a1", "", "开户期初余额"),
    ("recharge", "pay:4200001", "order:R2026", "微信支付充值", "微信支付充值（订单 R2026）"),
    ("recharge", "cash:RC1", "receipt:RC1", "现金充值", "柜台现金充值（收据 RC1）"),
    ("recharge", "bank:RC2", "receipt:RC2", "银行转账充值", "银行转账充值（收据 RC2）"),
    ("refund", "refund:RF1", "order:R2026", "退租", "微信退款（原订单 R2026）：退租"),
    ("refund", "refund:RF1", "order:R2026", "退款", "微信退款（原订单 R2026）"),
    ("refund", "cash-refund:RF9", "receipt:RF9", "柜台退款", "柜台退款（收据 RF9）"),
    ("refund_reversal", "refund-reversal:RF1", "refund:RF1", "退款失败，退回余额", "退款失败，退回余额（退款单 RF1）"),
    ("energy", "use:m1:12", "reading:m1:12", "2.50 kWh", "用电 2.50 kWh · 表 m1 第 12 次读数"),
    ("water", "use:w1:3", "reading:w1:3", "1.2 m³", "用水 1.2 m³ · 表 w1 第 3 次读数"),
    ("energy", "use:m1:40", "anomaly:m1:anomaly:40:gap", "31 kWh (异常审核后计费)", "用电 31 kWh · 表 m1 读数异常审核后计费"),
    ("meter_transfer", "meter:m1:2", "command:recharge-x", "充值到表 m1（第 2 次购电）", "充值到表 m1（第 2 次购电）"),
    ("adjust_credit", "adj:1", "admin:1", "抄表错误更正", "调账（增加）：抄表错误更正"),
    ("fee", "fee:1", "admin:2", "", "费用"),
])
def test_entry_causes_in_words(kind, entry_id, cause, memo, words):
    assert rules.entry_cause_text(kind, entry_id, cause, memo) == words


def test_a_metered_entry_names_its_tariff_period():
    # 2026-11-20 is a Friday; 21:00 local is peak, 23:00 valley; a reading at 22:00 ends a peak interval
    assert rules.period_of(TOU, "2026-11-20T13:00:00Z") == "peak"  # 21:00 local
    assert rules.period_of(TOU, "2026-11-20T15:00:00Z") == "valley"  # 23:00 local
    assert rules.period_of(TOU, "2026-11-20T14:00:00Z") == "peak"  # 22:00 local: the interval ended in peak
    assert rules.period_of(FLAT, "2026-11-20T13:00:00Z") == ""  # one price: no period to name
    assert rules.period_of(TOU, "2025-06-01T00:00:00Z") == ""  # before the plan
    assert rules.metered_text("energy", "reading:m1:7", "0.8 kWh", "valley") == "用电 0.8 kWh · 谷时段 · 表 m1 第 7 次读数"


def test_supply_in_words():
    cut = rules.supply_text("cut", "", -3000, 0, 0, False)
    assert (cut.state, cut.label, cut.reason) == ("cut", "已断电", "余额 ¥-30.00 低于断电线 ¥0.00；余额高于 ¥0.00 时自动恢复供电")
    # paid above the cut line but not above the restore line yet
    held = rules.supply_text("cut", "", 500, 1000, 2000, False)
    assert held.reason == "余额 ¥5.00；余额高于 ¥20.00 时自动恢复供电"
    pending = rules.supply_text("pending", "2026-11-20T00:00:00+00:00", -100, 0, 0, False)
    assert (pending.label, pending.reason) == ("待断电", "余额 ¥-1.00 低于断电线 ¥0.00；宽限期或保护时段内暂不断电，预计 2026-11-20 08:00 断电")
    over = rules.supply_text("none", "", -100, 5000, 0, False)
    assert over.reason == "余额 ¥-1.00，高于断电线 ¥-50.00（允许透支 ¥50.00）"
    assert rules.supply_text("none", "", 100, 0, 0, True).label == "保电"
    tripped = rules.supply_text("none", "", 9000, 0, 0, False, ["m2", "m1"])
    assert tripped.label == "已分闸" and tripped.reason.startswith("表 m1、m2 回读为分闸，")


def test_alarm_levels_in_words():
    assert rules.alarm_text(6000, None) == (0, "未告警（告警金额 ¥50.00 / ¥20.00 / ¥0.00）")
    assert rules.alarm_text(3000, None) == (1, "1 级告警：余额低于 ¥50.00")
    assert rules.alarm_text(-1, (10000, 0)) == (2, "2 级告警：余额低于 ¥0.00")


def test_usage_by_hour_and_day_in_local_time():
    now = datetime(2026, 11, 20, 12, 0, tzinfo=SH)
    points = [
        rules.UsagePoint("2026-11-20T02:00:00Z", "energy", -300, "3 kWh"),  # 10:00 local today
        rules.UsagePoint("2026-11-20T02:30:00Z", "energy", -150, "1.5 kWh"),  # 10:30
        rules.UsagePoint("2026-11-19T16:00:00Z", "energy", -100, "1 kWh"),  # 00:00 local today
        rules.UsagePoint("2026-11-19T15:59:59Z", "energy", -700, "7 kWh"),  # 23:59:59 yesterday
        rules.UsagePoint("2026-11-20T03:00:00Z", "water", -400, "2 m³"),  # water: today, not charted
        rules.UsagePoint("2026-10-21T16:00:00Z", "energy", -900, "9 kWh"),  # 10-22 local: day 1 of 30
        rules.UsagePoint("2026-10-21T15:00:00Z", "energy", -900, "9 kWh"),  # 10-21 local: too old
    ]
    u = rules.usage(points, now)
    assert u.today == {"kWh": Decimal("5.5"), "m³": Decimal(2)} and u.today_fen == {"kWh": 550, "m³": 400}
    assert u.hours[10] == Decimal("4.5") and u.hours[0] == 1 and sum(u.hours) == Decimal("5.5")
    assert u.days[0] == ("2026-10-22", Decimal(9)) and u.days[-2] == ("2026-11-19", Decimal(7))
    assert u.days[-1] == ("2026-11-20", Decimal("5.5")) and len(u.days) == 30
    assert rules.usage_since(now) == datetime(2026, 10, 21, 16, 0, tzinfo=UTC)
    assert not rules.usage([], now).has_readings


def test_cursor_round_trip_and_bad_cursors():
    c = rules.encode_cursor("2026-11-20T02:00:00.000001Z", "use:m1:12")
    assert rules.decode_cursor(c) == ("2026-11-20T02:00:00.000001Z", "use:m1:12")
    assert rules.decode_cursor(None) is None and rules.decode_cursor("") is None
    for bad in ("!!!", "bm90LWEtY3Vyc29y", "x" * 401, rules.encode_cursor("yesterday", "e1")):
        with pytest.raises(ValidationError) as e:
            rules.decode_cursor(bad)
        assert e.value.code == "cursor_invalid"
    assert rules.page_size(None) == 20 and rules.page_size("5") == 5
    for bad in ("0", "101", "-1", "x"):
        with pytest.raises(ValidationError):
            rules.page_size(bad)


def test_commands_and_events_in_words():
    assert rules.command_cause_text("reconcile:3", "control") == "供电状态核对后重发（第 3 次）"
    assert rules.command_cause_text("manual:停电检修", "admin-1") == "手动操作：停电检修（admin-1）"
    assert rules.command_cause_text("manual", "admin:wang@example.com") == "手动操作（管理员 wang@example.com）"
    assert rules.actor_text("admin:wang@example.com") == "管理员 wang@example.com"
    assert rules.command_result_text({"status": "applied", "relay_state": "open", "detail": ""}) == "回读分闸（断电）"
    assert rules.event_text("anomaly", "用量超过表计额定功率可能的上限",
                            {"kind": "implausible_jump", "proposed_fen": 1234, "quantity": "12.34"}) == \
        "用量超过表计额定功率可能的上限；建议计费 ¥12.34（用量 12.34）"
