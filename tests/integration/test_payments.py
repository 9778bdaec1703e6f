"""WeChat Pay end to end over HTTP: the tenant API (login, recharge), the WeChat Pay and
WeChat API emulators (real signatures, real AES-GCM), the notification function behind a
local API Gateway, and the emulator AWS stack."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from core.domain.errors import Conflict, InsufficientFunds, NotFound
from core.domain.events import Subject
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import events as estore
from core.store import payments as pstore
from infra.local.paystack import APPID, MCHID
from testkit.apistack import ApiStack
from testkit.builders import Clock, World


class Stack(ApiStack):

    def recharge(self, auth: dict, account_id: str, amount: int) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/recharges", json={"account_id": account_id, "amount": amount},
                             headers=auth, timeout=10)


@pytest.fixture
def stack(aws, monkeypatch):
    s = Stack(monkeypatch)
    yield s
    s.stop()


def tenant(opening: int = 0) -> tuple[World, str, str]:
    w = World()
    account = w.account(opening=opening)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    return w, account, openid


def paid_order(stack: Stack, amount: int = 5000) -> tuple[World, str, str]:
    w, account, openid = tenant()
    r = stack.recharge(stack.login(openid), account, amount)
    no = r.json()["out_trade_no"]
    stack.pay.pay(no)
    assert stack.pay.wait_for_deliveries(10)
    assert LedgerService().balance(account) == amount
    return w, account, no


def test_pay_credits_once_and_pay_params_are_signed(stack):
    w, account, openid = tenant(opening=100)
    auth = stack.login(openid)
    r = stack.recharge(auth, account, 5000)
    assert r.status_code == 201, r.text
    body = r.json()
    p = body["pay_params"]
    message = f"{p['appId']}\n{p['timeStamp']}\n{p['nonceStr']}\n{p['package']}\n".encode()
    stack.merchant_public.verify(base64.b64decode(p["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    assert p["package"].startswith("prepay_id=") and p["signType"] == "RSA" and p["appId"] == APPID
    no = body["out_trade_no"]
    assert requests.get(f"{stack.base}/api/v1/recharges/{no}", headers=auth, timeout=10).json()["status"] == "PENDING"
    tx = stack.pay.pay(no)
    assert stack.pay.wait_for_deliveries(10)
    assert LedgerService().balance(account) == 5100
    order = pstore.get_order(no)
    assert (order.status, order.transaction_id) == ("PAID", tx["transaction_id"])
    entries = LedgerService().entries(account)[0]
    assert entries[0].entry_id == f"pay:{tx['transaction_id']}" and entries[0].actor == "wechatpay"
    assert requests.get(f"{stack.base}/api/v1/recharges/{no}", headers=auth, timeout=10).json()["status"] == "PAID"


def test_same_notification_20_times_concurrently_credits_once(stack):
    w, account, openid = tenant()
    no = stack.recharge(stack.login(openid), account, 8800).json()["out_trade_no"]
    stack.pay.pay(no, duplicates=19)
    assert stack.pay.wait_for_deliveries(20)
    deliveries = stack.pay.deliveries_for(no)
    assert len(deliveries) == 20 and all(d.succeeded for d in deliveries)  # every copy answered success
    result = LedgerService().verify(account)
    assert result["ok"] and result["balance"] == 8800 and result["entries"] == 2


def test_lost_notification_is_settled_by_the_query_sweep_and_expired_orders_closed(stack):
    w, account, openid = tenant()
    auth = stack.login(openid)
    lost = stack.recharge(auth, account, 3000).json()["out_trade_no"]
    unpaid = stack.recharge(auth, account, 4000).json()["out_trade_no"]
    stack.pay.lose_notification(lost)
    stack.pay.pay(lost)
    assert LedgerService().balance(account) == 0
    clock = Clock(datetime.now(UTC) + timedelta(minutes=5))
    sweep = Payments(clock=clock).sweep()
    assert sweep["credited"] >= 1
    assert LedgerService().balance(account) == 3000
    assert pstore.get_order(lost).status == "PAID"
    clock.advance(minutes=20)  # past the order's expiry
    Payments(clock=clock).sweep()
    assert pstore.get_order(unpaid).status == "CLOSED"
    assert stack.pay.order(unpaid)["trade_state"] == "CLOSED"


@pytest.mark.parametrize("tamper", ["signature", "serial", "stale", "ciphertext"])
def test_forged_notifications_are_rejected(stack, tamper):
    w, account, openid = tenant()
    no = stack.recharge(stack.login(openid), account, 2000).json()["out_trade_no"]
    stack.pay.lose_notification(no)
    tx = stack.pay.pay(no)
    headers, body = stack.pay.build_notification(tx, tamper=tamper)
    before = len(estore.events_of(Subject.payments("unknown"))) + len(estore.events_of(Subject.payments(w.property_id)))
    r = requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=10)
    assert r.status_code in (400, 401) and r.json()["code"] == "FAIL"
    assert LedgerService().balance(account) == 0 and pstore.get_order(no).status == "PENDING"
    # unauthenticated: anyone can send it, so it writes nothing (a rate-limited log line only)
    assert len(estore.events_of(Subject.payments("unknown"))) + len(estore.events_of(Subject.payments(w.property_id))) == before
    headers, body = stack.pay.build_notification(tx)  # the genuine one still works
    assert requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=10).status_code == 200
    assert LedgerService().balance(account) == 2000


@pytest.mark.parametrize("forge,reason", [({"amount": 1}, "amount_mismatch"), ({"appid": "wxotherapp0000000"},
                                          "appid_mismatch"), ({"mchid": "1900000999"}, "mchid_mismatch")])
def test_mismatched_payments_credit_nothing_and_leave_an_alert(stack, forge, reason):
    w, account, openid = tenant()
    no = stack.recharge(stack.login(openid), account, 2500).json()["out_trade_no"]
    stack.pay.lose_notification(no)
    tx = stack.pay.pay(no, **forge)
    headers, body = stack.pay.build_notification(tx)
    r = requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=10)
    assert r.status_code == 400
    assert LedgerService().balance(account) == 0
    alerts = estore.events_of(Subject.payments(w.property_id))
    assert any(a.data["reason"] == reason and a.data["ref"] == no for a in alerts)


def test_unknown_order_is_rejected(stack):
    w, account, openid = tenant()
    no = stack.recharge(stack.login(openid), account, 1000).json()["out_trade_no"]
    stack.pay.lose_notification(no)
    tx = dict(stack.pay.pay(no), out_trade_no="R00000000000000nosuchorder")
    headers, body = stack.pay.build_notification(tx)
    assert requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=10).status_code == 400
    assert any(a.data["reason"] == "unknown_order" for a in estore.events_of(Subject.payments("unknown")))
    assert LedgerService().balance(account) == 0


def test_refunds(stack):
    w, account, no = paid_order(stack, 5000)
    p = Payments()
    with pytest.raises(Conflict) as e:
        p.refund(w.property_id, no, 5001, "多退", "admin-1")
    assert e.value.code == "refund_too_large"
    with pytest.raises(NotFound):  # another property's admin
        p.refund(World().property_id, no, 100, "x", "intruder")
    ok = p.refund(w.property_id, no, 2000, "退租", "admin-1")
    assert ok.status == "PROCESSING" and LedgerService().balance(account) == 3000
    stack.pay.complete_refund(ok.out_refund_no, "SUCCESS", duplicates=2)
    assert stack.pay.wait_for_deliveries(10)
    assert pstore.get_refund(ok.out_refund_no).status == "SUCCESS"
    assert LedgerService().balance(account) == 3000
    failed = p.refund(w.property_id, no, 3000, "退租", "admin-1")
    with pytest.raises(Conflict):  # nothing left to refund while it is in flight
        p.refund(w.property_id, no, 1, "x", "admin-1")
    stack.pay.complete_refund(failed.out_refund_no, "ABNORMAL", duplicates=3)
    assert stack.pay.wait_for_deliveries(10)
    assert pstore.get_refund(failed.out_refund_no).status == "FAILED"
    assert LedgerService().balance(account) == 3000  # given back once, not four times
    assert pstore.get_order(no).refunded == 2000
    assert LedgerService().verify(account)["ok"]


def test_refund_never_takes_the_balance_below_zero(stack):
    w, account, no = paid_order(stack, 5000)
    LedgerService().post(account_id=account, entry_id="use:x:1", kind="energy", amount=4500, cause="t", actor="t")
    with pytest.raises(InsufficientFunds):
        Payments().refund(w.property_id, no, 1000, "退款", "admin-1")
    assert pstore.get_order(no).refunded == 0 and LedgerService().balance(account) == 500


def test_reconciliation_finds_each_planted_mismatch(stack):
    w, account, good = paid_order(stack, 5000)
    _, _, differs = paid_order(stack, 6000)
    stack.pay.set_bill_amount(differs, 5999)
    external = f"R{uuid.uuid4().hex[:20]}"
    stack.pay.add_external_trade(external, 1234)
    # an order we credited that WeChat never saw (what a bug or a forged credit would look like)
    _, account2, openid2 = tenant()
    ghost = stack.recharge(stack.login(openid2), account2, 700).json()["out_trade_no"]
    stack.pay.lose_notification(ghost)
    tx = {"appid": APPID, "mchid": MCHID, "out_trade_no": ghost, "transaction_id": f"4200{uuid.uuid4().hex[:16]}",
          "trade_state": "SUCCESS", "amount": {"total": 700, "currency": "CNY"}, "success_time": datetime.now(UTC).isoformat()}
    assert Payments().settle(tx, "test")[0]
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    report = Payments().reconcile(day)
    found = {(m["kind"], m["out_trade_no"]) for m in report["mismatches"]}
    assert {("amount_differs", differs), ("paid_there_not_here", external), ("here_not_there", ghost)} <= found
    assert not any(no == good for _, no in found)
    recorded = {e.event_id for e in estore.events_of(Subject.reconcile(day))}
    assert f"amount_differs:{differs}" in recorded and f"paid_there_not_here:{external}" in recorded


def test_counter_cash(stack):
    w, account, _ = tenant()
    p = Payments()
    e = p.counter_recharge(w.property_id, account, 20000, "RC2026112800001", "cash", "admin-7")
    again = p.counter_recharge(w.property_id, account, 20000, "RC2026112800001", "cash", "admin-7")
    assert again.duplicate and e.actor == "admin-7" and LedgerService().balance(account) == 20000
    with pytest.raises(NotFound):
        p.counter_recharge(World().property_id, account, 100, "RC2026112800002", "cash", "intruder")
    p.counter_refund(w.property_id, account, 5000, "RF2026112800001", "admin-7")
    with pytest.raises(InsufficientFunds):
        p.counter_refund(w.property_id, account, 15001, "RF2026112800002", "admin-7")
    assert LedgerService().balance(account) == 15000


def test_tenant_api_refuses_bad_input_and_other_tenants(stack):
    w, account, openid = tenant()
    _, other_account, other_openid = tenant()
    auth, other = stack.login(openid), stack.login(other_openid)
    assert stack.recharge({}, account, 1000).status_code == 401
    assert stack.recharge({"Authorization": "Bearer forged.token.value"}, account, 1000).status_code == 401
    r = stack.recharge(other, account, 1000)  # someone else's account
    assert r.status_code == 404 and r.json()["error"]["code"] == "account_not_found"
    for amount, code in [(50, "amount_too_small"), (10_000_000, "amount_too_large"), ("10", "amount_not_integer"),
                         (12.5, "amount_not_integer")]:
        r = stack.recharge(auth, account, amount)
        assert r.status_code == 400 and r.json()["error"]["code"] == code
    r = requests.post(f"{stack.base}/api/v1/recharges", data="not json", headers=auth, timeout=10)
    assert r.status_code == 400
    no = stack.recharge(auth, account, 1000).json()["out_trade_no"]
    assert requests.get(f"{stack.base}/api/v1/recharges/{no}", headers=other, timeout=10).status_code == 404
    accounts = requests.get(f"{stack.base}/api/v1/accounts", headers=auth, timeout=10).json()["accounts"]
    assert [a["account_id"] for a in accounts] == [account]
    bad = requests.post(f"{stack.base}/api/v1/login", json={"code": "never-issued"}, timeout=10)
    assert bad.status_code == 401
    assert pstore.orders_of_account(other_account) == []


def test_a_day_without_trades_reconciles_to_an_empty_bill(stack):
    """WeChat has no trade bill for a day without a successful trade (400 NO_STATEMENT_EXIST
    from the emulator, as from WeChat): that is an empty bill, not a failure to retry."""
    report = Payments().reconcile("2020-01-02")  # long before any order here
    assert (report["their_trades"], report["our_orders"], report["mismatches"]) == (0, 0, [])
