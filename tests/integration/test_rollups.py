"""Report rollups through the real paths (docs/reports.md): postings of every kind made by
the services against the emulator, the usage table's stream drained into the consumer
Lambda handler (functions/report_rollup.py) the way the event source mapping does, then the
report services compared with a hand-worked table and with independent sums over the
ledger's entries and the bills; under redelivered, reordered and concurrent batches.

Hand-worked plan (local times, March 2030; 1.00 yuan/kWh flat; items: service fee 30.00
yuan a month deducted, rent 1000.00 yuan a month billed, both on every room):
  A1 (B1/R001, opened at 0): 10 Mar 09:00 WeChat recharge 100.00; 10:00 counter cash 50.00;
     11 Mar 09:00 counter refund 20.00; 12 Mar 09:00 month's items: service fee 30.00
     deducted, rent 1000.00 billed; 12 Mar 11:00 reading 12.5 kWh = 12.50 yuan.
     Balance 0 -> 10000 -> 15000 -> 13000 -> 10000 -> 8750.
  A2 (B1/R002, 0, no overdraft): service fee billed whole (no money), rent billed;
     13 Mar bill issued and paid 400.00 at the counter.
  A3 (B2/R001, 0): service fee and rent billed.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.domain.rating import MeterReading
from core.domain.reports import PeriodTotals
from core.domain.usage import LOCAL_TZ
from core.services import charge_items, directory
from core.services import reports as reports_service
from core.services.bills import Bills
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import bills as bills_store
from core.store import rollups as rollups_store
from functions import report_rollup
from infra.local.scheduler import StreamReader, drain_stream, load_functions, table_of_resource
from testkit.builders import Clock, Metered

STREAM = next(e["stream"] for e in load_functions()["reportRollup"]["events"] if "stream" in e)


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 3, day, hour, minute, tzinfo=LOCAL_TZ).astimezone(UTC)


class Feed:
    """The usage table's stream from now on, handed to the consumer; every record kept."""

    def __init__(self) -> None:
        self.reader = StreamReader(table_of_resource("UsageTable"), "LATEST")
        self.seen: list[dict] = []
        self.errors: list[str] = []

    def handler(self, event, context):
        self.seen += event["Records"]
        return report_rollup.handler(event, context)

    def drain(self) -> int:
        n = 0
        while True:
            got = drain_stream(self.reader, self.handler, STREAM, errors=self.errors)
            n += got
            if not got:
                assert not self.errors, self.errors
                return n

    def redeliver(self, records: list[dict]) -> None:
        from infra.fakes.sitesim import LambdaContext

        for i in range(0, len(records), 100):
            report_rollup.handler({"Records": records[i:i + 100]}, LambdaContext())


def snapshot(property_id: str, month: str) -> tuple:
    rows = [(r.account_id, r.quantity, r.cost, r.money, r.opening, r.closing)
            for r in reports_service.monthly(property_id, month)]
    return rows, reports_service.by_building(property_id, month), reports_service.totals(
        property_id, "day", f"{month}-01", f"{month}-31")


@pytest.fixture
def estate(aws):
    feed = Feed()
    clock = Clock(local(10, 9))
    w = Metered()
    a1, a2 = w.account(), w.account()
    directory.add_building(w.property_id, "B2", "2 号楼")
    directory.add_floor(w.property_id, "B2", "F1", "1 层", 1)
    directory.add_room(w.property_id, "B2", "F1", "R001", "R001", "30")
    a3 = "a3-" + w.property_id
    directory.open_account(w.property_id, a3, "B2", "R001", w.tenant_id, "R001")
    meter = w.meter(a1)
    ledger = LedgerService(clock=clock)
    control = Control(ledger, clock=clock)
    return w, feed, clock, ledger, control, (a1, a2, a3), meter


