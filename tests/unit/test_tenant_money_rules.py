"""Refund request, alarm preference, recharge option and notification rules, with values
worked by hand."""

import pytest

from core.domain import alarm_prefs, refund_requests, tenant_feed
from core.domain.errors import Conflict, ValidationError
from core.domain.events import Event, Subject
from core.domain.payments import Limits
from core.domain.recharge_options import presets
from core.domain.refund_requests import PaidOrder, allocate


def orders():
    # paid 50.00 on day 1 (10.00 refunded), 30.00 on day 3, 20.00 on day 2
    return [PaidOrder("R1", "2026-01-01T00:00:00Z", 4000), PaidOrder("R3", "2026-01-03T00:00:00Z", 3000),
            PaidOrder("R2", "2026-01-02T00:00:00Z", 2000)]


def test_allocation_takes_the_newest_payment_first():
    assert allocate(2500, orders()) == [("R3", 2500)]
    assert allocate(3000, orders()) == [("R3", 3000)]
    assert allocate(4500, orders()) == [("R3", 3000), ("R2", 1500)]
    assert allocate(9000, orders()) == [("R3", 3000), ("R2", 2000), ("R1", 4000)]


def test_allocation_skips_orders_with_nothing_left_and_refuses_too_much():
    assert allocate(100, [PaidOrder("R9", "2026-02-01T00:00:00Z", 0), PaidOrder("R1", "2026-01-01T00:00:00Z", 100)]) \
        == [("R1", 100)]
    with pytest.raises(Conflict) as e:
        allocate(9001, orders())
    assert e.value.code == "refund_not_covered" and "0.01" in e.value.message
    with pytest.raises(ValidationError):
        allocate(0, orders())


@pytest.mark.parametrize("amount,code", [(0, "amount_not_positive"), (-1, "amount_not_positive"),
                                         ("100", "amount_not_integer"), (True, "amount_not_integer"),
                                         (1.5, "amount_not_integer"), (5001, "amount_over_balance"),
                                         (4001, "amount_over_refundable")])
def test_refund_amount_checks(amount, code):
    with pytest.raises(ValidationError) as e:
        refund_requests.check_amount(amount, balance=5000, refundable=4000)
    assert e.value.code == code


def test_refund_amount_bounds():
    assert refund_requests.check_amount(4000, balance=5000, refundable=4000) == 4000
    with pytest.raises(ValidationError) as e:  # a negative balance has nothing spendable
        refund_requests.check_amount(1, balance=-100, refundable=4000)
    assert "0.00" in e.value.message


def test_reason_checks():
    assert refund_requests.check_reason("  退租  ") == "退租"
    assert refund_requests.check_reason("字" * 200) == "字" * 200
    for bad, code in [("", "reason_required"), ("   ", "reason_required"), (None, "reason_required"),
                      ("字" * 201, "reason_too_long"), ("a\x00b", "reason_invalid")]:
        with pytest.raises(ValidationError) as e:
            refund_requests.check_reason(bad)
        assert e.value.code == code


def test_status_texts():
    r = refund_requests.RefundRequest("a", "rr-1", "p", "o", 100, "x", "rejected", "t", reject_reason="余额来自现金")
    assert r.status_text == "已驳回：余额来自现金"
    assert refund_requests.RefundRequest("a", "rr-1", "p", "o", 100, "x", "failed", "t", refunded=50).status_text \
        == "退款未能完成，请联系物业（已退 0.50 元）"


def prefs(**kw):
    body = {"low_balance_fen": 3000, "channels": ["sms", "subscribe"], "quiet_hours": {"start": "22:00", "end": "07:00"}}
    body.update(kw)
    return body


def test_preferences_parse_and_order_channels():
    p = alarm_prefs.parse(prefs())
    assert p.as_json() == {"low_balance_fen": 3000, "channels": ["subscribe", "sms"],
                           "quiet_hours": {"start": "22:00", "end": "07:00"}}
    assert alarm_prefs.parse(prefs(low_balance_fen=None, channels=[], quiet_hours=None)).as_json() == \
        {"low_balance_fen": None, "channels": [], "quiet_hours": None}


