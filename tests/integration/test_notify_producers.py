"""Issue 13's producers (docs/notifications.md "Producers and logs"): every condition a person
is told about is recorded as an event, once, where it is detected — through the real paths:
the tenant API and WeChat Pay emulator over HTTP, the uplink queue fed by a site stand-in, the
control tick and the outage watch on injected clocks, all against the emulator. Expected
values are worked by hand in the comments."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from core.domain.events import Subject
from core.domain.ledger import format_time
from core.services import control as control_service
from core.services import outages
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.payments import Payments
from core.store import deliveries as dstore
from core.store import events as estore
from core.store import meters as meters_store
from core.store import sites as sites_store
from functions import uplink_consumer
from testkit.builders import Clock
from tests.integration.test_payments import Stack, paid_order
from tests.integration.test_tenant_money import LIMITS, Home, T, console_session


@pytest.fixture
def stack(aws, monkeypatch):
    """test_tenant_money's stack: the tenant API, WeChat Pay emulator and the uplink consumer."""
    for k, v in LIMITS.items():
        monkeypatch.setenv(k, v)
    s = Stack(monkeypatch)
    monkeypatch.setattr(uplink_consumer, "ingest", Ingest(max_gap=timedelta(days=30)))
    yield s
    s.stop()


def of_type(subject: Subject, kind: str) -> list:
    return [e for e in estore.events_of(subject) if e.type == kind]


