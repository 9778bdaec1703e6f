"""The notification pipeline end to end through the emulators: events recorded in DynamoDB
(moto over HTTP) -> the events table's stream -> notify_route's handler -> the notifications
queue (SQS) -> notify_send's handler -> the WeChat API emulator, the SMS emulator, SES.

Time is compressed with an injected clock: a job held invisible for its backoff or for the
end of quiet hours is made visible again at once (the hold it asked for is recorded and
checked), and the clock is moved instead."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest

from core.domain.alarm_prefs import AlarmPrefs
from core.domain.events import Event, Subject
from core.domain.ledger import format_time
from core.integrations import queues
from core.integrations.queues import uplink_url
from core.services import directory, notify
from core.services.control import Control
from core.services.ingest import Ingest
from core.store import consents, deliveries, notify_recipients, tenant_money
from core.store import events as events_store
from functions import notify_route, notify_send, uplink_consumer
from infra.fakes.sitesim import SimMeter, drain_uplink
from infra.local.channelstack import ChannelStack
from infra.local.paystack import PayStack
from infra.local.scheduler import StreamReader, drain_stream, load_functions, table_of_resource
from testkit.builders import Clock, Metered, World, uid

STREAM = next(e["stream"] for e in load_functions()["notifyRoute"]["events"] if "stream" in e)
PHONE = "+8613800000000"  # the World's tenant (13800000000)


@dataclass
class Rig:
    world: World
    account: str
    openid: str
    clock: Clock
    pay: PayStack
    channels: ChannelStack
    reader: StreamReader
    holds: list[tuple[str, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def record(self, e: Event) -> None:
        assert events_store.put_event(e)

    def route(self, twice: bool = False) -> int:
        """The stream's new records to the router (twice: the batch redelivered, as Lambda
        does after a timeout)."""
        if twice:
            self.reader.read(100)
            again = list(self.reader.pending)
            drain_stream(self.reader, notify_route.handler, STREAM, errors=self.errors)
            self.reader.pending = again
        return drain_stream(self.reader, notify_route.handler, STREAM, errors=self.errors)

    def send(self, passes: int = 1) -> int:
        """`passes` receives of the queue by the sender (a job held for later comes back in the next)."""
        return drain_uplink(queues.notifications_url(), notify_send.handler, max_batches=passes)

    def hold(self, receipt: str, seconds: int) -> None:
        # what the sender asked for is recorded; the message comes back at once (time is the clock's)
        self.holds.append((receipt, seconds))
        boto3.client("sqs").change_message_visibility(QueueUrl=queues.notifications_url(), ReceiptHandle=receipt,
                                                      VisibilityTimeout=0)

    def log(self) -> list:
        return deliveries.of_account(self.account)

    def wechat(self, kind: str | None = None) -> list[dict]:
        return self.pay.api.messages_to(self.openid, kind)

    def sms(self) -> list:
        return self.channels.sms.delivered(PHONE)


@pytest.fixture
def rig(aws, monkeypatch):
    pay = PayStack().start()
    pay.apply_env()
    channels = ChannelStack(pay.api).start()
    channels.apply_env()
    try:
        # the queue may hold jobs of an earlier test in this emulator: start empty
        sqs = boto3.client("sqs")
        while batch := sqs.receive_message(QueueUrl=queues.notifications_url(), MaxNumberOfMessages=10,
                                           VisibilityTimeout=600).get("Messages", []):
            for m in batch:
                sqs.delete_message(QueueUrl=queues.notifications_url(), ReceiptHandle=m["ReceiptHandle"])
        w = World()
        account = w.account(opening=10_000)
        openid = uid("o")
        directory.bind_openid(w.tenant_id, openid)
        clock = Clock(datetime(2026, 5, 1, 2, 0, tzinfo=UTC))  # 10:00 Beijing time
        r = Rig(w, account, openid, clock, pay, channels, StreamReader(table_of_resource("EventsTable")))
        monkeypatch.setattr(notify, "_notify", notify.Notify(clock=clock, hold=r.hold))
        yield r
    finally:
        channels.stop()
        pay.stop()


def low_balance(r: Rig, n: int = 1, level: int = 2, balance: int = 1500) -> Event:
    return Event(Subject.account(r.account), f"alarm:{level}:{n}:1", "low_balance", r.world.property_id,
                 format_time(r.clock()), status="to_notify",
                 data={"level": level, "threshold": 2000, "balance": balance, "occurrence": 1,
                       "account_id": r.account})


def statuses(r: Rig) -> dict[tuple[str, str], str]:
    return {(d.kind, d.channel): d.status for d in r.log()}


# -- every event type, once, whatever is duplicated -----------------------------------------------

TENANT_EVENTS = {
    "low_balance": lambda r: low_balance(r),
    "cut_imminent": lambda r: Event(Subject.account(r.account), "cut_imminent:x", "cut_imminent", r.world.property_id,
                                    format_time(r.clock()), data={"account_id": r.account, "balance": -1200,
                                                                  "due_at": "2026-05-01T04:00:00.000000Z"}),
    "supply_cut": lambda r: Event(Subject.meter("m-1"), "command:trip-1", "command", r.world.property_id,
                                  format_time(r.clock()), data={"op": "TRIP", "cause": "entry:use:m-1:9",
                                                                "account_id": r.account}),
    "supply_restored": lambda r: Event(Subject.meter("m-1"), "command:close-1", "command", r.world.property_id,
                                       format_time(r.clock()), data={"op": "CLOSE", "cause": "entry:pay:tx",
                                                                     "account_id": r.account}),
    "payment_received": lambda r: Event(Subject.notice(r.account), "paid:tx1", "payment_credited",
                                        r.world.property_id, format_time(r.clock()),
                                        data={"amount": 5000, "balance_after": 6500, "account_id": r.account}),
    "refund_done": lambda r: Event(Subject.notice(r.account), "refund_done:rf1", "refund_done", r.world.property_id,
                                   format_time(r.clock()), data={"amount": 300, "account_id": r.account}),
    "meter_offline_long": lambda r: Event(Subject.meter("m-1"), "offline_long:m-1:x", "meter_offline_long",
                                          r.world.property_id, format_time(r.clock()),
                                          data={"account_id": r.account, "meter_id": "m-1",
                                                "last_seen": "2026-04-29T02:00:00.000000Z"}),
}


@pytest.mark.parametrize("key", sorted(TENANT_EVENTS))
def test_each_tenant_event_is_sent_once_per_channel_under_duplicates(rig, key):
    # the tenant chose the official account and SMS; a subscribe grant waits too
    tenant_money.put_prefs(rig.openid, rig.account, AlarmPrefs(None, ("subscribe", "template", "sms")), "x")
    consents.grant(rig.openid, key, 3)
    rig.record(TENANT_EVENTS[key](rig))
    assert rig.route(twice=True) >= 1  # the stream batch delivered twice: jobs queued twice
    rig.send()
    rig.send()
    assert len(rig.wechat("subscribe")) == 1 and len(rig.wechat("template")) == 1
    assert len(rig.sms()) == 1
    assert statuses(rig) == {(key, "subscribe"): "sent", (key, "template"): "sent", (key, "sms"): "sent"}
    assert consents.counts(rig.openid)[key] == 2  # one grant spent, not two
    assert not rig.errors


ADMIN_EVENTS = {
    "meter_offline": lambda r: Event(Subject.meter("m-9"), "offline:x", "meter_offline", r.world.property_id,
                                     format_time(r.clock()), data={"last_seen": "2026-05-01T01:00:00.000000Z"}),
    "bridge_offline": lambda r: Event(Subject.site("s-1"), "offline:x", "bridge_offline", r.world.property_id,
                                      format_time(r.clock()), data={"site_id": "s-1", "site_name": "一号网关"}),
    "command_failing": lambda r: Event(Subject.meter("m-9"), "supply_stuck:c", "command_failing", r.world.property_id,
                                       format_time(r.clock()), data={"op": "TRIP", "attempts": 3}),
    "anomaly_review": lambda r: Event(Subject.meter("m-9"), "anomaly:5:gap", "anomaly", r.world.property_id,
                                      format_time(r.clock()), status="open", data={"kind": "gap"}),
    "reconcile_mismatch": lambda r: Event(Subject.reconcile("2026-04-30"), f"day:{r.world.property_id}",
                                          "reconcile_day", r.world.property_id, format_time(r.clock()),
                                          data={"bill_date": "2026-04-30", "count": 2, "orders": ["o1", "o2"]}),
    "refund_request": lambda r: Event(Subject.account(r.account), "refund_request:rr1", "refund_request",
                                      r.world.property_id, format_time(r.clock()),
                                      data={"account_id": r.account, "amount": 300, "room_id": "R001"}),
}


@pytest.mark.parametrize("key", sorted(ADMIN_EVENTS))
def test_each_admin_event_reaches_the_propertys_recipients_once(rig, key):
    admin_openid, admin_phone, admin_mail = uid("oa"), "+8613900000001", f"{uid('ops')}@example.cn"
    assert notify_recipients.set_recipients(rig.world.property_id, key,
                                            [("template", admin_openid), ("sms", admin_phone),
                                             ("email", admin_mail)], 0, "test", "x")
    rig.record(ADMIN_EVENTS[key](rig))
    rig.route(twice=True)
    rig.send()
    assert len(rig.pay.api.messages_to(admin_openid, "template")) == 1
    assert len(rig.channels.sms.delivered(admin_phone)) == 1
    got = {(d.kind, d.channel): d.status for d in deliveries.of_property(rig.world.property_id)}
    assert got == {(key, "template"): "sent", (key, "sms"): "sent", (key, "email"): "sent"}
    assert not rig.pay.api.messages_to(rig.openid)  # the tenant hears nothing of it


def test_a_remaining_alarm_repeats_at_most_once_a_day(rig):
    tenant_money.put_prefs(rig.openid, rig.account, AlarmPrefs(None, ("template",)), "x")
    rig.record(low_balance(rig, 1))
    rig.clock.advance(hours=3)
    rig.record(low_balance(rig, 2, balance=1400))  # crossed again the same day (a payment, then usage)
    rig.route()
    rig.send()
    assert len(rig.wechat("template")) == 1
    rig.clock.advance(hours=24)
    rig.record(low_balance(rig, 3, balance=1300))  # the next day: repeated
    rig.route()
    rig.send()
    assert len(rig.wechat("template")) == 2


# -- quiet hours, consent, failures -------------------------------------------------------------


def test_quiet_hours_hold_a_reminder_until_morning_but_not_a_cut_warning(rig):
    tenant_money.put_prefs(rig.openid, rig.account, AlarmPrefs(None, ("template",), "22:00", "07:00"), "x")
    rig.clock.now = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)  # 23:00 Beijing
    rig.record(low_balance(rig))
    rig.record(TENANT_EVENTS["cut_imminent"](rig))
    rig.route()
    rig.send()
    sent = [m["template_id"] for m in rig.wechat("template")]
    assert len(sent) == 1 and "cut_imminent" in sent[0]  # the cut warning went at once
    assert statuses(rig)[("low_balance", "template")] == "quiet_deferred"
    assert rig.holds[-1][1] == 8 * 3600  # held until 07:00: eight hours
    rig.clock.now = datetime(2026, 5, 1, 22, 59, tzinfo=UTC)  # 06:59: still quiet
    rig.send()
    assert len(rig.wechat("template")) == 1 and rig.holds[-1][1] == 60
    rig.clock.now = datetime(2026, 5, 1, 23, 1, tzinfo=UTC)  # 07:01
    rig.send()
    assert len(rig.wechat("template")) == 2
    assert statuses(rig)[("low_balance", "template")] == "sent"


def test_no_subscribe_consent_means_not_sent_and_logged(rig):
    # no preferences: the catalog's default channel for a receipt is the subscribe message
    rig.record(TENANT_EVENTS["payment_received"](rig))
    rig.route()
    rig.send()
    assert rig.wechat() == []
    (d,) = rig.log()
    assert (d.channel, d.status, d.attempts) == ("subscribe", "no_consent", 1)
    rig.send()  # nothing comes back for it
    assert rig.wechat() == [] and rig.log()[0].status == "no_consent"


def test_provider_5xx_is_retried_with_backoff_then_sent(rig):
    tenant_money.put_prefs(rig.openid, rig.account, AlarmPrefs(None, ("sms",)), "x")
    rig.channels.sms.fail_next("http_500", 2)
    rig.record(low_balance(rig))
    rig.route()
    rig.send(passes=3)  # 500, 500 (held 30 s, then 60 s), then sent
    assert [s for _, s in rig.holds] == [30, 60]
    (d,) = rig.log()
    assert (d.status, d.attempts) == ("sent", 3)
    assert len(rig.sms()) == 1


def test_a_rejection_is_recorded_once_without_a_retry_storm(rig):
    tenant_money.put_prefs(rig.openid, rig.account, AlarmPrefs(None, ("sms",)), "x")
    rig.channels.sms.refuse(PHONE, "LimitExceeded.PhoneNumberDailyLimit")
    before = rig.channels.sms.requests
    rig.record(low_balance(rig))
    rig.route()
    rig.send()
    rig.send()
    (d,) = rig.log()
    assert (d.status, d.attempts) == ("failed", 1)
    assert rig.channels.sms.requests - before == 1 and rig.holds == []


def test_a_transient_failure_that_lasts_fails_after_the_last_attempt(rig):
    tenant_money.put_prefs(rig.openid, rig.account, AlarmPrefs(None, ("sms",)), "x")
    rig.channels.sms.fail_next("http_503", 50)
    rig.record(low_balance(rig))
    rig.route()
    rig.send(passes=10)
    (d,) = rig.log()
    assert (d.status, d.attempts) == ("failed", 6)
    assert [s for _, s in rig.holds] == [30, 60, 120, 240, 480]


def test_a_broken_channel_never_delays_a_cut_a_credit_or_a_restore(rig, monkeypatch):
    """The SMS provider is down while usage cuts an account and a payment credits and
    restores it: the money and control path never touches the notification pipeline (a
    call to the dead provider would take its 5 s timeout); the messages follow on their own."""
    ingest = Ingest(clock=rig.clock, max_gap=timedelta(days=30))
    control = Control(ingest.ledger, rig.clock)
    ingest.control = control
    monkeypatch.setattr(uplink_consumer, "ingest", ingest)
    m = Metered()
    site = m.sim()
    acct = m.account(opening=500)
    meter = m.meter(acct)
    site.add(SimMeter(meter))
    openid = uid("o")
    directory.bind_openid(m.tenant_id, openid)
    tenant_money.put_prefs(openid, acct, AlarmPrefs(None, ("template", "sms")), "x")
    rig.channels.sms.stop()  # connections refused from now on

    def use(kwh: str) -> float:
        sim = site.meters[meter]
        if sim.relay_closed:
            sim.total += Decimal(kwh)
        rig.clock.advance(hours=1)
        site.send_readings([sim.reading(rig.clock.now)], rig.clock.now)
        started = time.perf_counter()
        drain_uplink(uplink_url(), uplink_consumer.handler)
        return time.perf_counter() - started

    use("0")
    assert use("6") < 1.0  # 6.00 used of 5.00: cut at once
    assert [c["op"] for c in site.take_commands(at=rig.clock.now)] == ["TRIP"]
    drain_uplink(uplink_url(), uplink_consumer.handler)
    started = time.perf_counter()
    entry = control.credit(account_id=acct, entry_id=f"pay:{uid('tx')}", kind="recharge", amount=1000,
                           cause="order:x", actor="wechatpay")
    assert time.perf_counter() - started < 1.0 and entry.balance_after == 900
    assert [c["op"] for c in site.take_commands(at=rig.clock.now)] == ["CLOSE"]  # restored at once
    rig.route()
    rig.send()
    got = {(d.kind, d.channel): d.status for d in deliveries.of_account(acct)}
    assert got[("supply_cut", "template")] == "sent" and got[("supply_restored", "template")] == "sent"
    assert got[("supply_cut", "sms")] == "retrying" and got[("supply_restored", "sms")] == "retrying"
    assert len(rig.pay.api.messages_to(openid, "template")) == len([k for k in got if k[1] == "template"])
