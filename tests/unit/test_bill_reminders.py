"""Bill reminders, the pure parts (docs/billing.md "Reminders", docs/notifications.md): which
bills are due soon or overdue on a day, the events' ids, and the notices' Chinese text.
Expected values are worked by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from core.domain import bills as rules
from core.domain import notifications as n
from core.domain.bills import Bill

# due Monday 15 June 2026, 1000.00 yuan, nothing paid
BILL = Bill("a-1", "2026-05", "p-1", state=rules.ISSUED, total=100000, due_date=date(2026, 6, 15))
AT = "2026-06-01T16:10:00.000000Z"


def on(day: int, month: int = 6, bill: Bill = BILL):
    return rules.reminder_for(bill, date(2026, month, day))


def test_due_soon_in_the_three_days_before_and_on_the_due_day():
    assert on(11) is None  # 4 days left
    assert on(12) == rules.Reminder("bill_due_soon", "bill_due_soon:a-1:2026-05", 3)
    assert on(14).days == 1
    assert on(15) == rules.Reminder("bill_due_soon", "bill_due_soon:a-1:2026-05", 0)  # the last day to pay
    assert {on(d).event_id for d in (12, 13, 14, 15)} == {"bill_due_soon:a-1:2026-05"}  # one event per bill


def test_overdue_on_the_first_late_day_and_every_seventh_day_after():
    # 16 June is 1 day late; 23 June 8; 30 June 15; 7 July 22
    assert on(16) == rules.Reminder("bill_overdue", "bill_overdue:a-1:2026-05:2026-06-16", 1)
    assert [d for d in range(16, 31) if on(d) is not None] == [16, 23, 30]
    assert on(23).days == 8 and on(30).days == 15
    assert on(7, 7) == rules.Reminder("bill_overdue", "bill_overdue:a-1:2026-05:2026-07-07", 22)


def test_paid_unissued_or_undated_bills_call_for_nothing():
    for bill in (replace(BILL, paid=100000), replace(BILL, state=rules.CONFIRMED), replace(BILL, state=rules.DRAFT),
                 replace(BILL, due_date=None)):
        assert on(12, bill=bill) is None and on(16, bill=bill) is None
    assert on(16, bill=replace(BILL, paid=99999)).days == 1  # 0.01 yuan still owed


def test_the_issued_event_is_the_accounts_notice_with_a_deterministic_id():
    e = rules.issued_event("a-1", "2026-05", "p-1", AT, "admin:1")
    assert (e.subject.kind, e.subject.id, e.event_id, e.type, e.property_id) == \
        ("notice", "a-1", "bill_issued:a-1:2026-05", "bill_issued", "p-1")
    assert e.data == {"account_id": "a-1", "bill_id": "a-1:2026-05", "period": "2026-05", "issued_by": "admin:1"}
    assert rules.issued_event("a-1", "2026-05", "p-1", "2026-07-01T00:00:00Z", "month_end").event_id == e.event_id


def notice(e) -> n.Notice:
    x = n.notice_of(e)
    assert x is not None
    return x


def test_bill_issued_text_from_the_bill_as_read_by_the_router():
    e = rules.issued_event("a-1", "2026-05", "p-1", AT, "month_end")
    got = n.with_bill(notice(e), replace(BILL, total=123456))  # 1234.56 yuan
    assert got.key == "bill_issued" and got.account_id == "a-1" and n.bill_of(got) == ("a-1", "2026-05")
    r = n.render(got.key, got.values)
    assert (r.title, r.body) == ("账单已出", "您 2026年5月 的账单已出，应缴 1234.56 元，请于 2026年6月15日 前缴纳。")
    assert r.fields == {"thing1": "账单已出", "thing2": "2026年5月", "amount3": "1234.56元", "time4": "2026年6月15日"}


def test_due_soon_text():
    b = replace(BILL, paid=30000)  # 1000.00 - 300.00 = 700.00 owed
    e = rules.reminder_event(b, on(12, bill=b), date(2026, 6, 12), AT)
    assert (e.event_id, e.data["outstanding"], e.data["days"], e.data["due"]) == \
        ("bill_due_soon:a-1:2026-05", 70000, 3, "2026-06-15")
    r = n.render("bill_due_soon", n.with_bill(notice(e), b).values)
    assert r.body == "您 2026年5月 的账单尚有 700.00 元未缴，将于 2026年6月15日 到期，请及时缴纳。"
    assert r.fields == {"thing1": "账单即将到期", "amount2": "700.00元", "time3": "2026年6月15日"}


def test_overdue_text_with_and_without_late_fees():
    # 1000.00 + late fees 1.20 = 1001.20, 200.00 paid: 801.20 owed, 8 days late on 23 June
    b = replace(BILL, total=100120, late_fee_total=120, paid=20000)
    e = rules.reminder_event(b, on(23, bill=b), date(2026, 6, 23), AT)
    r = n.render("bill_overdue", n.with_bill(notice(e), b).values)
    assert r.body == "您 2026年5月 的账单已逾期 8 天（到期日 2026年6月15日），尚有 801.20 元未缴（含滞纳金 1.20 元），请尽快缴纳。"
    assert r.fields == {"thing1": "账单已逾期", "amount2": "801.20元", "time3": "2026年6月15日", "number4": "8"}
    e = rules.reminder_event(BILL, on(16), date(2026, 6, 16), AT)
    assert n.render("bill_overdue", n.with_bill(notice(e), BILL).values).body == \
        "您 2026年5月 的账单已逾期 1 天（到期日 2026年6月15日），尚有 1000.00 元未缴，请尽快缴纳。"


def test_the_router_drops_a_notice_whose_bill_is_paid_gone_or_anothers():
    e = rules.reminder_event(BILL, on(16), date(2026, 6, 16), AT)
    x = notice(e)
    assert n.with_bill(x, replace(BILL, paid=100000)) is None  # paid between the sweep and the routing
    assert n.with_bill(x, None) is None
    assert n.with_bill(x, replace(BILL, account_id="a-2")) is None
    assert n.with_bill(x, BILL) is not None


def test_bill_kinds_are_tenant_kinds_held_by_quiet_hours_and_not_must_arrive():
    for key in n.BILL_KINDS:
        k = n.KINDS[key]
        assert (k.audience, k.channels, k.must_arrive, k.quiet, k.repeat_daily, k.link) == \
            (n.TENANT, (n.SUBSCRIBE, n.TEMPLATE), False, True, False, "/h5/")
        assert key in n.EVENT_TYPES