def post_everything(w, clock, ledger, control, accounts, meter) -> None:
    a1, a2, a3 = accounts
    ledger.post(account_id=a1, entry_id="pay:wx-1", kind="recharge", amount=10000, cause="order:O1", actor="wechatpay")
    clock.now = local(10, 10)
    payments = Payments(control=control, clock=clock)
    payments.counter_recharge(w.property_id, a1, 5000, "R0000000001", "cash", "admin-1")
    clock.now = local(11, 9)
    payments.counter_refund(w.property_id, a1, 2000, "R0000000002", "admin-1")
    clock.now = local(12, 9)
    charge_items.create(w.property_id, {"item_id": "svc", "name": "服务费", "category": "service_fee", "basis": "fixed",
                                         "price": "30", "cycle": "month", "start": "2030-01-01", "mode": "deduct"},
                        "admin-1")
    charge_items.create(w.property_id, {"item_id": "rent", "name": "租金", "category": "rent", "basis": "fixed",
                                         "price": "1000", "cycle": "month", "start": "2030-01-01", "mode": "bill",
                                         "due_days": 10}, "admin-1")
    bills = Bills(control, clock=clock)
    charge_items.run(w.property_id, "2030-03", "admin-1", bills)
    ingest = Ingest(clock=Clock(local(12, 12)))
    assert ingest.reading(w.site.site_id, MeterReading(meter, 1, local(12, 10), Decimal("100.00"))) != "duplicate"
    assert ingest.reading(w.site.site_id, MeterReading(meter, 2, local(12, 11), Decimal("112.50"))) == "billed"
    clock.now = local(13, 9)
    bill_id = f"{a2}:2030-03"
    bills.transition(w.property_id, bill_id, "confirm", "admin-1")
    bills.transition(w.property_id, bill_id, "issue", "admin-1")
    bills.record_payment(bill_id, "P-1", 40000, "cash", "admin-1")


def independent_month(account_id: str, month: str) -> dict[str, int]:
    """Money of the month from the ledger's entries and the account's bill, by the test's own
    reading of causes and sources (not the code's mapping)."""
    out: dict[str, int] = {}

    def add(k: str, v: int) -> None:
        out[k] = out.get(k, 0) + v

    entries, _ = LedgerService().entries(account_id, limit=500, newest_first=False)
    for e in entries:
        day = datetime.fromisoformat(e.posted_at.replace("Z", "+00:00")).astimezone(LOCAL_TZ).date().isoformat()
        if not day.startswith(month):
            continue
        if e.kind == "recharge":
            add("cash" if e.cause.startswith("receipt:") else "recharge", e.amount)
        elif e.kind == "refund":
            add("refund", -e.amount)
        elif e.kind == "fee":
            add({"item:svc": "fee:service_fee", "item:rent": "fee:rent"}[e.entry_id.rsplit(":", 1)[0]], -e.amount)
    bill = bills_store.get_bill(account_id, month)
    if bill is not None:
        for ln in bill.lines:
            add({"svc": "fee:service_fee", "rent": "fee:rent"}[ln.source_id], ln.amount)
        for p in bill.payments:
            add("bill_payment", p.amount)
    return out


