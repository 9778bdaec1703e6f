"""Refunds that go wrong at WeChat Pay: a create that times out, a create WeChat never
received, a refusal, 5xx answers, and a refund notification racing the sweep. Everything
runs over HTTP against the WeChat Pay emulator (real request and response signatures,
encrypted notifications through the local API Gateway) and the emulated AWS stack; the
sweep's "few minutes" pass on an injected clock.

Expected balances are worked by hand from the amounts in each test."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from core.domain.errors import Conflict
from core.domain.events import Subject
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import events as estore
from core.store import payments as pstore
from infra.local.paystack import MCHID
from testkit.builders import Clock
from tests.integration.test_payments import Stack, paid_order

READ_TIMEOUT = "1"  # seconds our adapter waits for WeChat in these tests (10 in production)
LATE = 2.5  # seconds the emulator takes to answer a "timed out" create


@pytest.fixture
def stack(aws, monkeypatch):
    monkeypatch.setenv("FEIKONG_WECHATPAY_READ_TIMEOUT", READ_TIMEOUT)
    s = Stack(monkeypatch)  # builds the adapter afresh, with the short timeout
    yield s
    s.stop()


def later(minutes: float) -> Clock:
    return Clock(datetime.now(UTC) + timedelta(minutes=minutes))


def ledger_of(account: str) -> tuple[int, list]:
    """(balance, entries) read independently of each other."""
    entries = LedgerService().entries(account, limit=200)[0]
    return LedgerService().balance(account), entries


def reversals(entries: list, out_refund_no: str) -> list:
    return [e for e in entries if e.entry_id == f"refund-reversal:{out_refund_no}"]


def test_timed_out_create_that_wechat_received_is_settled_by_the_sweep(stack):
    w, account, no = paid_order(stack, 5000)
    stack.pay.fail_refund_create("timeout", times=2, delay=LATE)  # the first try and its retry
    r = Payments().refund(w.property_id, no, 2000, "退租", "admin-1")
    assert r.status == "PROCESSING" and LedgerService().balance(account) == 3000  # 5000 - 2000
    assert stack.pay.refund_create_log == [r.out_refund_no, r.out_refund_no]  # the retry reused the number
    assert len(stack.pay.refunds_for(no)) == 1  # ... so WeChat holds one refund, not two

    Payments(clock=later(1)).sweep()  # too early: not asked yet
    assert not [e for e in stack.pay.request_log if e["method"] == "GET" and r.out_refund_no in e["path"]]
    counts = Payments(clock=later(6)).sweep()  # asked: WeChat is still processing it
    assert counts["refunds_queried"] >= 1 and pstore.get_refund(r.out_refund_no).status == "PROCESSING"

    stack.pay.complete_refund(r.out_refund_no, "SUCCESS", deliver=False)  # its notification never comes
    counts = Payments(clock=later(7)).sweep()
    assert counts["refunds_settled"] >= 1
    done = pstore.get_refund(r.out_refund_no)
    assert done.status == "SUCCESS" and done.refund_id == stack.pay.refunds_for(no)[0]["refund_id"]
    balance, entries = ledger_of(account)
    assert balance == 3000 and sum(e.amount for e in entries) == 3000
    assert not reversals(entries, r.out_refund_no) and pstore.get_order(no).refunded == 2000
    # settled: the sparse index no longer lists it, later sweeps leave it alone
    assert r.out_refund_no not in pstore.processing_refunds(datetime.now(UTC).isoformat())


def test_create_wechat_never_received_is_reversed_once_and_can_be_requested_again(stack):
    w, account, no = paid_order(stack, 5000)
    stack.pay.fail_refund_create("lost", times=2, delay=LATE)
    p = Payments()
    lost = p.refund(w.property_id, no, 5000, "退租", "admin-1")
    assert lost.status == "PROCESSING" and LedgerService().balance(account) == 0
    assert stack.pay.refunds_for(no) == []
    with pytest.raises(Conflict) as e:  # in flight: nothing left to refund yet
        p.refund(w.property_id, no, 5000, "退租", "admin-1")
    assert e.value.code == "refund_too_large"

    clock = later(6)
    Payments(clock=clock).sweep()
    assert pstore.get_refund(lost.out_refund_no).status == "FAILED"
    balance, entries = ledger_of(account)
    assert balance == 5000 and len(reversals(entries, lost.out_refund_no)) == 1
    assert reversals(entries, lost.out_refund_no)[0].amount == 5000
    assert pstore.get_order(no).refunded == 0
    clock.advance(minutes=1)
    Payments(clock=clock).sweep()  # nothing more to do
    balance, again = ledger_of(account)
    assert balance == 5000 and len(again) == len(entries)

    # should WeChat ever report it paid after all, a person is told; nothing is posted
    late = {"mchid": MCHID, "out_trade_no": no, "out_refund_no": lost.out_refund_no, "refund_id": "50" + "1" * 27,
            "refund_status": "SUCCESS", "amount": {"total": 5000, "refund": 5000, "payer_total": 5000,
                                                   "payer_refund": 5000}}
    headers, body = stack.pay.build_notification(late, "REFUND.SUCCESS")
    assert requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=10).status_code == 200
    alerts = estore.events_of(Subject.payments(w.property_id))
    assert [a.data["ref"] for a in alerts if a.data["reason"] == "refund_state_conflict"] == [lost.out_refund_no]
    assert LedgerService().balance(account) == 5000 and pstore.get_refund(lost.out_refund_no).status == "FAILED"

    second = p.refund(w.property_id, no, 5000, "退租", "admin-1")  # the amount is refundable again
    assert second.status == "PROCESSING" and second.out_refund_no != lost.out_refund_no and second.refund_id
    stack.pay.complete_refund(second.out_refund_no, "SUCCESS")
    assert stack.pay.wait_for_deliveries(10)
    assert pstore.get_refund(second.out_refund_no).status == "SUCCESS"
    balance, entries = ledger_of(account)  # 5000 - 5000 + 5000 - 5000
    assert balance == 0 and sum(e.amount for e in entries) == 0 and LedgerService().verify(account)["ok"]
    assert [x["status"] for x in stack.pay.refunds_for(no)] == ["SUCCESS"]


def test_refusal_is_reversed_at_once(stack):
    w, account, no = paid_order(stack, 5000)
    stack.pay.fail_refund_create("reject", status=403, code="NOT_ENOUGH", message="基本账户余额不足，请充值后重新发起")
    p = Payments()
    with pytest.raises(Conflict) as e:
        p.refund(w.property_id, no, 1200, "退租", "admin-1")
    assert e.value.code == "refund_refused" and "余额不足" in e.value.message
    assert len(stack.pay.refund_create_log) == 1  # a refusal is not retried
    [refused] = pstore.refunds_of(no)
    assert refused.status == "FAILED" and pstore.get_order(no).refunded == 0
    balance, entries = ledger_of(account)
    assert balance == 5000 and len(reversals(entries, refused.out_refund_no)) == 1
    ok = p.refund(w.property_id, no, 5000, "退租", "admin-1")
    assert ok.status == "PROCESSING" and LedgerService().balance(account) == 0
    stack.pay.complete_refund(ok.out_refund_no, "SUCCESS")
    assert stack.pay.wait_for_deliveries(10) and pstore.get_refund(ok.out_refund_no).status == "SUCCESS"


def test_a_5xx_is_retried_with_the_same_number(stack):
    w, account, no = paid_order(stack, 5000)
    stack.pay.fail_refund_create("5xx")
    r = Payments().refund(w.property_id, no, 700, "退租", "admin-1")
    assert r.status == "PROCESSING" and r.refund_id  # the retry got through
    assert stack.pay.refund_create_log == [r.out_refund_no, r.out_refund_no]
    assert [x["out_refund_no"] for x in stack.pay.refunds_for(no)] == [r.out_refund_no]
    assert LedgerService().balance(account) == 4300
    stack.pay.complete_refund(r.out_refund_no, "SUCCESS")
    assert stack.pay.wait_for_deliveries(10) and pstore.get_refund(r.out_refund_no).status == "SUCCESS"


def test_refund_notification_with_another_amount_changes_nothing(stack):
    w, account, no = paid_order(stack, 5000)
    r = Payments().refund(w.property_id, no, 1500, "退租", "admin-1")
    info = stack.pay.refund_info(r.out_refund_no)
    forged = {**info, "mchid": MCHID, "refund_status": "ABNORMAL", "amount": {**info["amount"], "refund": 150}}
    headers, body = stack.pay.build_notification(forged, "REFUND.ABNORMAL")  # validly signed, wrong amount
    assert requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=10).status_code == 400
    assert pstore.get_refund(r.out_refund_no).status == "PROCESSING" and LedgerService().balance(account) == 3500
    alerts = estore.events_of(Subject.payments(w.property_id))
    assert [a.data["ref"] for a in alerts if a.data["reason"] == "refund_mismatch"] == [r.out_refund_no]
    stack.pay.complete_refund(r.out_refund_no, "SUCCESS")
    assert stack.pay.wait_for_deliveries(10) and pstore.get_refund(r.out_refund_no).status == "SUCCESS"


def test_a_refusal_after_an_unanswered_try_is_not_trusted(stack):
    """After a try without an answer, a 4xx on the retry does not prove WeChat has no
    refund: the sweep asks, and only its 404 reverses."""
    w, account, no = paid_order(stack, 5000)
    stack.pay.fail_refund_create("5xx")
    stack.pay.fail_refund_create("reject", status=429, code="FREQUENCY_LIMITED", message="频率超限")
    r = Payments().refund(w.property_id, no, 900, "退租", "admin-1")
    assert r.status == "PROCESSING" and LedgerService().balance(account) == 4100
    Payments(clock=later(6)).sweep()
    assert pstore.get_refund(r.out_refund_no).status == "FAILED"
    balance, entries = ledger_of(account)
    assert balance == 5000 and len(reversals(entries, r.out_refund_no)) == 1


def race(stack: Stack, clock: Clock, headers: dict, body: str, head_start: float) -> tuple[list[int], list]:
    """Release three sweeps and three copies of a notification together; the
    notifications wait `head_start` seconds. Returns (HTTP answers, sweep errors)."""
    go = threading.Barrier(6)
    answers: list[int] = []
    errors: list[Exception] = []

    def sweep() -> None:
        p = Payments(clock=clock)
        try:
            go.wait()
            p.sweep()
        except Exception as e:  # reported by the caller
            errors.append(e)

    def notify() -> None:
        go.wait()
        time.sleep(head_start)
        answers.append(requests.post(stack.notify_url, data=body.encode(), headers=headers, timeout=20).status_code)

    threads = [threading.Thread(target=f) for f in (sweep, notify) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers, errors


@pytest.mark.parametrize("outcome", ["SUCCESS", "ABNORMAL", "CLOSED"])
def test_notification_racing_the_sweep_lands_on_one_outcome(stack, outcome):
    """WeChat has settled the refund; three sweeps (each its own Payments, like separate
    warm Lambdas) and three copies of the signed notification (through the local API
    Gateway) are released together, the sweeps given a growing head start. Three rounds,
    one refund of 1000 each."""
    w, account, no = paid_order(stack, 5000)
    stale = later(6)  # every refund below is past the sweep's few minutes
    for head_start in (0.0, 0.03, 0.08):  # the sweeps' lead: covers both orders of arrival
        r = Payments().refund(w.property_id, no, 1000, "退租", "admin-1")
        assert r.status == "PROCESSING"
        info = stack.pay.complete_refund(r.out_refund_no, outcome, deliver=False)
        headers, body = stack.pay.build_notification({**info, "mchid": MCHID, "refund_status": outcome},
                                                     f"REFUND.{outcome}")
        answers, errors = race(stack, stale, headers, body, head_start)
        assert not errors, errors
        assert answers == [200, 200, 200]  # every copy acknowledged, whoever won
        assert pstore.get_refund(r.out_refund_no).status == ("SUCCESS" if outcome == "SUCCESS" else "FAILED")

    # worked by hand: three refunds of 1000 each from a paid 5000
    balance, refunded, reversed_ = (2000, 3000, 0) if outcome == "SUCCESS" else (5000, 0, 3)
    got, entries = ledger_of(account)
    assert got == balance and sum(e.amount for e in entries) == balance
    assert len([e for e in entries if e.entry_id.startswith("refund-reversal:")]) == reversed_
    assert len([e for e in entries if e.entry_id.startswith("refund:")]) == 3
    assert pstore.get_order(no).refunded == refunded
    assert LedgerService().verify(account)["ok"]
    alerts = estore.events_of(Subject.payments(w.property_id))
    assert not [a for a in alerts if a.data["reason"] in ("refund_state_conflict", "refund_mismatch")]
