"""The tenant API's reads over HTTP (docs/tenant-api.md, "Reads"): my accounts, one
account, meters, the statement with signed cursors, orders with who paid, receipts; and
what each costs in DynamoDB requests. The Flask app on a free port, logins through the
WeChat API emulator, payments through the WeChat Pay emulator (PayStack), the emulated
AWS stack.

Hand-worked example: an account opens with 100.00 yuan (10000 fen), restore line 5.00
yuan (500), default alarm amounts 50.00 / 20.00 / 0.00. A fee of 90.00 yuan leaves 10.00
(1000): below 50.00 and 20.00, not below 0.00 -> alarm level 2. The supply is then cut;
a roommate pays 50.00 (5000) -> balance 60.00 (6000) right after that credit; the tenant
starts a 30.00 (3000) order and does not pay it. The statement, newest first, is
recharge +5000 (6000), fee -9000 (1000), opening +10000 (10000).
"""

from __future__ import annotations

import hashlib
import uuid

import pytest
import requests

from bench.api import ByTable
from core.services import bindings
from core.services.ledger import LedgerService
from core.store import ledger as lstore
from core.store.directory import set_account_settings
from miniprogram_api.app import create_app
from testkit.apistack import ApiStack
from testkit.builders import Metered, World


class Stack(ApiStack):

    def get(self, path: str, auth: dict, **params) -> requests.Response:
        return requests.get(f"{self.base}/api/v1{path}", headers=auth, params=params, timeout=10)


@pytest.fixture
def stack(aws, monkeypatch):
    s = Stack(monkeypatch)
    yield s
    s.stop()


def openid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def masked(o: str) -> str:
    """A roommate without a nickname, worked independently of core.domain.memberships."""
    return "微信用户 " + hashlib.sha256(o.encode()).hexdigest()[:4].upper()


def test_a_tenant_reads_balance_supply_statement_orders_and_receipts(stack):
    w = World()
    account = w.account(opening=10000)
    set_account_settings(account, restore_line=500)
    me, roommate = openid(), openid()
    w.d.bind_openid(w.tenant_id, me)
    bindings.redeem_binding_code(bindings.issue(w.property_id, account, "admin-1").code, roommate)
    LedgerService().post(account_id=account, entry_id=f"fee:{uuid.uuid4().hex[:8]}", kind="fee", amount=9000,
                         cause="fee:service", actor="admin:ops@x", memo="物业服务费")
    assert lstore.set_cut_state(account, "cut")
    auth, their = stack.login(me), stack.login(roommate)

    r = stack.get("/accounts", auth)
    assert r.status_code == 200, r.text
    [a] = r.json()["accounts"]
    assert (a["account_id"], a["property_id"], a["property_name"], a["room_name"]) == (account, w.property_id,
                                                                                         "测试物业", "R001")
    assert (a["balance_fen"], a["balance"], a["alarm_level"]) == (1000, "10.00", 2)
    assert (a["overdraft_limit_fen"], a["restore_line_fen"]) == (0, 500)
    assert a["supply"]["state"] == "cut" and "5.00" in a["supply"]["reason"]
    assert a["forecast"]["days"] is None  # no usage yet
    assert stack.get(f"/accounts/{account}", their).json() == a  # a roommate sees the same account

    # the roommate pays 50.00; the tenant starts 30.00 and leaves it unpaid
    r = requests.post(f"{stack.base}/api/v1/recharges", json={"account_id": account, "amount": 5000}, headers=their,
                      timeout=10)
    paid = r.json()["out_trade_no"]
    tx = stack.pay.pay(paid)
    assert stack.pay.wait_for_deliveries(10)
    r = requests.post(f"{stack.base}/api/v1/recharges", json={"account_id": account, "amount": 3000}, headers=auth,
                      timeout=10)
    pending = r.json()["out_trade_no"]

    orders = stack.get(f"/accounts/{account}/orders", auth).json()
    assert [(o["out_trade_no"], o["status"], o["status_text"], o["amount_fen"], o["payer"]) for o in orders["orders"]] == [
        (pending, "PENDING", "待支付", 3000, {"display_name": masked(me), "is_me": True}),
        (paid, "PAID", "已支付", 5000, {"display_name": masked(roommate), "is_me": False}),
    ]
    assert orders["next_cursor"] is None
    page = stack.get(f"/accounts/{account}/orders", auth, limit=1).json()
    assert [o["out_trade_no"] for o in page["orders"]] == [pending] and page["next_cursor"]
    rest = stack.get(f"/accounts/{account}/orders", auth, limit=1, cursor=page["next_cursor"]).json()
    assert [o["out_trade_no"] for o in rest["orders"]] == [paid] and rest["next_cursor"] is None

    receipt = stack.get(f"/orders/{paid}", auth).json()
    assert (receipt["account_id"], receipt["room_name"], receipt["property_name"]) == (account, "R001", "测试物业")
    assert (receipt["transaction_id"], receipt["balance_after_fen"], receipt["amount"]) == (tx["transaction_id"],
                                                                                             6000, "50.00")
    assert receipt["payer"] == {"display_name": masked(roommate), "is_me": False}

    # the statement, two entries a page
    first = stack.get(f"/accounts/{account}/statement", auth, limit=2).json()
    got = [(e["kind"], e["amount_fen"], e["balance_after_fen"], e["payer"]) for e in first["entries"]]
    assert got == [("recharge", 5000, 6000, "微信支付"), ("fee", -9000, 1000, None)]
    assert first["entries"][0]["out_trade_no"] == paid and paid in first["entries"][0]["cause_text"]
    assert first["entries"][0]["kind_text"] == "充值" and first["entries"][1]["kind_text"] == "费用"
    assert "物业服务费" in first["entries"][1]["cause_text"] and first["entries"][1]["amount"] == "-90.00"
    second = stack.get(f"/accounts/{account}/statement", auth, limit=2, cursor=first["next_cursor"]).json()
    assert [(e["kind"], e["amount_fen"], e["cause_text"]) for e in second["entries"]] == [
        ("opening", 10000, "开户期初余额")]
    assert second["next_cursor"] is None