def test_every_kind_of_posting_reaches_the_reports_exactly(estate):
    w, feed, clock, ledger, control, accounts, meter = estate
    a1, a2, a3 = accounts
    post_everything(w, clock, ledger, control, accounts, meter)
    started = time.perf_counter()
    handled = feed.drain()
    lag = time.perf_counter() - started
    assert handled >= 10
    print(f"rollup lag: {handled} stream records drained and applied in {lag:.3f} s")

    rows = {r.account_id: r for r in reports_service.monthly(w.property_id, "2030-03")}
    assert list(rows) == [a1, a2, a3]  # by building, room
    r1, r2, r3 = rows[a1], rows[a2], rows[a3]
    assert (r1.building_id, r1.room_id, r1.room_name, r1.tenant_name) == ("B1", "R001", "R001", "测试租户")
    assert r1.quantity == {"electricity": {"flat": Decimal("12.5")}}
    assert r1.cost == {"electricity": {"flat": 1250}}
    assert r1.money == {"recharge": 10000, "cash": 5000, "refund": 2000, "fee:service_fee": 3000, "fee:rent": 100000}
    assert r1.billed == {"fee:rent": 100000}
    assert (r1.opening, r1.closing) == (0, 8750)
    assert r2.money == {"fee:service_fee": 3000, "fee:rent": 100000, "bill_payment": 40000}
    assert (r2.opening, r2.closing, r2.quantity) == (None, None, {})
    assert (r3.building_id, r3.money) == ("B2", {"fee:service_fee": 3000, "fee:rent": 100000})
    for a in accounts:  # independent sums over the ledger and the bills
        assert rows[a].money == independent_month(a, "2030-03")

    b1, b2 = reports_service.by_building(w.property_id, "2030-03")
    assert b1 == PeriodTotals("2030-03", "B1", 2, {"electricity": Decimal("12.5"), "water": 0},
                              {"electricity": 1250, "water": 0},
                              {"recharge": 10000, "cash": 5000, "refund": 2000, "fee:service_fee": 6000,
                               "fee:rent": 200000, "bill_payment": 40000})
    assert (b2.building_id, b2.rooms, b2.money) == ("B2", 1, {"fee:service_fee": 3000, "fee:rent": 100000})
    days = {t.period: t for t in reports_service.totals(w.property_id, "day", "2030-03-09", "2030-03-13")}
    assert days["2030-03-09"].rooms == 0 and days["2030-03-09"].money == {}
    assert days["2030-03-10"].money == {"recharge": 10000, "cash": 5000}
    assert days["2030-03-11"].money == {"refund": 2000}
    assert days["2030-03-12"].money == {"fee:service_fee": 9000, "fee:rent": 300000}
    assert days["2030-03-12"].cost["electricity"] == 1250
    assert days["2030-03-13"].money == {"bill_payment": 40000}
    assert reports_service.income(w.property_id, "month", "2030-03", "2030-03") == [
        {"period": "2030-03", "electricity": 1250, "water": 0, "rent": 300000, "fees": 9000, "shared": 0,
         "total": 310250}]
    assert reports_service.income(w.property_id, "year", "2030", "2030")[0]["total"] == 310250
    top = reports_service.top_consumers(w.property_id, "2030-03", "electricity")
    assert [r.account_id for r in top] == [a1]
    cmp = reports_service.comparison(w.property_id, "2030-03")
    assert cmp["property"]["utilities"]["electricity"]["quantity"] == Decimal("12.5")
    assert cmp["property"]["utilities"]["electricity"]["mom_quantity"] is None  # February: nothing

    # redelivered: every batch again, then all of it newest first: nothing moves
    before = snapshot(w.property_id, "2030-03")
    feed.redeliver(feed.seen)
    feed.redeliver(list(reversed(feed.seen)))
    assert snapshot(w.property_id, "2030-03") == before
    # a backfill on top of it changes nothing either
    reports_service.Rollups().backfill(w.property_id)
    assert snapshot(w.property_id, "2030-03") == before

    # arrears: A2 owes 1030.00 (rent + the service fee billed whole) - 400.00 paid = 630.00 on a bill
    # due 11 March (the period's first day + 10), 9 days overdue on 20 March; A3's bill is a draft
    owed = reports_service.arrears(w.property_id, clock=lambda: local(20, 9))
    assert [(r["account_id"], r["balance"], r["unpaid_bills"], r["oldest_due"], r["days_overdue"]) for r in owed] == [
        (a2, 0, 63000, "2030-03-11", 9)]


