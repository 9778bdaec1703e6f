"""Room detail (房间详情) against the emulator: a room made with testkit's builders, paid
for through WeChat Pay (the emulators, a real signed notification), read by a meter
(three readings, then one out of order) until it is cut; then the page, its statement
paging and its JSON through a logged-in Flask test client.

Worked by hand (plan: 1.0000 yuan/kWh, no protection, alarm amounts 50 / 20 / 0 yuan):
  opening 0                      -> 0.00
  WeChat Pay recharge +50.00     -> 50.00
  seq 1 at 09:00, 100 kWh        baseline, nothing billed
  seq 2 at 10:00, 130 kWh: 30 kWh -30.00 -> 20.00   (below 50: level 1 alarm)
  seq 3 at 11:00, 180 kWh: 50 kWh -50.00 -> -30.00  (below 0: level 3 alarm, cut, TRIP in flight)
  seq 4 read at 10:30: out of order, an anomaly, nothing billed
So: balance -30.00, cut; today (the page drawn at 12:00 that day) 80 kWh and 80.00 yuan,
hour 10: 30 kWh, hour 11: 50 kWh.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.protocol.messages import MeterReading
from core.services import room_detail
from core.services.ingest import Ingest
from core.services.payments import Payments
from functions import wechatpay_notify
from infra.local.paystack import PayStack
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Clock, Metered

SH = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 20, tzinfo=SH)


def at(hour: int, minute: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


@pytest.fixture(scope="module")
def room(aws):
    """The room of the module docstring, built once (the payment needs the WeChat emulators)."""
    mp = pytest.MonkeyPatch()
    pay = PayStack().start()
    pay.apply_env()
    mp.setattr(wechatpay_notify, "payments", Payments())
    try:
        w = Metered()
        account = w.account(opening=0)
        meter = w.meter(account, rated_kw="50")
        openid = f"o{uuid.uuid4().hex[:27]}"
        w.d.bind_openid(w.tenant_id, openid)
        client = create_app().test_client()
        token = client.post("/api/v1/login", json={"code": pay.api.issue_code(openid)}).get_json()["token"]
        r = client.post("/api/v1/recharges", json={"account_id": account, "amount": 5000},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code in (200, 201), r.get_data(as_text=True)
        order = r.get_json()["out_trade_no"]
        pay.pay.pay(order)
        assert pay.pay.wait_for_deliveries(10)

        clock = Clock(at(9))
        ingest = Ingest(clock=clock)
        for seq, hour, minute, total, peak, valley in ((1, 9, 0, "100", "60", "40"), (2, 10, 0, "130", "80", "50"),
                                                        (3, 11, 0, "180", "110", "70"), (4, 10, 30, "181", "110", "71")):
            clock.now = max(clock.now, at(hour, minute))
            reading = MeterReading(meter_id=meter, seq=seq, read_at=at(hour, minute), total=Decimal(total),
                                   registers={"peak": Decimal(peak), "valley": Decimal(valley)}, relay_state="closed")
            assert ingest.reading(w.site.site_id, reading) != "refused"
        owner = admins.make_admin(w.property_id)
        yield {"w": w, "account": account, "meter": meter, "order": order, "owner": owner}
    finally:
        pay.stop()
        mp.undo()


@pytest.fixture
def owner_client(room):
    app = create_app()
    app.extensions["feikong.clock"] = lambda: at(12)
    client = app.test_client()
    admins.logged_in(client, room["owner"])
    return client


def url(room, api: bool = False) -> str:
    p = room["w"].property_id
    return f"/admin/api/properties/{p}/rooms/B1/R001" if api else f"/p/{p}/rooms/B1/R001"


def test_the_read_model_as_worked_by_hand(room):
    d = room_detail.room_detail(room["w"].property_id, "B1", "R001", now=at(12))
    assert (d.room.room_id, d.building.name, d.floor.name) == ("R001", "1 号楼", "1 层")
    [a] = d.accounts
    assert (a.state.balance, a.state.control["cut_state"]) == (-3000, "cut")
    assert (a.supply.label, a.supply.reason) == ("已断电", "余额 ¥-30.00 低于断电线 ¥0.00；余额高于 ¥0.00 时自动恢复供电")
    assert (a.alarm_level, a.alarm_text) == (3, "3 级告警：余额低于 ¥0.00")
    assert a.tenant.name == "测试租户" and a.tenant.openid

    [m] = a.meters
    assert (m.meter.reading_seq, m.meter.reading_total, m.reading_at) == (3, "180", "2026-11-20 11:00:00")
    assert m.registers == [("峰", "110"), ("谷", "70")] and m.meter.online
    assert m.meter.relay_state == "closed"  # what the meter read back; the TRIP is not confirmed yet
    assert m.in_flight is not None and (m.in_flight.row.op, m.in_flight.row.state) == ("TRIP", "sent")
    [trip] = a.commands
    assert (trip.op_name, trip.state_name, trip.cause) == ("拉闸", "已发送", "用电扣费后余额低于断电线")

    assert a.usage.today == {"kWh": Decimal(80)} and a.usage.today_fen == {"kWh": 8000}
    assert a.usage.hours[10] == 30 and a.usage.hours[11] == 50 and sum(a.usage.hours) == 80
    assert a.usage.days[-1] == ("2026-11-20", Decimal(80)) and len(a.usage.days) == 30

    rows = [(r.entry.kind, r.entry.amount, r.entry.balance_after, r.text, r.actor) for r in a.statement.rows]
    assert rows == [
        ("energy", -5000, -3000, f"用电 50 kWh · 表 {room['meter']} 第 3 次读数", "系统计费"),
        ("energy", -3000, 2000, f"用电 30 kWh · 表 {room['meter']} 第 2 次读数", "系统计费"),
        ("recharge", 5000, 5000, f"微信支付充值（订单 {room['order']}）", "微信支付"),
        ("opening", 0, 0, "开户期初余额", "系统"),
    ]
    assert a.statement.next_cursor is None

    kinds = sorted((e.event.type, e.event.event_id) for e in d.events)
    assert kinds == [("anomaly", "anomaly:4:out_of_order"), ("low_balance", "alarm:1:1:1"),
                     ("low_balance", "alarm:3:1:1"), ("meter_online", "online:1")]
    anomaly = next(e for e in d.events if e.anomaly)
    assert (anomaly.type_name, anomaly.status_name, anomaly.subject) == ("读数异常", "已记录", f"表 {room['meter']}")


def test_the_page_shows_every_section(room, owner_client):
    r = owner_client.get(url(room))
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    for text in ("R001", "测试租户", "13800000000", "¥-30.00", "已断电", "余额高于 ¥0.00 时自动恢复供电",
                 "3 级告警", "80 kWh", "电费 ¥80.00", "峰 110", "谷 70", "2026-11-20 11:00:00", "拉闸", "已发送",
                 f"微信支付充值（订单 {room['order']}）", "开户期初余额", "读数时间早于已计费读数", "表计恢复在线",
                 "开关命令执行中", 'id="room-actions"', "data-chart=\"hourly\"", "data-chart=\"daily\""):
        assert text in html, text
    assert html.count('<tr data-entry=') == 4
    charts = json.loads(re.search(r'<script type="application/json" id="room-charts">(.*?)</script>', html, re.S)[1])
    chart = charts[room["account"]]
    assert chart["hourly"] == [0.0] * 10 + [30.0, 50.0] + [0.0] * 12 and chart["has"] is True
    assert chart["days"][-1] == "11-20" and chart["daily"][-1] == 80.0 and sum(chart["daily"]) == 80.0


def test_statement_pages_newest_first_with_a_cursor(room, owner_client):
    p, a = room["w"].property_id, room["account"]
    first = owner_client.get(f"/admin/api/properties/{p}/accounts/{a}/entries?limit=3").get_json()
    assert [e["seq"] for e in first["entries"]] == [4, 3, 2] and first["next_cursor"]
    second = owner_client.get(f"/admin/api/properties/{p}/accounts/{a}/entries?limit=3&cursor={first['next_cursor']}")
    assert second.status_code == 200
    assert [e["seq"] for e in second.get_json()["entries"]] == [1] and second.get_json()["next_cursor"] is None
    # exactly a page's worth: the page knows it is the last one
    two = owner_client.get(f"/admin/api/properties/{p}/accounts/{a}/entries?limit=2").get_json()
    rest = owner_client.get(f"/admin/api/properties/{p}/accounts/{a}/entries?limit=2&cursor={two['next_cursor']}")
    assert [e["seq"] for e in rest.get_json()["entries"]] == [2, 1] and rest.get_json()["next_cursor"] is None
    e = first["entries"][2]
    assert (e["kind"], e["amount_fen"], e["balance_after"], e["cause_text"]) == \
        ("recharge", 5000, "50.00", f"微信支付充值（订单 {room['order']}）")
    # the page's htmx partial and the page itself page the same way
    html = owner_client.get(f"/p/{p}/rooms/B1/R001/statement/{a}?limit=3&cursor={first['next_cursor']}")
    assert html.status_code == 200 and html.get_data(as_text=True).count("<tr data-entry=") == 1
    page = owner_client.get(f"/p/{p}/rooms/B1/R001?limit=3").get_data(as_text=True)
    assert page.count("<tr data-entry=") == 3 and "更早的流水" in page


@pytest.mark.parametrize("query, code", [("cursor=not-a-cursor", "cursor_invalid"), ("limit=0", "limit_invalid"),
                                         ("limit=101", "limit_invalid"), ("limit=x", "limit_invalid")])
def test_bad_paging_is_a_clear_400(room, owner_client, query, code):
    p, a = room["w"].property_id, room["account"]
    r = owner_client.get(f"/admin/api/properties/{p}/accounts/{a}/entries?{query}")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == code
    assert re.search(r"[\u4e00-\u9fff]", r.get_json()["error"]["message"])


def test_json_of_the_room(room, owner_client):
    body = owner_client.get(url(room, api=True)).get_json()
    [a] = body["accounts"]
    assert a["balance"] == {"fen": -3000, "yuan": "-30.00"} and a["cut_state"] == "cut"
    assert a["supply"]["label"] == "已断电" and a["alarm_level"] == 3
    assert a["usage"]["today"] == {"kWh": "80"} and a["usage"]["today_cost"] == {"kWh": {"fen": 8000, "yuan": "80.00"}}
    assert a["usage"]["hourly_kwh"][9:13] == ["0", "30", "50", "0"]
    [m] = a["meters"]
    assert m["last_reading"]["seq"] == 3 and m["relay_in_flight"]["op"] == "TRIP"
    assert [e["kind"] for e in a["statement"]["entries"]] == ["energy", "energy", "recharge", "opening"]
    assert {e["type"] for e in body["events"]} == {"anomaly", "low_balance", "meter_online"}


def test_missing_room_and_other_accounts_are_404(room, owner_client):
    p = room["w"].property_id
    assert owner_client.get(f"/p/{p}/rooms/B1/R999").status_code == 404
    r = owner_client.get(f"/admin/api/properties/{p}/rooms/B9/R001")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "room_not_found"
    other = Metered()
    foreign = other.account(opening=100)
    r = owner_client.get(f"/admin/api/properties/{p}/accounts/{foreign}/entries")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "account_not_found"


def test_another_propertys_admin_gets_404_and_a_viewer_sees_the_page(room):
    client = create_app().test_client()
    admins.logged_in(client, admins.make_admin(Metered().property_id))  # an owner of another company
    for path in (url(room), url(room, api=True),
                 f"/admin/api/properties/{room['w'].property_id}/accounts/{room['account']}/entries"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert room["account"] not in r.get_data(as_text=True)
    viewer = create_app().test_client()
    admins.logged_in(viewer, admins.make_admin(room["w"].property_id, role="viewer",
                                                         company_id=room["owner"].company_id))
    r = viewer.get(url(room))
    assert r.status_code == 200 and "已断电" in r.get_data(as_text=True)
    anonymous = create_app().test_client()
    assert anonymous.get(url(room)).status_code == 302
    assert anonymous.get(url(room, api=True)).status_code == 401


def test_the_monitor_tile_links_to_the_room(room, owner_client):
    tiles = owner_client.get(f"/p/{room['w'].property_id}/rooms").get_data(as_text=True)
    assert f'href="/p/{room["w"].property_id}/rooms/B1/R001"' in tiles
