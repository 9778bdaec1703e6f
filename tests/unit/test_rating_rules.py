from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from core.domain import rating as r
from core.domain.rating import Baseline, MeterReading, assess

T = datetime(2026, 11, 24, 2, tzinfo=UTC)
LAST = Baseline(10, T, D("100.00"), {"peak": D("60.00"), "valley": D("40.00")})


def reading(seq=11, minutes=60, total="101.00", **regs):
    return MeterReading("m", seq, T + timedelta(minutes=minutes), D(total), {k: D(v) for k, v in regs.items()})


def test_first_reading_is_a_baseline():
    assert assess(None, reading(), D("10")).action == r.BASELINE


def test_normal_reading_is_billed_with_register_split():
    v = assess(LAST, reading(total="103.00", peak="62.00", valley="41.00"), D("10"))
    assert (v.action, v.quantity, v.by_period) == (r.BILL, D("3.00"), {"peak": D("2.00"), "valley": D("1.00")})


def test_registers_that_disagree_with_the_total_are_not_trusted():
    v = assess(LAST, reading(total="103.00", peak="65.00", valley="41.00"), D("10"))
    assert v.action == r.BILL and v.by_period is None


def test_redelivered_or_overtaken_readings_are_ignored():
    assert assess(LAST, reading(seq=10, total="100.00"), D("10")).action == r.DUPLICATE
    assert assess(LAST, reading(seq=9, minutes=-60, total="99.00"), D("10")).action == r.DUPLICATE


def test_newer_seq_with_an_older_time_is_an_anomaly_that_keeps_the_baseline():
    v = assess(LAST, reading(seq=11, minutes=-5, total="101.00"), D("10"))
    assert v.action == r.OUT_OF_ORDER and not v.moves_baseline


def test_register_backwards_is_an_anomaly_that_moves_the_baseline():
    v = assess(LAST, reading(total="0.50"), D("10"))
    assert v.action == r.BACKWARDS and v.moves_baseline
    v = assess(LAST, reading(total="101.00", peak="59.00", valley="42.00"), D("10"))
    assert v.action == r.BACKWARDS


def test_jump_beyond_rated_power():
    # 10 kW for 1 h can pass at most 12 kWh with the margin
    assert assess(LAST, reading(total="112.00"), D("10")).action == r.BILL
    v = assess(LAST, reading(total="112.02"), D("10"))
    assert v.action == r.JUMP and v.quantity == D("12.02")


def test_gap_after_offline_spell():
    v = assess(LAST, reading(minutes=7 * 60, total="110.00"), D("10"), max_gap=timedelta(hours=6))
    assert v.action == r.GAP and v.quantity == D("10.00") and v.moves_baseline


def test_entry_id_is_deterministic():
    assert r.entry_id("E-1", 7) == "use:E-1:7"
