"""A 5,000-item batch deduction (docs/batch.md; `make soak`: make test runs the same with
1,000 items, FEIKONG_BATCH_FAULT_ITEMS, to stay inside its time budget) under injected DynamoDB faults (the emulator's
switch: TransactionConflict, throttling, 500s and lost answers) and SQS faults played by the
consumer (messages redelivered, delivered twice out of order, lost, a worker dying in the
middle of a message), finishes with an exact per-item account: every item done exactly once
or failed with a reason, every balance = its opening - its own amount = Σ its entries.

Expected values come from the test's own books (the openings it seeds, the amounts it put
in the rows), never from the code under test. Time is the injected clock.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest

from core.domain import batch as rules
from core.domain.admins import AdminPrincipal
from core.integrations.queues import batch_url
from core.services import batch as batch_service
from core.services.batch import Batch
from core.services.ledger import LedgerService
from core.store import directory as dstore
from core.store.models import LedgerEntryItem
from functions import batch as batch_fn
from infra.fakes.sitesim import LambdaContext, sqs_record
from infra.local import stack
from testkit.builders import Clock

ITEMS = int(os.environ.get("FEIKONG_BATCH_FAULT_ITEMS") or (5_000 if os.environ.get("FEIKONG_SOAK") else 1_000))
BOGUS = 20  # rows naming accounts that are not there: failed with a reason
WRITES = ("TransactWriteItems", "PutItem", "UpdateItem", "BatchWriteItem")
FAULTS = {
    "seed": 15,
    "conflict": {op: 0.05 for op in WRITES},
    "throttle": {op: 0.04 for op in WRITES},
    "lost": {op: 0.02 for op in WRITES},
    "error": {"*": 0.02},
}


class Crash(BaseException):
    """A worker dying in the middle of a message."""


def amount_of(n: int) -> int:
    return 100 * (1 + n % 9)  # 1.00 .. 9.00 yuan: every balance stays above 0, so no supply changes


def seed(n: int) -> tuple[str, dict[str, int]]:
    """A property with n open accounts at balance 0 with no entries and an overdraft of
    1,000 yuan (a deduction of at most 9.00 yuan neither is refused nor cuts), written in
    batches of the items the store itself writes (as testkit's Estate does)."""
    from core.domain.directory import Account
    from core.domain.ledger import format_time
    from core.services import directory
    from core.store.directory import account_item
    from core.store.models import AccountItem
    from testkit.builders import uid

    property_id = uid("p")
    directory.create_property(property_id, "批量压测物业")
    now = format_time(datetime.now(UTC))
    opening = {f"a-{property_id}-{i:05d}": 0 for i in range(n)}
    with AccountItem.batch_write() as accounts:
        for i, a in enumerate(opening):
            accounts.save(account_item(Account(a, property_id, "A", f"A{i:05d}", "t-none", f"{i:05d}", 0, 0,
                                               overdraft_limit=100_000, opened_at=now), now))
    return property_id, opening


def test_a_batch_of_thousands_of_items_under_dynamodb_and_sqs_faults_ends_with_an_exact_account(aws, monkeypatch):
    started = time.monotonic()
    property_id, opening = seed(ITEMS - BOGUS)
    accounts = sorted(opening)
    rows = [{"row": n + 2, "account_id": a, "amount": amount_of(n)} for n, a in enumerate(accounts)]
    rows += [{"row": len(rows) + 2 + i, "account_id": f"a-missing-{i}", "amount": 100} for i in range(BOGUS)]
    expected = {a: amount_of(n) for n, a in enumerate(accounts)}

    clock = Clock(datetime(2026, 11, 20, 2, 0, tzinfo=UTC))
    svc = Batch(clock=clock)
    monkeypatch.setattr(batch_service, "_default", svc)
    admin = AdminPrincipal("a-chaos", "压测", "co", "owner", (property_id,))
    task = svc.create(admin, property_id, "deduct", {"memo": "压测扣款"}, rows=rows)
    assert task.total == ITEMS
    svc.confirm(admin, property_id, task.task_id)
    seeded = time.monotonic() - started
    print(f"\nseeded and confirmed in {seeded:.1f}s")

    sqs = boto3.client("sqs")
    fates: Counter = Counter()
    lock = threading.Lock()
    original = Batch._apply
    forced = ["lost", "crashed"]  # popped from the end: one crash, then one loss
    dying = threading.local()  # this thread's delivery dies after this many more items

    def apply(self, *a, **kw):
        left = getattr(dying, "left", None)
        if left is not None:
            if left <= 0:
                raise Crash("the worker died")
            dying.left = left - 1
        return original(self, *a, **kw)

    monkeypatch.setattr(Batch, "_apply", apply)

    def consumer(seed: int) -> None:
        """One of 4 concurrent workers (the function's reserved concurrency) fed as the event
        source mapping would be, with SQS faults: 10% of messages handed over twice (the copy
        later, among others), 3% lost (deleted unhandled: gone to the DLQ), 3% of deliveries
        dying after some items (left on the queue: redelivered)."""
        rng, later = random.Random(seed), []
        while True:
            got = sqs.receive_message(QueueUrl=batch_url(), MaxNumberOfMessages=10, VisibilityTimeout=30,
                                      WaitTimeSeconds=0).get("Messages", [])
            if not got and not later:
                return
            for m in got + later[:3]:
                fresh = m in got
                fate = rng.random()
                if fresh:  # the first fresh messages surely crash and get lost (1,000 items are 40 messages)
                    with lock:
                        fate = {"crashed": 0.045, "lost": 0.0}.get(forced.pop() if forced else "", fate)
                if fate < 0.03 and fresh:
                    outcome = "lost"
                elif fate < 0.06 and fresh:
                    outcome = "crashed"
                    dying.left = rng.randrange(rules.ITEMS_PER_MESSAGE)
                    try:
                        batch_fn.worker({"Records": [sqs_record(m, batch_url())]}, LambdaContext())
                    except Crash:
                        pass
                    finally:
                        dying.left = None
                    # not deleted: visible again at once, as after a Lambda's timeout
                    sqs.change_message_visibility(QueueUrl=batch_url(), ReceiptHandle=m["ReceiptHandle"],
                                                  VisibilityTimeout=0)
                else:
                    result = batch_fn.worker({"Records": [sqs_record(m, batch_url())]}, LambdaContext())
                    assert result == {"batchItemFailures": []}
                    outcome = "twice" if fate < 0.16 and fresh else "once"
                    if outcome == "twice":
                        later.append(m)
                if fresh and outcome != "crashed":
                    sqs.delete_message(QueueUrl=batch_url(), ReceiptHandle=m["ReceiptHandle"])
                with lock:
                    fates[outcome] += 1
            later = later[3:]

    def consume() -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(consumer, [15 + i + 10 * fates["rounds"] for i in range(4)]))
        fates["rounds"] += 1

    stack.faults(FAULTS)
    try:
        consume()
        # lost messages leave items waiting: 15 minutes later the admin's retry sends them again
        for _ in range(3):
            p = svc.progress(property_id, task.task_id)
            if p["settled"]:
                break
            clock.advance(minutes=16)
            svc.retry(admin, property_id, task.task_id)
            consume()
    finally:
        injected = stack.faults()["injected"]
        stack.faults("off")
    ran = time.monotonic() - started - seeded

    # -- the exact account ---------------------------------------------------------------------
    p = svc.progress(property_id, task.task_id)
    assert p["settled"] and p["task"].state == rules.FINISHED
    assert (p["counts"][rules.DONE], p["counts"][rules.FAILED]) == (ITEMS - BOGUS, BOGUS)
    items = {i.item_id: i for i in rules_items(svc, property_id, task.task_id)}
    for n, a in enumerate(accounts):
        it = items[rules.item_id(n + 1)]
        assert (it.state, it.target.account_id, it.result["amount"]) == (rules.DONE, a, expected[a])
        assert it.result["before"] - it.result["after"] == expected[a]
    for i in range(BOGUS):
        it = items[rules.item_id(ITEMS - BOGUS + i + 1)]
        assert it.state == rules.FAILED and "不存在或不属于本物业" in it.reason

    # every batch entry, by one scan of the ledger: exactly one per item, its own amount
    prefix = f"batch:{task.task_id}:"
    posted = Counter()
    sums: Counter = Counter()
    for e in LedgerEntryItem.scan(LedgerEntryItem.entry_id.startswith(prefix)):
        posted[e.account_id] += 1
        sums[e.account_id] -= e.amount  # debits are negative
        assert e.entry_id == prefix + rules.item_id(accounts.index(e.account_id) + 1)
    assert set(posted.values()) == {1} and dict(sums) == expected
    # balances: opening + own amount, for every account (consistent BatchGet)
    got = {a.account_id: a.balance for a in dstore.accounts(accounts)}
    assert got == {a: opening[a] - expected[a] for a in accounts}
    # and Σ entries = balance with seqs 1..n, on a sample
    ledger = LedgerService()
    for a in random.Random(1).sample(accounts, 60):
        assert ledger.verify(a)["ok"], a
    assert sum(v.get("lost", 0) for v in injected.values()) > 0 and fates["crashed"] > 0 and fates["lost"] > 0
    print(f"\nbatch chaos: seed {seeded:.1f}s, run {ran:.1f}s, fates {dict(fates)}, injected {injected}")


def rules_items(svc: Batch, property_id: str, task_id: str):
    out, after = [], None
    while page := svc.items(property_id, task_id, after=after, limit=1000):
        out += page
        after = page[-1].item_id
    return out


@pytest.fixture(autouse=True)
def _faults_off(aws):
    yield
    stack.faults("off")
