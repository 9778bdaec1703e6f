"""Sites and bridges, the audit log and the admin API's OpenAPI document (docs/console.md
"Sites", "Audit log", "Admin API") over the real Flask app against the emulator: a real
bridge polling simulated meters over Modbus sends its heartbeat through the uplink queue
and the consumer; the site page and API show it. Key rotation by an owner (logged), by
an operator (403); site registration; the audit log's filters, paging and exports
(openpyxl reads the workbook back, csv the CSV); another property's admin (404); the
OpenAPI document validated by openapi-spec-validator. Expected values are written out
by hand from docs/console.md."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from openapi_spec_validator import validate
from openpyxl import load_workbook

from bridge.config import parse_config
from bridge.runtime import Bridge
from bridge.simulator import SimBus, SimMeter
from core.domain.admins import AdminPrincipal
from core.integrations.queues import uplink_url
from core.protocol import messages
from core.services import action_log, site_status
from core.services import sites as site_keys
from core.services.control import Control
from core.services.ingest import Ingest
from functions import uplink_consumer
from infra.fakes.sitesim import drain_uplink
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import Metered, World, uid

SH = timedelta(hours=8)


@pytest.fixture
def app():
    return create_app()


@pytest.fixture
def site_world() -> Metered:
    w = Metered()
    acct = w.account(opening=100_000)
    w.meter_ids = [w.meter(acct), w.meter(acct)]  # bus1, addresses 1 and 2
    return w


def owner_client(app, w, role: str = "owner"):
    if not hasattr(w, "company_id"):
        w.company_id = uid("co")  # the property's company: every admin of the test joins it
    who = admins.make_admin(w.property_id, role=role, company_id=w.company_id)
    client = app.test_client()
    admins.logged_in(client, who)
    return client, who


def heartbeat_msg(site, key: str, sent_at: datetime, **figures) -> str:
    return json.dumps(messages.sign(messages.envelope("heartbeat", site.site_id, uid("hb"), sent_at, **figures), key))


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


# --- sites and bridges ------------------------------------------------------------------------


def test_a_bridge_heartbeat_is_stored_by_the_uplink_consumer_and_shown(app, site_world, tmp_path, monkeypatch):
    w = site_world
    bus = SimBus([SimMeter("acrel-ddsy1352", 1, load_kw="2", total="100.00"),
                  SimMeter("acrel-ddsy1352", 2, load_kw="1", total="50.00")]).start()
    doc = {
        "site_id": w.site.site_id, "secret": w.site.secret, "state_dir": str(tmp_path / "state"), "heartbeat_seconds": 1,
        "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink_url(),
                  "down_queue_url": w.site.down_queue, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
        "buses": [{"name": "bus1", "type": "tcp", "host": "127.0.0.1", "port": bus.port, "framing": "rtu",
                   "timeout": 0.3, "meters": [{"meter_id": mid, "address": addr, "model": "acrel-ddsy1352",
                                               "poll_seconds": 0.2} for mid, addr in zip(w.meter_ids, (1, 2), strict=True)]}],
    }
    monkeypatch.setattr(uplink_consumer, "ingest", Ingest())
    bridge = Bridge(parse_config(doc))
    thread = bridge.run_in_thread()
    try:
        def polled_heartbeat():
            drain_uplink(uplink_url(), uplink_consumer.handler)  # the consumer path, as the Lambda runs it
            rows = {s.site_id: hb for s, hb in site_status.store.sites_with_heartbeats(w.property_id)}
            hb = rows.get(w.site.site_id)
            return hb if hb and hb.buses.get("bus1") and hb.buses["bus1"].polls > 0 and hb.meters_online == 2 else None

        hb = wait_for(polled_heartbeat)
    finally:
        bridge.stop()
        thread.join(timeout=10)
        bus.stop()
        drain_uplink(uplink_url(), uplink_consumer.handler)

    assert hb.meters == 2 and hb.meters_online == 2  # the bridge's config: two meters, both answering
    assert hb.outbox_depth >= 0 and hb.buses["bus1"].failures <= hb.buses["bus1"].polls
    assert datetime.now(UTC) - hb.received_at < timedelta(minutes=1)

    client, _ = owner_client(app, w, role="viewer")
    body = client.get(f"/admin/api/properties/{w.property_id}/sites").get_json()
    (site,) = body["sites"]
    assert site["site_id"] == w.site.site_id and site["online"] is True and site["rotating"] is False
    assert site["meters"] == 2
    assert site["buses"][0]["name"] == "bus1" and sorted(site["buses"][0]["meters"]) == sorted(w.meter_ids)
    assert site["last_heartbeat"]["meters_online"] == 2 and site["buses"][0]["polls"] >= 1
    page = client.get(f"/p/{w.property_id}/sites")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "在线" in html and "bus1" in html and w.meter_ids[0] in html
    local = (hb.received_at + SH).strftime("%Y-%m-%d %H:%M:%S")
    assert local in html  # the last heartbeat in Beijing time
    assert "轮换密钥" not in html  # a viewer sees no rotation button


def test_heartbeats_in_order_offline_after_three_minutes_and_commands_in_flight(site_world):
    w = site_world
    ingest = Ingest()
    now = datetime.now(UTC).replace(microsecond=0)
    newer = heartbeat_msg(w.site, w.site.secret, now, outbox_depth=7, meters=2, meters_online=1,
                          buses={"bus1": {"polls": 40, "failures": 4, "cycles": 20, "last_cycle_seconds": 0.5}})
    older = heartbeat_msg(w.site, w.site.secret, now - timedelta(minutes=1), outbox_depth=99, meters=2,
                          meters_online=2, buses={"bus1": {"polls": 1, "failures": 0}})
    assert ingest.handle(newer) == {"heartbeat": "recorded"}
    assert ingest.handle(older) == {"heartbeat": "recorded"}  # delivered late from the outbox: not kept
    forged = heartbeat_msg(w.site, "not-the-key", now + timedelta(seconds=1), outbox_depth=1)
    assert ingest.handle(forged) == {"refused": "signature"}
    hb = site_status.store.last_heartbeat(w.site.site_id)
    assert (hb.outbox_depth, hb.meters_online, hb.buses["bus1"].polls, hb.buses["bus1"].failures) == (7, 1, 40, 4)
    assert hb.buses["bus1"].failure_rate == 0.1

    cmd = Control().issue(w.meter_ids[0], "READ_NOW", "test:inflight", actor="tester")
    received = hb.received_at
    (o,) = site_status.overview(w.property_id, clock=lambda: received + timedelta(minutes=2, seconds=59))
    assert o.online and [c.command_id for c in o.commands] == [cmd.command_id]
    (o,) = site_status.overview(w.property_id, clock=lambda: received + timedelta(minutes=3, seconds=1))
    assert not o.online


def test_rotation_by_an_owner_is_logged_and_an_operator_gets_403(app, site_world):
    w = site_world
    sid, old = w.site.site_id, w.site.secret
    operator, op_who = owner_client(app, w, role="operator")
    page = operator.get(f"/p/{w.property_id}/sites").get_data(as_text=True)
    assert "轮换密钥" not in page and "注册站点网关" not in page  # no buttons for what the role cannot do
    token = admins.csrf_token(operator, f"/p/{w.property_id}/sites")
    r = operator.post(f"/p/{w.property_id}/sites/{sid}/rotate", data={"csrf_token": token})
    assert r.status_code == 403
    r = operator.post(f"/admin/api/properties/{w.property_id}/sites/{sid}/rotate", headers={"X-CSRFToken": token})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    assert site_keys.status(sid)["rotating"] is False  # nothing changed

    owner, who = owner_client(app, w)
    token = admins.csrf_token(owner, f"/p/{w.property_id}/sites")
    assert owner.post(f"/p/{w.property_id}/sites/{sid}/rotate").status_code == 400  # no CSRF token: refused
    assert site_keys.status(sid)["rotating"] is False
    r = owner.post(f"/p/{w.property_id}/sites/{sid}/rotate", data={"csrf_token": token})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "密钥只显示这一次" in html
    new = re.search(r'secret: "([^"]+)"', html).group(1)
    assert new != old and f'previous_secret: "{old}"' in html
    assert site_keys.status(sid)["rotating"] is True

    # both keys verify during the rotation (the same check the uplink consumer makes)
    ingest = Ingest()
    now = datetime.now(UTC)
    site_status_page = owner.get(f"/p/{w.property_id}/sites").get_data(as_text=True)
    assert "密钥轮换中" in site_status_page and "结束轮换" in site_status_page
    r = owner.post(f"/p/{w.property_id}/sites/{sid}/rotate", data={"csrf_token": token})
    assert r.status_code == 409 and "上一次密钥轮换尚未结束" in r.get_data(as_text=True)

    r = owner.post(f"/admin/api/properties/{w.property_id}/sites/{sid}/finish", headers={"X-CSRFToken": token})
    assert r.status_code == 200 and r.get_json() == {"site_id": sid, "rotating": False}
    assert site_keys.status(sid)["rotating"] is False
    from core.services import control

    control.forget_sites()
    assert ingest.handle(heartbeat_msg(w.site, old, now)) == {"refused": "signature"}
    assert ingest.handle(heartbeat_msg(w.site, new, now)) == {"heartbeat": "recorded"}

    # both steps in the action log, with the owner, and no key anywhere in it
    records, _ = action_log.query(w.property_id, now - timedelta(minutes=5), now + timedelta(minutes=5))
    mine = [(r.action, r.actor_id, r.target, r.before, r.after) for r in records if r.target == f"site:{sid}"]
    login = who.email.lower()
    assert mine == [("site_secret_finished", login, f"site:{sid}", {"rotating": True}, {"rotating": False}),
                    ("site_secret_rotated", login, f"site:{sid}", {"rotating": False}, {"rotating": True})]
    assert not any(new in json.dumps([r.before, r.after]) or old in json.dumps([r.before, r.after]) for r in records)
    assert all(r.actor_id != op_who.email.lower() for r in records)  # the refused operator left no record


def test_site_registration_is_logged_and_bad_input_changes_nothing(app, site_world):
    w = site_world
    owner, who = owner_client(app, w)
    token = admins.csrf_token(owner, f"/p/{w.property_id}/sites")
    bad = owner.post(f"/p/{w.property_id}/sites", data={"csrf_token": token, "site_id": "有 空格", "name": "2 号配电房"})
    assert bad.status_code == 422 and "站点编号只能包含字母" in bad.get_data(as_text=True)
    bad = owner.post(f"/admin/api/properties/{w.property_id}/sites", json={"site_id": uid("s"), "name": " "},
                     headers={"X-CSRFToken": token})
    assert bad.status_code == 400 and bad.get_json()["error"]["message"] == "请填写站点名称"
    assert [s.site_id for s, _ in site_status.store.sites_with_heartbeats(w.property_id)] == [w.site.site_id]

    new_id = uid("s")
    r = owner.post(f"/admin/api/properties/{w.property_id}/sites", json={"site_id": new_id, "name": "2 号配电房"},
                   headers={"X-CSRFToken": token})
    assert r.status_code == 201 and r.get_json()["site_id"] == new_id and len(r.get_json()["secret"]) >= 32
    again = owner.post(f"/admin/api/properties/{w.property_id}/sites", json={"site_id": new_id, "name": "x"},
                       headers={"X-CSRFToken": token})
    assert again.status_code == 409
    audit = owner.get(f"/admin/api/properties/{w.property_id}/audit?action=site_registered").get_json()
    assert [(x["actor_id"], x["target"], x["after"]) for x in audit["records"]] == \
        [(who.email.lower(), f"site:{new_id}", {"site_id": new_id, "name": "2 号配电房"})]
    assert audit["records"][0]["action_name"] == "注册站点网关"


def test_another_propertys_admin_gets_404(app, site_world):
    w = site_world
    other = World()
    stranger, _ = owner_client(app, other)
    token = admins.csrf_token(stranger, f"/p/{other.property_id}/sites")
    for path in (f"/p/{w.property_id}/sites", f"/p/{w.property_id}/audit",
                 f"/admin/api/properties/{w.property_id}/sites", f"/admin/api/properties/{w.property_id}/audit",
                 f"/p/{w.property_id}/audit/export?format=csv"):
        assert stranger.get(path).status_code == 404, path
    r = stranger.post(f"/admin/api/properties/{w.property_id}/sites/{w.site.site_id}/rotate",
                      headers={"X-CSRFToken": token})
    assert r.status_code == 404
    # nor through their own property: the site is not theirs
    r = stranger.post(f"/admin/api/properties/{other.property_id}/sites/{w.site.site_id}/rotate",
                      headers={"X-CSRFToken": token})
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "site_not_found"
    assert site_keys.status(w.site.site_id)["rotating"] is False


# --- the audit log ---------------------------------------------------------------------------


@pytest.fixture
def logged(site_world):
    """Five records of the property at known Beijing times (the 2nd to the 4th of May)."""
    w = site_world
    alice = AdminPrincipal("alice@example.com", "王丽", "co", "finance", (w.property_id,))
    bob = AdminPrincipal("bob@example.com", "赵强", "co", "operator", (w.property_id,))
    at = lambda d, h: datetime(2026, 5, d, h, 0, tzinfo=UTC) - SH  # noqa: E731  Beijing d May h:00
    rows = [
        (alice, "counter_cash", "account:A-101", None, {"amount": 12_345, "balance": 20_000}, at(2, 9)),
        (bob, "relay_trip", "meter:M-101", {"relay": "closed"}, {"relay": "open"}, at(2, 10)),
        (alice, "refund", "account:A-102", {"balance": 5_000}, {"amount": -5_000, "balance": 0}, at(3, 11)),
        (bob, "relay_close", "meter:M-101", {"relay": "open"}, {"relay": "closed"}, at(4, 8)),
        (bob, "settings_changed", "=HYPERLINK(\"x\")", None, {"alarm": 1000}, at(4, 23)),
    ]
    for who, action, target, before, after, t in rows:
        action_log.record(who, action, property_id=w.property_id, target=target, before=before, after=after,
                          ip="198.51.100.4", at=t)
    return w


def audit(client, w, **q):
    r = client.get(f"/admin/api/properties/{w.property_id}/audit", query_string={"since": "2026-05-01",
                                                                                 "until": "2026-05-05", **q})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_the_audit_log_filters_and_pages(app, logged):
    w = logged
    client, _ = owner_client(app, w, role="viewer")
    assert [x["action"] for x in audit(client, w)["records"]] == \
        ["settings_changed", "relay_close", "refund", "relay_trip", "counter_cash"]  # newest first
    assert [x["action"] for x in audit(client, w, actor="alice@example.com")["records"]] == ["refund", "counter_cash"]
    assert [x["action"] for x in audit(client, w, action="relay_trip")["records"]] == ["relay_trip"]
    assert [x["action"] for x in audit(client, w, target="M-101")["records"]] == ["relay_close", "relay_trip"]
    # days are Beijing days, `until` inclusive: the 3rd alone; the 4th ends at 24:00 Beijing
    assert [x["action"] for x in audit(client, w, since="2026-05-03", until="2026-05-03")["records"]] == ["refund"]
    assert [x["action"] for x in audit(client, w, since="2026-05-04", until="2026-05-04")["records"]] == \
        ["settings_changed", "relay_close"]
    first = audit(client, w, limit=2)
    assert [x["action"] for x in first["records"]] == ["settings_changed", "relay_close"] and first["next_cursor"]
    second = audit(client, w, limit=2, cursor=first["next_cursor"])
    third = audit(client, w, limit=2, cursor=second["next_cursor"])
    assert [x["action"] for x in second["records"] + third["records"]] == ["refund", "relay_trip", "counter_cash"]

    for bad, message in (({"since": "2026-13-01"}, "开始日期日期无效"), ({"since": "2026-05-06"}, "开始日期必须早于结束日期"),
                         ({"scope": "all"}, "范围只能是"), ({"limit": "x"}, "limit 必须是")):
        r = client.get(f"/admin/api/properties/{w.property_id}/audit", query_string={"since": "2026-05-01",
                                                                                     "until": "2026-05-05", **bad})
        assert r.status_code == 400 and message in r.get_json()["error"]["message"], (bad, r.get_json())
    assert client.get(f"/admin/api/properties/{w.property_id}/audit?scope=company").status_code == 403  # owners only

    page = client.get(f"/p/{w.property_id}/audit", query_string={"since": "2026-05-01", "until": "2026-05-05",
                                                                  "actor": "bob@example.com"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count("赵强") == 3 and "王丽" not in html
    assert "2026-05-04 23:00:00" in html and "2026-05-02 10:00:00" in html  # Beijing times
    bad = client.get(f"/p/{w.property_id}/audit?since=yesterday")
    assert bad.status_code == 422 and "开始日期无效" in bad.get_data(as_text=True)


def test_the_excel_and_csv_exports(app, logged):
    w = logged
    client, _ = owner_client(app, w, role="viewer")
    q = {"since": "2026-05-01", "until": "2026-05-05"}
    r = client.get(f"/p/{w.property_id}/audit/export", query_string={**q, "format": "xlsx"})
    assert r.status_code == 200 and r.headers["Content-Disposition"].endswith('.xlsx"')
    ws = load_workbook(io.BytesIO(r.data)).active
    headers = [c.value for c in ws[1]]
    assert headers == ["时间", "操作人", "登录名", "角色", "操作", "操作代码", "对象", "金额（元）", "变更前", "变更后", "IP 地址"]
    assert ws.freeze_panes == "A2" and ws.max_row == 6
    rows = {row[5].value: row for row in ws.iter_rows(min_row=2)}
    cash = rows["counter_cash"]
    assert cash[0].value == datetime(2026, 5, 2, 9, 0) and cash[0].number_format == "yyyy-mm-dd hh:mm:ss"
    assert cash[1].value == "王丽" and cash[3].value == "财务" and cash[6].value == "account:A-101"
    assert cash[7].value == 123.45 and cash[7].number_format == "#,##0.00"  # 12,345 fen
    assert rows["refund"][7].value == -50.0 and rows["relay_trip"][7].value is None
    assert json.loads(rows["relay_trip"][8].value) == {"relay": "closed"}
    assert rows["settings_changed"][6].value == "'=HYPERLINK(\"x\")" and rows["settings_changed"][6].data_type == "s"

    r = client.get(f"/admin/api/properties/{w.property_id}/audit/export", query_string={**q, "format": "csv",
                                                                                       "actor": "alice@example.com"})
    assert r.status_code == 200 and r.data.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese
    table = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert table[0] == headers
    assert [(row[0], row[5], row[7]) for row in table[1:]] == [("2026-05-03 11:00:00", "refund", "-50.00"),
                                                              ("2026-05-02 09:00:00", "counter_cash", "123.45")]
    assert Decimal(table[2][7]) * 100 == 12_345
    bad = client.get(f"/p/{w.property_id}/audit/export", query_string={**q, "format": "pdf"})
    assert bad.status_code == 400 and "导出格式只能是 xlsx 或 csv" in bad.get_json()["error"]["message"]


def test_company_records_logins_for_owners(app, site_world):
    w = site_world
    owner, who = owner_client(app, w)
    body = owner.get(f"/admin/api/properties/{w.property_id}/audit?scope=company").get_json()
    assert [(x["action"], x["target"]) for x in body["records"] if x["action"] == "login"] == [("login", who.email.lower())]


# --- the OpenAPI document ---------------------------------------------------------------------


def test_the_openapi_document_is_valid_and_lists_every_admin_api_rule(app, site_world):
    assert app.test_client().get("/admin/api/openapi.json").status_code == 401  # login required
    client, _ = owner_client(app, site_world, role="viewer")
    r = client.get("/admin/api/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    validate(doc)  # OpenAPI 3.1, by openapi-spec-validator
    assert doc["openapi"] == "3.1.0"
    expected = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin/api/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            expected |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    listed = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert listed == expected and len(listed) >= 8
    rotate = doc["paths"]["/admin/api/properties/{property_id}/sites/{site_id}/rotate"]["post"]
    assert rotate["security"] == [{"sessionCookie": [], "csrfHeader": []}]
    assert {p["name"] for p in rotate["parameters"]} == {"property_id", "site_id"}
    assert doc["components"]["securitySchemes"]["csrfHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-CSRFToken", "description": doc["components"]["securitySchemes"]
        ["csrfHeader"]["description"]}
    register = doc["paths"]["/admin/api/properties/{property_id}/sites"]["post"]
    assert register["requestBody"]["content"]["application/json"]["schema"]["required"] == ["site_id", "name"]
    assert doc["paths"]["/admin/api/openapi.json"]["get"]["security"] == [{"sessionCookie": []}]
