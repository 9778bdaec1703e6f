"""Month-end (core/services/month_end.py, functions/month_end.py) against the emulator: the
scheduled handler queues one message per property on the month-end queue, the worker Lambda
handler (fed SQS events from that queue) previews the apportionment groups, fans out per
building, applies the charge items, bills the post-paid accounts and issues the bills. A
second run and a redelivered building message change nothing; late fees are posted once
per bill and day up to the cap.

The estate, worked by hand (flat 1.00 yuan/kWh, every room 30.00 m²; Asia/Shanghai times).
Month-end runs at 00:05 on 1 November 2026: October is closed, November is charged.
  charge items: 物业费 2.35 yuan/m² monthly, deducted: 30.00 × 2.35 = 70.50 yuan (7050 fen);
                租金 1500.00 yuan monthly from 16 November, building B1 only, billed, due in
                10 days: 1500.00 × 15/30 days = 750.00 yuan (75000 fen), due 2026-11-11.
  B1/R001 prepaid, opening 1000.00: fee deducted -> 929.50; bill 2026-11: rent 75000.
  B1/R002 prepaid, opening 30.00 (line 0): fee 3000 deducted, 4050 to the bill -> 0.00;
          bill 2026-11: 75000 + 4050 = 79050 (due 2026-11-11: the rent's, applied first).
  B2/R003 post-paid, opening 0, meter 10.00 -> 35.50 kWh on 31 Oct: -25.50; the fee finds no
          room above the line: billed whole (7050, due 2026-11-16); October's bill: energy
          2550 (due 1 Nov + 15 days = 2026-11-16), moved out of the ledger -> 0.00.
  B2/R004 prepaid, opening 500.00, the common area's master meter 1000.00 -> 1100.00 kWh on
          31 Oct (100.00 yuan): fee deducted -> 500.00 - 100.00 - 70.50 = 329.50.
  apportionment group 公区照明: master's usage 100 kWh = 10000 fen, by area over B1/R001 and
          B1/R002 (30 + 30 m²): 5000 each; month-end only previews it (status previewed).
Late fees (fixed 1.00 yuan a day, capped at 2.50 yuan a bill) on the bills due 2026-11-11:
  12 Nov 100, 13 Nov 100, 14 Nov 50 (the cap), 15 Nov nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import boto3
import pytest

from core.domain.admins import AdminPrincipal
from core.domain.charges import Charge
from core.domain.rating import MeterReading
from core.domain.usage import LOCAL_TZ
from core.integrations.queues import month_end_url, uplink_url
from core.services import apportion, charge_items
from core.services import month_end as service
from core.services.bills import Bills
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.month_end import MonthEnd, closed_period, next_period, parse_message
from core.store import bills as bills_store
from functions import month_end, uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, drain_uplink, sqs_record
from testkit.builders import Clock, Metered


def local(month: int, day: int, h: int, mi: int = 0) -> datetime:
    return datetime(2026, month, day, h, mi, tzinfo=LOCAL_TZ).astimezone(UTC)


class Estate:
    def __init__(self, monkeypatch) -> None:
        self.clock = Clock(local(11, 1, 0, 5))
        monkeypatch.setattr(uplink_consumer, "ingest", Ingest(clock=self.clock))
        self.me = MonthEnd(clock=self.clock)
        monkeypatch.setattr(service, "_default", self.me)
        w = self.w = Metered()
        self.pid = w.property_id
        d = w.d
        self.r001 = w.account(opening=100000)
        self.r002 = w.account(opening=3000)
        d.add_building(self.pid, "B2", "2 号楼")
        d.add_floor(self.pid, "B2", "F1", "1 层", 1)
        self.accounts = {"R001": self.r001, "R002": self.r002}
        for room, opening in (("R003", 0), ("R004", 50000)):
            d.add_room(self.pid, "B2", "F1", room, room, "30")
            acct = f"{self.pid}-{room}"
            d.open_account(self.pid, acct, "B2", room, w.tenant_id, room, opening_balance=opening)
            self.accounts[room] = acct
        Control(clock=self.clock).configure_account(self.pid, self.accounts["R003"], "admin:test",
                                                    payment_mode="postpaid")
        self.meter = w.meter(self.accounts["R003"])
        self.master = w.meter(self.accounts["R004"], rated_kw="100")
        site = w.sim()
        start, end = local(10, 31, 20), local(10, 31, 22)
        for m, a, b in ((self.meter, "10.00", "35.50"), (self.master, "1000.00", "1100.00")):
            site.add(SimMeter(m))
            site.send_readings([MeterReading(m, 1, start, Decimal(a)), MeterReading(m, 2, end, Decimal(b))], end)
        assert drain_uplink(uplink_url(), uplink_consumer.handler) >= 2
        self.admin = AdminPrincipal("adm-test", "测试管理员", "co-test", "owner", (self.pid,))
        charge_items.create(self.pid, {"item_id": "fee", "name": "物业费", "category": "property_fee",
                                       "basis": "area", "price": "2.35", "cycle": "month", "start": "2026-01-01",
                                       "mode": "deduct"}, "admin:test")
        charge_items.create(self.pid, {"item_id": "rent", "name": "租金", "category": "rent", "basis": "fixed",
                                       "price": "1500.00", "cycle": "month", "start": "2026-11-16", "mode": "bill",
                                       "due_days": 10, "scope": "building", "scope_ids": ["B1"]}, "admin:test")
        self.group = apportion.save_group(self.admin, self.pid, {
            "name": "公区照明", "master_meter": self.master, "usage_mode": "master", "method": "area",
            "vacant_share": False, "mode": "bill",
            "members": [{"building_id": "B1", "room_id": "R001"}, {"building_id": "B1", "room_id": "R002"}]},
            clock=self.clock)
        self.building_bodies: list[str] = []

    def run(self) -> dict:
        """The monthly schedule's event (this property only: the emulator holds other tests'),
        then the worker drains the queue."""
        started = month_end.handler({"property_ids": [self.pid]}, LambdaContext())
        self.drain()
        return started

    def drain(self) -> int:
        def worker(event, context):
            self.building_bodies += [r["body"] for r in event["Records"] if '"building"' in r["body"]]
            return month_end.worker(event, context)

        return drain_uplink(month_end_url(), worker)

    def snapshot(self) -> dict:
        """Every balance, ledger entry and bill (with lines) of the estate."""
        ledger = LedgerService()
        out = {}
        for room, a in sorted(self.accounts.items()):
            entries = sorted((e.entry_id, e.kind, e.amount, e.seq) for e in ledger.store.all_entries(a))
            bills = []
            for p in ("2026-10", "2026-11"):
                b = bills_store.get_bill(a, p)
                if b is not None:
                    bills.append((p, b.state, b.total, b.paid, b.late_fee_total, str(b.due_date),
                                  sorted((ln.charge_id, ln.amount) for ln in b.lines)))
            out[room] = {"balance": ledger.balance(a), "entries": entries, "bills": bills}
        return out


@pytest.fixture
def estate(aws, monkeypatch):
    e = Estate(monkeypatch)
    yield e
    drain_uplink(month_end_url(), month_end.worker)  # leave the queue empty for the next test


def bill(account: str, period: str):
    return bills_store.get_bill(account, period)


def test_month_end_charges_bills_issues_and_previews_once(estate):
    started = estate.run()
    assert started == {"period": "2026-10", "charge_period": "2026-11", "properties": 1}
    a = estate.accounts
    ledger = LedgerService()
    assert {r: ledger.balance(x) for r, x in a.items()} == {"R001": 92950, "R002": 0, "R003": 0, "R004": 32950}
    assert ledger.store.get_entry(a["R001"], "item:fee:2026-11").amount == -7050
    assert ledger.store.get_entry(a["R002"], "item:fee:2026-11").amount == -3000
    assert ledger.store.get_entry(a["R003"], "item:fee:2026-11") is None
    assert ledger.store.get_entry(a["R003"], "tobill:energy:2026-10.1").amount == 2550

    want = {  # (account, period): (total, due, {charge id: amount})
        ("R001", "2026-11"): (75000, date(2026, 11, 11), {"item:rent:2026-11": 75000}),
        ("R002", "2026-11"): (79050, date(2026, 11, 11), {"item:rent:2026-11": 75000, "item:fee:2026-11": 4050}),
        ("R003", "2026-11"): (7050, date(2026, 11, 16), {"item:fee:2026-11": 7050}),
        ("R003", "2026-10"): (2550, date(2026, 11, 16), {"energy:2026-10.1:2026-10": 2550}),
    }
    for (room, period), (total, due, lines) in want.items():
        b = bill(a[room], period)
        assert (b.state, b.total, b.due_date, b.issued_by) == ("issued", total, due, "month_end"), (room, period)
        assert {ln.charge_id: ln.amount for ln in b.lines} == lines
        assert sum(ln.amount for ln in b.lines) == b.total
    assert bill(a["R001"], "2026-10") is None and bill(a["R004"], "2026-11") is None

    run = apportion.run(estate.pid, estate.group.group_id, "2026-10")
    assert (run.status, run.computed_by, run.result.amount) == ("previewed", "月末结算（自动）", 10000)
    assert sorted((s.room_id, s.amount) for s in run.result.shares) == [("R001", 5000), ("R002", 5000)]
    for room in ("R001", "R002", "R003", "R004"):
        assert ledger.verify(a[room])["ok"]


def test_a_rerun_and_a_redelivered_building_message_change_nothing(estate):
    estate.run()
    before = estate.snapshot()
    rev = apportion.run(estate.pid, estate.group.group_id, "2026-10").rev
    assert len(estate.building_bodies) == 2  # B1 and B2

    estate.clock.advance(hours=5)  # the schedule's retry, hours later: the same month
    estate.run()
    sqs = boto3.client("sqs")
    for body in estate.building_bodies[:1]:  # SQS hands a building message out again
        sqs.send_message(QueueUrl=month_end_url(), MessageBody=body)
    estate.drain()
    event = {"Records": [sqs_record({"MessageId": "again", "ReceiptHandle": "x", "Body": b}, month_end_url())
                         for b in estate.building_bodies]}
    assert month_end.worker(event, LambdaContext()) == {"batchItemFailures": []}
    assert estate.snapshot() == before
    assert apportion.run(estate.pid, estate.group.group_id, "2026-10").rev == rev  # not previewed again


def test_an_approved_apportionment_is_left_alone_and_posts_once(estate):
    estate.run()
    run = apportion.run(estate.pid, estate.group.group_id, "2026-10")
    apportion.approve(estate.admin, estate.pid, estate.group.group_id, "2026-10", run.rev, clock=estate.clock)
    before = estate.snapshot()
    estate.run()  # a rerun after the admin approved: no new preview, nothing posted again
    assert estate.snapshot() == before
    assert apportion.run(estate.pid, estate.group.group_id, "2026-10").status == "posted"
    for room in ("R001", "R002"):
        b = bill(estate.accounts[room], "2026-10")  # the shares went on October's bills (a draft: the admin issues)
        assert [(ln.source, ln.amount) for ln in b.lines] == [("apportion", 5000)] and b.total == 5000


def test_late_fees_once_a_day_up_to_the_cap(estate):
    estate.run()
    charge_items.set_late_fee_rule(estate.pid, {"enabled": True, "kind": "fixed", "fixed": "1.00", "cap": "2.50"},
                                   "admin:test")
    a = estate.accounts
    fees = []
    for day, expected in ((12, 100), (13, 200), (14, 250), (15, 250)):
        estate.clock.now = local(11, day, 0, 10)
        for _ in range(2):  # the daily schedule retried: nothing more
            assert month_end.late_fees({"property_ids": [estate.pid]}, LambdaContext())["day"] == f"2026-11-{day}"
            estate.drain()
        b1, b2 = bill(a["R001"], "2026-11"), bill(a["R002"], "2026-11")
        fees.append((b1.late_fee_total, b2.late_fee_total))
        assert (b1.late_fee_total, b1.total) == (expected, 75000 + expected)
        assert sum(ln.amount for ln in b2.lines) == b2.total == 79050 + expected
    assert fees == [(100, 100), (200, 200), (250, 250), (250, 250)]
    assert bill(a["R003"], "2026-11").late_fee_total == 0  # due 16 November: not late yet


def test_a_bad_message_is_dropped_not_retried_and_changes_nothing(estate):
    before = estate.snapshot()
    bodies = ["not json", json.dumps({"v": 1, "kind": "building", "property_id": estate.pid, "period": "2026-13",
                                      "building_id": "B1"}),
              json.dumps({"v": 1, "kind": "building", "property_id": estate.pid, "period": "2026-10",
                          "building_id": "B#1"}),
              json.dumps({"v": 2, "kind": "property", "property_id": estate.pid, "period": "2026-10"})]
    event = {"Records": [sqs_record({"MessageId": f"m{i}", "ReceiptHandle": "x", "Body": b}, month_end_url())
                         for i, b in enumerate(bodies)]}
    assert month_end.worker(event, LambdaContext()) == {"batchItemFailures": []}
    assert estate.snapshot() == before


def test_periods_and_messages():
    # 16:05 UTC on 30 November is 00:05 on 1 December in Shanghai: November has closed
    assert closed_period(datetime(2026, 11, 30, 16, 5, tzinfo=UTC)) == "2026-11"
    assert closed_period(datetime(2026, 11, 30, 15, 55, tzinfo=UTC)) == "2026-10"
    assert closed_period(datetime(2027, 1, 1, 0, 0, tzinfo=UTC)) == "2026-12"
    assert next_period("2026-12") == "2027-01"
    m = parse_message(service.message("building", "p-1", period="2026-10", building_id="B1"))
    assert (m.kind, m.property_id, m.building_id, m.period, m.charge_period) == ("building", "p-1", "B1", "2026-10",
                                                                              "2026-11")


def test_a_bill_issued_before_month_end_takes_the_rent_line_and_stays_issued(estate):
    """An admin billed and issued R001's November bill (a 20.00 yuan 停车费 line) before
    month-end ran. Month-end's rent line may not re-issue it: its write is refused on the
    bill's state, and the line joins the issued bill alone: 2000 + 75000 = 77000."""
    bills = Bills(clock=estate.clock)
    a = estate.accounts["R001"]
    parking = Charge(a, estate.pid, "2026-11", "item", "parking", 2000, "停车费", formula="2000 分", mode="bill")
    [r] = bills.apply_charges([parking], actor="admin:test", due=date(2026, 11, 20))
    assert r.status == "billed" and not r.issued
    b = bill(a, "2026-11")
    bills_store.set_state(b, "confirmed", "admin:test", "2026-10-31T16:00:00Z")
    bills_store.set_state(replace(b, state="confirmed"), "issued", "admin:test", "2026-10-31T16:00:00Z")
    estate.run()
    b = bill(a, "2026-11")
    assert (b.state, b.total, b.issued_by, b.due_date) == ("issued", 77000, "admin:test", date(2026, 11, 20))
    assert {ln.charge_id: ln.amount for ln in b.lines} == {"item:parking:2026-11": 2000, "item:rent:2026-11": 75000}
    assert LedgerService().balance(a) == 92950  # the fee deducted as for everyone


