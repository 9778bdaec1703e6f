"""The chaos suite's rig and its invariants.

Faults come from outside the code under test: a crash is a BaseException raised at a step
boundary (no handler catches it, as when a Lambda dies), an outage is a TCP proxy in front
of the emulator that refuses or stalls connections, DynamoDB faults come from the
emulator's switch (infra/local/moto_app.py), SQS redelivery is the test handing messages to the
consumer again, in another order. Time is an injected clock, never slept through.

Expected values come from the test's own `Books` (what was opened, paid and used), never
from the code under test. After every scenario:

- every touched account's balance is the sum of its entries (`LedgerService().verify`);
- every paid order is PAID and credited exactly once, under `pay:<transaction id>`;
- platform balance + meter-held balance = opening + paid - used (no fen in two places);
- every meter's actual relay (the simulated meter's, not the cloud's record) equals the
  supply the books intend, within a bounded number of ticks once the faults stop.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlparse

import boto3
import pytest

from core.domain import control as policy
from core.integrations.queues import uplink_url
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import meters as meters_store
from core.store import payments as pstore
from functions import control_tick, uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, sqs_record
from testkit.builders import Clock, Metered


class Crash(BaseException):
    """A process dying at a step boundary: not an error any handler catches."""


def crash_once(monkeypatch, owner, name: str, after: bool = False) -> dict:
    """Make the next call of owner.name crash the process: before the step runs, or (after)
    once it has run and before anything that follows it. Later calls run normally.
    Returns a dict whose "crashed" counts the crashes."""
    original = getattr(owner, name)
    state = {"crashed": 0}
    lock = threading.Lock()

    def wrapper(*args, **kwargs):
        with lock:
            fire = state["crashed"] == 0
            if fire:
                state["crashed"] = 1
        if fire and not after:
            raise Crash(f"crash before {name}")
        result = original(*args, **kwargs)
        if fire:
            raise Crash(f"crash after {name}")
        return result

    monkeypatch.setattr(owner, name, wrapper)
    return state


# -- the test's own books ----------------------------------------------------------------------


@dataclass
class Account:
    account_id: str
    opening: int
    overdraft: int = 0
    paid: int = 0
    used: int = 0
    cut: bool = False  # the supply the books intend: cut below the line, restored above zero
    meter_side: bool = False
    meters: list[str] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return self.opening + self.paid - self.used

    def settle(self) -> None:
        """Cut below -overdraft; restore above max(0, -overdraft) (restore line 0)."""
        if self.meter_side:
            return
        if not self.cut and self.expected < -self.overdraft:
            self.cut = True
        elif self.cut and self.expected > max(0, -self.overdraft):
            self.cut = False


class Books:
    """What the test did, in fen: openings, payments, usage at 1 yuan/kWh."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, str] = {}  # out_trade_no -> account

    def open(self, account_id: str, opening: int, overdraft: int = 0, meter_side: bool = False) -> Account:
        a = self.accounts[account_id] = Account(account_id, opening, overdraft, meter_side=meter_side)
        a.settle()
        return a

    def pay(self, account_id: str, amount: int, order: str | None = None) -> None:
        a = self.accounts[account_id]
        a.paid += amount
        a.settle()
        if order:
            self.orders[order] = account_id

    def use(self, account_id: str, kwh: Decimal | str) -> None:
        a = self.accounts[account_id]
        a.used += int(Decimal(kwh) * 100)  # flat plan: 1 yuan/kWh, registers in 0.01 kWh
        a.settle()


# -- invariants --------------------------------------------------------------------------------


def assert_ledgers(accounts) -> None:
    ledger = LedgerService()
    for a in accounts:
        result = ledger.verify(a)
        assert result["ok"], (a, result)


def assert_paid_once(books: Books) -> None:
    """Every order the tenant paid is PAID and credited once, on its account; nothing else
    was credited as a payment."""
    ledger = LedgerService()
    by_account: dict[str, list[str]] = {}
    for no, account in books.orders.items():
        order = pstore.get_order(no)
        assert order is not None and order.status == "PAID", (no, order)
        assert order.account_id == account
        by_account.setdefault(account, []).append(f"pay:{order.transaction_id}")
    for account, ids in by_account.items():
        credited = [e.entry_id for e in ledger.store.all_entries(account) if e.entry_id.startswith("pay:")]
        assert sorted(credited) == sorted(ids), (account, credited, ids)


