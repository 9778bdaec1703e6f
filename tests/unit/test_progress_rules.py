"""The recharge progress rule (core/domain/progress.py), case by case, with facts written
by hand. Times are UTC strings as format_time writes them; T0 is the payment."""

import pytest

from core.domain import progress as p
from core.domain.progress import CommandFacts, Facts, MeterFacts

T_PAID = "2026-03-01T10:00:00.000000Z"
T_CREDIT = "2026-03-01T10:00:01.000000Z"
T_CMD = "2026-03-01T10:00:01.500000Z"
T_READ = "2026-03-01T10:00:09.000000Z"
T_BEFORE = "2026-03-01T09:00:00.000000Z"
CAUSE = "entry:pay:4200001"


def close(state="sent", issued=T_CMD, relay="", cause=CAUSE):
    return CommandFacts(op="CLOSE", state=state, issued_at=issued, updated_at=issued, cause=cause, result_relay=relay)


def meter(relay="open", seen=T_BEFORE, command=None, **kw):
    return MeterFacts(meter_id=kw.pop("meter_id", "m1"), relay_state=relay, relay_seen_at=seen, command=command, **kw)


def paid(*meters, balance=3000, cut_state="none", restore_line=0, overdraft=0, **kw):
    return Facts(order_status="PAID", paid_at=T_PAID, credited_at=T_CREDIT, balance=balance, cut_state=cut_state,
                 restore_line=restore_line, overdraft_limit=overdraft, meters=tuple(meters), restore_cause=CAUSE, **kw)


def done(pr):
    return {s.key: s.done for s in pr.steps}


def test_waiting_for_payment():
    pr = p.progress(Facts(order_status="PENDING"))
    assert (pr.state, pr.final, pr.balance_fen) == ("waiting_payment", False, None)
    assert done(pr) == {"paid": False, "credited": False, "command_sent": False, "relay_closed": False}


def test_closed_order_is_final_and_says_nothing_was_taken():
    pr = p.progress(Facts(order_status="CLOSED"))
    assert (pr.state, pr.final) == ("failed", True) and "未扣款" in pr.message


def test_paid_but_entry_not_read_yet():
    pr = p.progress(Facts(order_status="PAID", paid_at=T_PAID))
    assert (pr.state, pr.final) == ("paid", False)
    assert done(pr) == {"paid": True, "credited": False, "command_sent": False, "relay_closed": False}


def test_never_cut_needs_nothing():
    pr = p.progress(paid(meter(relay="closed"), balance=8000))
    assert (pr.state, pr.final, pr.balance_fen) == ("not_needed", True, 8000)
    assert "80.00" in pr.message and "无需" in pr.message
    assert all(s.done for s in pr.steps)


def test_unknown_relay_without_a_cut_needs_nothing():
    assert p.progress(paid(meter(relay="unknown"))).state == "not_needed"


def test_still_below_the_restore_line_says_how_much_more():
    # restore line 10.00 yuan, balance -5.00 after paying: supply comes back above 10.00,
    # i.e. at 10.01 at least -> 15.01 yuan more (1501 fen)
    pr = p.progress(paid(meter(relay="open"), balance=-500, cut_state="cut", restore_line=1000))
    assert (pr.state, pr.final, pr.shortfall_fen) == ("credited", True, 1501)
    assert "15.01" in pr.message and "-5.00" in pr.message
    assert done(pr) == {"paid": True, "credited": True, "command_sent": False, "relay_closed": False}


def test_overdraft_below_zero_lifts_the_line_above_the_restore_line():
    # restore line 0, overdraft 20.00: the line is max(0, -2000) = 0 -> balance -3.00 needs 3.01
    assert p.shortfall(-300, 0, 2000) == 301
    # restore line -50.00 under an overdraft of 20.00: the cut line (-20.00) wins -> -25.00 needs 5.01
    assert p.shortfall(-2500, -5000, 2000) == 501
    assert p.shortfall(1, 0, 0) == 0


def test_command_sent_waits_for_the_meter():
    pr = p.progress(paid(meter(relay="open", command=close("sent"))))
    assert (pr.state, pr.final) == ("command_sent", False)
    assert done(pr) == {"paid": True, "credited": True, "command_sent": True, "relay_closed": False}
    assert pr.steps[2].at == T_CMD