@pytest.mark.parametrize("remembered", [100000, 500])
def test_a_deduct_split_planned_on_a_stale_state_is_planned_again(estate, remembered):
    """The ledger remembers R002 at an older version with `remembered` fen, but a 10.00 yuan
    ADJUST_DEBIT has since left 20.00 (opening 30.00). The fee (70.50) must split on the
    state its transaction is conditioned on: 2000 deducted, 5050 billed. (From 1000.00 the
    ledger refuses 70.50 on the real state; from 5.00 it would take 5.00 and bill 65.50:
    the posting's hook sees the split differs and plans again.)"""
    a = estate.accounts["R002"]
    LedgerService().post(account_id=a, entry_id="adj-test-1", kind="adjust_debit", amount=1000,
                         cause="test", actor="admin:test", memo="测试扣减")
    bills = Bills(clock=estate.clock)
    real = bills.ledger.state(a, fresh=True)
    bills.ledger.forget_all()
    bills.ledger.remember([replace(real, balance=remembered, version=real.version - 1)])
    fee = Charge(a, estate.pid, "2026-11", "item", "fee", 7050, "物业费", formula="7050 分", mode="deduct")
    [r] = bills.apply_charges([fee], actor="month_end")
    assert (r.status, r.deducted, r.billed) == ("split", 2000, 5050)
    assert LedgerService().balance(a) == 0
    assert {ln.charge_id: ln.amount for ln in bill(a, "2026-11").lines} == {"item:fee:2026-11": 5050}
    assert LedgerService().verify(a)["ok"]
