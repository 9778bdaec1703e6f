"""DynamoDB failing as AWS does when it is busy: the emulator's fault switch
(infra/local/moto_app.py) makes it answer TransactionConflict, throttling, 500s and lost answers
at chosen rates, and the store's retry policy (core/store/tx.py) must carry the ledger,
the uplink consumer, the WeChat Pay notification and the control tick through them with
every posting applied once, every paid order credited once and every reading billed once.

Expected values are worked by hand from the inputs (amounts, meter totals, a flat
1 yuan/kWh plan), never read back from the code under test.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from botocore.exceptions import ClientError
from pynamodb.exceptions import TransactWriteError

from core.domain.events import Event, Subject
from core.domain.ledger import PostingRequest
from core.domain.rating import MeterReading
from core.integrations.queues import uplink_url
from core.protocol import messages
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import commands as cstore
from core.store import events as estore
from core.store import payments as pstore
from core.store import tx
from functions import control_tick, uplink_consumer, wechatpay_notify
from infra.fakes.sitesim import LambdaContext, sqs_record
from infra.local import stack
from infra.local.paystack import PayStack
from testkit.builders import Clock, Metered

WRITES = ("TransactWriteItems", "PutItem", "UpdateItem")
# 20% TransactionConflict, 10% throttling, 5% 500 and 5% lost answers on every write; 5% 500
# on reads too (botocore's standard retry mode answers those; see docs/ARCHITECTURE.md).
STORM = {
    "conflict": {op: 0.20 for op in WRITES},
    "throttle": {op: 0.10 for op in WRITES},
    "lost": {op: 0.05 for op in WRITES},
    "error": {"*": 0.05},
}


@contextmanager
def faults(spec: dict):
    """Turn the emulator's faults on for the block; yields a dict that holds, afterwards,
    what the emulator injected (by operation and kind)."""
    seen: dict = {}
    stack.faults(spec)
    try:
        yield seen
    finally:
        seen.update(stack.faults()["injected"])
        stack.faults("off")


def requests_of(op: str) -> int:
    return stack.dynamodb_request_counts().get(op, 0)


def test_the_switch_answers_as_aws_does_and_the_policy_retries_only_what_is_not_an_answer(world):
    acct = world.account(opening=1000)
    ledger = LedgerService()
    post = dict(account_id=acct, kind="recharge", amount=100, cause="test", actor="test")
    # every transaction conflicts: bounded attempts, then the error; nothing written
    before = requests_of("TransactWriteItems")
    with faults({"seed": 1, "conflict": {"TransactWriteItems": 1.0}}) as seen, pytest.raises(TransactWriteError) as e:
        ledger.post(entry_id="f:1", **post)
    assert requests_of("TransactWriteItems") - before == tx.MAX_ATTEMPTS
    assert seen["TransactWriteItems"] == {"conflict": tx.MAX_ATTEMPTS}
    reasons = {r.code for r in e.value.cancellation_reasons if r is not None}
    assert reasons == {"TransactionConflict"}
    assert ledger.verify(acct)["ok"] and ledger.balance(acct) == 1000
    # half of them conflict, and the answer of one that went in is lost: applied once
    # (seed 4: the first attempt conflicts, the second goes in and its answer is lost, the
    # later ones conflict or find the entry: its own)
    with faults({"seed": 4, "conflict": {"TransactWriteItems": 0.5}, "lost": {"TransactWriteItems": 0.3}}) as seen:
        first = ledger.post(entry_id="f:1", **post)
    assert seen["TransactWriteItems"]["conflict"] >= 1 and seen["TransactWriteItems"]["lost"] >= 1, seen
    assert not first.duplicate and first.balance_after == 1100  # its own write, not someone else's
    # a failed condition is an answer: one request, no retry (the duplicate comes back)
    before = requests_of("TransactWriteItems")
    again = ledger.post(entry_id="f:1", **post)
    assert again.duplicate and requests_of("TransactWriteItems") - before == 1
    # single-item writes: TransactionConflictException and throttling are retried
    event = Event(Subject.account(acct), "f:event", "test", world.property_id, "2026-01-01T00:00:00Z",
                  message="测试")
    with faults({"seed": 3, "conflict": {"PutItem": 0.5}, "throttle": {"PutItem": 0.3}}):
        assert estore.put_event(event) is True
    assert estore.put_event(event) is False  # it exists: an answer
    result = ledger.verify(acct)
    assert result["ok"] and (result["balance"], result["entries"]) == (1100, 2)


def test_ledger_postings_under_conflicts_throttling_and_lost_answers_land_exactly_once(world):
    accounts = [world.account(opening=1_000_000) for _ in range(3)]
    rng = random.Random(7)
    unique = [
        PostingRequest.build(account_id=rng.choice(accounts), entry_id=f"storm:{i}",
                             kind=rng.choice(["recharge", "energy", "fee"]), amount=rng.randint(1, 5000),
                             cause=f"storm:{i}", actor="test")
        for i in range(240)
    ]
    stream = unique + rng.sample(unique, 80)  # a third of them delivered twice
    rng.shuffle(stream)
    threads, redelivered = 8, []

    def worker(k: int) -> None:
        ledger = LedgerService()  # one per thread, as separate Lambda instances
        for req in stream[k::threads]:
            for _ in range(10):  # the caller's redelivery, if the store ran out of attempts
                try:
                    ledger.post_request(req)
                    break
                except TransactWriteError:
                    redelivered.append(req.entry_id)
            else:
                raise AssertionError(f"{req.entry_id} never got through")

    retries_before = sum(tx.retries.values())
    with faults({"seed": 8, **STORM}) as seen:
        pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    twi = seen["TransactWriteItems"]
    assert twi["conflict"] > 20 and twi["throttle"] > 10 and twi["lost"] > 3 and twi["error"] > 3, seen
    assert sum(tx.retries.values()) - retries_before >= sum(twi.values()) - len(redelivered)
    ledger = LedgerService()
    for a in accounts:
        mine = [r for r in unique if r.account_id == a]
        result = ledger.verify(a)
        assert result["ok"], result
        assert result["balance"] == 1_000_000 + sum(r.signed_amount for r in mine)
        ids = [e.entry_id for e in ledger.store.all_entries(a)]
        assert sorted(i for i in ids if i.startswith("storm:")) == sorted(r.entry_id for r in mine)
        assert len(ids) == len(mine) + 1  # and the opening entry


# -- readings, the tick and payments at once ---------------------------------------------

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai, a Tuesday
STEP = timedelta(minutes=5)


class Uplink:
    """The SQS event source mapping, played by hand: signed messages to the consumer Lambda
    in batches; records it reports failed are delivered again."""

    def __init__(self, site) -> None:
        self.site, self.failures = site, 0

    def record(self, msg: dict) -> dict:
        return sqs_record({"MessageId": uuid.uuid4().hex, "ReceiptHandle": uuid.uuid4().hex,
                           "Body": json.dumps(msg, ensure_ascii=False)}, uplink_url())

    def deliver(self, msgs: list[dict]) -> None:
        records = [self.record(m) for m in msgs]
        for _ in range(20):
            result = uplink_consumer.handler({"Records": records}, LambdaContext())
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            self.failures += len(failed)
            records = [r for r in records if r["messageId"] in failed]
            if not records:
                return
        raise AssertionError(f"{len(records)} uplink records never got through")


def test_uplink_tick_and_payment_notifications_under_faults_apply_everything_once(aws, monkeypatch):
    clock = Clock(T0)
    ingest = Ingest(clock=clock)
    monkeypatch.setattr(uplink_consumer, "ingest", ingest)
    monkeypatch.setattr(control_tick, "make_control", lambda: Control(ingest.ledger, clock))
    stack = PayStack().start()
    stack.apply_env()
    monkeypatch.setattr(wechatpay_notify, "payments", Payments())
    try:
        _storm(clock, stack)
    finally:
        stack.stop()


def _storm(clock: Clock, stack: PayStack) -> None:
    # supply is protected 22:00-23:30: a cut that falls due inside waits for the tick
    w = Metered(protection={"night": ["22:00", "23:30"], "weekends": False, "holidays": False})
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    # the first account goes below zero with reading 5 (23:25): inside the window
    cut, paid_a, paid_b = w.account(opening=400), w.account(opening=5000), w.account(opening=5000)
    meters = {cut: w.meter(cut), paid_a: w.meter(paid_a), paid_b: w.meter(paid_b)}
    per_step = {cut: Decimal("1.25"), paid_a: Decimal("0.80"), paid_b: Decimal("2.00")}  # kWh per reading
    site = w.sim()
    uplink = Uplink(site)
    readings = 14
    msgs = []
    for seq in range(1, readings + 1):
        at = T0 + seq * STEP
        batch = [MeterReading(meters[a], seq, at, Decimal("100.00") + per_step[a] * (seq - 1)) for a in meters]
        msgs.append(site.message("readings", at, readings=[messages.reading_to_wire(r) for r in batch]))
    payments = Payments()
    orders = {paid_a: [1000, 1000, 1000], paid_b: [2500, 2500]}
    done = threading.Event()
    errors: list[BaseException] = []
    ticks = {"runs": 0, "failed": 0}
    ticked = threading.Event()  # set after each tick attempt

    def readings_feed() -> None:
        try:
            for i, msg in enumerate(msgs):
                clock.now = T0 + (i + 1) * STEP + timedelta(minutes=1)  # time moves with the meters
                uplink.deliver([msg])
                uplink.deliver([msg, msgs[max(0, i - 1)]])  # at-least-once: copies come again
                if i % 3 == 2:  # let a tick in between (a tick on a loaded emulator can outlast the feed)
                    ticked.clear()
                    ticked.wait(30)
        except BaseException as e:  # noqa: BLE001  (reported by the test)
            errors.append(e)
        finally:
            done.set()

    def tick_loop() -> None:
        while not done.is_set():
            try:
                control_tick.handler({}, LambdaContext())
                ticks["runs"] += 1
            except (TransactWriteError, ClientError):
                ticks["failed"] += 1  # the schedule runs it again a minute later
            ticked.set()
            done.wait(0.05)

    paid: list[str] = []

    def payer() -> None:
        try:
            for account, amounts in orders.items():
                for amount in amounts:
                    no = payments.create_recharge(openid, account, amount)["out_trade_no"]
                    stack.pay.pay(no, duplicates=1)  # and WeChat delivers it twice
                    paid.append(no)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    with faults({"seed": 9, **STORM}) as seen:
        pool = [threading.Thread(target=f) for f in (readings_feed, tick_loop, payer)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(120)
        assert stack.pay.wait_for_deliveries(30)
        clock.now = T0 + (readings + 2) * STEP
        control_tick.handler({}, LambdaContext())  # the net under the fast paths, one more time
    assert not errors, errors
    # the tick ran alongside the money paths again and again (a tick that met an injected
    # fault counts: the schedule runs it again), and some runs went through whole
    assert ticks["runs"] >= 1 and ticks["runs"] + ticks["failed"] > 3, ticks
    assert seen["TransactWriteItems"]["conflict"] > 5, seen
    assert sum(seen.get(op, {}).get("conflict", 0) for op in ("PutItem", "UpdateItem")) > 0, seen

    ledger = LedgerService()
    # every reading after the first is billed exactly once: 13 x per-step kWh at 1 yuan/kWh
    expected = {
        cut: 400 - 13 * 125,  # -1225
        paid_a: 5000 - 13 * 80 + 3000,  # 6960
        paid_b: 5000 - 13 * 200 + 5000,  # 7400
    }
    for account, meter in meters.items():
        result = ledger.verify(account)
        assert result["ok"], result
        assert result["balance"] == expected[account], (account, result)
        ids = [e.entry_id for e in ledger.store.all_entries(account)]
        assert sorted(i for i in ids if i.startswith("use:")) == sorted(f"use:{meter}:{s}" for s in range(2, 15))
    # every paid order is PAID and credited once, under its WeChat transaction id
    assert len(paid) == 5
    for no in paid:
        order = pstore.get_order(no)
        assert order.status == "PAID", no
        entries = [e for e in ledger.store.all_entries(order.account_id) if e.entry_id.startswith("pay:")]
        assert [e.entry_id for e in entries].count(f"pay:{order.transaction_id}") == 1
        assert any(d.succeeded for d in stack.pay.deliveries_for(no))
    for account, amounts in orders.items():
        credits = [e.amount for e in ledger.store.all_entries(account) if e.entry_id.startswith("pay:")]
        assert sorted(credits) == sorted(amounts)
    # the protected cut fell due at 23:30 and was carried out once the window ended
    assert ledger.state(cut, fresh=True).control["cut_state"] == "cut"
    trips = {c.meter_id for c in cstore.commands_of_meter(meters[cut]) if c.op == "TRIP"}
    assert trips == {meters[cut]}
    for account in (paid_a, paid_b):
        assert [c.op for c in cstore.commands_of_meter(meters[account]) if c.op == "TRIP"] == []
