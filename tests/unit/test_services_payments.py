"""Payment settlement and refunds on the in-memory store (testkit.fakes): which path a
WeChat Pay transaction takes (credited, duplicate, alert), and the refund debit and its
reversal, without the emulator. End to end over HTTP: tests/integration/test_payments.py
and test_refunds.py."""

from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from core.domain.errors import Conflict
from core.domain.events import Subject
from core.domain.payments import CLOSED, PAID, PENDING, REFUND_FAILED, REFUND_SUCCESS, Order
from core.integrations.wechatpay import WeChatPayError
from testkit.builders import Clock
from testkit.fakes import FakeOrders, InMemoryStore

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
APPID, MCHID = "wx-app", "1900000001"
NO = "R20260301100000abcdef"


class Pay:
    """A WeChat Pay client stand-in: its config, and refunds answered as told."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(appid=APPID, mchid=MCHID)
        self.refund_answer: dict | Exception = {}
        self.refunds: list[tuple] = []

    def refund(self, out_trade_no, out_refund_no, amount, total, reason):
        self.refunds.append((out_trade_no, out_refund_no, amount, total))
        if isinstance(self.refund_answer, Exception):
            raise self.refund_answer
        return self.refund_answer


@pytest.fixture
def db() -> InMemoryStore:
    db = InMemoryStore()
    db.open("a1", 0)
    db.repos.orders.create_order(Order(NO, "p1", "a1", "t1", "o-1", 5000, PENDING, "2026-03-01T02:00:00.000000Z",
                                       "2026-03-01T02:15:00.000000Z"))
    return db


@pytest.fixture
def pay() -> Pay:
    return Pay()


def payments(db, pay):
    return db.build(Clock(T0), pay=pay).payments


def paid(txid="wx-1", total=5000, **kw) -> dict:
    return {"out_trade_no": NO, "transaction_id": txid, "appid": APPID, "mchid": MCHID, "trade_state": "SUCCESS",
            "amount": {"total": total, "currency": "CNY"}, "payer": {"openid": "o-1"},
            "success_time": "2026-03-01T00:30:00+08:00", **kw}


def alerts(db) -> list[str]:
    return [e.event_id for e in db.repos.events.events_of(Subject.payments("p1"))]


def test_a_paid_order_is_credited_once_with_the_order_turning_paid_in_the_same_write(db, pay):
    assert payments(db, pay).settle(paid(), "notify") == (True, "credited")
    order = db.orders[NO]
    assert (order.status, order.transaction_id, order.paid_at) == (PAID, "wx-1", "2026-03-01T00:30:00+08:00")
    assert db.paid_dates[NO] == "2026-03-01"  # the day in Shanghai, not in UTC (2026-02-28)
    entry = db.entries["a1"]["pay:wx-1"]
    assert (entry.kind, entry.amount, entry.balance_after, entry.cause) == ("recharge", 5000, 5000, f"order:{NO}")
    # WeChat repeats the notification, the sweep finds it too: one credit
    assert payments(db, pay).settle(paid(), "notify") == (True, "duplicate")
    assert payments(db, pay).settle(paid(), "query") == (True, "duplicate")
    assert db.states["a1"].balance == 5000 and len(db.entries["a1"]) == 2
    assert alerts(db) == []


def test_money_that_arrives_after_the_order_was_closed_is_still_credited(db, pay):
    assert db.repos.orders.close_order(NO)
    assert db.orders[NO].status == CLOSED
    assert payments(db, pay).settle(paid(), "query") == (True, "credited")
    assert db.orders[NO].status == PAID and db.states["a1"].balance == 5000


@pytest.mark.parametrize(("change", "problem"), [
    ({"amount": {"total": 4999, "currency": "CNY"}}, "amount_mismatch"),
    ({"amount": {"total": 5000, "currency": "USD"}}, "currency_mismatch"),
    ({"appid": "wx-other"}, "appid_mismatch"),
    ({"payer": {"openid": "o-somebody-else"}}, "payer_mismatch"),
    ({"trade_state": "NOTPAY"}, "not_success"),
])
def test_a_transaction_that_does_not_match_its_order_credits_nothing_and_alerts_once(db, pay, change, problem):
    for _ in range(3):  # WeChat retries, the sweep passes again
        assert payments(db, pay).settle(paid(**change), "notify") == (False, problem)
    assert alerts(db) == [f"alert:{problem}:{NO}"]
    assert db.orders[NO].status == PENDING and db.states["a1"].balance == 0


def test_an_unknown_order_is_an_alert_under_unknown(db, pay):
    assert payments(db, pay).settle(paid(out_trade_no="R-nobody-000"), "notify") == (False, "unknown_order")
    assert [e.event_id for e in db.repos.events.events_of(Subject.payments("unknown"))] == [
        "alert:unknown_order:R-nobody-000"]


def test_an_order_paid_twice_at_wechat_is_credited_once_and_flagged_for_a_person(db, pay):
    assert payments(db, pay).settle(paid("wx-1"), "notify") == (True, "credited")
    assert payments(db, pay).settle(paid("wx-2"), "notify") == (True, "duplicate")
    assert db.states["a1"].balance == 5000
    assert alerts(db) == [f"alert:paid_twice:{NO}:wx-2"]


class StaleOrders(FakeOrders):
    """Answers the first read of the order as it was before another delivery paid it."""

    def __init__(self, db, before: Order) -> None:
        super().__init__(db)
        self.before = before

    def get_order(self, out_trade_no):
        before, self.before = self.before, None
        return before or super().get_order(out_trade_no)


def test_two_transactions_racing_for_one_order_credit_once(db, pay):
    pending = db.orders[NO]
    assert payments(db, pay).settle(paid("wx-2"), "notify") == (True, "credited")
    db.repos = replace(db.repos, orders=StaleOrders(db, pending))  # read PENDING, but wx-2 paid it meanwhile
    assert payments(db, pay).settle(paid("wx-1"), "notify") == (False, "order_state")
    assert db.states["a1"].balance == 5000 and "pay:wx-1" not in db.entries["a1"]
    assert alerts(db) == [f"alert:order_state:{NO}"]


def test_a_refund_debits_first_and_succeeds(db, pay):
    payments(db, pay).settle(paid(), "notify")
    pay.refund_answer = {"status": "SUCCESS", "refund_id": "wxr-1", "out_trade_no": NO, "amount": {"refund": 2000}}
    r = payments(db, pay).refund("p1", NO, 2000, "退租", "admin-1")
    assert (r.status, r.refund_id, r.amount) == (REFUND_SUCCESS, "wxr-1", 2000)
    assert db.states["a1"].balance == 3000 and db.orders[NO].refunded == 2000
    assert pay.refunds == [(NO, r.out_refund_no, 2000, 5000)]


def test_a_refund_wechat_refuses_is_given_back_once(db, pay):
    payments(db, pay).settle(paid(), "notify")
    pay.refund_answer = WeChatPayError(403, "NOT_ENOUGH", "基本账户余额不足")
    with pytest.raises(Conflict) as refused:
        payments(db, pay).refund("p1", NO, 2000, "退租", "admin-1")
    assert refused.value.code == "refund_refused"
    (r,) = db.refunds.values()
    assert r.status == REFUND_FAILED and db.orders[NO].refunded == 0
    kinds = sorted((e.kind, e.amount) for e in db.entries["a1"].values())
    assert kinds == [("opening", 0), ("recharge", 5000), ("refund", -2000), ("refund_reversal", 2000)]
    assert db.states["a1"].balance == 5000


def test_a_refund_larger_than_what_is_left_is_refused_before_anything_moves(db, pay):
    payments(db, pay).settle(paid(), "notify")
    with pytest.raises(Conflict) as refused:
        payments(db, pay).refund("p1", NO, 5001, "退租", "admin-1")
    assert refused.value.code == "refund_too_large"
    assert db.refunds == {} and pay.refunds == [] and db.states["a1"].balance == 5000
