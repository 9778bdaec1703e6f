"""Reports (报表) in the console (docs/console.md "Reports") over the real Flask app (test
client, real login) against the emulator: every role reads, another company gets 404, bad
input is a 400 with a Chinese message, and the exports carry the figures of postings made
through the real services (readings rated by core.services.ingest, counter cash and refund,
a rent charge item deducted), after the report rollups' stream consumer has run.

The expected figures are worked by hand from the plan in `seed` (flat tariff 1.00 元/kWh,
water 1.00 元/m³):
  1 号楼 R001  opening 500.00; 12.50 kWh = 12.50; 2.00 m³ = 2.00; cash 50.00; refund 10.00;
               rent 300.00  -> closing 500 - 12.50 - 2 + 50 - 10 - 300 = 225.50
  1 号楼 R002  opening 400.00; 3.00 kWh = 3.00; cash 20.00; rent 300.00 -> closing 117.00
  2 号楼 R201  opening 350.00; 7.25 kWh = 7.25; rent 300.00 -> closing 42.75
  1 号楼 小计  15.50 kWh, 15.50 元; 2.00 m³, 2.00 元; 收款 70.00; 退款 10.00; 其他费用 600.00; closing 342.50
  合计         22.75 kWh, 22.75 元; 2.00 m³, 2.00 元; 收款 70.00; 退款 10.00; 其他费用 900.00; closing 385.25
  income       电费 22.75 + 水费 2.00 + 租金 900.00 = 924.75
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from core.domain.rating import MeterReading
from core.services import charge_items
from core.services.ingest import Ingest
from core.services.payments import Payments
from functions import report_rollup
from infra.local.scheduler import StreamReader, drain_stream, load_functions, table_of_resource
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Clock, Metered, World, uid

SHANGHAI = ZoneInfo("Asia/Shanghai")
ROLES = ("owner", "operator", "finance", "viewer")
TABS = ("monthly", "energy", "top", "arrears", "loss", "income")


@dataclass
class Seeded:
    property_id: str
    month: str  # the month (Asia/Shanghai) the postings fall in
    accounts: dict[str, str]  # room -> account id


def _room(w: Metered, building_id: str, room: str, opening: int) -> str:
    w.d.add_room(w.property_id, building_id, "F1", room, room, "30")
    account_id = uid("a")
    tenant_id = uid("t")
    w.d.register_tenant(w.property_id, tenant_id, f"租户{room}", "13800000000")
    w.d.open_account(w.property_id, account_id, building_id, room, tenant_id, room, opening_balance=opening,
                     overdraft_limit=0)
    return account_id


def _readings(ingest: Ingest, w: Metered, meter_id: str, start: datetime, totals: tuple[str, ...]) -> None:
    """Readings an hour apart from `start` (12.5 kWh in an hour is plausible for a 20 kW meter)."""
    for seq, total in enumerate(totals, start=1):
        result = ingest.reading(w.site.site_id, MeterReading(meter_id, seq, start + timedelta(hours=seq - 1),
                                                             Decimal(total)))
        assert result not in ("refused", "anomaly", "duplicate"), result


def seed() -> Seeded:
    """Three rooms in two buildings with readings, counter cash and a refund, and a month's
    rent deducted — all through core.services — then the rollups brought up to date."""
    feed = RollupFeed()  # the usage table's stream from now on
    w = Metered()
    pid = w.property_id
    w.d.add_building(pid, "B2", "2 号楼")
    w.d.add_floor(pid, "B2", "F1", "1 层", 1)
    now = datetime.now(UTC)
    local = now.astimezone(SHANGHAI)
    month = f"{local.year:04d}-{local.month:02d}"
    month_start = datetime(local.year, local.month, 1, tzinfo=SHANGHAI).astimezone(UTC)
    start = max(month_start + timedelta(seconds=1), now - timedelta(hours=2))  # both readings in this month
    a = _room(w, "B1", "R001", 50000)
    b = _room(w, "B1", "R002", 40000)
    c = _room(w, "B2", "R201", 35000)
    ingest = Ingest(clock=Clock(max(now, start + timedelta(hours=1, minutes=1))))  # never a reading from the future
    _readings(ingest, w, w.meter(a), start, ("1000.00", "1012.50"))  # 12.50 kWh
    _readings(ingest, w, w.meter(a, kind="water"), start, ("10.00", "12.00"))  # 2.00 m³
    _readings(ingest, w, w.meter(b), start, ("2000.00", "2003.00"))  # 3.00 kWh
    _readings(ingest, w, w.meter(c), start, ("500.00", "507.25"))  # 7.25 kWh
    pay = Payments()
    pay.counter_recharge(pid, a, 5000, "RC" + uid("r")[2:10], "cash", "test")
    pay.counter_recharge(pid, b, 2000, "RC" + uid("r")[2:10], "cash", "test")
    pay.counter_refund(pid, a, 1000, "RF" + uid("r")[2:10], "test")
    charge_items.create(pid, {"item_id": "rent", "name": "房租", "category": "rent", "basis": "fixed", "price": "300",
                              "cycle": "month", "start": f"{month}-01", "mode": "deduct"}, "test")
    charge_items.run(pid, month, "test")
    assert feed.drain() > 0
    return Seeded(pid, month, {"R001": a, "R002": b, "R201": c})


class RollupFeed:
    """The report rollup consumer (functions/report_rollup.py) on the usage table's stream,
    from the moment it is made, as the event source mapping runs it (serverless.yml's
    filters and batch size; infra/local/scheduler.py)."""

    EVENT = next(e["stream"] for e in load_functions()["reportRollup"]["events"] if "stream" in e)

    def __init__(self) -> None:
        self.reader = StreamReader(table_of_resource(self.EVENT["arn"]["GetAtt"].split(".")[0]))
        self.errors: list[str] = []

    def drain(self) -> int:
        n = 0
        for _ in range(20):
            step = drain_stream(self.reader, report_rollup.handler, self.EVENT, errors=self.errors)
            n += step
            if not step:
                break
        assert not self.errors, self.errors
        return n


@pytest.fixture
def app():
    return create_app()


COMPANIES: dict[str, str] = {}  # property -> the company holding it (one company per property)


def client_of(app, property_id: str, role: str = "owner"):
    company_id = COMPANIES.setdefault(property_id, uid("co"))
    who = admins.make_admin(property_id, role=role, company_id=company_id)
    client = app.test_client()
    admins.logged_in(client, who)
    return client


def html(response) -> str:
    return response.get_data(as_text=True)


def test_every_role_reads_every_report_and_another_company_gets_404(app, world: World):
    pid = world.property_id
    for role in ROLES:
        client = client_of(app, pid, role)
        for tab in TABS:
            page = client.get(f"/p/{pid}/reports/{tab}")
            assert page.status_code == 200, (role, tab)
            assert re.search(rf'href="/p/{pid}/reports" title="报表"\s+class="active"', html(page)), (role, tab)
    assert client_of(app, pid).get(f"/p/{pid}/reports").headers["Location"].endswith(f"/p/{pid}/reports/monthly")
    other = client_of(app, World().property_id)  # an admin of another company, with a property of its own
    for path in [f"/p/{pid}/reports/{tab}" for tab in TABS] + [f"/p/{pid}/reports/monthly?format=xlsx"]:
        assert other.get(path, headers={"Accept": "application/json"}).status_code == 404, path
    anonymous = app.test_client().get(f"/p/{pid}/reports/monthly")
    assert anonymous.status_code in (302, 401)


def test_bad_input_is_a_400_with_a_chinese_message_and_an_export_is_refused(app, world: World):
    pid = world.property_id
    client = client_of(app, pid, "viewer")
    page = client.get(f"/p/{pid}/reports/monthly?month=2026-13")
    assert page.status_code == 400
    assert "月份格式不正确：「2026-13」，应为 2026-04 这样的月份" in html(page)
    for query, code, text in (
        ("monthly?month=2026-13&format=xlsx", "month_invalid", "月份格式不正确"),
        ("monthly?month=2026-04&format=pdf", "format_invalid", "导出格式必须是 xlsx、csv 或 print"),
        ("monthly?month=2026-04&building=B9&format=csv", "building_invalid", "楼栋「B9」不存在"),
        ("energy?granularity=week&format=csv", "granularity_invalid", "统计粒度"),
        ("energy?granularity=month&start=2026-05&end=2026-04&format=csv", "range_invalid", "开始不能晚于结束"),
        ("energy?granularity=day&start=2026-01-01&end=2026-12-31&format=csv", "range_too_long", "最多查看 92 个日"),
        ("top?utility=gas&format=csv", "utility_invalid", "能耗类型"),
        ("top?n=0&format=csv", "n_invalid", "排行数量"),
        ("loss?month=04-2026&format=xlsx", "month_invalid", "月份格式不正确"),
        ("income?granularity=year&start=1999&end=2026&format=csv", "start_invalid", "年份格式不正确"),
    ):
        r = client.get(f"/p/{pid}/reports/{query}", headers={"Accept": "application/json"})
        assert r.status_code == 400, query
        assert r.get_json()["error"]["code"] == code, query
        assert text in r.get_json()["error"]["message"], query
    # the pages say why, in Chinese, with the filters still there
    for query, text in (("energy?granularity=month&start=2026-05&end=2026-04", "开始不能晚于结束"),
                        ("top?utility=gas", "能耗类型必须是"), ("income?start=x", "月份格式不正确")):
        r = client.get(f"/p/{pid}/reports/{query}")
        assert r.status_code == 400 and text in html(r) and 'id="report-filters"' in html(r), query


def test_the_exports_carry_the_hand_worked_figures(app):
    s = seed()
    client = client_of(app, s.property_id, "finance")
    r = client.get(f"/p/{s.property_id}/reports/monthly?month={s.month}&format=csv")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"].startswith(f'attachment; filename="monthly-{s.property_id}-{s.month}.csv"')
    assert r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0] == ["楼栋", "房间", "租户", "电量（kWh）", "平（kWh）", "电费（元）", "水量（m³）", "水费（元）", "收款（元）",
                       "退款（元）", "其他费用（元）", "调账（元）", "期初余额（元）", "期末余额（元）"]
    by_room = {(row[0], row[1]): row for row in rows[1:]}
    assert by_room[("1 号楼", "R001")][2:12] == ["租户R001", "12.50", "12.50", "12.50", "2.00", "2.00", "50.00", "10.00",
                                                "300.00", "0.00"]
    assert by_room[("1 号楼", "R001")][13] == "225.50"
    assert by_room[("1 号楼", "R002")][3:12] == ["3.00", "3.00", "3.00", "0.00", "0.00", "20.00", "0.00", "300.00",
                                                "0.00"]
    assert by_room[("1 号楼", "R002")][13] == "117.00"
    assert by_room[("2 号楼", "R201")][13] == "42.75"
    assert by_room[("1 号楼", "小计")][3:12] == ["15.50", "15.50", "15.50", "2.00", "2.00", "70.00", "10.00", "600.00",
                                               "0.00"]
    assert by_room[("1 号楼", "小计")][13] == "342.50"
    assert rows[-1][0] == "合计" and rows[-1][2] == "3 户"
    assert rows[-1][3:12] == ["22.75", "22.75", "22.75", "2.00", "2.00", "70.00", "10.00", "900.00", "0.00"]
    assert rows[-1][13] == "385.25"

    r = client.get(f"/p/{s.property_id}/reports/monthly?month={s.month}&building=B2&format=xlsx")
    wb = load_workbook(io.BytesIO(r.data))
    assert wb.sheetnames == ["汇总", "2 号楼"]
    assert [c.value for c in wb["2 号楼"][2]][:4] == ["2 号楼", "R201", "租户R201", 7.25]

    r = client.get(f"/p/{s.property_id}/reports/income?granularity=month&start={s.month}&end={s.month}&format=csv")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0] == ["期间", "电费（元）", "水费（元）", "租金（元）", "其他费用（元）", "公摊（元）", "合计（元）"]
    assert rows[1] == [s.month, "22.75", "2.00", "900.00", "0.00", "0.00", "924.75"]

    r = client.get(f"/p/{s.property_id}/reports/top?month={s.month}&utility=electricity&n=2&format=csv")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert [row[2] for row in rows[1:]] == ["R001", "R201"]  # 12.50 and 7.25 kWh; R002's 3.00 is third

    page = client.get(f"/p/{s.property_id}/reports/monthly?month={s.month}")
    assert 'id="stat-kwh">22.75<' in html(page) and 'id="stat-payments">70.00<' in html(page)
    printable = client.get(f"/p/{s.property_id}/reports/monthly?month={s.month}&format=print")
    assert printable.status_code == 200 and 'class="sidenav"' not in html(printable)
    assert "385.25" in html(printable)
