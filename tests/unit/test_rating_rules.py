from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from core.domain import rating as r
from core.domain.rating import Baseline, MeterReading, assess

T = datetime(2026, 11, 24, 2, tzinfo=UTC)
NOW = T + timedelta(days=2)  # the cloud's clock: after every reading below unless a test says otherwise
LAST = Baseline(10, T, D("100.00"), {"peak": D("60.00"), "valley": D("40.00")})


def reading(seq=11, minutes=60, total="101.00", **regs):
    return MeterReading("m", seq, T + timedelta(minutes=minutes), D(total), {k: D(v) for k, v in regs.items()})


def test_first_reading_is_a_baseline():
    assert assess(None, reading(), D("10"), now=NOW).action == r.BASELINE


def test_normal_reading_is_billed_with_register_split():
    v = assess(LAST, reading(total="103.00", peak="62.00", valley="41.00"), D("10"), now=NOW)
    assert (v.action, v.quantity, v.by_period) == (r.BILL, D("3.00"), {"peak": D("2.00"), "valley": D("1.00")})


def test_registers_that_disagree_with_the_total_are_not_trusted():
    v = assess(LAST, reading(total="103.00", peak="65.00", valley="41.00"), D("10"), now=NOW)
    assert v.action == r.BILL and v.by_period is None


def test_redelivered_or_overtaken_readings_are_ignored():
    assert assess(LAST, reading(seq=10, total="100.00"), D("10"), now=NOW).action == r.DUPLICATE
    assert assess(LAST, reading(seq=9, minutes=-60, total="99.00"), D("10"), now=NOW).action == r.DUPLICATE


def test_newer_seq_with_an_older_time_is_an_anomaly_that_keeps_the_baseline():
    v = assess(LAST, reading(seq=11, minutes=-5, total="101.00"), D("10"), now=NOW)
    assert v.action == r.OUT_OF_ORDER and not v.moves_baseline


def test_register_backwards_is_an_anomaly_that_moves_the_baseline():
    v = assess(LAST, reading(total="0.50"), D("10"), now=NOW)
    assert v.action == r.BACKWARDS and v.moves_baseline
    v = assess(LAST, reading(total="101.00", peak="59.00", valley="42.00"), D("10"), now=NOW)
    assert v.action == r.BACKWARDS


def test_jump_beyond_rated_power():
    # 10 kW for 1 h can pass at most 12 kWh with the margin
    assert assess(LAST, reading(total="112.00"), D("10"), now=NOW).action == r.BILL
    v = assess(LAST, reading(total="112.02"), D("10"), now=NOW)
    assert v.action == r.JUMP and v.quantity == D("12.02")


def test_gap_after_offline_spell():
    v = assess(LAST, reading(minutes=7 * 60, total="110.00"), D("10"), max_gap=timedelta(hours=6), now=NOW)
    assert v.action == r.GAP and v.quantity == D("10.00") and v.moves_baseline


def test_entry_id_is_deterministic():
    assert r.entry_id("E-1", 7) == "use:E-1:7"


# --- readings dated ahead of the cloud's clock ----------------------------------------------


def test_a_reading_from_the_future_is_an_anomaly_that_keeps_the_baseline():
    now = T + timedelta(hours=1)
    far = MeterReading("m", 11, datetime(2099, 1, 1, tzinfo=UTC), D("101.00"))
    v = assess(LAST, far, D("10"), now=now)
    assert v.action == r.FUTURE and v.is_anomaly and not v.moves_baseline
    assert timedelta(minutes=10) == r.MAX_CLOCK_SKEW
    # a meter clock a little fast (9 minutes, within the skew) reads normally
    near = MeterReading("m", 11, now + timedelta(minutes=9), D("101.00"))
    assert assess(LAST, near, D("10"), now=now).action == r.BILL
    assert assess(LAST, near, D("10"), now=now, max_skew=timedelta(minutes=5)).action == r.FUTURE
    just_over = MeterReading("m", 11, now + timedelta(minutes=10, seconds=1), D("101.00"))
    assert assess(LAST, just_over, D("10"), now=now).action == r.FUTURE
    # a redelivery is still only a duplicate, whatever its time
    assert assess(LAST, MeterReading("m", 10, far.read_at, D("100")), D("10"), now=now).action == r.DUPLICATE


