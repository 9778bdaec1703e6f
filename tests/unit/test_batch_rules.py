"""The pure rules of batch operations (core/domain/batch.py): parameters, sheet rows, messages,
progress, the dry run's before -> after. Expected values written out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.domain import batch as rules
from core.domain.errors import ValidationError

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def test_params_are_checked_and_normalised_to_fen():
    assert rules.check_params("recharge", {"amount": "12.5", "memo": " 补贴 "}) == {"amount": 1250, "memo": "补贴"}
    assert rules.check_params("deduct", {"amount": 300}) == {"amount": 300, "memo": ""}
    assert rules.check_params("recharge", {}, per_row_amounts=True) == {"memo": ""}
    assert rules.check_params("settings", {"alarm_levels": "50，20, 0", "keep_supply": "on"}) == {
        "alarm_levels": [5000, 2000, 0], "keep_supply": True}
    assert rules.check_params("settings", {"overdraft_limit": "100"}) == {"overdraft_limit": 10000}
    assert rules.check_params("trip", {"reason": " 检修 "}) == {"reason": "检修"}
    assert rules.check_params("open_account", {}) == {"overdraft_limit": 0}
    for op, params, code in [("recharge", {"amount": "1.234"}, "amount_invalid"),
                             ("recharge", {"amount": "0"}, "amount_invalid"),
                             ("recharge", {"amount": True}, "amount_required"),
                             ("recharge", {"amount": "100000.01"}, "amount_invalid"),
                             ("settings", {"alarm_levels": "10,20"}, "alarm_levels_invalid"),
                             ("settings", {"alarm_levels": "50,20,10,0"}, "alarm_levels_invalid"),
                             ("settings", {}, "nothing_to_change"),
                             ("close", {"reason": "x" * 101}, "reason_too_long"),
                             ("tariff", {"plan_id": "a/b"}, "plan_required")]:
        with pytest.raises(ValidationError) as e:
            rules.check_params(op, params)
        assert e.value.code == code, (op, params)


def test_sheet_rows_keep_each_rows_problem():
    rows = [("楼栋编号", "房间编号", "金额（元）", "备注"),
            ("A", 101.0, 12.5, "x"),  # a number cell: room "101"
            (None, None, None, None),  # empty: skipped
            ("A", "102", "abc", None),
            ("A", "10#3", "1", None),
            ("A", "104", None, None)]
    out = rules.read_rows(rows, rules.ACCOUNT, "recharge")
    assert out[0] == {"row": 2, "building_id": "A", "room_id": "101", "amount": 1250}
    assert out[1]["problem"] == "第 4 行：金额必须是数字（元）"
    assert "格式不正确" in out[2]["problem"]
    assert out[3]["problem"] == "第 6 行：请填写金额（元）"
    with pytest.raises(ValidationError) as e:
        rules.read_rows([("名字",), ("x",)], rules.METER, "trip")
    assert e.value.code == "sheet_header_invalid"
    with pytest.raises(ValidationError):
        rules.read_rows([("表号",)], rules.METER, "trip")


def test_messages_split_items_and_parse_back():
    ids = [rules.item_id(n) for n in range(1, 61)]
    bodies = rules.messages("bt-1", 2, ids, per_message=25)
    parsed = [rules.parse_message(b) for b in bodies]
    assert [len(m.items) for m in parsed] == [25, 25, 10] and {m.attempt for m in parsed} == {2}
    assert parsed[0].items[0] == "00001" and parsed[2].items[-1] == "00060"
    for bad in ("", "{}", '{"v":1,"task_id":"bt-1","attempt":1,"items":["1"]}',
                '{"v":1,"task_id":"a/b","attempt":1,"items":["00001"]}'):
        with pytest.raises(ValidationError):
            rules.parse_message(bad)
    assert rules.entry_id("bt-1", "00007") == "batch:bt-1:00007"
    assert rules.derived_id("a", "bt-1", "00007") == rules.derived_id("a", "bt-1", "00007") != \
        rules.derived_id("a", "bt-1", "00008")


def test_progress_and_run_at():
    c = rules.counts(["done", "done", "failed", "pending"])
    assert (c["done"], c["failed"], c["pending"], rules.percent(c), rules.settled(c)) == (2, 1, 1, 75, False)
    assert rules.settled(rules.counts(["done", "cancelled", "skipped"]))
    at = rules.parse_run_at("2026-11-20T18:30", NOW)
    assert at.astimezone(UTC) == datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # Shanghai time, UTC+8
    assert rules.parse_run_at("", NOW) is None
    for bad, code in (("2026-11-20T09:00", "run_at_past"), ("2027-03-01T00:00", "run_at_too_far"),
                      ("tomorrow", "run_at_invalid")):
        with pytest.raises(ValidationError) as e:
            rules.parse_run_at(bad, NOW)
        assert e.value.code == code


def test_the_dry_run_says_what_would_change():
    assert rules.change("recharge", {"amount": 1000}, {}, {"balance": -250}) == ("余额 -2.50", "余额 7.50", "")
    assert rules.change("deduct", {}, {"amount": 300}, {"balance": 1000}) == ("余额 10.00", "余额 7.00", "")
    assert rules.change("trip", {"reason": "x"}, {}, {"relay": "closed", "manual_open": False}) == (
        "合闸", "分闸（手动保持）", "")
    assert rules.change("trip", {"reason": "x"}, {}, {"relay": "open", "manual_open": True})[2] == "已是目标状态"
    assert rules.change("tariff", {"plan_id": "p1"}, {}, {"plan_id": "p1"}) == ("p1", "p1", "方案未变化")
    assert rules.change("settings", {"alarm_levels": [3000], "keep_supply": True}, {},
                        {"alarm_levels": [], "keep_supply": False}) == (
        "告警 默认（50.00 / 20.00 / 0.00）；保电 关", "告警 30.00；保电 开", "")
    assert rules.change("open_account", {}, {"tenant_name": "张三", "phone": "13800000000"}, {"open_account": "a-1"})[2] \
        == "房间已有在用账户"
