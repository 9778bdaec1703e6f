"""A simulated month (November 2026, the clock compressed) of a 200-room property, through the
real paths: signed readings on the uplink queue rated by the consumer Lambda handler on a
time-of-use plan, alarms, cuts outside and inside the protected night (22:00-07:00) run by
the control tick and the site stand-in, recharges paid through the tenant API and the WeChat
Pay emulator (notifications signed and encrypted, to the notification function over HTTP), a
refund, charge items, an apportionment group approved (another left previewed), post-paid
bills, a counter payment, then month-end through its Lambda handlers and queue.

At the end: every balance equals the sum of its entries; every trade of the WeChat Pay
emulator's trade bill is reconciled with our orders; every bill's lines sum to its total;
no relay command is left in flight, and every relay is where the account's state wants it.

Hand-worked figures (Asia/Shanghai times):
- rooms A and B open with 5.00 yuan and use 40 kWh (at least 8.00 yuan at the plan's
  cheapest band of 0.20 yuan/kWh): A on Tuesday 3 November at 14:00, cut at once; B at 23:00
  on Wednesday 4 November, inside the protected night: its cut waits until 07:00.
- the common area's master meter (flat 1.00 yuan/kWh, no TOU registers) uses 100.00 kWh in
  November (1 + 1 + 3 x 26 + 20; never a round of 0 kWh on a meter without registers: see the
  report on usage aggregates): 10000 fen,
  split by area over the 50 rooms R001-R050 (30.00 m² each): 200 fen each, on their
  November bills; the second group is only previewed (nothing posted).
- charge items for December: 物业费 30.00 m² x 2.35 = 70.50 yuan deducted; 租金 800.00 billed.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.domain import control as policy
from core.domain.admins import AdminPrincipal
from core.domain.usage import LOCAL_TZ
from core.integrations.queues import month_end_url, uplink_url
from core.services import apportion, charge_items, tariffs
from core.services import bills as bills_service
from core.services import control as control_service
from core.services import month_end as month_end_service
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.payments import Payments
from core.store import bills as bills_store
from core.store import commands as cstore
from core.store import meters as meters_store
from functions import control_tick, month_end, uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, drain_uplink
from testkit.apistack import ApiStack
from testkit.builders import FLAT_PLAN, Clock, Metered

ROOT = Path(__file__).resolve().parents[2]
ROOMS = 200
TOU = json.loads((ROOT / "docs/examples/plan-commercial-tou.json").read_text())
NIGHT = {"night": ["22:00", "07:00"], "weekends": False, "holidays": False}
# the rooms' meters keep time-of-use registers (the opening 1000.00 kWh booked as flat), as the
# plan's meters do: each round's kWh goes on the band of the reading's local hour (workdays)
OPENING_REGISTERS = {"sharp": Decimal(0), "peak": Decimal(0), "flat": Decimal("1000.00"), "valley": Decimal(0),
                     "deep_valley": Decimal(0)}


def band_at(t: datetime) -> str:
    h = t.astimezone(LOCAL_TZ).hour
    return "valley" if h >= 22 or h < 6 else "peak" if 8 <= h < 12 or 18 <= h < 22 else "flat"


def local(month: int, day: int, h: int, mi: int = 0) -> datetime:
    return datetime(2026, month, day, h, mi, tzinfo=LOCAL_TZ).astimezone(UTC)


class Stack(ApiStack):
    """The payment stack with the tenant API served (testkit/apistack.py) and a recharge call."""

    def recharge(self, auth: dict, account_id: str, amount: int):
        import requests

        return requests.post(f"{self.base}/api/v1/recharges", json={"account_id": account_id, "amount": amount},
                             headers=auth, timeout=10)


class Month:
    def __init__(self, monkeypatch) -> None:
        self.stack = Stack(monkeypatch)
        self.clock = Clock(local(11, 2, 14))  # Monday 2 November, 14:00
        self.ingest = Ingest(clock=self.clock, max_gap=timedelta(days=30))
        self.control = Control(self.ingest.ledger, self.clock)
        self.ingest.control = self.control
        monkeypatch.setattr(uplink_consumer, "ingest", self.ingest)
        monkeypatch.setattr(control_tick, "make_control", lambda: self.control)
        monkeypatch.setattr(month_end_service, "_default", month_end_service.MonthEnd(clock=self.clock))
        control_service._protection.clear()
        w = self.w = Metered(plan=dict(TOU), protection=NIGHT)
        self.pid = w.property_id
        self.site = w.sim()
        self.accounts: list[str] = []
        self.meters: dict[str, str] = {}  # account -> meter
        self.kwh: dict[str, Decimal] = {}  # meter -> kWh per reading round
        self.postpaid: list[str] = []
        w.d.register_tenant(self.pid, f"t-pay-{self.pid}", "缴费租户", "13900000000")
        self._seed()
        self.a, self.b = self.accounts[6], self.accounts[7]  # R007, R008: the designated cuts
        self.kwh[self.meters[self.a]] = self.kwh[self.meters[self.b]] = Decimal(0)
        flat = tariffs.import_plan(self.pid, dict(FLAT_PLAN, plan_id=f"flat-{uuid.uuid4().hex[:8]}"), "test").plan_id
        self.common = w.account(opening=1_000_000)  # the common area's account (not one of the 200)
        self.master = w.meter(self.common, rated_kw="100", plan_id=flat)
        self.site.add(SimMeter(self.master))
        self.kwh[self.master] = Decimal("1.00")  # 1 + 1 before the fifth day's rounds (a round of 0 kWh: see below)
        self.openid = f"o{uuid.uuid4().hex[:27]}"
        w.d.bind_openid(f"t-pay-{self.pid}", self.openid)  # the tenant of rooms A and B
        self.admin = AdminPrincipal("adm-month", "测试管理员", "co-month", "owner", (self.pid,))
        self.orders: list[str] = []

    def _seed(self) -> None:
        """The 200 rooms, their accounts (with the opening entry) and meters (TOU plan), written
        in batches of the items the store itself writes (as testkit Estate does): set-up in
        seconds, not minutes. Room i: post-paid every 20th; A and B (R007, R008) open with
        5.00 yuan; every 10th from R005 with 30.00 (they cross the alarm levels); 1000.00 else."""
        from core.domain.directory import Account
        from core.domain.ledger import format_time
        from core.store.directory import account_item
        from core.store.models import AccountItem, DirectoryItem, LedgerEntryItem, MeterItem

        now, pid, site = format_time(self.clock()), self.pid, self.w.site.site_id
        with DirectoryItem.batch_write() as rooms, AccountItem.batch_write() as accounts, \
                LedgerEntryItem.batch_write() as entries, MeterItem.batch_write() as meters:
            for i in range(1, ROOMS + 1):
                room, a, meter = f"R{i:03d}", f"a-{pid}-{i:03d}", f"m-{pid}-{i:03d}"
                opening = 0 if i % 20 == 0 else (500 if i in (7, 8) else (3000 if i % 10 == 5 else 100000))
                tenant = f"t-pay-{pid}" if i in (7, 8) else self.w.tenant_id
                rooms.save(DirectoryItem(pid, f"ROOM#B1#{room}", kind="room", name=room, building_id="B1",
                                         floor_id="F1", room_id=room, area_m2="30.00"))
                item = account_item(Account(a, pid, "B1", room, tenant, room, opening, 1, opened_at=now), now)
                if i % 20 == 0:
                    item.payment_mode = "postpaid"
                    self.postpaid.append(a)
                accounts.save(item)
                entries.save(LedgerEntryItem(a, f"open:{a}", seq=1, kind="opening", amount=opening,
                                             balance_after=opening, cause=f"account:{a}", actor="test", posted_at=now,
                                             property_id=pid))
                meters.save(MeterItem(meter, property_id=pid, account_id=a, site_id=site, kind="electric_1p",
                                      model="acrel-ddsy1352", bus="bus1", address=i, billing_mode="cloud",
                                      rated_kw="100", relay_state="closed", plan_id=self.w.plan_id))
                self.site.add(SimMeter(meter, registers=dict(OPENING_REGISTERS)))
                self.accounts.append(a)
                self.meters[a] = meter
                self.kwh[meter] = Decimal("5.00") if i % 10 == 5 else Decimal(2 + i % 5)
        self.w.rooms = self.w.addresses = ROOMS  # the builder's next room is R201, its meter at address 201

    # -- the world -------------------------------------------------------------------------------

    def deliver(self) -> None:
        drain_uplink(uplink_url(), uplink_consumer.handler)

    def site_runs(self) -> list[dict]:
        cmds = self.site.take_commands(at=self.clock.now)
        self.deliver()
        return cmds

    def read(self, extra: dict[str, Decimal] | None = None) -> None:
        """Every meter with a closed relay turns its round's kWh (plus `extra`, on the band of
        the hour), then the site reads them all, in messages of 50 readings."""
        extra = extra or {}
        meters = list(self.site.meters.values())
        for m in meters:
            if m.relay_closed:
                used = self.kwh[m.meter_id] + extra.get(m.meter_id, Decimal(0))
                m.total += used
                if m.registers:
                    m.registers[band_at(self.clock.now)] += used
        for start in range(0, len(meters), 50):
            self.site.send_readings([m.reading(self.clock.now) for m in meters[start:start + 50]], self.clock.now)
        self.deliver()

    def tick(self) -> list[dict]:
        control_tick.handler({}, LambdaContext())
        return self.site_runs()

    def pay(self, account: str, amount: int) -> str:
        r = self.stack.recharge(self.auth, account, amount)
        assert r.status_code in (200, 201), r.text
        no = r.json()["out_trade_no"]
        self.stack.pay.pay(no)
        assert self.stack.pay.wait_for_deliveries(10)
        self.orders.append(no)
        return no

    def cut_state(self, account: str) -> str:
        return LedgerService().state(account, fresh=True).control.get("cut_state") or policy.CUT_NONE


@pytest.fixture
def month(monkeypatch):
    m = Month(monkeypatch)
    m.auth = m.stack.login(m.openid)
    yield m
    m.stack.stop()
    drain_uplink(month_end_url(), month_end.worker)


def test_a_simulated_month_balances_reconciles_and_leaves_nothing_in_flight(month):
    m = month
    ma, mb = m.meters[m.a], m.meters[m.b]
    m.read()  # Monday 14:00: the baselines

    # Tuesday 14:00 (outside the protected night): A uses 20 kWh and is cut at once
    m.clock.now = local(11, 3, 14)
    m.read({ma: Decimal(40)})
    ran = m.site_runs()
    assert ma in {c["meter_id"] for c in ran if c["op"] == "TRIP"}
    assert m.cut_state(m.a) == policy.CUT_DONE and not m.site.meters[ma].relay_closed

    # Wednesday 23:00 (inside it): B crosses the line too, but its cut waits until 07:00
    m.clock.now = local(11, 4, 23)
    m.read({mb: Decimal(40)})
    assert mb not in {c["meter_id"] for c in m.tick() if c["op"] == "TRIP"}
    assert m.cut_state(m.b) == policy.CUT_PENDING and m.site.meters[mb].relay_closed
    m.clock.now = local(11, 5, 7, 1)
    assert mb in {c["meter_id"] for c in m.tick() if c["op"] == "TRIP"}
    assert m.cut_state(m.b) == policy.CUT_DONE and not m.site.meters[mb].relay_closed

    # both tenants pay 100.00 yuan through the mini-program path: supply restored
    m.clock.now = local(11, 5, 9)
    paid_a = m.pay(m.a, 10000)
    m.pay(m.b, 10000)
    m.site_runs()
    m.tick()
    assert m.site.meters[ma].relay_closed and m.site.meters[mb].relay_closed
    refund = Payments().refund(m.pid, paid_a, 2000, "多缴退回", "admin:test")  # 20.00 yuan back to A's tenant
    m.stack.pay.complete_refund(refund.out_refund_no, "SUCCESS")
    assert m.stack.pay.wait_for_deliveries(10)

    # the rest of the month: a reading round every eighth day at 14:00, the master's 100 kWh
    m.kwh[m.master] = Decimal("26.00")
    for day in (10, 18, 26):  # three rounds of 26 kWh on the master
        m.clock.now = local(11, day, 14)
        m.read()
        m.tick()
    m.kwh[m.master] = Decimal(0)
    m.clock.now = local(11, 30, 22, 30)
    m.read({m.master: Decimal("20.00")})  # the master's last 20 kWh: 2 + 78 + 20 = 100.00 kWh in November
    m.tick()
    low = [a for i, a in enumerate(m.accounts, 1) if i % 10 == 5]
    alarmed = [a for a in low if LedgerService().state(a, fresh=True).control.get("alarm_state")]
    assert alarmed, "the low rooms crossed their alarm levels"

    # charge items for December and two apportionment groups (set up by the admin)
    charge_items.create(m.pid, {"item_id": "fee", "name": "物业费", "category": "property_fee", "basis": "area",
                                "price": "2.35", "cycle": "month", "start": "2026-12-01", "mode": "deduct"},
                        "admin:test")
    charge_items.create(m.pid, {"item_id": "rent", "name": "租金", "category": "rent", "basis": "fixed",
                                "price": "800.00", "cycle": "month", "start": "2026-12-01", "mode": "bill"},
                        "admin:test")
    groups = []
    for rooms, mode in ((range(1, 51), "bill"), (range(51, 101), "deduct")):
        groups.append(apportion.save_group(m.admin, m.pid, {
            "name": f"公区 {rooms[0]}", "master_meter": m.master, "usage_mode": "master", "method": "area",
            "vacant_share": False, "mode": mode,
            "members": [{"building_id": "B1", "room_id": f"R{i:03d}"} for i in rooms]}, clock=m.clock).group_id)

    # month-end, 00:05 on 1 December: the schedule's handler, then the worker drains its queue
    m.clock.now = local(12, 1, 0, 5)
    month_end.handler({"property_ids": [m.pid]}, LambdaContext())
    drain_uplink(month_end_url(), month_end.worker)
    first, second = (apportion.run(m.pid, g, "2026-11") for g in groups)
    assert (first.status, second.status) == ("previewed", "previewed") and first.result.amount == 10000
    apportion.approve(m.admin, m.pid, groups[0], "2026-11", first.rev, clock=m.clock)
    m.tick()

    # a post-paid tenant pays November's bill at the counter
    pp = bills_store.get_bill(m.postpaid[0], "2026-11")
    assert pp.state == "issued" and "energy" in [ln.source for ln in pp.lines]  # (R020: and its apportionment)
    bills_service.default().record_payment(pp.bill_id, "R-0001", pp.total, "cash", "admin:test")

    # -- the end of the month ---------------------------------------------------------------------
    ledger = LedgerService()
    everyone = [*m.accounts, m.common]
    for a in everyone:
        assert ledger.verify(a)["ok"], a
    for i, a in enumerate(m.accounts, 1):
        dec = bills_store.get_bill(a, "2026-12")
        assert dec.state == "issued" and {ln.charge_id: ln.amount for ln in dec.lines}["item:rent:2026-12"] == 80000
        nov = bills_store.get_bill(a, "2026-11")
        shares = [ln.amount for ln in (nov.lines if nov else ()) if ln.source == "apportion"]
        assert shares == ([200] if i <= 50 else []), (i, shares)
        fee = ledger.store.get_entry(a, "item:fee:2026-12")  # deducted, billed, or split between the two
        bill_fee = {ln.charge_id: ln.amount for ln in dec.lines}.get("item:fee:2026-12", 0)
        assert (-fee.amount if fee else 0) + bill_fee == 7050, i
        for b in [bills_store.get_bill(a, p) for p in ("2026-11", "2026-12")]:
            if b is not None:
                assert sum(ln.amount for ln in b.lines) == b.total and b.paid == sum(p.amount for p in b.payments)
    assert bills_store.get_bill(m.postpaid[0], "2026-11").status(local(12, 1, 1).date()) == "paid"
    assert sum(e.amount for e in ledger.store.all_entries(m.b) if e.entry_id.startswith("pay:")) == 10000

    # every trade on WeChat Pay's bill of the day is one of our paid orders, with its amount
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    report = Payments().reconcile(day)
    ours = set(m.orders)
    assert report["their_trades"] >= len(ours)
    assert not [x for x in report["mismatches"] if x["out_trade_no"] in ours], report["mismatches"]

    # no relay command in flight; every relay where the account's state wants it
    for a in everyone:
        meter = m.meters.get(a, m.master)
        assert not [c.command_id for c in cstore.commands_of_meter(meter) if c.state in policy.OPEN_STATES]
        assert meters_store.load_meter(meter).relay_command_id is None
        want_closed = m.cut_state(a) != policy.CUT_DONE
        assert m.site.meters[meter].relay_closed is want_closed, (a, m.cut_state(a))