def test_concurrent_postings_backfill_and_duplicate_consumers_agree_with_the_ledger(estate):
    w, feed, clock, ledger, control, accounts, _meter = estate
    a1, a2, _a3 = accounts

    def worker(n: int) -> None:
        own = LedgerService(clock=clock)  # each thread a process of its own
        for i in range(8):
            acct = (a1, a2)[(n + i) % 2]
            own.post(account_id=acct, entry_id=f"pay:t{n}-{i}", kind="recharge", amount=100 + n * 10 + i,
                     cause=f"order:t{n}-{i}", actor="wechatpay")
            if i % 3 == 0:
                own.post(account_id=acct, entry_id=f"adj:t{n}-{i}", kind="adjust_debit", amount=7, cause="test",
                         actor="admin-1")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the backfill first (rollups made from the summaries), then the stream on top of it,
    # handled by two consumers at once (a redelivery racing the first delivery)
    reports_service.Rollups().backfill(w.property_id)
    feed.drain()
    racing = [threading.Thread(target=feed.redeliver, args=(feed.seen,)) for _ in range(2)]
    for t in racing:
        t.start()
    for t in racing:
        t.join()

    month = "2030-03"
    expected = {a: {"recharge": 0, "adjust_debit": 0} for a in (a1, a2)}
    for a in (a1, a2):
        entries, _ = LedgerService().entries(a, limit=500, newest_first=False)
        for e in entries:
            if e.kind == "recharge":
                expected[a]["recharge"] += e.amount
            elif e.kind == "adjust_debit":
                expected[a]["adjust_debit"] -= e.amount
    rows = {r.account_id: r for r in reports_service.monthly(w.property_id, month)}
    for a in (a1, a2):
        assert rows[a].money == expected[a]
        assert rows[a].closing == LedgerService().balance(a)
    b1 = reports_service.by_building(w.property_id, month)[0]
    assert b1.rooms == 2
    assert b1.money == {k: expected[a1][k] + expected[a2][k] for k in ("recharge", "adjust_debit")}
    # the stored rooms carry the versions of the summaries they were copied from
    stored = {d["a"]: rollups_store.figures(d) for d in rollups_store.rooms(w.property_id, "B1", month)}
    assert set(stored) == {a1, a2} and all(f.version > 0 for f in stored.values())


def test_chunks_written_as_json_text_before_compression_are_read_and_rewritten_compressed(aws):
    """Chunks stored before compression (JSON text `rooms`) are read as they are; the next
    change rewrites the chunk compressed (`z`) with both rooms in it."""
    import json

    from core.domain.reports import Figures
    from core.store.models import RollupItem

    pid = f"p-legacy-{time.monotonic_ns()}"
    old_doc = {"b": "B1", "r": "R1", "a": "a-old", "rn": "101", "tn": "旧租户", "q": {"electricity": {"flat": "2.5"}},
               "c": {"electricity": {"flat": 250}}, "m": {"recharge": 1000}, "v": 3, "ob": 0, "cb": 750}
    n = rollups_store.chunk_of("a-new")
    sk = rollups_store.chunk_sk("2030-03", n)
    scope = rollups_store.chunk_scope(pid, "B1", "2030-03")
    RollupItem._get_connection().put_item(scope, sk, attributes={
        "rooms": {"S": json.dumps({"a-old": old_doc}, ensure_ascii=False)}, "rev": {"N": "4"}})
    assert rollups_store.rooms(pid, "B1", "2030-03") == [old_doc]

    new = Figures({("electricity", "flat"): Decimal("1.25")}, {("electricity", "flat"): 125}, {}, {}, 500, 375, 1)
    change = rollups_store.Change(pid, "B1", "R2", "a-new", "102", "新租户", "2030-03", new)
    assert rollups_store.apply([change])["applied"] == 1
    raw = RollupItem._get_connection().get_item(scope, sk, consistent_read=True)["Item"]
    assert "rooms" not in raw and isinstance(raw["z"]["B"], bytes) and raw["rev"] == {"N": "5"}
    got = {d["a"]: d for d in rollups_store.rooms(pid, "B1", "2030-03")}
    assert got["a-old"] == old_doc
    assert got["a-new"]["q"] == {"electricity": {"flat": "1.25"}} and got["a-new"]["cb"] == 375