def test_a_first_reading_from_the_future_does_not_become_the_baseline():
    v = assess(None, MeterReading("m", 1, datetime(2099, 1, 1, tzinfo=UTC), D("5")), D("10"), now=T)
    assert v.action == r.FUTURE and not v.moves_baseline


# --- judge: one decision for ingest and preview ------------------------------------------


def _residential():
    from core.domain.tariff import parse_plan
    from tests.unit.test_tariff import RESIDENTIAL

    return parse_plan(RESIDENTIAL)


def test_judge_bills_from_the_carry_and_never_moves_the_carry_on_an_anomaly():
    from core.domain.tariff import RatingCarry

    plan = _residential()  # 0.5283/kWh; +0.05 from 200 kWh, +0.30 from 400 kWh in a month
    last = Baseline(2, T, D("395"), {}, RatingCarry(D("0.85"), "2026-11", D("395")))
    # 8 h silence, 10 kWh: a gap. Proposal on the month's usage (395 -> 405):
    # 10 x 0.5283 = 5.283; 5 kWh in band 2 x 0.05 = 0.25; 5 kWh in band 3 x 0.30 = 1.50
    # = 7.033 yuan = 703.3 fen, + 0.85 carried = 704.15 -> 704 fen (a blank carry would say 528)
    o = r.judge(plan, last, MeterReading("m", 3, T + timedelta(hours=8), D("405")), D("10"), now=NOW)
    assert o.verdict.action == r.GAP and o.charge.fen == 704
    assert o.baseline.seq == 3 and o.baseline.carry == last.carry  # not billed: the carry stays
    # the same usage in a normal interval is billed and the carry moves on
    o = r.judge(plan, last, MeterReading("m", 3, T + timedelta(hours=1), D("405")), D("10"), now=NOW)
    assert o.verdict.action == r.BILL and o.charge.fen == 704
    assert o.baseline.carry == RatingCarry(D("0.15"), "2026-11", D("405"))
    # backwards, out of order, future: no charge; only backwards moves the baseline
    o = r.judge(plan, last, MeterReading("m", 3, T + timedelta(hours=1), D("1")), D("10"), now=NOW)
    assert (o.verdict.action, o.charge, o.baseline.total, o.baseline.carry) == (r.BACKWARDS, None, D("1"), last.carry)
    o = r.judge(plan, last, MeterReading("m", 3, datetime(2099, 1, 1, tzinfo=UTC), D("396")), D("10"), now=NOW)
    assert (o.verdict.action, o.charge, o.baseline) == (r.FUTURE, None, None)


def test_an_approved_anomaly_is_rated_on_the_current_carry():
    from core.domain.tariff import RatingCarry

    plan = _residential()
    start, end = T, T + timedelta(hours=8)
    detected = RatingCarry(D("0.85"), "2026-11", D("395"))
    # since the gap, 10 kWh more were billed: the month stands at 405 kWh, 0.15 fen carried.
    # The approved 10 kWh all fall in band 3: 10 x (0.5283 + 0.30) = 8.283 yuan = 828.3 fen,
    # + 0.15 = 828.45 -> 828 fen, 0.45 carried, the month at 415 kWh.
    current = RatingCarry(D("0.15"), "2026-11", D("405"))
    c = r.rate_approved(plan, start, end, D("10"), None, current, detected)
    assert c.fen == 828 and c.carry == RatingCarry(D("0.45"), "2026-11", D("415"))
    # approved after the month closed (the meter is in December with 50 kWh, 0.2 fen):
    # rated on November as it stood at detection (395): 7.033 yuan = 703.3 fen + 0.2 = 703.5
    # -> 703 fen; the meter keeps December's usage and carries 0.5 fen.
    december = RatingCarry(D("0.2"), "2026-12", D("50"))
    c = r.rate_approved(plan, start, end, D("10"), None, december, detected)
    assert c.fen == 703 and c.carry == RatingCarry(D("0.5"), "2026-12", D("50"))
