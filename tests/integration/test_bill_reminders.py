"""Bill notices through the notification pipeline (docs/billing.md "Reminders",
docs/notifications.md), end to end against the emulators: a bill issued by an admin (the
console's JSON API) or by month-end records its `bill_issued` event in the issuing write; the
daily late-fee message's sweep records `bill_due_soon` and `bill_overdue`; the events table's
stream feeds notify_route's handler, the sender sends through the WeChat API emulator, whose
received messages are checked. Dates are injected (clocks and the sweep's day), never slept.

Hand-worked values:
  admin path: rent 1000.00 yuan, due 2026-06-15, issued by the admin.
    sweep 12 June: due in 3 days -> 账单即将到期 1000.00, 2026年6月15日; 13 June: nothing new.
    late fee rule 1.00 yuan a day, capped at 1.50 a bill; the fees run before the reminders:
    16 June (1 day late): fee 1.00 -> 已逾期 1 天, 1001.00 owed (含滞纳金 1.00).
    23 June (8 days late; 17-22 not run, not back-filled): fee 0.50 (the cap) -> 1001.50 owed.
    paid 1001.50 at the counter -> 30 June (15 days late): nothing.
  month-end at 00:05 on 1 June 2026 (May closed, June charged), rooms 30.00 m²:
    物业费 30.00 × 2.35 = 70.50, deducted, due 1 June + 15 = 2026-06-16;
    租金 500.00 monthly, billed, room B1/R001 only, due 1 June + 10 = 2026-06-11.
    R001 (the rig's tenant, 100.00): fee deducted -> 29.50; the rent's line issues the bill:
      账单已出 2026年6月, 500.00, 2026年6月11日.
    R900 (another tenant, 30.00): 30.00 deducted, 40.50 on the bill (a draft) -> issued by
      month-end: 账单已出 2026年6月, 40.50, 2026年6月16日.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from core.domain.charges import Charge
from core.domain.events import Subject
from core.domain.usage import LOCAL_TZ
from core.services import charge_items, directory
from core.services.bills import Bills
from core.services.month_end import BUILDING, LATE_FEES, MonthEnd, message
from core.store import events as events_store
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import uid
from tests.integration import test_notifications
from tests.integration.test_notifications import Rig

rig = test_notifications.rig  # the pipeline's rig (emulators, stream reader, injected clock): a fixture

BILL_TYPES = ("bill_issued", "bill_due_soon", "bill_overdue")


def local(month: int, day: int, h: int = 0, mi: int = 10) -> datetime:
    return datetime(2026, month, day, h, mi, tzinfo=LOCAL_TZ).astimezone(UTC)


def bill_events(account: str) -> list[str]:
    return sorted(e.event_id for e in events_store.events_of(Subject.notice(account)) if e.type in BILL_TYPES)


def messages(r: Rig, openid: str, key: str) -> list[dict]:
    """The official-account template messages of a catalog kind the openid received: {field: value}."""
    return [{k: v["value"] for k, v in m["data"].items()} for m in r.pay.api.messages_to(openid, "template")
            if m["template_id"].endswith(f"-{key}")]


def deliver(r: Rig) -> None:
    r.route(twice=True)  # the stream batch handed over twice, as Lambda does after a timeout
    r.send()
    r.send()
    assert not r.errors


def console(pid: str):
    c = create_app().test_client()
    admins.logged_in(c, admins.make_admin(pid, role="owner"))
    return c


def console_api(c, url: str):
    return c.post(url, json={}, headers={"X-CSRFToken": admins.csrf_token(c, "/account/password")})


def test_an_admin_issued_bill_is_told_once_then_reminded_due_soon_and_overdue_until_paid(rig):
    pid, a = rig.world.property_id, rig.account
    bills = Bills(clock=rig.clock)
    rent = Charge(a, pid, "2026-05", "item", "rent", 100000, "租金")
    bills.apply_charges([rent], actor="admin:test", due=date(2026, 6, 15))
    bill_id = f"{a}:2026-05"
    c = console(pid)
    base = f"/admin/api/properties/{pid}/bills/{bill_id}"
    assert console_api(c, f"{base}/confirm").status_code == 200
    assert bill_events(a) == []  # confirmed is not issued
    assert console_api(c, f"{base}/issue").status_code == 200
    assert console_api(c, f"{base}/issue").status_code == 409  # issued already: nothing more
    assert bill_events(a) == [f"bill_issued:{bill_id}"]
    deliver(rig)
    assert messages(rig, rig.openid, "bill_issued") == [
        {"thing1": "账单已出", "thing2": "2026年5月", "amount3": "1000.00元", "time4": "2026年6月15日"}]

    charge_items.set_late_fee_rule(pid, {"enabled": True, "kind": "fixed", "fixed": "1.00", "cap": "1.50"},
                                   "admin:test")

    def sweep(day: int, month: int = 6) -> dict:
        rig.clock.now = local(month, day)
        out = MonthEnd(clock=rig.clock).handle(message(LATE_FEES, pid, day=date(2026, month, day).isoformat()))
        deliver(rig)
        return out

    assert sweep(11)["reminders"] == 0  # 4 days left
    assert sweep(12)["reminders"] == 1
    assert messages(rig, rig.openid, "bill_due_soon") == [
        {"thing1": "账单即将到期", "amount2": "1000.00元", "time3": "2026年6月15日"}]
    assert sweep(13)["reminders"] == 0  # one due-soon per bill
    assert sweep(13)["reminders"] == 0  # the daily message redelivered
    assert len(messages(rig, rig.openid, "bill_due_soon")) == 1

    assert sweep(16) == {"status": "ok", "kind": "late_fees", "bills": 1, "posted": 1, "reminders": 1}
    assert sweep(16)["reminders"] == 0  # the daily message redelivered: nothing twice
    assert sweep(17)["reminders"] == 0
    assert sweep(23)["reminders"] == 1
    got = messages(rig, rig.openid, "bill_overdue")
    assert got == [{"thing1": "账单已逾期", "amount2": "1001.00元", "time3": "2026年6月15日", "number4": "1"},
                   {"thing1": "账单已逾期", "amount2": "1001.50元", "time3": "2026年6月15日", "number4": "8"}]
    bodies = [(d.kind, d.status) for d in rig.log() if d.channel == "template"]
    assert sorted(bodies) == [("bill_due_soon", "sent"), ("bill_issued", "sent"), ("bill_overdue", "sent"),
                              ("bill_overdue", "sent")]

    bills.record_payment(bill_id, "R-2026-0001", 100150, "cash", "admin:test")  # paid in full
    assert sweep(30)["reminders"] == 0  # 15 days after the due date, but paid: nothing
    assert bill_events(a) == sorted([f"bill_issued:{bill_id}", f"bill_due_soon:{bill_id}",
                                     f"bill_overdue:{bill_id}:2026-06-16", f"bill_overdue:{bill_id}:2026-06-23"])
    assert len(rig.pay.api.messages_to(rig.openid, "template")) == 4


def test_a_bill_paid_before_its_reminder_is_routed_is_not_told(rig):
    pid, a = rig.world.property_id, rig.account
    bills = Bills(clock=rig.clock)
    bills.apply_charges([Charge(a, pid, "2026-05", "item", "rent", 2000, "租金")], actor="admin:test",
                        due=date(2026, 6, 15))
    bill_id = f"{a}:2026-05"
    bills.transition(pid, bill_id, "confirm", "admin:test")
    bills.transition(pid, bill_id, "issue", "admin:test")
    deliver(rig)
    assert bills.remind(pid, date(2026, 6, 14)) == [f"bill_due_soon:{bill_id}"]  # recorded...
    bills.record_payment(bill_id, "R-1", 2000, "cash", "admin:test")  # ...and paid before the stream is read
    deliver(rig)
    assert len(messages(rig, rig.openid, "bill_issued")) == 1 and messages(rig, rig.openid, "bill_due_soon") == []
    assert [d.kind for d in rig.log()] == ["bill_issued", "bill_issued"]  # subscribe (no consent) + template


def test_month_end_issued_bills_are_told_once_each_and_only_to_their_own_tenant(rig):
    pid, mine = rig.world.property_id, rig.account  # room B1/R001, 100.00 yuan
    other_tenant, other_openid, other = uid("t"), uid("o"), uid("a")
    directory.register_tenant(pid, other_tenant, "另一租户", "13900000002")
    directory.add_room(pid, "B1", "F1", "R900", "R900", "30")
    directory.open_account(pid, other, "B1", "R900", other_tenant, "R900", opening_balance=3000)
    directory.bind_openid(other_tenant, other_openid)
    charge_items.create(pid, {"item_id": "fee", "name": "物业费", "category": "property_fee", "basis": "area",
                              "price": "2.35", "cycle": "month", "start": "2026-01-01", "mode": "deduct"},
                        "admin:test")
    charge_items.create(pid, {"item_id": "rent", "name": "租金", "category": "rent", "basis": "fixed",
                              "price": "500.00", "cycle": "month", "start": "2026-01-01", "mode": "bill",
                              "due_days": 10, "scope": "room", "scope_ids": ["B1/R001"]}, "admin:test")
    rig.clock.now = local(6, 1, 0, 5)
    me = MonthEnd(clock=rig.clock)
    done = me.handle(message(BUILDING, pid, period="2026-05", building_id="B1"))
    assert done["issued"] == 2
    assert bill_events(mine) == [f"bill_issued:{mine}:2026-06"]  # the rent's line issued it
    assert bill_events(other) == [f"bill_issued:{other}:2026-06"]  # a shortfall draft, issued by month-end
    deliver(rig)
    assert messages(rig, rig.openid, "bill_issued") == [
        {"thing1": "账单已出", "thing2": "2026年6月", "amount3": "500.00元", "time4": "2026年6月11日"}]
    assert messages(rig, other_openid, "bill_issued") == [
        {"thing1": "账单已出", "thing2": "2026年6月", "amount3": "40.50元", "time4": "2026年6月16日"}]

    rig.clock.advance(hours=5)  # month-end run again (the schedule's retry, a redelivered message)
    assert me.handle(message(BUILDING, pid, period="2026-05", building_id="B1"))["issued"] == 0
    deliver(rig)
    assert bill_events(mine) == [f"bill_issued:{mine}:2026-06"] and bill_events(other) == [
        f"bill_issued:{other}:2026-06"]
    assert len(messages(rig, rig.openid, "bill_issued")) == 1 and len(messages(rig, other_openid, "bill_issued")) == 1
    # neither tenant heard anything of the other's bill
    for openid in (rig.openid, other_openid):
        for m in rig.pay.api.messages_to(openid):
            assert ("40.50" in str(m["data"])) == (openid == other_openid)
            assert ("500.00" in str(m["data"])) == (openid == rig.openid)
