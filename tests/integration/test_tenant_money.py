"""Where my money is, refund requests, alarm preferences and notifications, end to end over
HTTP: the app served by werkzeug on the emulated AWS stack, payments through the WeChat Pay
emulator (signed and encrypted notifications through the local API Gateway), the site
stand-in (infra/fakes/sitesim.py) taking commands from its real FIFO queue and answering on
the uplink, which the uplink consumer function delivers.

Expected amounts are worked by hand: tariff 1.00 yuan/kWh (testkit FLAT_PLAN)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from core.integrations.queues import uplink_url
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import meters as meters_store
from core.store import payments as pstore
from core.store import tenant_money as money_store
from functions import uplink_consumer
from infra.fakes.sitesim import SimMeter, drain_uplink
from miniprogram_api.tenant_money import PROGRESS_CLOCK_KEY
from testkit.admins import csrf_token, logged_in, make_admin
from testkit.builders import Metered
from tests.integration.test_payments import Stack

T = 10  # seconds of HTTP timeout


# many tenants log in and order from 127.0.0.1 here: the per-address limits are not under test
LIMITS = {"FEIKONG_LOGIN_LIMIT_PER_IP": "100000", "FEIKONG_ORDER_LIMIT_PER_IP": "100000"}


@pytest.fixture
def stack(aws, monkeypatch):
    for k, v in LIMITS.items():
        monkeypatch.setenv(k, v)
    s = Stack(monkeypatch)
    monkeypatch.setattr(uplink_consumer, "ingest", Ingest(max_gap=timedelta(days=30)))
    yield s
    s.stop()


class Home:
    """A metered property with one tenant (bound to a WeChat openid) and a site stand-in."""

    def __init__(self, stack: Stack, opening: int = 500) -> None:
        self.stack = stack
        self.w = Metered()
        self.account = self.w.account(opening=opening)
        self.meter = self.w.meter(self.account)
        self.openid = f"o{uuid.uuid4().hex[:27]}"
        self.w.d.bind_openid(self.w.tenant_id, self.openid)
        self.site = self.w.sim()
        self.sim = self.site.add(SimMeter(self.meter))
        self.auth = stack.login(self.openid)
        self.read_at = datetime.now(UTC) - timedelta(hours=2)

    def deliver(self) -> int:
        return drain_uplink(uplink_url(), uplink_consumer.handler)

    def use(self, kwh: str) -> None:
        if self.sim.relay_closed:
            self.sim.total += Decimal(kwh)
        self.read_at += timedelta(minutes=30)
        self.site.send_readings([self.sim.reading(self.read_at)], self.read_at)
        self.deliver()

    def cut(self) -> None:
        """Use 1.00 yuan beyond the opening balance: tripped, and the meter reports open."""
        self.use("0")
        self.use(str(Decimal(LedgerService().balance(self.account)) / 100 + 1))
        assert [c["op"] for c in self.site.take_commands()] == ["TRIP"]
        self.deliver()
        assert meters_store.load_meter(self.meter).relay_state == "open"

    def get(self, path: str, **kw) -> requests.Response:
        return requests.get(f"{self.stack.base}/api/v1{path}", headers=self.auth, timeout=T, **kw)

    def pay(self, amount: int) -> str:
        r = self.stack.recharge(self.auth, self.account, amount)
        assert r.status_code == 201, r.text
        no = r.json()["out_trade_no"]
        self.stack.pay.pay(no)
        assert self.stack.pay.wait_for_deliveries(10)
        return no

    def progress(self, no: str) -> dict:
        r = self.get(f"/recharges/{no}/progress")
        assert r.status_code == 200, r.text
        return r.json()


def steps(body: dict) -> dict:
    return {s["key"]: s["done"] for s in body["steps"]}


def set_clock(stack: Stack, clock, sleep=lambda s: None) -> None:
    stack.web.app.extensions[PROGRESS_CLOCK_KEY] = (clock, sleep)


# --- where my money is ------------------------------------------------------------------------


def test_progress_follows_the_chain_to_the_relay_read_back(stack):
    h = Home(stack)
    h.cut()  # 5.00 - 6.00 = -1.00
    r = stack.recharge(h.auth, h.account, 5000)
    no = r.json()["out_trade_no"]
    body = h.progress(no)
    assert (body["state"], body["final"], body["balance_fen"]) == ("waiting_payment", False, None)

    stack.pay.pay(no)
    assert stack.pay.wait_for_deliveries(10)
    body = h.progress(no)  # -1.00 + 50.00 = 49.00; the CLOSE was written with the credit and sent
    assert (body["state"], body["balance_fen"], body["balance"]) == ("command_sent", 4900, "49.00")
    assert steps(body) == {"paid": True, "credited": True, "command_sent": True, "relay_closed": False}

    # the bridge's heartbeat arrives; 10 minutes later with the command still not run, the site is offline
    h.site.send(h.site.message("heartbeat", datetime.now(UTC)))
    h.deliver()
    assert h.progress(no)["state"] == "command_sent"
    set_clock(stack, lambda: datetime.now(UTC) + timedelta(minutes=10))
    body = h.progress(no)
    assert body["state"] == "site_offline" and "网关" in body["message"]
    stack.web.app.extensions.pop(PROGRESS_CLOCK_KEY)

    assert [c["op"] for c in h.site.take_commands()] == ["CLOSE"]
    h.deliver()
    body = h.progress(no)
    assert (body["state"], body["final"]) == ("restored", True)
    assert all(steps(body).values()) and "合闸" in body["message"]

    # the stream of a finished chain: one event, then the end
    r = h.get(f"/recharges/{no}/progress/stream")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {\"")]
    assert [e["state"] for e in events] == ["restored"] and "event: end" in r.text


def test_stream_sends_each_change_until_power_is_back(stack):
    h = Home(stack)
    h.cut()
    no = h.pay(5000)
    calls = []

    def sleep(seconds: float) -> None:  # the site runs while the stream waits its second
        calls.append(seconds)
        if len(calls) == 2:
            h.site.take_commands()
            h.deliver()

    set_clock(stack, lambda: datetime.now(UTC), sleep)
    r = h.get(f"/recharges/{no}/progress/stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {\"")]
    assert [e["state"] for e in events] == ["command_sent", "restored"]  # unchanged reads send nothing
    assert calls == [1.0, 1.0]


def test_stream_stops_after_its_bounded_duration(stack):
    h = Home(stack)
    h.cut()
    no = h.pay(5000)
    start = datetime.now(UTC)
    now = [start]

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    set_clock(stack, lambda: now[0], sleep)
    r = h.get(f"/recharges/{no}/progress/stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {\"")]
    assert [e["state"] for e in events] == ["command_sent"] and "event: end" in r.text
    # polled every second until the next poll would pass 25 s: 25 one-second sleeps of injected time
    assert (now[0] - start).total_seconds() == 25


def test_progress_when_supply_was_never_cut(stack):
    h = Home(stack, opening=1000)
    no = h.pay(2000)
    body = h.progress(no)
    assert (body["state"], body["final"], body["balance_fen"]) == ("not_needed", True, 3000)
    assert "无需" in body["message"]


def test_progress_below_the_restore_line_says_how_much_more(stack):
    h = Home(stack)
    h.cut()
    Control().configure_account(h.w.property_id, h.account, "admin", restore_line=10000)  # 100.00 yuan
    no = h.pay(5000)  # -1.00 + 50.00 = 49.00; above 100.00 needs 100.01 - 49.00 = 51.01
    body = h.progress(no)
    assert (body["state"], body["shortfall_fen"], body["final"]) == ("credited", 5101, True)
    assert "51.01" in body["message"]


def test_progress_when_the_meter_needs_a_local_confirmation_or_fails(stack):
    h = Home(stack)
    h.cut()
    assert money_store.set_close_needs_local_confirm(h.meter, True)
    no = h.pay(5000)
    # the meter takes the CLOSE but its relay stays open until the button is pressed
    meter = meters_store.load_meter(h.meter)
    h.site.send(h.site.message("command_result", datetime.now(UTC), command_id=meter.relay_command_id,
                               meter_id=h.meter, status="applied", relay_state="open"))
    h.deliver()
    body = h.progress(no)
    assert body["state"] == "needs_local_confirm" and "按键" in body["message"]

    # another tenant whose meter refuses the command
    g = Home(stack)
    g.cut()
    no = g.pay(5000)
    meter = meters_store.load_meter(g.meter)
    g.site.send(g.site.message("command_result", datetime.now(UTC), command_id=meter.relay_command_id,
                               meter_id=g.meter, status="failed", detail="no answer"))
    g.deliver()
    body = g.progress(no)
    assert (body["state"], body["final"]) == ("failed", True)


def test_progress_of_another_tenants_order_is_404(stack):
    a, b = Home(stack), Home(stack)
    no = a.pay(1000)
    for path in (f"/recharges/{no}/progress", f"/recharges/{no}/progress/stream"):
        r = b.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "order_not_found"
        assert a.account not in r.text
    assert b.get("/recharges/nope%20x/progress").status_code == 404


def test_recharge_options(stack):
    h = Home(stack)
    body = h.get("/recharge-options", params={"account_id": h.account}).json()
    # default limits 1.00 .. 5,000.00 yuan: every preset fits
    assert [p["amount_fen"] for p in body["presets"]] == [2000, 5000, 10000, 20000, 50000]
    assert body["presets"][0]["amount"] == "20.00"
    assert (body["min_fen"], body["max_fen"], body["min"], body["max"]) == (100, 500000, "1.00", "5000.00")
    other = Home(stack)
    assert h.get("/recharge-options", params={"account_id": other.account}).status_code == 404
    assert h.get("/recharge-options").status_code == 400


# --- refund requests ---------------------------------------------------------------------------


def console_session(stack: Stack, property_id: str, role: str = "owner", company_id: str | None = None):
    s = requests.Session()
    admin = make_admin(property_id, role=role, company_id=company_id)
    logged_in(s, admin, base=stack.base)
    return s, csrf_token(s, f"/p/{property_id}/refunds", stack.base), admin.company_id


def test_refund_request_approved_through_wechat_split_over_orders(stack):
    h = Home(stack, opening=0)
    first = h.pay(3000)
    second = h.pay(2000)  # balance 50.00, two WeChat payments
    url = f"/api/v1/accounts/{h.account}/refund-requests"

    bad = [({"amount": 5001, "reason": "退租"}, "amount_over_balance"), ({"amount": 0, "reason": "退租"}, "amount_not_positive"),
           ({"amount": "100", "reason": "退租"}, "amount_not_integer"), ({"amount": 100, "reason": ""}, "reason_required"),
           ({"amount": 100, "reason": "字" * 201}, "reason_too_long"), ({"amount": 100}, "reason_required")]
    for body, code in bad:
        r = requests.post(stack.base + url, json=body, headers=h.auth, timeout=T)
        assert (r.status_code, r.json()["error"]["code"]) == (400, code), (body, r.text)
    assert h.get(f"/accounts/{h.account}/refund-requests").json() == {"requests": []}  # nothing was recorded

    r = requests.post(stack.base + url, json={"amount": 4500, "reason": "退租"}, headers=h.auth, timeout=T)
    assert r.status_code == 201, r.text
    req = r.json()
    assert (req["status"], req["amount_fen"], req["amount"]) == ("pending", 4500, "45.00")
    again = requests.post(stack.base + url, json={"amount": 100, "reason": "再来"}, headers=h.auth, timeout=T)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "refund_request_open")
    listed = h.get(f"/accounts/{h.account}/refund-requests").json()["requests"]
    assert [(x["request_id"], x["status"], x["status_text"]) for x in listed] == \
        [(req["request_id"], "pending", "待物业审核")]

    # a viewer sees the queue but may not approve; another company's admin does not see the property
    owner, token, company = console_session(stack, h.w.property_id)
    viewer, vtoken, _ = console_session(stack, h.w.property_id, role="viewer", company_id=company)
    page = viewer.get(f"{stack.base}/p/{h.w.property_id}/refunds", timeout=T)
    assert page.status_code == 200 and "45.00" in page.text and "同意并退款" not in page.text
    action = f"{stack.base}/p/{h.w.property_id}/refunds/{h.account}/{req['request_id']}/approve"
    assert viewer.post(action, data={"csrf_token": vtoken}, timeout=T, allow_redirects=False).status_code == 403
    stranger, stoken, _ = console_session(stack, Metered().property_id)
    assert stranger.post(action, data={"csrf_token": stoken}, timeout=T).status_code == 404

    assert owner.post(action, data={}, timeout=T).status_code == 400  # no CSRF token: nothing done
    assert pstore.get_order(second).refunded == 0
    r = owner.post(action, data={"csrf_token": token}, timeout=T, allow_redirects=False)
    assert r.status_code == 302, r.text[:500]
    # newest payment first: 20.00 from the second order, 25.00 from the first
    assert (pstore.get_order(second).refunded, pstore.get_order(first).refunded) == (2000, 2500)
    assert [x["amount"]["refund"] for x in stack.pay.refunds_for(second)] == [2000]  # what WeChat holds
    assert [x["amount"]["refund"] for x in stack.pay.refunds_for(first)] == [2500]
    assert LedgerService().balance(h.account) == 500  # 50.00 - 45.00
    assert owner.post(action, data={"csrf_token": token}, timeout=T).status_code == 409  # decided already

    listed = h.get(f"/accounts/{h.account}/refund-requests").json()["requests"]
    assert (listed[0]["status"], listed[0]["refunded_fen"]) == ("approved", 4500)
    log = owner.get(f"{stack.base}/admin/api/properties/{h.w.property_id}/audit?action=refund_request_approve",
                    timeout=T)
    assert log.status_code == 200 and req["request_id"] in log.text

    # the next request may be made now; rejected with a reason, the tenant reads it
    r = requests.post(stack.base + url, json={"amount": 500, "reason": "剩余也退"}, headers=h.auth, timeout=T)
    assert r.status_code == 201
    rid = r.json()["request_id"]
    reject = f"{stack.base}/p/{h.w.property_id}/refunds/{h.account}/{rid}/reject"
    assert owner.post(reject, data={"csrf_token": token, "reason": ""}, timeout=T).status_code == 422
    assert owner.post(reject, data={"csrf_token": token, "reason": "押金抵扣"}, timeout=T,
                      allow_redirects=False).status_code == 302
    listed = h.get(f"/accounts/{h.account}/refund-requests").json()["requests"]
    assert (listed[0]["status"], listed[0]["status_text"]) == ("rejected", "已驳回：押金抵扣")
    assert LedgerService().balance(h.account) == 500

    notes = h.get(f"/accounts/{h.account}/notifications").json()["notifications"]
    kinds = [n["kind"] for n in notes]
    assert kinds[:2] == ["refund_rejected", "refund_approved"] and kinds.count("payment_credited") == 2


def test_refund_beyond_wechat_payments_is_refused(stack):
    h = Home(stack, opening=5000)  # balance from the opening, not from WeChat
    h.pay(1000)
    r = requests.post(f"{stack.base}/api/v1/accounts/{h.account}/refund-requests", json={"amount": 1001, "reason": "x"},
                      headers=h.auth, timeout=T)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "amount_over_refundable")


# --- alarm preferences and notifications ----------------------------------------------------------


def test_alarm_preferences_round_trip_and_refuse_bad_input(stack):
    h = Home(stack)
    url = f"{stack.base}/api/v1/accounts/{h.account}/alarm-preferences"
    assert requests.get(url, headers=h.auth, timeout=T).json() == \
        {"low_balance_fen": None, "channels": ["subscribe"], "quiet_hours": None}
    good = {"low_balance_fen": 3000, "channels": ["sms", "template"], "quiet_hours": {"start": "22:30", "end": "07:00"}}
    r = requests.put(url, json=good, headers=h.auth, timeout=T)
    assert r.status_code == 200 and r.json()["channels"] == ["template", "sms"]
    saved = {"low_balance_fen": 3000, "channels": ["template", "sms"], "quiet_hours": {"start": "22:30", "end": "07:00"}}
    for bad in [{**good, "channels": ["email"]}, {**good, "quiet_hours": {"start": "25:00", "end": "07:00"}},
                {**good, "low_balance_fen": -5}, {**good, "low_balance_fen": "30"}, {**good, "extra": 1},
                {"channels": []}, {**good, "quiet_hours": {"start": "07:00", "end": "07:00"}}]:
        r = requests.put(url, json=bad, headers=h.auth, timeout=T)
        assert r.status_code == 400 and r.json()["error"]["message"], (bad, r.text)
    assert requests.get(url, headers=h.auth, timeout=T).json() == saved  # unchanged by the refused ones
    other = Home(stack)
    assert requests.get(url, headers=other.auth, timeout=T).status_code == 404
    assert requests.put(url, json=good, headers=other.auth, timeout=T).status_code == 404


def test_notifications_page_with_a_cursor(stack):
    h = Home(stack)
    h.cut()  # 5.00 -> -1.00: low-balance alarm (below 0.00) and the cut
    h.pay(5000)  # credited and restored
    url = f"/accounts/{h.account}/notifications"
    everything = h.get(url).json()
    kinds = [n["kind"] for n in everything["notifications"]]
    assert {"low_balance", "cut", "payment_credited", "restored"} <= set(kinds)
    assert everything["next_cursor"] is None
    ats = [n["at"] for n in everything["notifications"]]
    assert ats == sorted(ats, reverse=True)
    paid = next(n for n in everything["notifications"] if n["kind"] == "payment_credited")
    assert paid["title"] == "充值到账" and "50.00" in paid["text"]

    seen, cursor = [], None
    while True:
        page = h.get(url, params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        assert len(page["notifications"]) <= 2
        seen += [n["id"] for n in page["notifications"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [n["id"] for n in everything["notifications"]]
    assert h.get(url, params={"cursor": "garbage"}).status_code == 400
    other = Home(stack)
    assert other.get(url).status_code == 404
    first = h.get(url, params={"limit": 1}).json()["next_cursor"]
    r = other.get(f"/accounts/{other.account}/notifications", params={"cursor": first})
    assert r.status_code == 400  # a cursor of another account's feed reads nothing