def test_restored_when_read_back_closed_after_the_command():
    pr = p.progress(paid(meter(relay="closed", seen=T_READ, command=close("applied", relay="closed"))))
    assert (pr.state, pr.final) == ("restored", True)
    assert all(s.done for s in pr.steps) and pr.steps[3].at == T_READ


def test_closed_read_before_the_command_is_not_a_restore():
    # the relay reads closed from a reading taken before the CLOSE, and the command is on its way
    pr = p.progress(paid(meter(relay="closed", seen=T_PAID, command=close("sent"))))
    assert pr.state == "command_sent"


def test_credited_while_the_restore_is_not_written_yet():
    pr = p.progress(paid(meter(relay="open")))  # cut_state none now, no CLOSE yet
    assert (pr.state, pr.final) == ("credited", False) and "合闸指令" in pr.message


def test_needs_local_confirmation():
    m = meter(relay="open", seen=T_READ, command=close("applied", relay="open"), needs_local_confirm=True)
    pr = p.progress(paid(m))
    assert (pr.state, pr.final) == ("needs_local_confirm", False) and "按键" in pr.message


def test_site_offline_while_the_command_waits():
    pr = p.progress(paid(meter(relay="open", command=close("sent"), site_online=False)))
    assert (pr.state, pr.final) == ("site_offline", False) and "网关" in pr.message


@pytest.mark.parametrize("state", ["failed", "expired"])
def test_failed_or_expired_command(state):
    pr = p.progress(paid(meter(relay="open", command=close(state))))
    assert (pr.state, pr.final) == ("failed", True) and "重试" in pr.message


def test_applied_but_read_back_open_is_a_failure_without_local_confirm():
    pr = p.progress(paid(meter(relay="open", seen=T_READ, command=close("applied", relay="open"))))
    assert pr.state == "failed"


def test_applied_without_a_read_back_waits():
    assert p.progress(paid(meter(relay="open", command=close("applied", relay="")))).state == "command_sent"


def test_manual_trip_holds_supply_off():
    pr = p.progress(paid(meter(relay="open", manual_open=True)))
    assert (pr.state, pr.final) == ("failed", True) and "手动断电" in pr.message


def test_a_reconciler_close_after_the_payment_counts_as_the_restore():
    c = close("sent", cause="reconcile:1", issued=T_READ)
    assert p.progress(paid(meter(relay="open", command=c))).state == "command_sent"


def test_an_old_close_is_not_this_payments_restore():
    c = close("applied", cause="entry:pay:older", issued=T_BEFORE, relay="closed")
    pr = p.progress(paid(meter(relay="closed", seen=T_BEFORE, command=c)))
    assert pr.state == "not_needed"


def test_a_trip_as_newest_command_is_no_restore():
    trip = CommandFacts(op="TRIP", state="applied", issued_at=T_BEFORE, result_relay="open")
    assert p.progress(paid(meter(relay="open", command=trip))).state == "credited"


def test_the_worst_meter_speaks_for_the_account():
    ok = meter(meter_id="m1", relay="closed", seen=T_READ, command=close("applied", relay="closed"))
    waiting = meter(meter_id="m2", relay="open", command=close("sent"))
    offline = meter(meter_id="m3", relay="open", command=close("sent"), site_online=False)
    assert p.progress(paid(ok, waiting)).state == "command_sent"
    assert p.progress(paid(ok, waiting, offline)).state == "site_offline"
    pr = p.progress(paid(ok, meter(meter_id="m4", relay="closed")))  # one restored, one never cut
    assert (pr.state, done(pr)["relay_closed"]) == ("restored", True)


def test_meters_the_cloud_does_not_steer_are_left_out():
    side = meter(relay="open", steered=False)
    assert p.progress(paid(side)).state == "not_needed"
    assert p.progress(paid(side, meter_side=True)).state == "credited"


def test_every_state_has_a_message():
    assert set(p.STATES) >= {"restored", "command_sent", "needs_local_confirm", "site_offline", "failed"}