def until(found, seconds: float = 10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = found()
        if got:
            return got
        time.sleep(0.1)
    return found()


def test_a_payment_receipt_carries_the_amount_and_the_new_balance(stack):
    h = Home(stack, opening=500)
    no = h.pay(5000)  # 5.00 + 50.00 = 55.00
    [e] = of_type(Subject.notice(h.account), "payment_credited")
    assert (e.status, e.property_id) == ("to_notify", h.w.property_id)
    assert {k: e.data[k] for k in ("amount", "balance_after", "account_id", "out_trade_no")} == \
        {"amount": 5000, "balance_after": 5500, "account_id": h.account, "out_trade_no": no}
    # the sweep querying the paid order again credits nothing and records nothing more
    Payments(clock=lambda: datetime.now(UTC) + timedelta(minutes=10)).sweep()
    assert len(of_type(Subject.notice(h.account), "payment_credited")) == 1


def test_a_grace_delay_records_cut_imminent_once_with_its_time(stack):
    h = Home(stack, opening=500)
    control_service.set_protection(h.w.property_id, {"night": None, "weekends": False, "holidays": False,
                                                     "grace_minutes": 30})
    h.use("0")
    before = datetime.now(UTC)
    h.use("6")  # 5.00 - 6 kWh x 1.00 = -1.00, below the cut line 0.00: pending for 30 minutes
    after = datetime.now(UTC)
    assert h.site.take_commands() == []  # not cut yet
    [e] = of_type(Subject.account(h.account), "cut_imminent")
    due = datetime.fromisoformat(e.data["due_at"].replace("Z", "+00:00"))
    assert before + timedelta(minutes=30) <= due <= after + timedelta(minutes=30)
    assert (e.status, e.data["balance"], e.data["cut_line"], e.data["account_id"]) == \
        ("to_notify", -100, 0, h.account)
    h.use("1")  # further below the line while still pending: no second warning
    assert len(of_type(Subject.account(h.account), "cut_imminent")) == 1


def test_a_refund_request_tells_the_admins_and_a_refund_done_tells_the_tenant(stack):
    h = Home(stack, opening=0)
    order = h.pay(3000)
    r = requests.post(f"{stack.base}/api/v1/accounts/{h.account}/refund-requests",
                      json={"amount": 2000, "reason": "退租"}, headers=h.auth, timeout=T)
    assert r.status_code == 201, r.text
    req = r.json()
    [e] = of_type(Subject.account(h.account), "refund_request")
    assert (e.event_id, e.status, e.property_id) == (f"refund_request:{req['request_id']}", "to_notify",
                                                     h.w.property_id)
    assert (e.data["amount"], e.data["request_id"], e.data["account_id"], e.data["reason"]) == \
        (2000, req["request_id"], h.account, "退租")

    owner, token, _ = console_session(stack, h.w.property_id)
    action = f"{stack.base}/p/{h.w.property_id}/refunds/{h.account}/{req['request_id']}/approve"
    assert owner.post(action, data={"csrf_token": token}, timeout=T, allow_redirects=False).status_code == 302
    [refund] = stack.pay.refunds_for(order)  # PROCESSING at WeChat until it finishes
    assert of_type(Subject.notice(h.account), "refund_done") == []
    stack.pay.complete_refund(refund["out_refund_no"], "SUCCESS", duplicates=2)  # notified three times
    assert stack.pay.wait_for_deliveries(10)
    [d] = until(lambda: of_type(Subject.notice(h.account), "refund_done"))
    assert (d.event_id, d.status, d.data["amount"], d.data["account_id"]) == \
        (f"refund_done:{refund['out_refund_no']}", "to_notify", 2000, h.account)
    Payments(clock=lambda: datetime.now(UTC) + timedelta(minutes=10)).sweep()  # nothing is recorded twice
    assert len(of_type(Subject.notice(h.account), "refund_done")) == 1


def test_a_silent_bridge_is_reported_once_per_outage_and_its_return_recorded(stack):
    h = Home(stack)
    site = h.site.site_id
    h.site.send(h.site.message("heartbeat", datetime.now(UTC)))
    h.deliver()
    heard = sites_store.last_heartbeat(site).received_at
    at = format_time(heard)
    # 2 minutes of silence is within the 3-minute window; 3 minutes and a second is not
    outages.check(Clock(heard + timedelta(minutes=2)))
    assert of_type(Subject.site(site), "bridge_offline") == []
    outages.check(Clock(heard + timedelta(minutes=3, seconds=1)))
    outages.check(Clock(heard + timedelta(minutes=30)))  # still silent: nothing new
    [e] = of_type(Subject.site(site), "bridge_offline")
    assert (e.event_id, e.status, e.property_id, e.data["site_id"], e.data["last_seen"]) == \
        (f"offline:{at}", "to_notify", h.w.property_id, site, at)
    assert sites_store.offline_since(site) == (h.w.property_id, at)

    h.site.send(h.site.message("heartbeat", datetime.now(UTC)))
    h.deliver()
    [back] = of_type(Subject.site(site), "bridge_online")
    assert (back.event_id, back.data["offline_since"]) == (f"online:{at}", at)
    assert sites_store.offline_since(site) is None
    assert sites_store.last_heartbeat(site).received_at > heard  # the heartbeat was kept
    # a second outage is a second event
    heard2 = sites_store.last_heartbeat(site).received_at
    outages.check(Clock(heard2 + timedelta(minutes=4)))
    assert len(of_type(Subject.site(site), "bridge_offline")) == 2


def test_a_meter_silent_past_the_gap_limit_tells_its_tenants_once(stack):
    h = Home(stack)
    h.use("0")
    start = datetime.now(UTC)
    Control(clock=Clock(start + timedelta(minutes=31))).tick()  # offline after 30 minutes
    [off] = of_type(Subject.meter(h.meter), "meter_offline")
    assert (off.data["account_id"], off.data["meter_id"]) == (h.account, h.meter)
    last = datetime.fromisoformat(off.data["last_seen"].replace("Z", "+00:00"))
    outages.check(Clock(last + timedelta(hours=5, minutes=59)))  # the limit is 6 hours
    assert of_type(Subject.meter(h.meter), "meter_offline_long") == []
    outages.check(Clock(last + timedelta(hours=6, minutes=1)))
    outages.check(Clock(last + timedelta(hours=9)))
    [e] = of_type(Subject.meter(h.meter), "meter_offline_long")
    assert (e.event_id, e.status, e.data["account_id"], e.data["last_seen"], e.data["hours"]) == \
        (f"offline_long:{off.data['last_seen']}", "to_notify", h.account, off.data["last_seen"], 6.0)
    h.use("0")  # it reads again: online, watched again
    assert meters_store.load_meter(h.meter).online


def test_reconciliation_records_one_event_per_property_and_day(stack):
    w, _, differs = paid_order(stack, 6000)
    stack.pay.set_bill_amount(differs, 5999)
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    Payments().reconcile(day)
    Payments().reconcile(day)  # a rerun records nothing new
    mine = [e for e in of_type(Subject.reconcile(day), "reconcile_day") if e.property_id == w.property_id]
    assert [e.event_id for e in mine] == [f"day:{w.property_id}"]
    d = mine[0].data
    assert (d["count"], d["kinds"], d["their_fen"], d["our_fen"], d["orders"]) == \
        (1, {"amount_differs": 1}, 5999, 6000, [differs])


def test_a_tenant_lists_only_their_own_messages_about_their_account(stack):
    from core.domain import notifications as n

    h = Home(stack)
    roommate = f"o{uuid.uuid4().hex[:27]}"
    now = datetime.now(UTC)

    def log(kind: str, channel: str, to: str, status: str, at: datetime, account: str = h.account) -> str:
        did = n.delivery_id(f"test:{uuid.uuid4().hex}", channel, to)
        assert dstore.defer(did, property_id=h.w.property_id, account_id=account, event_ref=f"account#{account}/x",
                            kind=kind, channel=channel, recipient=n.mask(channel, to), now=at, until=at)
        dstore.finish(did, status, at)
        return did

    mine_old = log("low_balance", n.SUBSCRIBE, h.openid, n.SENT, now - timedelta(minutes=2))
    mine_new = log("cut_imminent", n.TEMPLATE, h.openid, n.RETRYING, now - timedelta(minutes=1))
    log("low_balance", n.SUBSCRIBE, roommate, n.SENT, now)  # a roommate's
    log("refund_request", n.TEMPLATE, h.openid, n.SENT, now)  # an admin message (even to the same openid)
    r = h.get(f"/accounts/{h.account}/deliveries")
    assert r.status_code == 200, r.text
    rows = r.json()["deliveries"]
    assert [(x["delivery_id"], x["kind_name"], x["status_name"]) for x in rows] == \
        [(mine_new, "即将停电提醒", "重试中"), (mine_old, "余额不足提醒", "已发送")]
    assert rows[0]["recipient"] == f"{h.openid[:4]}…{h.openid[-4:]}"
    other = Home(stack)
    assert other.get(f"/accounts/{h.account}/deliveries").status_code == 404  # not theirs: as if missing
    assert h.get(f"/accounts/{h.account}/deliveries?limit=0").status_code == 400
