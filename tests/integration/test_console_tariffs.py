"""Tariffs (电价方案) and the anomaly review queue (异常审核) of the console, over the real
Flask app (test client) against the emulator: plans made and versioned in forms, the
preview (电价试算) through production rating, import / export, approvals and rejections
through Ingest, bad input, roles (403) and property scoping (404).

Expected figures are worked by hand from the prices written in each test."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.domain.events import Subject
from core.domain.rating import MeterReading
from core.services import action_log
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import events as estore
from miniprogram_api.app import create_app
from miniprogram_api.console_tariffs import INGEST_KEY
from testkit import admins
from testkit.builders import Clock, World, uid

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
# a time-of-use day, by hand: valley 0.30 (00-08, 22-24), peak 1.00 (08-12, 18-22), flat 0.60 (12-18)
TOU_ROWS = [("00:00", "08:00", "valley"), ("08:00", "12:00", "peak"), ("12:00", "18:00", "flat"),
            ("18:00", "22:00", "peak"), ("22:00", "24:00", "valley")]
PRICES = {"peak": "1.0000", "flat": "0.6000", "valley": "0.3000"}


def tou_form(plan_id: str, **extra) -> dict:
    f = {"plan_id": plan_id, "name": "测试分时电价", "utility": "electricity", "effective_from": "2026-01-01T00:00",
         "mode": "tou", **{f"price_{p}": v for p, v in PRICES.items()}}
    for i, (a, b, p) in enumerate(TOU_ROWS):
        f.update({f"iv_start_{i}": a, f"iv_end_{i}": b, f"iv_period_{i}": p})
    f.update(extra)
    return f


EXPECTED_TOU_VERSION = {
    "effective_from": "2026-01-01T00:00:00+08:00",
    "prices": PRICES,
    "schedules": [{"months": list(range(1, 13)), "day_types": ["workday", "weekend", "holiday"],
                   "intervals": [{"start": a, "end": b, "period": p} for a, b, p in TOU_ROWS]}],
}


@pytest.fixture
def app():
    app = create_app()
    app.extensions[INGEST_KEY] = Ingest(clock=Clock(T0 + timedelta(days=2)))
    return app


def client_of(app, who):
    c = app.test_client()
    admins.logged_in(c, who)
    return c


@pytest.fixture
def owner(app, metered):
    who = admins.make_admin(metered.property_id, role="owner")
    return who, client_of(app, who)


def post(c, url: str, data: dict):
    return c.post(url, data={**data, "csrf_token": admins.csrf_token(c, "/account/password")})


def api(c, method: str, url: str, body=None):
    return c.open(url, method=method, json=body, headers={"X-CSRFToken": admins.csrf_token(c, "/account/password")})


def export(c, pid: str, plan_id: str) -> dict:
    r = c.get(f"/admin/api/properties/{pid}/tariffs/{plan_id}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def future_local(days: int = 2) -> str:
    t = (datetime.now(UTC) + timedelta(days=days)).astimezone(SH).replace(hour=0, minute=0, second=0, microsecond=0)
    return t.strftime("%Y-%m-%dT%H:%M")


# -- tariffs -------------------------------------------------------------------------------------


def test_a_plan_made_in_the_form_is_stored_listed_and_previewed_by_hand_worked_figures(metered, owner):
    who, c = owner
    pid, plan_id = metered.property_id, uid("tou")
    r = post(c, f"/p/{pid}/tariffs/new", tou_form(plan_id))
    assert r.status_code == 302, r.get_data(as_text=True)
    assert export(c, pid, plan_id) == {"plan_id": plan_id, "name": "测试分时电价", "utility": "electricity",
                                       "timezone": "Asia/Shanghai", "versions": [EXPECTED_TOU_VERSION]}
    page = c.get(f"/p/{pid}/tariffs").get_data(as_text=True)
    assert "测试分时电价" in page and "08:00–12:00 峰" in page and "新建方案" in page

    # 10:00 -> 14:00, 0 -> 8 kWh spread by time: 4 kWh peak x 1.00 + 4 kWh flat x 0.60 = 6.40 yuan
    r = post(c, f"/p/{pid}/tariffs/{plan_id}/preview", {"mode": "totals", "start_at": "2026-12-01T10:00",
                                                         "end_at": "2026-12-01T14:00", "start_total": "0",
                                                         "end_total": "8", "rated_kw": "10"})
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'id="preview-total">6.40<' in html
    # per period from TOU registers over a day: 10 x 1.00 + 5 x 0.60 + 20 x 0.30 = 19.00 yuan
    r = api(c, "POST", f"/admin/api/properties/{pid}/tariffs/{plan_id}/preview",
            {"start_at": "2026-12-01T00:00:00+08:00", "end_at": "2026-12-02T00:00:00+08:00",
             "by_period": {"peak": "10", "flat": "5", "valley": "20"}})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert [ch["fen"] for ch in body["charges"]] == [1900]
    per_period = {line["period"]: (line["quantity"], line["amount"]) for line in body["lines"]}
    assert per_period == {"peak": ("10", "10"), "flat": ("5", "3"), "valley": ("20", "6")}
    # the same in the form
    html = post(c, f"/p/{pid}/tariffs/{plan_id}/preview", {
        "mode": "periods", "start_at": "2026-12-01T00:00", "end_at": "2026-12-02T00:00", "kwh_peak": "10",
        "kwh_flat": "5", "kwh_valley": "20", "rated_kw": "10"}).get_data(as_text=True)
    assert 'id="preview-total">19.00<' in html
    records, _ = action_log.query(pid, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))
    assert [(x.action, x.target) for x in records] == [("tariff_create", f"tariff:{plan_id}")]


def test_a_new_version_applies_from_its_time_and_never_changes_versions_in_force(metered, owner):
    who, c = owner
    pid, plan_id = metered.property_id, uid("tou")
    assert post(c, f"/p/{pid}/tariffs/new", tou_form(plan_id)).status_code == 302
    first = export(c, pid, plan_id)
    url = f"/p/{pid}/tariffs/{plan_id}/versions/new"
    form = c.get(url).get_data(as_text=True)
    assert 'name="effective_from" type="datetime-local" value="' + future_local(1) in form

    bad_inputs = [
        ({"effective_from": "2026-06-01T00:00", "mode": "flat", "price": "0.8000"}, "新版本的生效时间必须晚于当前时间"),
        ({"effective_from": future_local(), "mode": "flat", "price": "-0.8"}, "电价不能为负数"),
        ({**tou_form(plan_id), "effective_from": future_local(), "iv_end_1": "13:00"}, "重叠"),
        ({**tou_form(plan_id), "effective_from": future_local(), "iv_end_1": "11:00"}, "11:00–12:00 没有设置时段"),
        ({**tou_form(plan_id), "effective_from": future_local(), "price_peak": ""}, "请填写峰时段电价"),
        ({"effective_from": "", "mode": "flat", "price": "1"}, "请填写有效的生效时间"),
    ]
    for data, message in bad_inputs:
        r = post(c, url, {"name": "测试分时电价", **data})
        assert r.status_code == 422, (data, r.status_code)
        assert message in r.get_data(as_text=True), message
        assert export(c, pid, plan_id) == first  # nothing changed

    start = future_local(3)
    r = post(c, url, {"name": "测试分时电价 2", "effective_from": start, "mode": "flat", "price": "0.8000"})
    assert r.status_code == 302, r.get_data(as_text=True)
    doc = export(c, pid, plan_id)
    assert doc["name"] == "测试分时电价 2"
    assert doc["versions"][0] == EXPECTED_TOU_VERSION  # the version in force is untouched
    assert doc["versions"][1]["prices"] == {"flat": "0.8000"} and "schedules" not in doc["versions"][1]

    # the version in force cannot be edited (form locked, a post refused); the future one can
    assert c.get(f"/p/{pid}/tariffs/{plan_id}/versions/0/edit").status_code == 409
    r = post(c, f"/p/{pid}/tariffs/{plan_id}/versions/0/edit", {**tou_form(plan_id), "price_peak": "2.0000"})
    assert r.status_code == 422 and "已生效" in r.get_data(as_text=True)
    assert export(c, pid, plan_id) == doc
    r = post(c, f"/p/{pid}/tariffs/{plan_id}/versions/1/edit", {"name": "测试分时电价 2", "effective_from": start,
                                                                  "mode": "flat", "price": "0.9000"})
    assert r.status_code == 302
    assert export(c, pid, plan_id)["versions"][1]["prices"] == {"flat": "0.9000"}

    # the preview rates each part of an interval by the version in force: 2 h of flat 0.90 x 1 kWh/h
    day = start[:10]
    r = api(c, "POST", f"/admin/api/properties/{pid}/tariffs/{plan_id}/preview",
            {"start_at": f"{day}T10:00", "end_at": f"{day}T12:00", "start_total": "100", "end_total": "102"})
    assert r.get_json()["charges"][0]["fen"] == 180

    # over the API: a version before now is refused (400), nothing changes
    r = api(c, "POST", f"/admin/api/properties/{pid}/tariffs/{plan_id}/versions",
            {"effective_from": "2026-02-01T00:00:00+08:00", "prices": {"flat": "0.5000"}})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "tariff_effective_past"
    assert export(c, pid, plan_id)["versions"][1]["prices"] == {"flat": "0.9000"}


def test_import_export_round_trip_and_a_malformed_file_changes_nothing(metered, owner):
    who, c = owner
    pid, plan_id = metered.property_id, uid("tou")
    assert post(c, f"/p/{pid}/tariffs/new", tou_form(plan_id)).status_code == 302
    r = c.get(f"/p/{pid}/tariffs/{plan_id}/export")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    exported = json.loads(r.get_data())
    copy = dict(exported, plan_id=uid("copy"), name="导入的方案")

    def upload(content: bytes):
        return c.post(f"/p/{pid}/tariffs/import", content_type="multipart/form-data",
                      data={"csrf_token": admins.csrf_token(c, "/account/password"), "file": (io.BytesIO(content), "plan.json")})

    assert upload(json.dumps(copy, ensure_ascii=False).encode()).status_code == 302
    assert export(c, pid, copy["plan_id"]) == copy
    assert upload(json.dumps(copy, ensure_ascii=False).encode()).status_code == 302  # the same again: no change
    assert export(c, pid, copy["plan_id"]) == copy

    before = c.get(f"/admin/api/properties/{pid}/tariffs").get_json()
    for content, message in [(b"{not json", "不是有效的 JSON"),
                             (json.dumps({**copy, "plan_id": uid("x"), "versions": []}).encode(), "至少需要一个版本"),
                             (json.dumps({**copy, "versions": [{**copy["versions"][0],
                                                               "prices": {**PRICES, "peak": "-1"}}]}).encode(),
                              "价格必须是")]:
        r = upload(content)
        assert r.status_code == 400 and message in r.get_data(as_text=True), message
    assert c.get(f"/admin/api/properties/{pid}/tariffs").get_json() == before


# -- anomalies -----------------------------------------------------------------------------------


def held(metered, ingest, acct_opening: int = 10_000):
    """Two gaps on one meter (rated flat 1.00 yuan/kWh): 20 kWh over 10 h, then 9 kWh over 19 h."""
    acct = metered.account(opening=acct_opening)
    meter = metered.meter(acct, rated_kw="10")
    for seq, hours, total in ((1, 0, "0"), (2, 10, "20.00"), (3, 11, "21.00"), (4, 30, "30.00")):
        ingest.reading(metered.site.site_id, MeterReading(meter, seq, T0 + timedelta(hours=hours), Decimal(total)))
    return acct, meter


def test_approving_posts_the_proposed_charge_once_and_rejecting_posts_nothing(app, metered, owner):
    who, c = owner
    pid = metered.property_id
    acct, meter = held(metered, app.extensions[INGEST_KEY])
    ledger = LedgerService()
    balance = ledger.balance(acct)  # after the one billed hour (1 kWh)
    queue = c.get(f"/admin/api/properties/{pid}/anomalies").get_json()["open"]
    assert [(a["meter_id"], a["kind"], a["proposed_fen"], a["quantity"]) for a in queue] == [
        (meter, "gap", 2000, "20.00"), (meter, "gap", 900, "9.00")]
    assert queue[0]["room"] == "R001" and queue[0]["tenant"] == "测试租户"
    page = c.get(f"/p/{pid}/anomalies").get_data(as_text=True)
    assert "离线后长时间无读数" in page and "20.00" in page
    assert page.count("通过并计费</button>") == 2 and page.count("驳回</button>") == 2

    first, second = queue
    approve = f"/p/{pid}/anomalies/{meter}/{first['event_id']}/approve"
    assert post(c, approve, {}).status_code == 302
    assert ledger.balance(acct) == balance - 2000
    again = post(c, approve, {})
    assert again.status_code == 409 and "该异常已处理" in again.get_data(as_text=True)
    r = api(c, "POST", f"/admin/api/properties/{pid}/anomalies/{meter}/{first['event_id']}/approve")
    assert r.status_code == 409
    assert ledger.balance(acct) == balance - 2000  # billed once

    reject = f"/p/{pid}/anomalies/{meter}/{second['event_id']}/reject"
    r = post(c, reject, {"reason": "  "})
    assert r.status_code == 422 and "请填写驳回原因" in r.get_data(as_text=True)
    assert estore.get_event(Subject.meter(meter), second["event_id"]).status == "open"
    assert post(c, reject, {"reason": "表计更换期间的读数"}).status_code == 302
    assert ledger.balance(acct) == balance - 2000
    decided = estore.get_event(Subject.meter(meter), second["event_id"])
    assert decided.status == "rejected" and decided.data["reason"] == "表计更换期间的读数"
    assert c.get(f"/admin/api/properties/{pid}/anomalies").get_json()["open"] == []
    records, _ = action_log.query(pid, datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1))
    assert sorted((x.action, x.after.get("approved_fen"), x.after.get("reason")) for x in records) == [
        ("anomaly_approve", 2000, None), ("anomaly_reject", None, "表计更换期间的读数")]


# -- roles and scoping -----------------------------------------------------------------------------


def test_a_viewer_sees_but_cannot_change_and_another_property_gets_404(app, metered, owner):
    boss, oc = owner
    pid, plan_id = metered.property_id, uid("tou")
    assert post(oc, f"/p/{pid}/tariffs/new", tou_form(plan_id)).status_code == 302
    acct, meter = held(metered, app.extensions[INGEST_KEY])
    event_id = oc.get(f"/admin/api/properties/{pid}/anomalies").get_json()["open"][0]["event_id"]
    doc = export(oc, pid, plan_id)
    balance = LedgerService().balance(acct)

    viewer = client_of(app, admins.make_admin(pid, role="viewer", company_id=boss.company_id))
    page = viewer.get(f"/p/{pid}/tariffs").get_data(as_text=True)
    assert "测试分时电价" in page and "电价试算" in page
    assert "新建方案" not in page and "新增版本" not in page and "导入</button>" not in page and "编辑</a>" not in page
    queue = viewer.get(f"/p/{pid}/anomalies").get_data(as_text=True)
    assert "20.00" in queue and "通过并计费</button>" not in queue and "驳回</button>" not in queue
    assert viewer.get(f"/p/{pid}/tariffs/new").status_code == 403
    assert post(viewer, f"/p/{pid}/tariffs/new", tou_form(uid("v"))).status_code == 403
    assert post(viewer, f"/p/{pid}/tariffs/{plan_id}/versions/new",
                {"effective_from": future_local(), "mode": "flat", "price": "9"}).status_code == 403
    assert post(viewer, f"/p/{pid}/anomalies/{meter}/{event_id}/approve", {}).status_code == 403
    assert api(viewer, "POST", f"/admin/api/properties/{pid}/anomalies/{meter}/{event_id}/reject",
               {"reason": "x"}).status_code == 403
    # the preview only reads: a viewer may use it
    assert post(viewer, f"/p/{pid}/tariffs/{plan_id}/preview", {
        "mode": "totals", "start_at": "2026-12-01T10:00", "end_at": "2026-12-01T12:00", "start_total": "0",
        "end_total": "2"}).status_code == 200

    other = admins.make_admin(World().property_id, role="owner")  # another company's owner
    oc2 = client_of(app, other)
    for url in (f"/p/{pid}/tariffs", f"/p/{pid}/anomalies", f"/admin/api/properties/{pid}/tariffs",
                f"/p/{pid}/tariffs/{plan_id}/export", f"/admin/api/properties/{pid}/anomalies"):
        assert oc2.get(url).status_code == 404, url
    assert post(oc2, f"/p/{pid}/anomalies/{meter}/{event_id}/approve", {}).status_code == 404
    assert api(oc2, "PUT", f"/admin/api/properties/{pid}/tariffs/{plan_id}", doc).status_code == 404

    assert export(oc, pid, plan_id) == doc
    assert LedgerService().balance(acct) == balance
    assert estore.get_event(Subject.meter(meter), event_id).status == "open"


def test_the_json_api_creates_and_documents_every_endpoint(metered, owner):
    _, c = owner
    pid, plan_id = metered.property_id, uid("api")
    doc = {"plan_id": plan_id, "name": "接口方案", "utility": "water",
           "versions": [{"effective_from": "2026-01-01T00:00:00+08:00", "prices": {"flat": "3.4500"},
                         "components": [{"code": "sewage", "name": "污水处理费", "price": "0.9500"}]}]}
    r = api(c, "POST", f"/admin/api/properties/{pid}/tariffs", doc)
    assert r.status_code == 201 and r.get_json()["versions"][0]["state"] == "current"
    assert api(c, "POST", f"/admin/api/properties/{pid}/tariffs", doc).status_code == 409  # the id is taken
    # 2 m3 of water: 2 x 3.45 + 2 x 0.95 = 8.80 yuan
    r = api(c, "POST", f"/admin/api/properties/{pid}/tariffs/{plan_id}/preview",
            {"start_at": "2026-12-01T08:00", "end_at": "2026-12-01T09:00", "start_total": "10", "end_total": "12"})
    assert r.get_json()["charges"][0]["fen"] == 880
    r = api(c, "POST", f"/admin/api/properties/{pid}/tariffs/{plan_id}/preview",
            {"start_at": "2026-12-01T08:00", "end_at": "2026-12-01T07:00", "start_total": "10", "end_total": "-1"})
    assert r.status_code == 400 and "结束时间必须晚于开始时间" in r.get_json()["error"]["message"]
    changed = dict(doc, utility="electricity")
    r = api(c, "PUT", f"/admin/api/properties/{pid}/tariffs/{plan_id}", changed)
    assert r.status_code == 400 and "用途" in r.get_json()["error"]["message"]
    assert export(c, pid, plan_id) == doc
    spec = c.get("/admin/api/openapi.json").get_json()["paths"]
    base = "/admin/api/properties/{property_id}"
    assert set(spec[f"{base}/tariffs"]) == {"get", "post"}
    assert set(spec[f"{base}/tariffs/{{plan_id}}"]) == {"get", "put"}
    for path in ("/tariffs/{plan_id}/versions", "/tariffs/{plan_id}/preview",
                 "/anomalies/{meter_id}/{event_id}/approve", "/anomalies/{meter_id}/{event_id}/reject"):
        assert "post" in spec[base + path], path
    assert spec[f"{base}/anomalies"]["get"]["summary"]
