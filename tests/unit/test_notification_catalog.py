"""The notification catalog, rendering, quiet hours, repeat policy and retry policy
(core/domain/notifications.py). Expected values are worked out by hand."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from core.domain import events as ev
from core.domain import notifications as n
from core.domain.events import Event, Subject

ROOT = Path(__file__).resolve().parents[2]


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def low(event_id: str, at: str, balance: int, threshold: int, level: int = 2) -> Event:
    return Event(Subject.account("a1"), event_id, "low_balance", "p1", at, status="to_notify",
                 data={"level": level, "threshold": threshold, "balance": balance, "occurrence": 1})


# -- rendering ---------------------------------------------------------------------------------


def test_low_balance_renders_the_amounts_in_yuan():
    notice = n.notice_of(low("alarm:2:1:1", "2024-05-01T02:00:00.000000Z", 1234, 2000))
    r = n.render(notice.key, notice.values)
    assert (r.title, r.body) == ("余额不足提醒", "您的账户余额 12.34 元，已低于 20.00 元，请及时充值。")
    assert r.fields == {"thing1": "余额不足提醒", "amount2": "12.34元", "thing3": "已低于 20.00 元"}


def test_the_last_level_reads_as_arrears():
    notice = n.notice_of(low("alarm:3:1:1", "2024-05-01T02:00:00.000000Z", -50, 0, level=3))
    assert n.render(notice.key, notice.values).body == "您的账户余额 -0.50 元，已欠费，请及时充值。"


def test_cut_imminent_gives_the_local_cut_time():
    e = Event(Subject.account("a1"), "cut_imminent:x", "cut_imminent", "p1", "2024-05-01T14:00:00.000000Z",
              data={"account_id": "a1", "balance": -1001, "due_at": "2024-05-01T14:30:00.000000Z"})
    notice = n.notice_of(e)
    # 14:30 UTC is 22:30 in Beijing
    assert n.render(notice.key, notice.values).body == \
        "您的账户余额 -10.01 元，已低于断电线，将于 05-01 22:30 停止供电，请尽快充值。"
    assert notice.kind.must_arrive and not notice.kind.quiet


def test_payment_receipt_has_amount_and_new_balance():
    e = Event(Subject.notice("a1"), "paid:tx1", "payment_credited", "p1", "2024-05-01T02:00:00.000000Z",
              data={"amount": 5000, "balance_after": 4321, "account_id": "a1"})
    notice = n.notice_of(e)
    assert (notice.key, notice.account_id) == ("payment_received", "a1")
    assert n.render(notice.key, notice.values).body == "微信充值 50.00 元已到账，当前余额 43.21 元。"


def test_a_missing_value_reads_as_a_dash_not_an_error():
    assert n.render("refund_done", {}).body == "退款 - 元已原路退回您的微信。"


def test_long_thing_values_are_cut_to_wechat_limits():
    r = n.render("anomaly_review", {"title": "读数异常待审核", "meter": "m" * 40, "anomaly": "x"})
    assert r.fields["thing2"] == "m" * 20


# -- which events are messages -------------------------------------------------------------------


@pytest.mark.parametrize("cause,key", [("entry:use:m1:5", "supply_cut"), ("manual", "supply_cut"),
                                       ("reconcile:2", None), ("reconcile", None)])
def test_relay_orders_are_news_except_the_reconcilers_retries(cause, key):
    e = Event(Subject.meter("m1"), "command:c1", "command", "p1", "2024-05-01T02:00:00.000000Z",
              data={"op": "TRIP", "cause": cause, "account_id": "a1"})
    notice = n.notice_of(e)
    assert (notice.key if notice else None) == key


def test_only_an_open_anomaly_asks_for_review():
    base = dict(subject=Subject.meter("m1"), event_id="anomaly:5:gap", type="anomaly", property_id="p1",
                at="2024-05-01T02:00:00.000000Z", data={"kind": "gap"})
    assert n.notice_of(Event(**base, status="recorded")) is None
    notice = n.notice_of(Event(**base, status="open"))
    assert notice.key == "anomaly_review" and notice.values["anomaly"] == "长时间无读数"


def test_plain_records_are_not_messages():
    for kind in ("settings", "meter_online", "security", "payment_alert", "site_secret"):
        assert n.notice_of(Event(Subject.meter("m1"), "x", kind, "p1", "2024-05-01T02:00:00.000000Z")) is None


def test_the_stream_filter_lists_exactly_the_types_the_router_reads():
    functions = yaml.load((ROOT / "serverless.yml").read_text(), Loader=_loader())["functions"]
    stream = next(e["stream"] for e in functions["notifyRoute"]["events"] if "stream" in e)
    (pattern,) = stream["filterPatterns"]
    assert pattern["eventName"] == ["INSERT"]
    assert sorted(pattern["dynamodb"]["NewImage"]["type"]["S"]) == sorted(n.EVENT_TYPES)


def test_every_producers_type_is_routed():
    # the producers list what they record (core/domain/events.py); each must reach a catalog key
    for name in ("TENANT_TYPES", "ADMIN_TYPES"):
        for kind in getattr(ev, name, ()):
            assert kind in n.EVENT_TYPES, kind


def test_every_kind_has_an_audience_channels_and_fields_of_its_values():
    assert set(n.KINDS) >= {"low_balance", "cut_imminent", "supply_cut", "supply_restored", "payment_received",
                            "refund_done", "meter_offline_long", "meter_offline", "bridge_offline",
                            "command_failing", "anomaly_review", "reconcile_mismatch", "refund_request"}
    for k in n.KINDS.values():
        assert k.audience in (n.TENANT, n.ADMIN) and k.channels and set(k.channels) <= set(n.CHANNELS)
        assert k.fields[0] == ("thing1", "title")
        assert k.sms_setting == f"sms_template_{k.key}"
    # cut warnings ignore quiet hours; ordinary reminders respect them
    assert not n.KINDS["cut_imminent"].quiet and not n.KINDS["supply_cut"].quiet
    assert n.KINDS["low_balance"].quiet


# -- quiet hours ----------------------------------------------------------------------------------

NIGHT = ("22:00", "07:00")  # Beijing time, across midnight


@pytest.mark.parametrize("now,until", [
    ("2024-05-01T15:00:00", "2024-05-01T23:00:00"),  # 23:00 local -> 07:00 next local day (23:00 UTC)
    ("2024-05-01T22:30:00", "2024-05-01T23:00:00"),  # 06:30 local on May 2 -> 07:00 that morning
    ("2024-05-01T14:00:00", "2024-05-01T23:00:00"),  # 22:00 local: the start is inside
    ("2024-05-01T16:00:00", "2024-05-01T23:00:00"),  # 00:00 local
    ("2024-05-01T23:00:00", None),  # 07:00 local: the end is outside
    ("2024-05-01T13:59:00", None),  # 21:59 local
    ("2024-05-01T04:00:00", None),  # noon
])
def test_quiet_hours_across_midnight(now, until):
    got = n.quiet_until(NIGHT, t(now))
    assert got == (t(until) if until else None)


def test_quiet_hours_within_a_day():
    # 12:00-14:00 local; 04:30 UTC is 12:30 local -> ends 14:00 local = 06:00 UTC
    assert n.quiet_until(("12:00", "14:00"), t("2024-05-01T04:30:00")) == t("2024-05-01T06:00:00")
    assert n.quiet_until(("12:00", "14:00"), t("2024-05-01T06:00:00")) is None
    assert n.quiet_until(None, t("2024-05-01T04:30:00")) is None


# -- repeat policy --------------------------------------------------------------------------------


def test_a_remaining_alarm_is_one_delivery_a_local_day_per_level():
    def did(e):
        notice = n.notice_of(e)
        return n.delivery_id(notice.dedupe, "sms", "+8613800000000")

    morning = low("alarm:2:1:1", "2024-05-01T01:00:00.000000Z", 1500, 2000)  # 09:00 local
    evening = low("alarm:2:2:1", "2024-05-01T15:59:00.000000Z", 1400, 2000)  # 23:59 local, same day
    after_midnight = low("alarm:2:2:2", "2024-05-01T16:01:00.000000Z", 1300, 2000)  # 00:01 local, May 2
    other_level = low("alarm:3:1:1", "2024-05-01T02:00:00.000000Z", -1, 0, level=3)
    assert did(morning) == did(evening)
    assert did(after_midnight) != did(morning)
    assert did(other_level) != did(morning)
    # other channels and recipients are deliveries of their own
    notice = n.notice_of(morning)
    assert n.delivery_id(notice.dedupe, "subscribe", "o1") != n.delivery_id(notice.dedupe, "subscribe", "o2")


def test_other_events_are_delivered_once_per_event():
    a = Event(Subject.notice("a1"), "paid:tx1", "payment_credited", "p1", "2024-05-01T01:00:00.000000Z",
              data={"amount": 100})
    b = Event(Subject.notice("a1"), "paid:tx2", "payment_credited", "p1", "2024-05-01T01:00:00.000000Z",
              data={"amount": 100})
    assert n.notice_of(a).dedupe != n.notice_of(b).dedupe
    assert n.notice_of(a) == n.notice_of(a)  # deterministic: a redelivered record routes the same


# -- retries and masking --------------------------------------------------------------------------


def test_retry_delays_double_from_30_seconds_up_to_15_minutes():
    assert [n.retry_delay(a).total_seconds() for a in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]
    assert n.retry_delay(0) == timedelta(seconds=30)


def test_recipients_are_masked_in_the_log():
    assert n.mask("sms", "+8613812345678") == "+86138****5678"
    assert n.mask("sms", "13812345678") == "138****5678"
    assert n.mask("email", "admin@example.cn") == "a***@example.cn"
    assert n.mask("subscribe", "oABCDEFGHIJKLMN") == "oABC…KLMN"


def _loader():
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return Loader
