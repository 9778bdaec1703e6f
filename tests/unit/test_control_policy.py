from datetime import UTC, datetime, time, timedelta

import pytest

from core.domain import control as c
from core.domain.errors import ValidationError

UTC = UTC
TUE_10 = datetime(2026, 11, 24, 2, tzinfo=UTC)  # Tuesday 10:00 Shanghai
OPEN = c.ProtectionSettings(night=None, weekends=False, holidays=False)


def view(balance, overdraft=0, keep=False, cut=c.CUT_NONE, due="", restore=0):
    return c.ControlView(balance, overdraft, keep, cut, due, restore)


def test_alarm_once_per_crossing_and_rearm_on_recovery():
    cfg = c.AlarmConfig((5000, 2000, 0), (1, 1, 1))
    s, n = c.alarms_after(cfg, {}, 6000, 4000, TUE_10)
    assert [x.threshold for x in n] == [5000]
    s, n = c.alarms_after(cfg, s, 4000, 3000, TUE_10)
    assert n == []  # still below 50: no second alarm
    s, n = c.alarms_after(cfg, s, 3000, -10, TUE_10)
    assert [x.threshold for x in n] == [0]  # the most severe new crossing only
    assert s["1"]["active"] and s["2"]["active"]
    s, n = c.alarms_after(cfg, s, -10, 8000, TUE_10)
    assert n == [] and not any(v["active"] for v in s.values())
    s, n = c.alarms_after(cfg, s, 8000, 4500, TUE_10)
    assert [(x.threshold, x.crossing) for x in n] == [(5000, 2)]


def test_alarm_repeats():
    cfg = c.AlarmConfig((5000,), (3,), timedelta(hours=24))
    s, _ = c.alarms_after(cfg, {}, 6000, 4000, TUE_10)
    s, n = c.due_repeats(cfg, s, 4000, TUE_10 + timedelta(hours=23))
    assert n == []
    s, n = c.due_repeats(cfg, s, 4000, TUE_10 + timedelta(hours=24))
    assert [x.occurrence for x in n] == [2]
    s, n = c.due_repeats(cfg, s, 4000, TUE_10 + timedelta(hours=48))
    s, n2 = c.due_repeats(cfg, s, 4000, TUE_10 + timedelta(hours=96))
    assert [x.occurrence for x in n] == [3] and n2 == []


@pytest.mark.parametrize("levels,repeats", [([0, 5000], [1, 1]), ([1, 2, 3, 4], [1] * 4), ([5000], [0]), ([1.5], [1])])
def test_bad_alarm_config(levels, repeats):
    with pytest.raises(ValidationError):
        c.AlarmConfig.build(levels, repeats)


def test_cut_below_line_and_not_at_it():
    assert not c.decide(view(0), OPEN, TUE_10).trip_now
    assert c.decide(view(-1), OPEN, TUE_10).trip_now
    assert not c.decide(view(-500, overdraft=500), OPEN, TUE_10).trip_now
    assert c.decide(view(-501, overdraft=500), OPEN, TUE_10).trip_now


def test_keep_supply_never_cut():
    d = c.decide(view(-10**6, keep=True), OPEN, TUE_10)
    assert not d.trip_now and d.cut_state == c.CUT_NONE


def test_grace_delay_then_cut():
    s = c.ProtectionSettings(night=None, weekends=False, holidays=False, grace=timedelta(minutes=30))
    d = c.decide(view(-1), s, TUE_10)
    assert d.cut_state == c.CUT_PENDING and not d.trip_now
    assert datetime.fromisoformat(d.cut_due_at) == TUE_10 + timedelta(minutes=30)
    later = c.decide(view(-1, cut=c.CUT_PENDING, due=d.cut_due_at), s, TUE_10 + timedelta(minutes=30))
    assert later.trip_now


def test_night_window_crossing_midnight_delays_until_it_ends():
    s = c.ProtectionSettings(night=(time(22), time(8)), weekends=False, holidays=False)
    night = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)  # 23:30 Shanghai
    d = c.decide(view(-1), s, night)
    assert d.cut_state == c.CUT_PENDING
    assert datetime.fromisoformat(d.cut_due_at) == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # 08:00


