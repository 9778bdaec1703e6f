"""Payment notifications: what anyone can send writes nothing, malformed requests are a
4xx with WeChat's FAIL body before any work, and a mismatched payment is one alert, not
one per delivery or sweep. Requests go over HTTP through the local API Gateway to the
notification function; valid ones are signed and encrypted by the WeChat Pay emulator."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import requests

from core.domain.events import Subject
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import events as estore
from core.store import payments as pstore
from functions import wechatpay_notify
from infra.local.paystack import MCHID
from testkit.builders import Clock
from tests.integration.test_payments import Stack, tenant

REJECTED = "payment notification rejected"


@pytest.fixture
def stack(aws, monkeypatch):
    s = Stack(monkeypatch)
    yield s
    s.stop()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == REJECTED:
            self.records.append(record)

    def reasons(self) -> list[str]:
        return [r.__dict__["reason"] for r in self.records]


@pytest.fixture
def rejected_logs():
    handler = _Records()
    logger = logging.getLogger("feikong.core.services.payments")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def pending(stack: Stack, amount: int = 2000):
    """An order the tenant paid at WeChat whose notification has not arrived."""
    w, account, openid = tenant()
    no = stack.recharge(stack.login(openid), account, amount).json()["out_trade_no"]
    stack.pay.lose_notification(no)
    return w, account, no


def footprint(w, account: str, no: str) -> tuple:
    """Everything a notification could write: alerts, the ledger, the order."""
    alerts = len(estore.events_of(Subject.payments(w.property_id))) + len(estore.events_of(Subject.payments("unknown")))
    v = LedgerService().verify(account)
    order = pstore.get_order(no)
    return alerts, v["balance"], v["entries"], order.status, order.transaction_id


def post(stack: Stack, headers: dict, body: bytes) -> requests.Response:
    return requests.post(stack.notify_url, data=body, headers=headers, timeout=10)


def _set(name: str, value: str):
    return lambda h, b: ({**h, name: value}, b)


MALFORMED = {
    "body not UTF-8": lambda h, b: (h, b"\xff\xfe" + b),
    "400-digit timestamp": _set("Wechatpay-Timestamp", "9" * 400),
    "timestamp not a number": _set("Wechatpay-Timestamp", "1.7e9"),
    "no headers": lambda h, b: ({"Content-Type": "application/json"}, b),
    "signature not base64": _set("Wechatpay-Signature", "%%% not base64 %%%"),
    "5,000-character nonce": _set("Wechatpay-Nonce", "N" * 5000),
    "unknown signature type": _set("Wechatpay-Signature-Type", "MD5"),
    "empty body": lambda h, b: (h, b""),
    "body not JSON": lambda h, b: (h, b"code=SUCCESS"),
    "JSON nested 1,200 deep": lambda h, b: (h, b"[" * 1200 + b"]" * 1200),
    "JSON without a resource": lambda h, b: (h, b'{"event_type": "TRANSACTION.SUCCESS"}'),
    "body over 64 KB": lambda h, b: (h, b[:-1] + b', "pad": "' + b"x" * 70_000 + b'"}'),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_requests_are_a_4xx_fail_and_write_nothing(stack, case):
    w, account, no = pending(stack)
    genuine, body = stack.pay.build_notification(stack.pay.pay(no))
    headers, raw = MALFORMED[case](genuine, body.encode())
    before = footprint(w, account, no)
    r = post(stack, headers, raw)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "FAIL" and r.json()["message"]
    assert footprint(w, account, no) == before
    assert post(stack, genuine, body.encode()).status_code == 200
    assert LedgerService().balance(account) == 2000  # the genuine one, untouched, still credits


@pytest.mark.parametrize("tamper,status", [("signature", 401), ("serial", 401), ("stale", 400), ("ciphertext", 401)])
def test_unauthenticated_notifications_write_nothing(stack, tamper, status):
    w, account, no = pending(stack)
    headers, body = stack.pay.build_notification(stack.pay.pay(no), tamper=tamper)
    before = footprint(w, account, no)
    for _ in range(3):
        r = post(stack, headers, body.encode())
        assert (r.status_code, r.json()["code"]) == (status, "FAIL")
    assert footprint(w, account, no) == before  # no alert row for a request anyone could forge


def test_rejections_are_logged_at_most_once_per_reason_per_minute(stack, monkeypatch, rejected_logs):
    clock = Clock(datetime.now(UTC))
    monkeypatch.setattr(wechatpay_notify, "payments", Payments(clock=clock))
    w, account, no = pending(stack)
    tx = stack.pay.pay(no)
    forged = stack.pay.build_notification(tx, tamper="signature")
    stale = stack.pay.build_notification(tx, tamper="stale")
    before = footprint(w, account, no)
    for _ in range(20):
        post(stack, forged[0], forged[1].encode())
        post(stack, stale[0], stale[1].encode())
        post(stack, {}, b"{}")
    assert sorted(rejected_logs.reasons()) == ["bad_signature", "headers_malformed", "stale_timestamp"]
    clock.advance(seconds=61)
    post(stack, forged[0], forged[1].encode())
    assert rejected_logs.reasons().count("bad_signature") == 2
    assert rejected_logs.records[-1].__dict__["suppressed"] == 19  # the 19 left out are counted
    assert footprint(w, account, no) == before


def refund_resource(**fields) -> dict:
    return {"mchid": MCHID, "transaction_id": "4200000000202611280000000001", "out_trade_no": "R20261128000000abc",
            "refund_id": "50000000382019052709732678859", "refund_status": "SUCCESS",
            "amount": {"total": 2000, "refund": 2000, "payer_total": 2000, "payer_refund": 2000}, **fields}


@pytest.mark.parametrize("event,resource", [
    ("REFUND.SUCCESS", refund_resource()),  # no out_refund_no
    ("REFUND.SUCCESS", refund_resource(out_refund_no=12345678)),
    ("REFUND.ABNORMAL", refund_resource(out_refund_no="F2026\n112800")),
    ("REFUND.SUCCESS", refund_resource(out_refund_no="F20261128000000abc", amount=[2000])),
    ("TRANSACTION.SUCCESS", {"mchid": MCHID, "trade_state": "SUCCESS"}),  # no out_trade_no
    ("TRANSACTION.SUCCESS", {"out_trade_no": "R2026112800000000", "amount": "2000"}),
    ("TRANSACTION.SUCCESS", {"out_trade_no": "R2026112800000000", "success_time": "yesterday"}),
    ("MCHTRANSFER.BILL.FINISHED", {"out_bill_no": "B1"}),
])
def test_signed_but_unusable_events_are_a_400_before_any_work(stack, event, resource):
    w, account, no = pending(stack)
    before = footprint(w, account, no)
    headers, body = stack.pay.build_notification(resource, event)  # validly signed and encrypted
    r = post(stack, headers, body.encode())
    assert (r.status_code, r.json()["code"]) == (400, "FAIL"), r.text
    assert footprint(w, account, no) == before


def alerts_for(w, no: str, reason: str) -> list[dict]:
    return [e for e in estore.events_of(Subject.payments(w.property_id))
            if e.data["ref"] == no and e.data["reason"] == reason]


def test_a_mismatched_amount_is_one_alert_however_often_the_sweep_meets_it(stack):
    w, account, no = pending(stack, 2500)
    tx = stack.pay.pay(no, amount=1)  # WeChat says 0.01 yuan was paid for a 25.00 order
    clock = Clock(datetime.now(UTC) + timedelta(minutes=5))
    for _ in range(3):
        Payments(clock=clock).sweep()
        clock.advance(minutes=1)
    headers, body = stack.pay.build_notification(tx)
    for _ in range(2):  # and the notification arrives late, twice
        assert post(stack, headers, body.encode()).status_code == 400
    assert len(alerts_for(w, no, "amount_mismatch")) == 1
    assert LedgerService().balance(account) == 0 and pstore.get_order(no).status == "PENDING"


def test_a_payment_in_another_currency_is_one_alert_and_no_credit(stack):
    w, account, no = pending(stack, 3000)
    tx = stack.pay.pay(no)
    usd = {**tx, "amount": {**tx["amount"], "currency": "USD", "payer_currency": "USD"}}
    for _ in range(3):
        headers, body = stack.pay.build_notification(usd)
        r = post(stack, headers, body.encode())
        assert (r.status_code, r.json()["code"]) == (400, "FAIL")
    alerts = alerts_for(w, no, "currency_mismatch")
    assert len(alerts) == 1 and alerts[0].data["currency"] == "USD"
    assert LedgerService().balance(account) == 0 and pstore.get_order(no).status == "PENDING"
    headers, body = stack.pay.build_notification(tx)  # the same payment in CNY is credited
    assert post(stack, headers, body.encode()).status_code == 200
    assert LedgerService().balance(account) == 3000
