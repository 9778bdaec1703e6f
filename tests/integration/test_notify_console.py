"""Notification recipients (物业设置 → 通知接收人) and the delivery log in the console and the
admin API (docs/console.md "Notification recipients", "Notification log") over the real Flask
app (test client, real login and CSRF token) against the emulator. Expected lists and records
are written out by hand; delivery rows are logged through the deliveries store's own writes
(defer, then finish)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openapi_spec_validator import validate

from core.domain import notifications as n
from core.services import action_log
from core.store import deliveries as dstore
from core.store import notify_recipients as rstore
from miniprogram_api.app import create_app
from miniprogram_api.openapi import build_document
from testkit import admins
from testkit.builders import World, uid

TYPES = ["meter_offline", "bridge_offline", "command_failing", "anomaly_review", "reconcile_mismatch",
         "refund_request"]
OPENID = "oAdmin_0123456789abcdefghij"


@pytest.fixture
def app():
    return create_app()


@pytest.fixture
def co() -> str:
    return uid("co")


def client_of(app, world: World, company_id: str, role: str = "owner"):
    who = admins.make_admin(world.property_id, role=role, company_id=company_id)
    client = app.test_client()
    admins.logged_in(client, who)
    return client, who


def page(world: World) -> str:
    return f"/p/{world.property_id}/settings/notify"


def records(pid: str) -> list:
    now = datetime.now(UTC)
    return action_log.query(pid, now - timedelta(hours=1), now + timedelta(minutes=1), action="notify_recipients",
                            limit=200)[0]


def test_an_operator_adds_and_removes_recipients_and_each_change_is_recorded(app, world, co):
    pid = world.property_id
    client, who = client_of(app, world, co, role="operator")
    html = client.get(page(world)).get_data(as_text=True)
    assert "通知接收人" in html and "未设置接收人，不发送" in html and 'id="add-recipient"' in html
    token = admins.csrf_token(client, page(world))

    r = client.post(page(world), data={"event_type": "all", "channel": "template", "to": OPENID, "csrf_token": token})
    assert r.status_code == 302
    assert {t: rstore.recipients(pid, t) for t in TYPES} == {t: [("template", OPENID)] for t in TYPES}
    r = client.post(page(world), data={"event_type": "bridge_offline", "channel": "sms", "to": "138 0013-8000",
                                       "csrf_token": token})
    assert r.status_code == 302
    r = client.post(page(world), data={"event_type": "reconcile_mismatch", "channel": "email",
                                       "to": "Finance@Example.COM", "csrf_token": token})
    assert r.status_code == 302
    assert rstore.recipients(pid, "bridge_offline") == [("template", OPENID), ("sms", "+8613800138000")]
    assert rstore.recipients(pid, "reconcile_mismatch") == [("template", OPENID), ("email", "Finance@example.com")]
    # the same recipient again changes nothing and records nothing
    client.post(page(world), data={"event_type": "bridge_offline", "channel": "sms", "to": "+8613800138000",
                                   "csrf_token": token})
    assert len(records(pid)) == 6 + 1 + 1
    shown = client.get(page(world)).get_data(as_text=True)
    assert "+8613800138000" in shown and "该接收人已在列表中" in shown

    r = client.post(page(world) + "/remove", data={"event_type": "bridge_offline", "channel": "template",
                                                   "to": OPENID, "csrf_token": token})
    assert r.status_code == 302
    assert rstore.recipients(pid, "bridge_offline") == [("sms", "+8613800138000")]
    last = records(pid)[0]  # newest first
    assert (last.actor_id, last.target, last.before, last.after) == (
        who.email, "notify:bridge_offline",
        {"recipients": [["template", OPENID], ["sms", "+8613800138000"]]},
        {"recipients": [["sms", "+8613800138000"]]})


@pytest.mark.parametrize("channel, to, message", [
    ("sms", "1380013800", "手机号格式不正确，请填写 11 位中国大陆手机号"),
    ("sms", "+85213800138000", "手机号格式不正确，请填写 11 位中国大陆手机号"),
    ("email", "finance@", "邮箱地址格式不正确"),
    ("email", "a b@example.com", "邮箱地址格式不正确"),
    ("template", "o!x", "公众号 openid 格式不正确（6–64 位字母、数字、_ 或 -）"),
    ("template", "", "请填写接收人"),
    ("fax", "12345678", "通知渠道必须是公众号模板消息、短信或邮件"),
])
def test_bad_recipients_are_refused_in_chinese_and_change_nothing(app, world, co, channel, to, message):
    client, _ = client_of(app, world, co)
    token = admins.csrf_token(client, page(world))
    r = client.post(page(world), data={"event_type": "meter_offline", "channel": channel, "to": to,
                                       "csrf_token": token})
    assert r.status_code == 422
    assert message in r.get_data(as_text=True)
    assert rstore.recipients(world.property_id, "meter_offline") == []
    assert records(world.property_id) == []


def test_who_may_see_and_change_recipients(app, world, co):
    pid = world.property_id
    viewer, _ = client_of(app, world, co, role="viewer")
    html = viewer.get(page(world)).get_data(as_text=True)
    assert "只读" in html and 'id="add-recipient"' not in html
    vtoken = admins.csrf_token(viewer, page(world))
    assert viewer.post(page(world), data={"event_type": "all", "channel": "template", "to": OPENID,
                                          "csrf_token": vtoken}).status_code == 403
    stranger, _ = client_of(app, World(), uid("co"))
    assert stranger.get(page(world)).status_code == 404
    owner, _ = client_of(app, world, co)
    assert owner.post(page(world), data={"event_type": "all", "channel": "template", "to": OPENID}).status_code == 400
    assert owner.put(f"/admin/api/properties/{pid}/notify-recipients/meter_offline",
                     json={"recipients": []}).status_code == 400  # no CSRF header
    assert rstore.of_property(pid) == {}


def test_the_admin_api_reads_and_replaces_a_list(app, world, co):
    pid = world.property_id
    client, _ = client_of(app, world, co)
    headers = {"X-CSRFToken": admins.csrf_token(client, page(world))}
    url = f"/admin/api/properties/{pid}/notify-recipients"
    body = client.get(url).get_json()
    assert body["recipients"] == {t: [] for t in TYPES} and body["event_names"]["bridge_offline"] == "网关离线"
    r = client.put(url + "/command_failing", headers=headers, json={"recipients": [
        {"channel": "sms", "to": "13900139000"}, {"channel": "email", "to": "ops@example.com"},
        {"channel": "sms", "to": "+8613900139000"}]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["changed"] is True
    assert r.get_json()["recipients"]["command_failing"] == [{"channel": "sms", "to": "+8613900139000"},
                                                             {"channel": "email", "to": "ops@example.com"}]
    for path, payload, code in [
        ("/command_failing", {"recipients": [{"channel": "sms", "to": "123"}]}, "phone_invalid"),
        ("/low_balance", {"recipients": []}, "event_type_invalid"),
        ("/command_failing", {"recipients": "x"}, "recipients_invalid"),
        ("/command_failing", {"recipients": [], "extra": 1}, "field_unknown"),
        ("/command_failing", {}, "field_missing"),
        ("/command_failing", {"recipients": [{"channel": "sms", "to": f"1390013{i:04d}"} for i in range(21)]},
         "too_many_recipients"),
    ]:
        bad = client.put(url + path, headers=headers, json=payload)
        assert (bad.status_code, bad.get_json()["error"]["code"]) == (400, code), path
    assert rstore.recipients(pid, "command_failing") == [("sms", "+8613900139000"), ("email", "ops@example.com")]
    doc = build_document(client.application)
    validate(doc)
    assert {"/admin/api/properties/{property_id}/notify-recipients",
            "/admin/api/properties/{property_id}/notify-recipients/{event_type}",
            "/admin/api/properties/{property_id}/deliveries",
            "/admin/api/properties/{property_id}/accounts/{account_id}/deliveries"} <= set(doc["paths"])


def log(world: World, account: str, kind: str, channel: str, to: str, status: str, at: datetime,
        detail: str = "") -> str:
    did = n.delivery_id(f"test:{uuid.uuid4().hex}", channel, to)
    assert dstore.defer(did, property_id=world.property_id, account_id=account, event_ref="x", kind=kind,
                        channel=channel, recipient=n.mask(channel, to), now=at, until=at)
    dstore.finish(did, status, at, detail=detail)
    return did


def test_the_room_detail_and_the_property_log_show_deliveries(app, world, co):
    pid = world.property_id
    account = world.account(opening=1000)
    t0 = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # 09:00 Beijing
    sent = log(world, account, "low_balance", n.SUBSCRIBE, "oTenant0123456789abcdefghijk", n.SENT, t0)
    retry = log(world, account, "cut_imminent", n.SMS, "+8613800138000", n.RETRYING, t0 + timedelta(minutes=1))
    failed = log(world, "", "bridge_offline", n.EMAIL, "ops@example.com", n.FAILED, t0 + timedelta(minutes=2),
                 detail="550 mailbox unavailable")
    client, _ = client_of(app, world, co, role="viewer")

    html = client.get(f"/p/{pid}/rooms/{world.building_id}/R001").get_data(as_text=True)
    assert "通知记录" in html
    assert f'data-delivery="{sent}"' in html and f'data-delivery="{retry}"' in html
    assert f'data-delivery="{failed}"' not in html  # no account: not this room's
    assert "2026-03-03 09:00" in html and "已发送" in html and "重试中" in html
    assert "+86138****8000" in html and "oTen…hijk" in html and "13800138000" not in html

    listed = client.get(f"/p/{pid}/settings/deliveries?status=failed").get_data(as_text=True)
    assert f'data-delivery="{failed}"' in listed and f'data-delivery="{sent}"' not in listed
    assert "o***@example.com" in listed and "发送失败" in listed and "550 mailbox unavailable" in listed

    api = f"/admin/api/properties/{pid}/deliveries"
    first = client.get(api + "?limit=2").get_json()
    assert [d["delivery_id"] for d in first["deliveries"]] == [failed, retry] and first["next_cursor"]
    second = client.get(api + f"?limit=2&cursor={first['next_cursor']}").get_json()
    assert [d["delivery_id"] for d in second["deliveries"]] == [sent]
    assert [d["delivery_id"] for d in client.get(api + "?kind=cut_imminent").get_json()["deliveries"]] == [retry]
    for query, code in [("?status=nope", "status_invalid"), ("?kind=nope", "kind_invalid"),
                        ("?cursor=abc", "cursor_invalid"), ("?limit=0", "limit_invalid")]:
        bad = client.get(api + query)
        assert (bad.status_code, bad.get_json()["error"]["code"]) == (400, code), query
    acct = client.get(f"/admin/api/properties/{pid}/accounts/{account}/deliveries").get_json()["deliveries"]
    assert [(d["delivery_id"], d["status_name"], d["channel_name"]) for d in acct] == [
        (retry, "重试中", "短信"), (sent, "已发送", "小程序订阅消息")]
    stranger, _ = client_of(app, World(), uid("co"))
    assert stranger.get(f"/admin/api/properties/{pid}/accounts/{account}/deliveries").status_code == 404
    other = World()
    client2, _ = client_of(app, other, co)
    assert client2.get(f"/admin/api/properties/{other.property_id}/accounts/{account}/deliveries").status_code == 404
