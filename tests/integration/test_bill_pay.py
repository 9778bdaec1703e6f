"""Paying a bill online (docs/billing.md): the tenant API's POST /api/v1/bills/<id>/pay makes
a WeChat Pay JSAPI order through the recharge path; the WeChat Pay emulator (real signatures,
real AES-GCM) pays it and notifies the notification function behind the local API Gateway;
the verified notification records the bill payment and marks the order paid in one
transaction, once however often it comes. Amounts are hand-picked fen."""

from __future__ import annotations

import uuid

import pytest
import requests

from core.domain.charges import Charge
from core.domain.errors import Conflict
from core.services.bills import Bills
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import bills as bills_store
from core.store import payments as pstore
from testkit.apistack import ApiStack
from testkit.builders import World


@pytest.fixture
def stack(aws, monkeypatch):
    s = ApiStack(monkeypatch)
    yield s
    s.stop()


def issued_bill(amount: int, issue: bool = True) -> tuple[World, str, str, str]:
    """An account with a bound tenant and an issued bill of `amount` fen (rent for 2026-11)."""
    w = World()
    account = w.account(opening=0)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    bills = Bills()
    bills.apply_charges([Charge(account_id=account, property_id=w.property_id, period="2026-11", source="item",
                                source_id="rent", amount=amount, name="租金")], actor="test")
    bill_id = f"{account}:2026-11"
    if issue:
        bills.transition(w.property_id, bill_id, "confirm", "admin:test")
        bills.transition(w.property_id, bill_id, "issue", "admin:test")
    return w, account, openid, bill_id


def pay_bill(stack: ApiStack, auth: dict, bill_id: str) -> requests.Response:
    return requests.post(f"{stack.base}/api/v1/bills/{bill_id}/pay", headers=auth, timeout=10)


def test_a_bill_paid_online_is_paid_once_however_often_wechat_notifies(stack):
    w, account, openid, bill_id = issued_bill(12_345)
    r = pay_bill(stack, stack.login(openid), bill_id)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["amount"] == 12_345 and body["bill_id"] == bill_id and body["pay_params"]["package"].startswith(
        "prepay_id=")
    no = body["out_trade_no"]
    order = pstore.get_order(no)
    assert (order.purpose, order.bill_id, order.amount) == ("bill", bill_id, 12_345)
    tx = stack.pay.pay(no, duplicates=1)  # the same notification twice
    assert stack.pay.wait_for_deliveries(2)
    assert all(d.succeeded for d in stack.pay.deliveries_for(no))
    bill = bills_store.get_bill(account, "2026-11")
    assert bill.paid == 12_345 and [(p.payment_id, p.amount, p.method) for p in bill.payments] == [
        (no, 12_345, "wechat")]
    assert (pstore.get_order(no).status, pstore.get_order(no).transaction_id) == ("PAID", tx["transaction_id"])
    assert LedgerService().balance(account) == 0  # a bill payment is not a recharge
    # the sweep meeting the paid order changes nothing
    assert Payments().settle({**tx, "out_trade_no": no}, "query") == (True, "duplicate")
    assert bills_store.get_bill(account, "2026-11").paid == 12_345
    # a bill's payment is not refunded as a recharge
    with pytest.raises(Conflict):
        Payments().refund(w.property_id, no, 100, "test", "admin:test")
    # nothing left to pay
    assert pay_bill(stack, stack.login(openid), bill_id).status_code == 409


def test_a_counter_payment_meanwhile_sends_the_excess_to_the_prepaid_balance(stack):
    w, account, openid, bill_id = issued_bill(10_000)
    no = pay_bill(stack, stack.login(openid), bill_id).json()["out_trade_no"]  # an order for 100.00
    Bills().record_payment(bill_id, "CASH0001", 3_000, "cash", "admin:test")  # 30.00 paid at the counter first
    tx = stack.pay.pay(no)
    assert stack.pay.wait_for_deliveries(1)
    bill = bills_store.get_bill(account, "2026-11")
    assert bill.paid == 10_000 and sorted((p.payment_id, p.amount) for p in bill.payments) == [
        ("CASH0001", 3_000), (no, 7_000)]
    entries = LedgerService().entries(account)[0]
    assert [(e.entry_id, e.kind, e.amount) for e in entries][0] == (f"pay:{tx['transaction_id']}", "recharge", 3_000)
    assert LedgerService().balance(account) == 3_000 and pstore.get_order(no).status == "PAID"


def test_only_my_issued_bills_can_be_paid(stack):
    _, _, openid, bill_id = issued_bill(5_000)
    _, _, _, other = issued_bill(5_000)
    _, _, draft_owner, draft = issued_bill(5_000, issue=False)
    auth = stack.login(openid)
    for bad in (other, "no-such:2026-11", "bad", f"{bill_id[:-7]}2026-13"):
        r = pay_bill(stack, auth, bad)
        assert r.status_code == 404 and r.json()["error"]["code"] == "bill_not_found", (bad, r.text)
    r = pay_bill(stack, stack.login(draft_owner), draft)
    assert r.status_code == 409 and r.json()["error"]["code"] == "bill_not_issued"
    assert pstore.orders_of_account(bill_id.rsplit(":", 1)[0]) == []  # nothing was ordered