@pytest.mark.parametrize("change,code", [
    ({"low_balance_fen": -1}, "amount_invalid"), ({"low_balance_fen": "30"}, "amount_not_integer"),
    ({"low_balance_fen": True}, "amount_not_integer"), ({"channels": ["email"]}, "channel_invalid"),
    ({"channels": ["sms", "sms"]}, "channels_invalid"), ({"channels": "sms"}, "channels_invalid"),
    ({"quiet_hours": {"start": "24:00", "end": "07:00"}}, "time_invalid"),
    ({"quiet_hours": {"start": "7:00", "end": "08:00"}}, "time_invalid"),
    ({"quiet_hours": {"start": "08:00", "end": "08:00"}}, "quiet_hours_empty"),
    ({"quiet_hours": {"start": "08:00"}}, "quiet_hours_invalid"), ({"extra": 1}, "field_unknown"),
])
def test_preferences_refuse_bad_input(change, code):
    with pytest.raises(ValidationError) as e:
        alarm_prefs.parse(prefs(**change))
    assert e.value.code == code


def test_preferences_need_every_field():
    with pytest.raises(ValidationError) as e:
        alarm_prefs.parse({"channels": []})
    assert e.value.code == "field_missing"


@pytest.mark.parametrize("start,end,at,inside", [
    ("22:00", "07:00", "23:30", True), ("22:00", "07:00", "00:00", True), ("22:00", "07:00", "06:59", True),
    ("22:00", "07:00", "07:00", False), ("22:00", "07:00", "21:59", False), ("22:00", "07:00", "22:00", True),
    ("12:00", "14:00", "13:00", True), ("12:00", "14:00", "14:00", False), ("12:00", "14:00", "11:59", False),
])
def test_quiet_hours_may_span_midnight(start, end, at, inside):
    p = alarm_prefs.AlarmPrefs(None, ("sms",), start, end)
    assert alarm_prefs.in_quiet_hours(p, at) is inside


def test_recharge_presets_within_limits():
    assert presets(Limits(100, 500_000)) == [2000, 5000, 10000, 20000, 50000]
    assert presets(Limits(3000, 20000)) == [5000, 10000, 20000]


def event(subject, type_, data=None, message=""):
    return Event(subject, "e1", type_, "p1", "2026-01-01T00:00:00.000000Z", message=message, data=data or {})


def test_feed_holds_only_tenant_facing_events():
    a = Subject.account("a1")
    m = Subject.meter("m1")
    assert tenant_feed.feed_account(event(a, "low_balance")) == "a1"
    assert tenant_feed.feed_account(event(Subject.notice("a1"), "payment_credited")) == "a1"
    assert tenant_feed.feed_account(event(a, "payment_credited")) is None
    assert tenant_feed.feed_account(event(a, "settings")) is None
    assert tenant_feed.feed_account(event(m, "command", {"op": "TRIP", "cause": "entry:use:m1:9",
                                                         "account_id": "a1"})) == "a1"
    assert tenant_feed.feed_account(event(m, "command", {"op": "CLOSE", "cause": "reconcile:2",
                                                         "account_id": "a1"})) is None
    assert tenant_feed.feed_account(event(m, "command", {"op": "SET_TARIFF", "account_id": "a1"})) is None
    assert tenant_feed.feed_account(event(m, "command", {"op": "TRIP"})) is None  # recorded before the index
    assert tenant_feed.feed_account(event(m, "meter_offline")) is None


def test_notification_texts():
    n = tenant_feed.notification(event(Subject.notice("a1"), "payment_credited", {"amount": 5000}))
    assert (n.kind, n.title, n.text) == ("payment_credited", "充值到账", "微信充值 50.00 元已到账")
    n = tenant_feed.notification(event(Subject.meter("m1"), "command", {"op": "CLOSE", "cause": "entry:pay:x"}))
    assert (n.kind, n.title) == ("restored", "恢复供电")
    n = tenant_feed.notification(event(Subject.notice("a1"), "refund_rejected", {"reason": "现金充值"}))
    assert n.text == "您的退款申请被驳回：现金充值"
    n = tenant_feed.notification(event(Subject.notice("a1"), "bill_issued", {"bill_id": "a1:2026-05"},
                                       message="2026-05 账单已出，请按时缴纳"))
    assert (n.kind, n.title, n.text) == ("bill_issued", "账单已出", "2026-05 账单已出，请按时缴纳")
    n = tenant_feed.notification(event(Subject.notice("a1"), "bill_overdue", message="账单已逾期 8 天"))
    assert (n.kind, n.title) == ("bill_overdue", "账单已逾期")


def test_cursor_round_trip_and_garbage():
    key = {"account_feed": "a1", "at": "t", "scope": "account#a1", "event_id": "e"}
    keys = ("account_feed", "at", "scope", "event_id")
    assert tenant_feed.decode_cursor(tenant_feed.encode_cursor(key), keys) == key
    for bad in ["x", "!!!", tenant_feed.encode_cursor({"a": "b"}), "a" * 2000]:
        with pytest.raises(ValidationError):
            tenant_feed.decode_cursor(bad, keys)
