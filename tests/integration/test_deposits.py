"""Deposits (押金, docs/billing.md) through the real console (forms and JSON API, logged in,
CSRF as a browser sends it) and the tenant API, on the emulated AWS stack: taken and refunded
at the counter once per receipt, never below zero, applied into the balance at close in one
transaction with its ledger credit, audited; the console's payment-mode switch (后付费).
Amounts are hand-picked fen."""

from __future__ import annotations

import uuid

import pytest
import requests

from core.services.deposits import Deposits
from core.services.ledger import LedgerService
from core.store import deposits as dstore
from testkit.apistack import ApiStack
from tests.integration.test_console_actions import Room, post_form, post_json


@pytest.fixture
def room(aws) -> Room:
    return Room(opening=-20_000)  # owes 200.00


def test_take_refund_and_apply_at_close(room):
    owner = room.client()
    r = post_form(owner, room, "deposit-take", {"account_id": room.account, "amount": "1000", "method": "cash",
                                                "receipt_no": "DEP00001"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "押金余额 1000.00 元" in r.get_data(as_text=True)
    # the same receipt again: nothing more; with another amount: refused
    r = post_json(owner, room, f"/accounts/{room.account}/deposit/take",
                  {"amount": 100_000, "method": "cash", "receipt_no": "DEP00001"})
    assert r.status_code == 201 and r.get_json()["movement"]["duplicate"] and r.get_json()["held"] == 100_000
    r = post_json(owner, room, f"/accounts/{room.account}/deposit/take",
                  {"amount": 90_000, "method": "cash", "receipt_no": "DEP00001"})
    assert r.status_code == 409
    # refunds: 300.00 by bank transfer; then 800.00 is more than the 700.00 held
    r = post_json(owner, room, f"/accounts/{room.account}/deposit/refund",
                  {"amount": 30_000, "method": "bank", "receipt_no": "DEP00002"})
    assert r.status_code == 201 and r.get_json()["held"] == 70_000
    r = post_form(owner, room, "deposit-refund", {"account_id": room.account, "amount": "800", "method": "cash",
                                                  "receipt_no": "DEP00003"})
    assert r.status_code == 422 and "不足" in r.get_data(as_text=True)
    assert dstore.held(room.account) == 70_000 and dstore.get_movement(room.account, "refund:DEP00003") is None
    # a bad method or amount changes nothing
    for body in ({"amount": 100, "method": "wechat", "receipt_no": "DEP00004"},
                 {"amount": -100, "method": "cash", "receipt_no": "DEP00004"}):
        assert post_json(owner, room, f"/accounts/{room.account}/deposit/take", body).status_code == 400
    assert dstore.held(room.account) == 70_000

    # at close: the 700.00 held goes into the balance (-200.00 -> 500.00), once
    deposits = Deposits()
    m, entry = deposits.apply_at_close(room.pid, room.account, "move-out")
    assert (m.amount, entry.entry_id, entry.kind, entry.amount, entry.balance_after) == (
        -70_000, "deposit:close", "adjust_credit", 70_000, 50_000)
    again, entry2 = deposits.apply_at_close(room.pid, room.account, "move-out")
    assert again.duplicate and entry2.duplicate and room.balance() == 50_000 and dstore.held(room.account) == 0
    assert LedgerService().verify(room.account)["ok"]
    held, movements = dstore.deposit(room.account)
    assert held == sum(x.amount for x in movements) == 0
    # audited with the admin, the deposit before and after
    [take] = room.log("deposit_take")
    assert take.before == {"held": 0} and take.after["held"] == 100_000 and take.after["ref"] == "DEP00001"
    [refund] = room.log("deposit_refund")
    assert refund.before == {"held": 100_000} and refund.after["held"] == 70_000


def test_a_viewer_cannot_move_money_and_another_property_sees_nothing(room):
    viewer = room.client(role="viewer")
    r = post_json(viewer, room, f"/accounts/{room.account}/deposit/take",
                  {"amount": 100, "method": "cash", "receipt_no": "DEP00009"})
    assert r.status_code == 403 and dstore.held(room.account) == 0
    other = Room()
    outsider = other.client()
    r = outsider.get(f"/admin/api/properties/{other.pid}/accounts/{room.account}/deposit")
    assert r.status_code == 404


def test_payment_mode_from_the_console(room):
    owner = room.client()
    r = post_form(owner, room, "payment-mode", {"account_id": room.account, "payment_mode": "postpaid"})
    assert r.status_code == 200 and "data-postpaid" in r.get_data(as_text=True)
    assert LedgerService().state(room.account, fresh=True).control["payment_mode"] == "postpaid"
    [rec] = room.log("account_settings")
    assert rec.before["payment_mode"] == "prepaid" and rec.after["payment_mode"] == "postpaid"
    r = post_json(owner, room, f"/accounts/{room.account}/settings", {"payment_mode": "later"}, method="patch")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "payment_mode_invalid"
    r = post_json(owner, room, f"/accounts/{room.account}/settings", {"payment_mode": "prepaid"}, method="patch")
    assert r.status_code == 200 and r.get_json()["payment_mode"] == "prepaid"


def test_the_tenant_reads_the_deposit_of_their_own_account_only(aws, monkeypatch):
    stack = ApiStack(monkeypatch)
    try:
        mine, theirs = Room(), Room()
        openid = f"o{uuid.uuid4().hex[:27]}"
        mine.w.d.bind_openid(mine.w.tenant_id, openid)
        owner = mine.client()
        post_json(owner, mine, f"/accounts/{mine.account}/deposit/take",
                  {"amount": 50_000, "method": "cash", "receipt_no": "DEP10001"})
        auth = stack.login(openid)
        r = requests.get(f"{stack.base}/api/v1/accounts/{mine.account}/deposit", headers=auth, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["held_fen"], body["held"]) == (50_000, "500.00")
        assert [(m["kind"], m["amount_fen"]) for m in body["movements"]] == [("take", 50_000)]
        r = requests.get(f"{stack.base}/api/v1/accounts/{theirs.account}/deposit", headers=auth, timeout=10)
        assert r.status_code == 404
    finally:
        stack.stop()