def test_weekend_and_holiday_windows():
    s = c.ProtectionSettings(night=None, weekends=True, holidays=True)
    saturday = datetime(2026, 11, 28, 4, tzinfo=UTC)
    d = c.decide(view(-1), s, saturday)
    assert datetime.fromisoformat(d.cut_due_at) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Mon 00:00
    national_day = datetime(2026, 10, 2, 4, tzinfo=UTC)
    d = c.decide(view(-1), s, national_day)
    assert datetime.fromisoformat(d.cut_due_at) == datetime(2026, 10, 7, 16, 0, tzinfo=UTC)  # 8 Oct 00:00


def test_pending_cut_cancelled_by_credit_and_restore_after_cut():
    d = c.decide(view(100, cut=c.CUT_PENDING, due=TUE_10.isoformat()), OPEN, TUE_10)
    assert d.cut_state == c.CUT_NONE and d.changed and not d.trip_now
    d = c.decide(view(1, cut=c.CUT_DONE), OPEN, TUE_10)
    assert d.restore_now
    d = c.decide(view(0, cut=c.CUT_DONE), OPEN, TUE_10)
    assert not d.restore_now  # restore line 0: above it, not at it
    d = c.decide(view(-100, overdraft=500, cut=c.CUT_DONE, restore=-200), OPEN, TUE_10)
    assert d.restore_now  # above both the restore line and the cut line


def test_command_state_machine():
    assert c.can_move(c.QUEUED, c.SENT) and c.can_move(c.SENT, c.APPLIED)
    assert not c.can_move(c.APPLIED, c.SENT) and not c.can_move(c.EXPIRED, c.APPLIED)
    assert c.can_move(c.SENT, c.SUPERSEDED)


def test_protection_settings_round_trip_and_validation():
    s = c.ProtectionSettings(night=(time(23), time(7)), weekends=True, holidays=False, grace=timedelta(minutes=15))
    assert c.ProtectionSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValidationError):
        c.ProtectionSettings.from_dict({"night": ["25:00", "07:00"]})


# --- supply as reconciled state ---------------------------------------------------------


@pytest.mark.parametrize(("cut_state", "mode", "keep", "retired", "intended"), [
    ("cut", "cloud", False, False, "open"),
    ("cut", "cloud", True, False, "closed"),  # a keep-supply meter stays on
    ("pending", "cloud", False, False, "closed"),  # a pending cut has not happened yet
    ("none", "cloud", False, False, "closed"),
    ("cut", "meter", False, False, None),  # a meter that keeps the money switches itself
    ("cut", "cloud", False, True, None),  # a replaced meter is gone
])
def test_intended_relay(cut_state, mode, keep, retired, intended):
    assert c.intended_relay(cut_state, mode, keep, retired) == intended


@pytest.mark.parametrize(("intended", "reported", "needed"), [
    ("open", "closed", True), ("closed", "open", True), ("open", "open", False), ("closed", "closed", False),
    ("closed", "unknown", False),  # the next poll will tell; nothing to switch on blindly
    ("open", "unknown", True),  # a cut account must be cut
    (None, "closed", False),
])
def test_needs_command(intended, reported, needed):
    assert c.needs_command(intended, reported) is needed


def test_retry_backoff_grows_and_stays_bounded():
    delays = [c.retry_delay(n) for n in range(0, 10)]
    assert delays[:5] == [timedelta(0), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5),
                          timedelta(minutes=10)]
    assert delays[7:] == [timedelta(hours=1)] * 3


def test_command_ids_are_fresh_per_attempt_and_stable_per_attempt():
    a1 = c.relay_command_id("m1", "TRIP", 1)
    assert a1 == c.relay_command_id("m1", "TRIP", 1)
    assert len({a1, c.relay_command_id("m1", "TRIP", 2), c.relay_command_id("m2", "TRIP", 1),
                c.relay_command_id("m1", "CLOSE", 1)}) == 4
    assert a1.startswith("trip-")
    r = c.recharge_command_id("m1", 3, 1)
    assert r.startswith("recharge-") and r != c.recharge_command_id("m1", 3, 2)
    assert c.purchase_entry_id("m1", 3) == "meter:m1:3"
