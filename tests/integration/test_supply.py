"""Supply as reconciled state, against the emulator through the real queues: every account's
relays converge to the intended supply (cut state + keep-supply) after lost commands, silent
meters, crashes between steps and sites offline past the command lifetime; meter-side money
moves once whatever the order of expiry, result and retry.

The site stand-in (infra/fakes/sitesim.py) answers as the bridge does: expired commands are
refused, a silent meter fails, RECHARGE follows the purchase-count protocol."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain import control as policy
from core.domain.events import Subject
from core.integrations.queues import uplink_url
from core.services import control as control_service
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import commands as cstore
from core.store import events as estore
from core.store import ledger as lstore
from core.store import meters as meters_store
from functions import control_tick, uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, drain_uplink, sqs_record
from testkit.builders import Clock, Metered

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Shanghai


class Rig:
    """One property with a site stand-in, the uplink consumer and the tick on one clock."""

    def __init__(self, monkeypatch, protection: dict | None = None) -> None:
        self.clock = Clock(T0)
        self.ingest = Ingest(clock=self.clock, max_gap=timedelta(days=30))  # days pass between readings here
        self.control = Control(self.ingest.ledger, self.clock)
        self.ingest.control = self.control
        monkeypatch.setattr(uplink_consumer, "ingest", self.ingest)
        monkeypatch.setattr(control_tick, "make_control", lambda: self.control)
        self.w = Metered(protection=protection)
        self.site = self.w.sim()
        self.hours = 0

    def meter(self, account_id: str, **kw) -> str:
        meter = self.w.meter(account_id, **kw)
        sim_kw = {"balance": 0, "purchase_count": 0} if kw.get("billing_mode") == "meter" else {}
        self.site.add(SimMeter(meter, **sim_kw))
        return meter

    def deliver(self) -> int:
        return drain_uplink(uplink_url(), uplink_consumer.handler)

    def use(self, meter: str, kwh: str) -> None:
        """The meter reports `kwh` more (if its relay is closed), read an hour later."""
        m = self.site.meters[meter]
        if m.relay_closed:
            m.total += Decimal(kwh)
        self.clock.advance(hours=1)
        self.site.send_readings([m.reading(self.clock.now)], self.clock.now)
        self.deliver()

    def deliver_crashing(self) -> int:
        """Deliver the uplink to a consumer process that dies (Crash) part-way: the message
        is not deleted and SQS makes it visible again (here at once, not after the timeout)."""
        import boto3

        sqs = boto3.client("sqs")
        crashed = 0
        for m in sqs.receive_message(QueueUrl=uplink_url(), MaxNumberOfMessages=10).get("Messages", []):
            try:
                uplink_consumer.handler({"Records": [sqs_record(m, uplink_url())]}, LambdaContext())
                sqs.delete_message(QueueUrl=uplink_url(), ReceiptHandle=m["ReceiptHandle"])
            except Crash:
                crashed += 1
                sqs.change_message_visibility(QueueUrl=uplink_url(), ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=0)
        return crashed

    def site_runs(self) -> list[dict]:
        """The site takes its commands (refusing the expired ones) and the cloud gets the results."""
        cmds = self.site.take_commands(at=self.clock.now)
        self.deliver()
        return cmds

    def tick(self) -> dict:
        return control_tick.handler({}, LambdaContext())

    def pay(self, account_id: str, amount: int, ref: str):
        return self.control.credit(account_id=account_id, entry_id=f"pay:{ref}", kind="recharge", amount=amount,
                                   cause=f"order:{ref}", actor="wechatpay")

    def relay(self, meter: str) -> str:
        return meters_store.load_meter(meter).relay_state

    def checked(self, account_id: str) -> bool:
        return lstore.supply_check(account_id) is None


@pytest.fixture
def rig(aws, monkeypatch) -> Rig:
    return Rig(monkeypatch, {"night": None, "weekends": False, "holidays": False})


def cut_account(rig: Rig, opening: int = 500) -> tuple[str, str]:
    """An account whose usage took it below zero: tripped, and the meter reports open."""
    acct = rig.w.account(opening=opening)
    meter = rig.meter(acct)
    rig.use(meter, "0")  # baseline
    rig.use(meter, str(Decimal(opening) / 100 + 1))  # 1 yuan/kWh: 1.00 below zero
    assert [c["op"] for c in rig.site_runs()] == ["TRIP"]
    assert rig.relay(meter) == "open"
    return acct, meter


def test_a_second_delayed_cut_trips_again(aws, monkeypatch):
    rig = Rig(monkeypatch, {"night": ["22:00", "08:00"], "weekends": False, "holidays": False})
    control_service._protection.clear()
    rig.clock.now = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 22:00 Shanghai
    acct = rig.w.account(opening=500)
    meter = rig.meter(acct)
    rig.use(meter, "0")
    rig.use(meter, "6")  # 23:00: 6.00 used, balance -1.00: the cut waits for 08:00
    assert LedgerService().state(acct, fresh=True).control["cut_state"] == "pending"
    rig.clock.now = datetime(2026, 11, 25, 0, 1, tzinfo=UTC)  # 08:01
    assert rig.tick()["cuts"] == 1
    first = rig.site_runs()
    assert [c["op"] for c in first] == ["TRIP"] and rig.relay(meter) == "open"
    rig.pay(acct, 1000, "night-1")  # 9.00: restored at once
    assert [c["op"] for c in rig.site_runs()] == ["CLOSE"] and rig.relay(meter) == "closed"
    # the next night the balance falls below zero again: a second postponed cut
    rig.clock.now = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # 22:30
    rig.use(meter, "10")  # 23:30: 10.00 used, balance -1.00
    assert LedgerService().state(acct, fresh=True).control["cut_state"] == "pending"
    assert rig.site_runs() == []
    rig.clock.now = datetime(2026, 11, 26, 0, 1, tzinfo=UTC)
    assert rig.tick()["cuts"] == 1
    second = rig.site_runs()
    assert [c["op"] for c in second] == ["TRIP"]
    assert second[0]["command_id"] != first[0]["command_id"]
    assert rig.relay(meter) == "open"
    rig.clock.advance(minutes=3)  # the next look after a command settles
    rig.tick()
    assert rig.checked(acct)


def test_close_that_expires_while_the_site_is_offline_is_sent_again(rig):
    acct, meter = cut_account(rig)
    rig.pay(acct, 5000, "offline-1")  # CLOSE issued; the site is offline and takes nothing
    first = cstore.get_command(meters_store.load_meter(meter).relay_command_id)
    assert first.op == "CLOSE"
    rig.clock.advance(minutes=30)
    rig.tick()
    assert meters_store.load_meter(meter).relay_command_id == first.command_id  # the CLOSE is live: nothing to add
    rig.clock.advance(hours=1)  # past its lifetime
    result = rig.tick()
    assert result["expired"] >= 1 and result["reconciled"] >= 1
    second = cstore.get_command(meters_store.load_meter(meter).relay_command_id)
    assert second.op == "CLOSE" and second.command_id != first.command_id
    # the site returns: it refuses the expired CLOSE and carries out the new one
    taken = rig.site_runs()
    assert [c["command_id"] for c in taken] == [first.command_id, second.command_id]
    assert cstore.get_command(first.command_id).state == "expired"
    assert cstore.get_command(second.command_id).state == "applied"
    assert rig.relay(meter) == "closed"
    rig.clock.advance(minutes=3)  # the next look after a command settles
    rig.tick()
    assert rig.checked(acct)


def test_silent_meter_is_retried_with_backoff_then_alarms_then_converges(rig):
    acct, meter = cut_account(rig)
    rig.site.meters[meter].silent = True
    rig.pay(acct, 5000, "silent-1")
    ids = [c["command_id"] for c in rig.site_runs()]
    assert len(ids) == 1 and cstore.get_command(ids[0]).state == "failed"
    assert rig.relay(meter) == "open"  # nothing was read back: the cloud keeps what the meter last said
    assert rig.tick()["reconciled"] >= 1  # looked at, but the backoff has not passed
    assert rig.site_runs() == []
    for attempt in range(2, policy.ALARM_AFTER_ATTEMPTS + 2):
        rig.clock.advance(seconds=policy.retry_delay(attempt - 1).total_seconds() + 1)
        rig.tick()
        taken = rig.site_runs()
        assert [c["op"] for c in taken] == ["CLOSE"], attempt
        ids.append(taken[0]["command_id"])
    assert len(set(ids)) == len(ids)  # a fresh id per attempt
    stuck = [e for e in estore.events_of(Subject.meter(meter)) if e.type == "command_failing"]
    assert len(stuck) == 1 and stuck[0].status == "to_notify"
    assert stuck[0].data["attempts"] == policy.ALARM_AFTER_ATTEMPTS
    rig.site.meters[meter].silent = False  # the electrician fixes the wiring
    rig.clock.advance(hours=1)
    rig.tick()
    assert [c["op"] for c in rig.site_runs()] == ["CLOSE"]
    assert rig.relay(meter) == "closed"
    rig.clock.advance(minutes=3)  # the next look after a command settles
    rig.tick()
    assert rig.checked(acct)
    assert meters_store.load_meter(meter).relay_attempts == 0


class Crash(BaseException):
    """A process dying between two steps (not an error any handler would catch)."""


def die(*a, **kw):
    raise Crash


def test_crash_between_credit_and_close_converges_on_the_retried_notification(rig, monkeypatch):
    acct, meter = cut_account(rig)
    with monkeypatch.context() as m:
        m.setattr(Control, "_send", die)  # the CLOSE is written with the credit, then the process dies
        with pytest.raises(Crash):
            rig.pay(acct, 5000, "crash-1")
    assert LedgerService().balance(acct) == 4900 and rig.site_runs() == []
    # WeChat retries the notification: the credit is a duplicate, and the written CLOSE goes out at once
    assert rig.pay(acct, 5000, "crash-1").duplicate
    assert [c["op"] for c in rig.site_runs()] == ["CLOSE"]
    assert rig.relay(meter) == "closed" and LedgerService().balance(acct) == 4900


def test_crash_between_credit_and_close_converges_at_the_tick(rig, monkeypatch):
    acct, meter = cut_account(rig)
    with monkeypatch.context() as m:
        m.setattr(Control, "_send", die)
        with pytest.raises(Crash):
            rig.pay(acct, 5000, "crash-2")
    assert rig.tick()["reconciled"] >= 1
    assert [c["op"] for c in rig.site_runs()] == ["CLOSE"]
    assert rig.relay(meter) == "closed"


def test_a_meter_that_moved_while_the_credit_was_planned_still_gets_its_close(rig, monkeypatch):
    """The CLOSE joins the credit's transaction on the meter as read; if another issuer moved
    the meter in between, the credit alone lands and the CLOSE follows the usual way."""
    acct, meter = cut_account(rig)
    original = Control._relay_meters
    moved = {"n": 0}

    def read_then_move(self, *args):
        out = original(self, *args)
        if not moved["n"]:  # the reconciler (another process) issues its own CLOSE right after our read
            moved["n"] += 1
            other = Control(LedgerService(clock=rig.clock), rig.clock)
            other._issue_relay(meters_store.load_meter(meter), policy.CLOSE, "reconcile:1", "control", 1)
        return out

    monkeypatch.setattr(Control, "_relay_meters", read_then_move)
    entry = rig.pay(acct, 5000, "moved-1")
    assert not entry.duplicate and moved["n"] == 1
    assert LedgerService().balance(acct) == 4900
    assert [c["op"] for c in rig.site_runs()] == ["CLOSE"]
    assert rig.relay(meter) == "closed"


def test_crash_between_debit_and_trip_converges_at_the_tick(rig, monkeypatch):
    acct = rig.w.account(opening=500)
    meter = rig.meter(acct)
    rig.use(meter, "0")
    rig.site.meters[meter].total += 6
    rig.clock.advance(hours=1)
    rig.site.send_readings([rig.site.meters[meter].reading(rig.clock.now)], rig.clock.now)
    with monkeypatch.context() as m:
        m.setattr(Control, "apply", die)
        rig.deliver_crashing()
    assert LedgerService().balance(acct) == -100
    assert LedgerService().state(acct, fresh=True).control["cut_state"] == "cut"
    rig.deliver()  # SQS redelivers the reading: a duplicate, billed once
    assert LedgerService().balance(acct) == -100
    assert rig.site_runs() == []
    rig.tick()
    assert [c["op"] for c in rig.site_runs()] == ["TRIP"]
    assert rig.relay(meter) == "open"
    assert LedgerService().verify(acct)["ok"]


def test_a_relay_closed_by_hand_is_tripped_again(rig):
    acct, meter = cut_account(rig)
    rig.site.meters[meter].relay_closed = True  # somebody bridges the relay on site
    rig.use(meter, "1")
    assert rig.relay(meter) == "closed"  # what the meter reported
    rig.tick()
    assert [c["op"] for c in rig.site_runs()] == ["TRIP"]
    assert rig.relay(meter) == "open"


def test_the_cloud_records_only_relay_states_a_meter_reported(rig):
    acct = rig.w.account(opening=500)
    meter = rig.meter(acct)
    assert rig.relay(meter) == "unknown"
    c = rig.control.issue(meter, "TRIP", "admin:1", "admin")
    assert rig.relay(meter) == "unknown"  # an order is not a state
    rig.site.send(rig.site.message("command_result", rig.clock.now, command_id=c.command_id, meter_id=meter,
                                   status="applied"))  # a result without a read-back
    rig.deliver()
    assert rig.relay(meter) == "unknown"
    rig.use(meter, "0")  # the poll reads the relay: closed (the stand-in never got the TRIP)
    assert rig.relay(meter) == "closed"


def test_keep_supply_meter_and_meter_side_meters_are_not_tripped(rig):
    from core.store import directory as dstore

    acct = rig.w.account(opening=500)
    kept = rig.meter(acct)
    dstore.set_meter_keep_supply(kept, True)
    other = rig.meter(acct)
    rig.use(kept, "0")
    rig.use(other, "0")
    rig.use(other, "6")
    taken = rig.site_runs()
    assert [(c["op"], c["meter_id"]) for c in taken] == [("TRIP", other)]
    rig.use(kept, "1")
    rig.tick()
    assert rig.site_runs() == []
    assert rig.relay(kept) == "closed" and rig.relay(other) == "open"
    rig.clock.advance(minutes=3)  # the next look after a command settles
    rig.tick()
    assert rig.checked(acct)


# --- meter-side money ---------------------------------------------------------------------


def money(rig: Rig, acct: str, meter: str) -> tuple[int, int]:
    return LedgerService().balance(acct), rig.site.meters[meter].balance


def test_a_late_recharge_result_moves_the_money_once(rig):
    acct = rig.w.account(opening=0)
    meter = rig.meter(acct, billing_mode="meter")
    rig.pay(acct, 5000, "ms-1")
    # the site applies purchase 1 but its result is held up (the cloud is unreachable)
    first = rig.site.take_commands(at=rig.clock.now)
    assert [(c["op"], c["args"]) for c in first] == [("RECHARGE", {"amount": 5000, "purchase_count": 1})]
    held = drain_held(rig)
    rig.clock.advance(hours=2)
    result = rig.tick()  # purchase 1 expired without a result: sent again, same count, same amount
    assert result["expired"] >= 1
    again = rig.site.take_commands(at=rig.clock.now)
    assert [(c["op"], c["args"]) for c in again] == [("RECHARGE", {"amount": 5000, "purchase_count": 1})]
    assert again[0]["command_id"] != first[0]["command_id"]
    rig.deliver()  # "already applied"
    replay(rig, held)  # and now the late result of the first
    assert money(rig, acct, meter) == (0, 5000)
    transfers = [e for e in LedgerService().entries(acct)[0] if e.kind == "meter_transfer"]
    assert [(e.entry_id, e.amount) for e in transfers] == [(f"meter:{meter}:1", -5000)]
    # the next payment is purchase 2, of its own amount
    rig.pay(acct, 1000, "ms-2")
    assert [(c["args"]) for c in rig.site_runs()] == [{"amount": 1000, "purchase_count": 2}]
    assert money(rig, acct, meter) == (0, 6000)
    rig.clock.advance(minutes=3)  # the next look after a command settles
    rig.tick()
    assert rig.checked(acct)
    assert LedgerService().verify(acct)["ok"]


def test_payments_while_a_purchase_is_pending_wait_for_it(rig):
    acct = rig.w.account(opening=0)
    meter = rig.meter(acct, billing_mode="meter")
    rig.pay(acct, 3000, "mp-1")
    rig.pay(acct, 2000, "mp-2")  # purchase 1 is still out: no second purchase with a guessed count
    taken = rig.site_runs()
    assert [c["args"] for c in taken] == [{"amount": 3000, "purchase_count": 1}]
    assert money(rig, acct, meter) == (2000, 3000)
    rig.tick()
    assert [c["args"] for c in rig.site_runs()] == [{"amount": 2000, "purchase_count": 2}]
    assert money(rig, acct, meter) == (0, 5000)


def drain_held(rig: Rig) -> list[dict]:
    """Take what waits on the uplink queue without delivering it (a result held up)."""
    import boto3

    sqs = boto3.client("sqs")
    out = []
    while True:
        batch = sqs.receive_message(QueueUrl=uplink_url(), MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(m)
            sqs.delete_message(QueueUrl=uplink_url(), ReceiptHandle=m["ReceiptHandle"])


def replay(rig: Rig, held: list[dict]) -> None:
    import boto3

    sqs = boto3.client("sqs")
    for m in held:
        sqs.send_message(QueueUrl=uplink_url(), MessageBody=m["Body"])
    rig.deliver()