def assert_money(books: Books, meter_balances: dict[str, int] | None = None) -> None:
    """Platform balance + money held by the account's meter = opening + paid - used."""
    ledger = LedgerService()
    meter_balances = meter_balances or {}
    for a in books.accounts.values():
        platform = ledger.balance(a.account_id)
        on_meters = sum(meter_balances.get(m, 0) for m in a.meters)
        assert platform + on_meters == a.expected, (a.account_id, platform, on_meters, a, _meter_events(a.meters))


def _meter_events(meters: list[str]) -> list[tuple]:
    """What the meters' event trail says (for a failing assertion's message)."""
    from core.domain.events import Subject
    from core.store import events as events_store

    return [(m, e.type, e.status, e.data.get("kind"), e.data.get("seq")) for m in meters
            for e in events_store.events_of(Subject.meter(m)) if e.type != "command"]


def intended_closed(books: Books) -> dict[str, bool]:
    """meter -> whether its relay should be closed, by the books (cloud-billed meters)."""
    return {m: not a.cut for a in books.accounts.values() if not a.meter_side for m in a.meters}


def assert_cut_states(books: Books) -> None:
    """The product's cut state agrees with the books."""
    ledger = LedgerService()
    for a in books.accounts.values():
        if a.meter_side:
            continue
        state = ledger.state(a.account_id, fresh=True).control.get("cut_state") or policy.CUT_NONE
        assert (state == policy.CUT_DONE) == a.cut, (a.account_id, state, a)


# -- the rig: site stand-in, consumer, tick, one clock ---------------------------------------


T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai


class Rig:
    """A property on the site stand-in (infra/fakes/sitesim.py), the uplink consumer and the
    control tick on one injected clock, and the books."""

    def __init__(self, monkeypatch, clock: Clock | None = None) -> None:
        self.clock = clock or Clock(T0)
        self.ingest = Ingest(clock=self.clock, max_gap=timedelta(days=30))
        self.control = Control(self.ingest.ledger, self.clock)
        self.ingest.control = self.control
        monkeypatch.setattr(uplink_consumer, "ingest", self.ingest)
        monkeypatch.setattr(control_tick, "make_control", lambda: self.control)
        self.w = Metered()
        self.site = self.w.sim()
        self.books = Books()
        self.sqs = boto3.client("sqs")
        self.held: list[dict] = []  # uplink messages taken off the queue, not yet delivered
        self.seen: list[dict] = []  # every uplink message, for late redeliveries
        self.crashes = 0  # crashes the rig absorbed (consumer, tick)
        self.faulty = False  # while True, a tick that fails is tolerated (DynamoDB faults, outages)
        self.tick_errors = 0

    # set-up
    def account(self, opening: int, overdraft: int = 0, meter_side: bool = False) -> Account:
        acct = self.w.account(opening=opening, overdraft=overdraft)
        return self.books.open(acct, opening, overdraft, meter_side)

    def meter(self, a: Account) -> str:
        mode = "meter" if a.meter_side else "cloud"
        meter = self.w.meter(a.account_id, billing_mode=mode)
        self.site.add(SimMeter(meter, **({"balance": 0, "purchase_count": 0} if a.meter_side else {})))
        a.meters.append(meter)
        return meter

    # the site
    def use(self, meter: str, kwh: str) -> None:
        """The meter uses kwh (if its relay is closed): the books learn it at once."""
        m = self.site.meters[meter]
        if m.relay_closed and Decimal(kwh):
            m.total += Decimal(kwh)
            if m.balance is not None:  # a meter that keeps the money spends its own
                m.balance -= int(Decimal(kwh) * 100)
            self.books.use(self.account_of(meter).account_id, kwh)

    def account_of(self, meter: str) -> Account:
        return next(a for a in self.books.accounts.values() if meter in a.meters)

    def read(self, meters=None, minutes: int = 60) -> dict:
        """The site polls (an hour later unless told) and sends one readings message."""
        self.clock.advance(minutes=minutes)
        ids = meters or list(self.site.meters)
        return self.site.send_readings([self.site.meters[m].reading(self.clock.now) for m in ids
                                        if not self.site.meters[m].silent], self.clock.now)

    def site_runs(self) -> list[dict]:
        return self.site.take_commands(at=self.clock.now)

    # the cloud
    def take(self) -> list[dict]:
        """Take what waits on the uplink queue (SQS gave it to a consumer) without deleting
        what was not yet handled: kept in `held` until delivered."""
        while True:
            batch = self.sqs.receive_message(QueueUrl=uplink_url(), MaxNumberOfMessages=10,
                                             WaitTimeSeconds=0).get("Messages", [])
            if not batch:
                return self.held
            for m in batch:
                msg = {"MessageId": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"], "Body": m["Body"]}
                self.held.append(msg)
                self.seen.append(msg)
                self.sqs.delete_message(QueueUrl=uplink_url(), ReceiptHandle=m["ReceiptHandle"])

    def deliver(self, order=None, copies: int = 1, passes: int = 3) -> int:
        """Hand what is held to the consumer Lambda, one record per invocation. A record it
        reports failed, or a Crash of the consumer, keeps the message held: SQS delivers it
        again (here on the next pass, as if its visibility timeout had passed). `order`
        reorders; `copies` delivers each more than once (at-least-once)."""
        self.take()
        delivered = 0
        for _ in range(passes):
            msgs = list(self.held)
            if not msgs:
                break
            if order is not None:
                msgs = order(msgs)
            for m in [m for m in msgs for _ in range(copies)]:
                delivered += 1
                try:
                    result = uplink_consumer.handler({"Records": [sqs_record(m, uplink_url())]}, LambdaContext())
                except Crash:
                    self.crashes += 1
                    continue
                if not result.get("batchItemFailures") and m in self.held:
                    self.held.remove(m)
        return delivered

    def redeliver_all(self) -> int:
        """Every uplink message ever sent, delivered again, newest first (late copies)."""
        self.held = list(reversed(self.seen))
        return self.deliver(passes=1)

    def tick(self) -> dict | None:
        """The scheduled tick; a crash, or (while faults are injected) an error, is what the
        schedule answers by running it again a minute later."""
        try:
            return control_tick.handler({}, LambdaContext())
        except Crash:
            self.crashes += 1
            return None
        except Exception:
            if not self.faulty:
                raise
            self.tick_errors += 1
            return None

    def cycle(self) -> None:
        """One minute of the world: the tick, the site takes its commands and polls, the
        cloud gets the results and readings."""
        self.clock.advance(minutes=1)
        self.tick()
        self.site_runs()
        self.deliver()
        self.read(minutes=0)
        self.deliver()

    def actual_closed(self) -> dict[str, bool]:
        return {m: self.site.meters[m].relay_closed for m in intended_closed(self.books)}

    def disagreements(self) -> dict:
        """What still differs from the books: relays (actual or as the cloud recorded them)
        and meter-side money not yet on its meter."""
        out = {}
        for m, closed in intended_closed(self.books).items():
            want = "closed" if closed else "open"
            actual = "closed" if self.site.meters[m].relay_closed else "open"
            recorded = meters_store.load_meter(m).relay_state
            if actual != want or recorded != want:
                out[m] = {"want": want, "actual": actual, "recorded": recorded}
        for a in self.books.accounts.values():
            if a.meter_side and self.site.meters[a.meters[0]].balance != a.expected:
                out[a.account_id] = {"meter": self.site.meters[a.meters[0]].balance, "want": a.expected}
        return out

    def converge(self, max_ticks: int = 3) -> int:
        """Cycle until every meter's actual relay is what the books intend (and the cloud's
        record agrees) and meter-side money is on its meter; fail if it takes more than
        max_ticks ticks. Returns the ticks it took."""
        for n in range(max_ticks + 1):
            if n:
                self.cycle()
            else:
                self.site_runs()
                self.deliver()
            if not self.disagreements():
                return n
        raise AssertionError(f"did not converge in {max_ticks} ticks: {self.disagreements()}")

    def meter_balances(self) -> dict[str, int]:
        return {m.meter_id: int(m.balance or 0) for m in self.site.meters.values() if m.balance is not None}

    def review_held_usage(self) -> list[str]:
        """An admin approves every reading held for review (a jump or gap: with clocks that
        skew and bridges killed mid-poll, one reading can span a clock jump in too short a
        read interval, which the product rightly holds back). Returns what was approved."""
        from core.domain.events import Subject
        from core.store import events as events_store

        approved = []
        for a in self.books.accounts.values():
            for m in a.meters:
                for e in events_store.events_of(Subject.meter(m)):
                    if e.type == "anomaly" and e.status == "open":
                        self.ingest.approve_anomaly(e.property_id, m, e.event_id, "admin:chaos")
                        approved.append(f"{m}:{e.data.get('kind')}:{e.data.get('seq')}")
        return approved

    def check(self) -> None:
        """Every invariant of the suite (after an admin's review of held usage)."""
        self.review_held_usage()
        accounts = list(self.books.accounts)
        assert_ledgers(accounts)
        assert_paid_once(self.books)
        assert_money(self.books, self.meter_balances())
        assert_cut_states(self.books)
        assert not self.disagreements(), self.disagreements()


@pytest.fixture
def rig(aws, monkeypatch) -> Rig:
    r = Rig(monkeypatch)
    yield r
    r.held.clear()
    r.take()  # leave the shared uplink queue empty for the tests after this one
    r.held.clear()


class Tenant:
    """The tenant's side of WeChat Pay: an order through the payments service, paid at the
    WeChat Pay emulator, whose signed notification reaches the notification function
    through the local API Gateway (and is retried by WeChat until it is answered 200)."""

    def __init__(self, rig: Rig, stack, payments) -> None:
        self.rig, self.stack, self.payments = rig, stack, payments
        self.openid = f"o{uuid.uuid4().hex[:27]}"
        rig.w.d.bind_openid(rig.w.tenant_id, self.openid)

    def order(self, account_id: str, amount: int) -> str:
        return self.payments.create_recharge(self.openid, account_id, amount)["out_trade_no"]

    def pay(self, account_id: str, amount: int, duplicates: int = 0, wait: bool = True) -> str:
        no = self.order(account_id, amount)
        self.stack.pay.pay(no, duplicates=duplicates)
        self.rig.books.pay(account_id, amount, no)
        if wait:
            assert self.stack.pay.wait_for_deliveries(30)
        return no

    def answered(self, no: str) -> bool:
        return any(d.succeeded for d in self.stack.pay.deliveries_for(no))


@pytest.fixture
def tenant(rig, monkeypatch):
    from core.services.payments import Payments
    from functions import wechatpay_notify
    from infra.local.paystack import PayStack

    stack = PayStack().start()
    stack.apply_env()
    payments = Payments(control=rig.control)
    monkeypatch.setattr(wechatpay_notify, "payments", payments)
    try:
        yield Tenant(rig, stack, payments)
    finally:
        stack.stop()


# -- an outage: the emulator behind a TCP proxy we control --------------------------------------


class Link:
    """A TCP proxy on 127.0.0.1 in front of the emulator.

    up: bytes flow. down: new connections are reset at once and open ones are cut (an
    unreachable cloud; clients fail fast and retry). stalled: connections are accepted and
    their bytes held, then forwarded on up() (what a SIGSTOPped server looks like: the
    kernel accepts, nothing answers until it runs again)."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(128)
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = "up"
        self.cond = threading.Condition()
        self.socks: set[socket.socket] = set()
        self.refused = 0
        self.closed = False

    def start(self) -> Link:
        threading.Thread(target=self._accept, daemon=True, name="link-accept").start()
        return self

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self.state == "down":
                self._reset(client)
                self.refused += 1
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    @staticmethod
    def _reset(s: socket.socket) -> None:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        except OSError:
            pass

    def _wait_not_stalled(self) -> bool:
        with self.cond:
            self.cond.wait_for(lambda: self.state != "stalled")
            return self.state == "up"

    def _serve(self, client: socket.socket) -> None:
        if not self._wait_not_stalled():
            self._reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            self._reset(client)
            return
        with self.cond:
            self.socks |= {client, upstream}
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not self._wait_not_stalled() or not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with self.cond:
                    self.socks.discard(s)
                self._reset(s)

    def set(self, state: str) -> None:
        with self.cond:
            self.state = state
            self.cond.notify_all()
            socks = list(self.socks) if state == "down" else []
        for s in socks:
            self._reset(s)

    def down(self) -> None:
        self.set("down")

    def stall(self) -> None:
        self.set("stalled")

    def up(self) -> None:
        self.set("up")

    def close(self) -> None:
        self.closed = True
        self.set("down")
        self.server.close()


def reset_aws_clients() -> None:
    """Forget the product's cached AWS clients, so that the next call makes new ones for
    AWS_ENDPOINT_URL as it is now (the way a new Lambda instance would)."""
    from core.integrations import secrets
    from core.store import connections

    connections.reset()  # the models' and the writes' connections, and the shared botocore session
    secrets.clear_cache()


@pytest.fixture
def link(aws):
    """Point every AWS client of this process at a Link in front of the emulator."""
    saved = os.environ["AWS_ENDPOINT_URL"]
    proxy = Link(urlparse(saved).port).start()
    os.environ["AWS_ENDPOINT_URL"] = proxy.url
    reset_aws_clients()
    try:
        yield proxy
    finally:
        proxy.up()
        os.environ["AWS_ENDPOINT_URL"] = saved
        reset_aws_clients()
        proxy.close()


# -- a clock that runs in real time and jumps when told (for the real bridge) -----------------


class JumpClock:
    """Real UTC time plus an offset that the test moves forward: time runs (so readings a
    poll apart have later read times, and simulated meters use energy as it runs) and
    jumps (minutes or hours pass in an instant). `skewed(d)` is the same clock d off, as a
    bridge whose clock is wrong; `path` (optional) publishes the offset for a bridge in
    another process (see run_bridge)."""

    def __init__(self, path=None, skew: timedelta = timedelta(0), base: JumpClock | None = None) -> None:
        self.path, self.skew, self.base = path, skew, base
        self.offset = timedelta(0)
        self._publish()

    def __call__(self) -> datetime:
        if self.base is not None:
            return self.base() + self.skew
        return datetime.now(UTC) + self.offset + self.skew

    @property
    def now(self) -> datetime:
        return self()

    def advance(self, **kw) -> None:
        self.offset += timedelta(**kw)
        self._publish()

    def skewed(self, skew: timedelta) -> JumpClock:
        return JumpClock(skew=skew, base=self)

    def _publish(self) -> None:
        if self.path is not None:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w") as f:
                f.write(json.dumps({"offset": self.offset.total_seconds(), "skew": self.skew.total_seconds()}))
            os.replace(tmp, self.path)


class FileClock:
    """The bridge process' side of a published JumpClock."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> datetime:
        with open(self.path) as f:
            d = json.loads(f.read())
        return datetime.now(UTC) + timedelta(seconds=d["offset"] + d["skew"])


def run_bridge(config_path: str, clock_path: str) -> None:
    """Entry point of a bridge process on a published clock (python -c, see test_bridge_chaos)."""
    import asyncio
    import logging
    import sys

    from bridge.config import load_config
    from bridge.runtime import Bridge

    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(Bridge(load_config(config_path), clock=FileClock(clock_path)).main())


def shown(v: Decimal) -> Decimal:
    """A register's value as the meter shows it: 0.01 kWh, rounded down."""
    return v.quantize(Decimal("0.01"), rounding="ROUND_FLOOR")



# -- the real bridge against the Modbus meter simulator ------------------------------------------


class BridgeRig(Rig):
    """The Rig with the real bridge (bridge/runtime.py) in place of the site stand-in: one
    bus of simulated meters over Modbus RTU-over-TCP, the bridge in a thread (or a process,
    to be killed) on `clock` (optionally skewed), talking to the emulator at `endpoint`."""

    def __init__(self, monkeypatch, state_dir, endpoint: str | None = None) -> None:
        self.jump = JumpClock(path=str(state_dir / "clock.json"))
        super().__init__(monkeypatch, clock=self.jump)
        self.state_dir = state_dir
        self.endpoint = endpoint or os.environ["AWS_ENDPOINT_URL"]
        self.sims: dict[str, object] = {}
        self.bus = None
        self.bridge = self.thread = self.proc = None
        self.initial: dict[str, Decimal] = {}
        # A command taken by a receive whose answer was lost (the link cut during a long
        # poll) comes back after the visibility timeout: 60 s on the site's queue,
        # compressed here to 3 s.
        self.sqs.set_queue_attributes(QueueUrl=self.w.site.down_queue, Attributes={"VisibilityTimeout": "3"})

    def meter(self, a: Account, total: str = "100.00") -> str:
        from bridge.simulator import SimMeter as ModbusMeter

        mode = "meter" if a.meter_side else "cloud"
        meter = self.w.meter(a.account_id, billing_mode=mode)
        self.sims[meter] = ModbusMeter("acrel-ddsy1352", len(self.sims) + 1, load_kw="0", total=total,
                                       clock=self.jump)
        self.initial[meter] = Decimal(total)
        a.meters.append(meter)
        return meter

    def config(self, poll: float = 0.2) -> dict:
        from bridge.simulator import SimBus

        if self.bus is None:
            self.bus = SimBus(list(self.sims.values())).start()
        return {
            "site_id": self.w.site.site_id, "secret": self.w.site.secret, "state_dir": str(self.state_dir / "bridge"),
            "heartbeat_seconds": 5,
            "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink_url(),
                      "down_queue_url": self.w.site.down_queue, "endpoint_url": self.endpoint},
            "buses": [{"name": "bus1", "type": "tcp", "host": "127.0.0.1", "port": self.bus.port, "framing": "rtu",
                       "timeout": 0.3, "meters": [
                           {"meter_id": m, "address": s.device_id, "model": "acrel-ddsy1352", "poll_seconds": poll}
                           for m, s in self.sims.items()]}],
        }

    def start(self, skew: timedelta = timedelta(0)) -> None:
        from bridge.config import parse_config
        from bridge.runtime import Bridge

        self.bridge = Bridge(parse_config(self.config()), clock=self.jump.skewed(skew))
        self.thread = self.bridge.run_in_thread()

    def stop(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
            self.thread.join(timeout=10)
            self.bridge.outbox.close()
            self.bridge = self.thread = None

    def start_process(self, log) -> None:
        """The bridge in its own process on the published clock (so that it can be killed)."""
        import subprocess
        import sys

        import yaml

        path = self.state_dir / "bridge.yaml"
        path.write_text(yaml.safe_dump(self.config()))
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from tests.chaos.conftest import run_bridge; run_bridge(*sys.argv[1:])",
             str(path), self.jump.path], cwd=root, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self.proc is not None:
            self.kill()
        if self.bus is not None:
            self.bus.stop()

    # the site: the bridge polls and runs commands by itself
    def read(self, meters=None, minutes: int = 0) -> dict:
        return {}

    def site_runs(self) -> list[dict]:
        return []

    def load(self, meter: str, kw: str) -> None:
        self.sims[meter].load_kw = kw

    def actual_closed(self) -> dict[str, bool]:
        return {m: self.sims[m].supply_on for m in intended_closed(self.books)}

    def disagreements(self) -> dict:
        out = {}
        for m, closed in intended_closed(self.books).items():
            want = "closed" if closed else "open"
            actual = "closed" if self.sims[m].supply_on else "open"
            recorded = meters_store.load_meter(m).relay_state
            if actual != want or recorded != want:
                out[m] = {"want": want, "actual": actual, "recorded": recorded}
        return out

    def meter_balances(self) -> dict[str, int]:
        return {}

    def settle_usage(self) -> None:
        """Stop every load and tell the books what each meter used: the sum of its TOU
        registers as it shows them (each 0.01 kWh, rounded down) now, less at the start
        (the opening total is booked as flat). The cloud bills a meter with TOU registers
        by register, so this is what it owes at 1 yuan/kWh."""
        for sim in self.sims.values():
            sim.load_kw = "0"
        for a in self.books.accounts.values():
            used = sum(shown(v) for m in a.meters for v in self.sims[m].tou.values()) - sum(
                self.initial[m] for m in a.meters)
            a.used = int(used * 100)
            a.settle()

    def shown_total(self, meter: str) -> Decimal:
        return shown(self.sims[meter].total)

    def all_billed(self) -> bool:
        """The cloud has rated every meter up to what its total register shows now."""
        return all(self.billed_to(m) == self.shown_total(m) for m in self.sims)

    def until(self, predicate, timeout: float = 20.0):
        """Deliver the uplink until predicate() holds (real time: the bridge's polls)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            self.deliver()
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.1)

    def billed_to(self, meter: str) -> Decimal:
        """The register total the cloud has rated up to (its baseline)."""
        m = meters_store.load_meter(meter)
        return m.baseline.total if m.baseline else Decimal(-1)

    def converge(self, max_ticks: int = 3, settle: float = 8.0) -> int:
        """Tick (a minute apart) until the meters' actual relays are what the books intend
        and the cloud recorded it; between ticks the bridge gets `settle` seconds of real
        time to run what was sent. Fails after max_ticks."""
        import time

        for n in range(max_ticks + 1):
            if n:
                self.clock.advance(minutes=1)
                self.tick()
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline:
                self.deliver()
                if not self.disagreements():
                    return n
                time.sleep(0.1)
        raise AssertionError(f"did not converge in {max_ticks} ticks: {self.disagreements()}")


@pytest.fixture
def bridge_rig(aws, monkeypatch, tmp_path):
    r = BridgeRig(monkeypatch, tmp_path)
    try:
        yield r
    finally:
        r.close()
        r.held.clear()
        r.take()
        r.held.clear()