def test_cursors_cannot_be_forged_altered_or_carried_to_another_account(stack):
    w = World()
    one, two = w.account(opening=100), w.account(opening=200)
    for n in range(3):
        LedgerService().post(account_id=one, entry_id=f"adj:{n}", kind="adjust_credit", amount=1 + n, cause="test",
                             actor="admin:x@y", memo=f"第 {n} 笔")
    me = openid()
    w.d.bind_openid(w.tenant_id, me)
    auth = stack.login(me)
    cursor = stack.get(f"/accounts/{one}/statement", auth, limit=1).json()["next_cursor"]
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    for bad in (flipped, "x" * 40, cursor + "AA", "!!!"):
        r = stack.get(f"/accounts/{one}/statement", auth, cursor=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "cursor_invalid", (bad, r.text)
    r = stack.get(f"/accounts/{two}/statement", auth, cursor=cursor)  # a cursor of account one
    assert r.status_code == 400 and r.json()["error"]["code"] == "cursor_invalid"
    r = stack.get(f"/accounts/{one}/orders", auth, cursor=cursor)  # a statement cursor for the orders
    assert r.status_code == 400 and r.json()["error"]["code"] == "cursor_invalid"
    for limit in ("0", "101", "x"):
        r = stack.get(f"/accounts/{one}/statement", auth, limit=limit)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
        assert r.json()["error"]["message"] == "请求参数无效：limit"


def test_another_tenants_ids_are_404_and_nothing_of_theirs_shows(stack):
    w, other = World(), World()
    mine, theirs = w.account(opening=100), other.account(opening=900)
    me, them = openid(), openid()
    w.d.bind_openid(w.tenant_id, me)
    other.d.bind_openid(other.tenant_id, them)
    auth, their = stack.login(me), stack.login(them)
    order = requests.post(f"{stack.base}/api/v1/recharges", json={"account_id": theirs, "amount": 1000},
                          headers=their, timeout=10).json()["out_trade_no"]
    for path in (f"/accounts/{theirs}", f"/accounts/{theirs}/meters", f"/accounts/{theirs}/statement",
                 f"/accounts/{theirs}/orders", f"/orders/{order}", "/accounts/no-such-account", "/orders/R0000000"):
        r = stack.get(path, auth)
        assert r.status_code == 404 and r.json()["error"]["code"] in ("account_not_found", "order_not_found"), path
    assert [a["account_id"] for a in stack.get("/accounts", auth).json()["accounts"]] == [mine]
    assert stack.get("/accounts", {}).status_code == 401


def test_meters_show_kind_online_reading_and_relay(stack):
    w = Metered()
    account = w.account(opening=100)
    power, water = w.meter(account), w.meter(account, kind="water")
    me = openid()
    w.d.bind_openid(w.tenant_id, me)
    meters = {m["meter_id"]: m for m in stack.get(f"/accounts/{account}/meters", stack.login(me)).json()["meters"]}
    assert meters.keys() == {power, water}
    assert (meters[power]["kind"], meters[water]["kind"]) == ("electricity", "water")
    for m in meters.values():  # never read: offline, no reading, relay not read back
        assert (m["online"], m["last_reading"], m["relay"]["state"], m["relay"]["read_at"]) == (False, None,
                                                                                              "unknown", None)


def test_my_accounts_and_a_statement_page_cost_at_most_two_dynamodb_requests(stack):
    """The reads themselves: 2 requests each (docs/tenant-api.md); over HTTP the session
    check rides in the read's BatchGet (docs/tenant-auth.md): still 2."""
    from core.services import tenant_reads

    w = World()
    accounts = [w.account(opening=100 * n) for n in range(1, 4)]
    for n in range(30):
        LedgerService().post(account_id=accounts[0], entry_id=f"adj:{n}", kind="adjust_credit", amount=1,
                             cause="test", actor="admin:x@y")
    me = openid()
    w.d.bind_openid(w.tenant_id, me)
    client = create_app().test_client()
    token = client.post("/api/v1/login", json={"code": stack.api.issue_code(me)}).get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    counter = ByTable()  # its own hook: a DynamoRequests made after another test's counts nothing

    def measure(call):
        counter.attach()
        before = len(counter.requests)
        return call(), len(counter.requests) - before

    assert len(client.get("/api/v1/accounts", headers=auth).get_json()["accounts"]) == 3  # warm: names cached

    mine, n = measure(lambda: tenant_reads.my_accounts(me))
    assert len(mine) == 3 and n == 2, n
    page, n = measure(lambda: tenant_reads.statement(me, accounts[0], None, 20))
    assert len(page.items) == 20 and n == 2, n
    rest, n = measure(lambda: tenant_reads.statement(me, accounts[0], page.next_cursor, 20))
    assert len(rest.items) == 11 and rest.next_cursor is None and n == 2, n

    r, n = measure(lambda: client.get("/api/v1/accounts", headers=auth))
    assert r.status_code == 200 and n == 2, n
    r, n = measure(lambda: client.get(f"/api/v1/accounts/{accounts[0]}/statement?limit=20", headers=auth))
    assert len(r.get_json()["entries"]) == 20 and n == 2, n
