"""Report tables and their exports (core/domain/report_export.py, docs/reports.md "Pages and
export"). The rooms are written out by hand; every expected figure below is worked by hand
from them (see the comments), never read back from the function under test."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from core.domain import report_export as x
from core.domain.errors import ValidationError
from core.domain.reports import PeriodTotals, RoomPeriod

D = Decimal


def room(building, room_id, tenant, quantity=None, cost=None, money=None, opening=None, closing=None):
    return RoomPeriod("P1", building, room_id, f"a-{room_id}", f"{room_id} 室", tenant, "2026-04",
                      quantity or {}, cost or {}, money or {}, opening, closing)


ROWS = [
    # 1 号楼 101: peak 10.5 + valley 4.25 = 14.75 kWh, 7.35 + 1.28 = 8.63 元; water 2.5 m³ 12.50 元;
    # payments 100.00 + 20.00 = 120.00; refund 5.00; fees 1500.00 rent + 3.00 late fee = 1503.00;
    # adjustments +1.00 - 0.40 = 0.60; balance 50.00 -> 140.00
    room("B1", "101", "张三", {"electricity": {"peak": D("10.5"), "valley": D("4.25")}, "water": {"flat": D("2.5")}},
         {"electricity": {"peak": 735, "valley": 128}, "water": {"flat": 1250}},
         {"recharge": 10000, "cash": 2000, "refund": 500, "fee:rent": 150000, "late_fee": 300, "adjust_credit": 100,
          "adjust_debit": 40}, 5000, 14000),
    # 1 号楼 102: flat 20 kWh, 20.00 元; a bill paid 30.00; shared 4.50; balance -12.00 -> -32.00
    room("B1", "102", "李四", {"electricity": {"flat": D("20")}}, {"electricity": {"flat": 2000}},
         {"bill_payment": 3000, "shared": 450}, -1200, -3200),
    # 2 号楼 201: peak 3 kWh, 2.10 元; balance 8.00 -> 5.90
    room("B2", "201", "王五", {"electricity": {"peak": D("3")}}, {"electricity": {"peak": 210}}, {}, 800, 590),
    # 2 号楼 202: an account with no posting in the month
    room("B2", "202", ""),
]
NAMES = {"B1": "1 号楼", "B2": "2 号楼"}
HEADERS = ["楼栋", "房间", "租户", "电量（kWh）", "峰（kWh）", "平（kWh）", "谷（kWh）", "电费（元）", "水量（m³）",
           "水费（元）", "收款（元）", "退款（元）", "其他费用（元）", "调账（元）", "期初余额（元）", "期末余额（元）"]
# figures from 电量 on, by hand
B1_SUB = [34.75, 10.5, 20, 4.25, 28.63, 2.5, 12.50, 150.00, 5.00, 1507.50, 0.60, 38.00, 108.00]
B2_SUB = [3, 3, 0, 0, 2.10, 0, 0, 0, 0, 0, 0, 8.00, 5.90]
TOTAL = [37.75, 13.5, 20, 4.25, 30.73, 2.5, 12.50, 150.00, 5.00, 1507.50, 0.60, 46.00, 113.90]


def numbers(values) -> list[float]:
    return [round(float(v), 2) if v is not None else None for v in values]


def test_the_monthly_workbook_has_a_summary_and_a_sheet_per_building():
    report = x.monthly_report("2026-04", ROWS, NAMES)
    wb = load_workbook(io.BytesIO(x.to_xlsx([report.summary, *report.buildings], "2026-04 月度综合报表")))
    assert wb.sheetnames == ["汇总", "1 号楼", "2 号楼"]
    assert wb.properties.title == "2026-04 月度综合报表"

    b1 = wb["1 号楼"]
    assert [c.value for c in b1[1]] == HEADERS
    assert b1.freeze_panes == "A2"
    assert [c.value for c in b1[2]][:3] == ["1 号楼", "101 室", "张三"]
    assert numbers([c.value for c in b1[2]][3:]) == [14.75, 10.5, 0, 4.25, 8.63, 2.5, 12.50, 120.00, 5.00, 1503.00,
                                                     0.60, 50.00, 140.00]
    assert numbers([c.value for c in b1[3]][3:]) == [20, 0, 20, 0, 20.00, 0, 0, 30.00, 0, 4.50, 0, -12.00, -32.00]
    assert [c.value for c in b1[4]][:3] == ["1 号楼", "小计", "2 户"]
    assert numbers([c.value for c in b1[4]][3:]) == B1_SUB
    assert b1.max_row == 4 and b1[4][0].font.b
    # number formats: kWh columns 0.00, yuan columns #,##0.00, on every data row
    for row in b1.iter_rows(min_row=2):
        assert [c.number_format for c in row[3:7]] == ["0.00"] * 4
        assert row[7].number_format == "#,##0.00" and row[8].number_format == "0.00"
        assert {c.number_format for c in row[9:]} == {"#,##0.00"}

    b2 = wb["2 号楼"]
    assert [c.value for c in b2[3]][:3] == ["2 号楼", "202 室", None]  # no tenant: an empty cell
    assert [c.value for c in b2[3]][-2:] == [None, None]  # no posting: no balances
    assert numbers([c.value for c in b2[4]][3:]) == B2_SUB

    summary = wb["汇总"]
    assert [c.value for c in summary[1]] == ["楼栋", "房间数"] + HEADERS[3:]
    assert summary.freeze_panes == "A2"
    assert [c.value for c in summary[2]][:2] == ["1 号楼", 2]
    assert numbers([c.value for c in summary[2]][2:]) == B1_SUB
    assert numbers([c.value for c in summary[3]][2:]) == B2_SUB
    assert [c.value for c in summary[4]][:2] == ["合计", 4]
    assert numbers([c.value for c in summary[4]][2:]) == TOTAL
    assert summary[4][6].number_format == "#,##0.00"  # 电费 in the 合计 row


def test_money_in_the_workbook_is_exact_to_the_fen():
    # 0.1 + 0.2 kinds of drift: 3 rooms of 0.10 元 + one of 0.20 元 must sum to 0.50 exactly
    rows = [room("B1", f"{i}", "", money={"cash": fen}) for i, fen in enumerate((10, 10, 10, 20))]
    report = x.monthly_report("2026-04", rows, NAMES)
    assert report.figure("payments") == 50
    wb = load_workbook(io.BytesIO(x.to_xlsx([report.summary])))
    assert wb["汇总"]["G3"].value == 0.5 and wb["汇总"]["A3"].value == "合计"
    # a figure of 1,234,567.89 元 keeps its cents
    big = x.monthly_report("2026-04", [room("B1", "1", "", money={"recharge": 123456789})], NAMES)
    ws = load_workbook(io.BytesIO(x.to_xlsx(big.buildings)))["1 号楼"]
    assert ws["H2"].value == 1234567.89 and ws["H2"].number_format == "#,##0.00"


def test_the_csv_is_utf8_with_a_bom_and_lists_rooms_subtotals_and_the_total():
    report = x.monthly_report("2026-04", ROWS, NAMES)
    data = x.to_csv(report.detail).encode("utf-8")
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == HEADERS
    assert [ln[:3] for ln in lines[1:]] == [["1 号楼", "101 室", "张三"], ["1 号楼", "102 室", "李四"],
                                            ["1 号楼", "小计", "2 户"], ["2 号楼", "201 室", "王五"],
                                            ["2 号楼", "202 室", ""], ["2 号楼", "小计", "2 户"], ["合计", "", "4 户"]]
    assert lines[2][3:] == ["20.00", "0.00", "20.00", "0.00", "20.00", "0.00", "0.00", "30.00", "0.00", "4.50",
                            "0.00", "-12.00", "-32.00"]
    assert lines[5][-2:] == ["", ""]
    assert lines[-1][3:] == ["37.75", "13.50", "20.00", "4.25", "30.73", "2.50", "12.50", "150.00", "5.00",
                             "1507.50", "0.60", "46.00", "113.90"]


def test_an_empty_month_is_a_report_with_a_zero_total():
    report = x.monthly_report("2026-04", [], NAMES)
    assert [c.header for c in report.detail.columns] == [h for h in HEADERS if h not in ("峰（kWh）", "平（kWh）",
                                                                                        "谷（kWh）")]
    assert [r.mark for r in report.detail.rows] == ["total"]
    assert report.detail.rows[0].cells[:3] == ("合计", "", "0 户")
    wb = load_workbook(io.BytesIO(x.to_xlsx([report.summary, *report.buildings])))
    assert wb.sheetnames == ["汇总"] and wb["汇总"]["B2"].value == 0


def test_cells_as_people_read_them():
    assert x.cell_text(x.YUAN, -5) == "-0.05"
    assert x.cell_text(x.YUAN, 123456) == "1234.56"
    assert x.cell_text(x.KWH, D("1.005")) == "1.01"  # half up, not banker's
    assert x.cell_text(x.M3, D("0.004")) == "0.00"
    assert x.cell_text(x.PCT, D("0.125")) == "12.50%"
    assert x.cell_text(x.PCT, D("-0.5")) == "-50.00%"
    assert x.cell_text(x.YUAN, None) == ""
    assert x.cell_value(x.YUAN, 1999) == D("19.99")


def test_periods_and_ranges_are_checked_with_chinese_messages():
    assert x.parse_period("month", " 2026-04 ") == "2026-04"
    assert x.parse_period("day", "2024-02-29") == "2024-02-29"
    assert x.parse_period("year", "2026") == "2026"
    for granularity, bad in (("month", "2026-13"), ("month", "2026-4"), ("month", "四月"), ("day", "2026-02-30"),
                             ("year", "26"), ("month", "1999-12")):
        with pytest.raises(ValidationError) as e:
            x.parse_period(granularity, bad)
        assert "格式不正确" in e.value.message and e.value.status == 400
    with pytest.raises(ValidationError, match="统计粒度"):
        x.parse_period("week", "2026-04")
    assert x.parse_range("month", "2025-05", "2026-04") == ("2025-05", "2026-04")
    with pytest.raises(ValidationError, match="开始不能晚于结束"):
        x.parse_range("month", "2026-05", "2026-04")
    with pytest.raises(ValidationError, match="最多查看 92 个日"):
        x.parse_range("day", "2026-01-01", "2026-04-03")  # 31 + 28 + 31 + 3 = 93 days
    assert x.parse_range("day", "2026-01-01", "2026-04-02") == ("2026-01-01", "2026-04-02")  # 92 days
    with pytest.raises(ValidationError, match="导出格式"):
        x.export_format("pdf")


def test_sheet_names_follow_excels_rules():
    assert x.sheet_name("A/B:C") == "A_B_C"
    assert len(x.sheet_name("楼" * 40)) == 31
    assert x.sheet_name("1 号楼", ["1 号楼"]) == "1 号楼 (2)"
    assert x.sheet_name("汇总", ["汇总", "汇总 (2)"]) == "汇总 (3)"


def test_energy_income_loss_top_and_arrears_tables():
    totals = [PeriodTotals("2026-03", "", 3, {"electricity": D("100.5")}, {"electricity": 5025}, {}),
              PeriodTotals("2026-04", "", 3, {"electricity": D("80"), "water": D("4.5")},
                           {"electricity": 4000, "water": 2250}, {})]
    t = x.totals_table("month", totals, "能耗")
    assert [x.cell_text(c.kind, v) for c, v in zip(t.columns, t.rows[-1].cells, strict=True)] == \
        ["合计", "180.50", "90.25", "4.50", "22.50", ""]  # 100.5 + 80; 50.25 + 40.00

    income, parts = x.income_table("month", "2026-03", "2026-04", [
        {"period": "2026-03", "electricity": 5025, "water": 0, "rent": 150000, "fees": 300, "shared": 450},
        {"period": "2026-04", "electricity": 4000, "water": 2250, "rent": 150000, "fees": 0, "shared": 0}])
    assert parts == {"electricity": 9025, "water": 2250, "rent": 300000, "fees": 300, "shared": 450}
    assert income.rows[0].cells[-1] == 155775  # 50.25 + 1500.00 + 3.00 + 4.50 = 1557.75
    assert income.rows[-1].cells == ("合计", 9025, 2250, 300000, 300, 450, 312025)
    wb = load_workbook(io.BytesIO(x.to_xlsx([income])))
    assert [c.value for c in wb["收入"][1]] == ["期间", "电费（元）", "水费（元）", "租金（元）", "其他费用（元）", "公摊（元）",
                                              "合计（元）"]
    assert wb["收入"]["G4"].value == 3120.25

    loss = x.loss_table("2026-04", [
        {"name": "A 座公区", "utility": "electricity", "master_usage": D("120"), "sub_usage": D("102"), "loss": D("18"),
         "loss_ratio_pct": D("15.00"), "threshold_pct": D("10"), "flagged": True},  # (120 - 102) / 120 = 15 %
        {"name": "B 座", "utility": None, "master_usage": None, "sub_usage": None, "loss": None,
         "loss_ratio_pct": None, "threshold_pct": D("5"), "flagged": False}])
    assert loss.rows[0].cells[1:] == ("电（kWh）", D("120"), D("102"), D("18"), D("0.15"), D("0.1"), "超阈值")
    assert [x.cell_text(c.kind, v) for c, v in zip(loss.columns, loss.rows[1].cells, strict=True)] == \
        ["B 座", "", "", "", "", "", "5.00%", "未试算"]

    top = x.top_table("2026-04", "electricity", ROWS[:2], NAMES)
    assert [r.cells[:3] for r in top.rows] == [(1, "1 号楼", "101 室"), (2, "1 号楼", "102 室")]
    assert top.rows[0].cells[4:] == (D("14.75"), 863)

    arrears = x.arrears_table([{"building_id": "B1", "room_name": "102 室", "tenant_name": "李四", "balance": -3200,
                                "unpaid_bills": 5935, "oldest_due": "2026-05-10", "days_overdue": 3},
                               {"building_id": "B2", "room_name": "201 室", "tenant_name": "王五", "balance": 590,
                                "unpaid_bills": 1000, "oldest_due": "2026-05-20", "days_overdue": 0},
                               {"building_id": "B2", "room_name": "202 室", "tenant_name": "", "balance": -10,
                                "unpaid_bills": 0, "oldest_due": None, "days_overdue": 0}], NAMES, "2026-05-13")
    assert arrears.rows[0].cells == ("1 号楼", "102 室", "李四", -3200, 5935, "2026-05-10", 3)
    assert arrears.rows[2].cells[5:] == (None, None)  # no bill: no due date
    assert arrears.rows[-1].cells[3:5] == (-3210, 6935)  # negative balances only; every unpaid bill


def test_the_comparison_table_lists_the_property_then_each_building():
    def utilities(q, prev, last, mom, yoy):
        return {"quantity": D(q), "previous_quantity": D(prev), "last_year_quantity": D(last), "mom_quantity": mom,
                "yoy_quantity": yoy, "cost": 0}

    # 110 vs 100: +10 %; vs 0 a year ago: no ratio
    comparison = {"month": "2026-04", "property": {"building_id": "", "utilities": {
        "electricity": utilities("110", "100", "0", D("0.1"), None), "water": utilities("3", "4", "2", D("-0.25"),
                                                                                       D("0.5"))}},
        "buildings": [{"building_id": "B1", "building_name": "1 号楼", "utilities": {
            "electricity": utilities("110", "100", "0", D("0.1"), None), "water": utilities("3", "4", "2", D("-0.25"),
                                                                                           D("0.5"))}}]}
    t = x.comparison_table(comparison, NAMES)
    assert [c.header for c in t.columns][:6] == ["范围", "电·本月（kWh）", "电·上月（kWh）", "电·环比", "电·去年同月（kWh）",
                                                 "电·同比"]
    assert [x.cell_text(c.kind, v) for c, v in zip(t.columns, t.rows[0].cells, strict=True)] == \
        ["全物业", "110.00", "100.00", "10.00%", "0.00", "", "3.00", "4.00", "-25.00%", "2.00", "50.00%"]
    assert [r.mark for r in t.rows] == ["total", ""] and t.rows[1].cells[0] == "1 号楼"

