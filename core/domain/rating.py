"""Turning a meter's readings into charges: what is billed, what is an anomaly.

Bad readings never make bad money. Against the last rated reading of a meter, a new
reading is one of:
- the first: it becomes the baseline, nothing is billed;
- a duplicate or an overtaken reading (seq not after the last rated one): ignored — a
  redelivery, or an older reading that a newer one overtook on the queue (its usage is
  inside the newer reading's delta);
- from the future (a read time more than MAX_CLOCK_SKEW ahead of the cloud's clock: a
  meter clock gone wrong): an anomaly, the baseline stays — it must never move the
  baseline there, or every later reading would be "out of order";
- out of order (a newer seq but a read time not after the last rated one: the meter's
  clock went back): an anomaly, the baseline stays;
- backwards (a register smaller than before: reset, rollover, replaced meter): an
  anomaly, the baseline moves to the new values, nothing is billed;
- an implausible jump (more than the meter's rated power could pass in the interval) or
  a gap (an interval longer than the offline limit): an anomaly with the proposed
  charge, the baseline moves, nothing is billed until an admin approves;
- otherwise: rated and billed, once, under the entry id use:<meter>:<seq>.

`judge` is the whole decision for one reading (verdict, charge, new baseline); the ingest
service and the tariff preview (电价试算) both use it, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from core.domain.tariff import PERIODS, Charge, Plan, RatingCarry, cycle_at, rate
from core.protocol.messages import MeterReading  # the wire type, rated here; re-exported

RESOLUTION = Decimal("0.01")  # register resolution; sums of TOU registers may differ by this
JUMP_MARGIN = Decimal("1.2")  # allow 20% over the rated power before calling it implausible
DEFAULT_MAX_GAP = timedelta(hours=6)
MAX_CLOCK_SKEW = timedelta(minutes=10)  # how far a meter's read time may run ahead of the cloud's clock

BILL = "bill"
BASELINE = "baseline"
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"
BACKWARDS = "register_backwards"
JUMP = "implausible_jump"
GAP = "gap"
FUTURE = "read_time_future"
ANOMALIES = (OUT_OF_ORDER, BACKWARDS, JUMP, GAP, FUTURE)
PROPOSED = (JUMP, GAP)  # anomalies that carry a proposed charge for an admin to approve
ANOMALY_NAMES = {
    FUTURE: "读数时间超前于平台时间（表计时钟错误）",
    OUT_OF_ORDER: "读数时间早于已计费读数",
    BACKWARDS: "读数倒走（清零、翻转或换表）",
    JUMP: "用量超过表计额定功率可能的上限",
    GAP: "离线后长时间无读数",
}


@dataclass(frozen=True)
class Baseline:
    """The last reading that rating has accounted for (billed or judged)."""

    seq: int
    read_at: datetime
    total: Decimal
    registers: dict[str, Decimal] = field(default_factory=dict)
    carry: RatingCarry = RatingCarry()


@dataclass(frozen=True)
class Verdict:
    action: str  # BILL | BASELINE | DUPLICATE | one of ANOMALIES
    moves_baseline: bool
    quantity: Decimal = Decimal(0)
    by_period: dict[str, Decimal] | None = None
    detail: str = ""

    @property
    def is_anomaly(self) -> bool:
        return self.action in ANOMALIES


def assess(
    last: Baseline | None,
    r: MeterReading,
    rated_kw: Decimal,
    max_gap: timedelta = DEFAULT_MAX_GAP,
    *,
    now: datetime,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Verdict:
    """now: the cloud's clock when the reading is judged (its arrival)."""
    if last is not None and r.seq <= last.seq:
        # Already accounted for: a redelivery, or an older reading overtaken by a newer
        # one on the (unordered) queue — its usage is inside the newer reading's delta.
        return Verdict(DUPLICATE, False)
    if r.read_at > now + max_skew:
        return Verdict(FUTURE, False, detail=f"seq {r.seq} 的读数时间 {r.read_at.isoformat()} 晚于平台时间 "
                                              f"{now.isoformat()} 超过 {int(max_skew.total_seconds() // 60)} 分钟")
    if last is None:
        return Verdict(BASELINE, True)
    if r.read_at <= last.read_at:
        return Verdict(OUT_OF_ORDER, False, detail=f"seq {r.seq} 的读数时间 {r.read_at.isoformat()} 不晚于 {last.read_at.isoformat()}")
    delta = r.total - last.total
    if delta < 0 or any(r.registers.get(p, v) < v for p, v in last.registers.items()):
        return Verdict(BACKWARDS, True, quantity=delta, detail=f"{last.total} -> {r.total}")
    by_period = _period_deltas(last, r, delta)
    hours = Decimal((r.read_at - last.read_at).total_seconds()) / 3600
    limit = rated_kw * hours * JUMP_MARGIN + RESOLUTION
    if delta > limit:
        return Verdict(JUMP, True, delta, by_period, detail=f"{delta} > {limit.quantize(RESOLUTION)} ({hours:.2f} h)")
    if r.read_at - last.read_at > max_gap:
        return Verdict(GAP, True, delta, by_period, detail=f"{hours:.2f} h 无读数")
    return Verdict(BILL, True, delta, by_period)


def _period_deltas(last: Baseline, r: MeterReading, delta: Decimal) -> dict[str, Decimal] | None:
    """Per-period usage from TOU registers, if both readings carry them and they agree
    with the total; else None (the quantity is then spread by the plan's schedule)."""
    periods = [p for p in PERIODS if p in r.registers and p in last.registers]
    if not periods:
        return None
    parts = {p: r.registers[p] - last.registers[p] for p in periods}
    if abs(sum(parts.values()) - delta) > RESOLUTION * len(periods):
        return None
    return parts


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    baseline: Baseline | None  # the meter's new baseline; None: it stays
    charge: Charge | None = None  # BILL: what is debited now; JUMP/GAP: the proposal for an admin


def judge(
    plan: Plan | None,
    last: Baseline | None,
    r: MeterReading,
    rated_kw: Decimal,
    *,
    now: datetime,
    max_gap: timedelta = DEFAULT_MAX_GAP,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Outcome:
    """The whole decision for one reading. plan None: the cloud does not rate this meter
    (no plan yet, or the meter keeps the money itself); the verdict still stands.

    A billed reading moves the rating carry (sub-fen remainder, tier usage) on; an anomaly
    never does: a proposal is rated on the meter's carry so that an admin sees what
    approving it would cost, and approving it rates it again (rate_approved)."""
    v = assess(last, r, rated_kw, max_gap, now=now, max_skew=max_skew)
    if not v.moves_baseline:
        return Outcome(v, None)
    carry = last.carry if last is not None else RatingCarry()
    moved = Baseline(r.seq, r.read_at, r.total, dict(r.registers), carry)
    if v.action == BASELINE or v.action == BACKWARDS or plan is None or last is None:
        return Outcome(v, moved)
    charge = rate(plan, last.read_at, r.read_at, v.quantity, carry, v.by_period)
    if v.action == BILL:
        return Outcome(v, replace(moved, carry=charge.carry), charge)
    return Outcome(v, moved, charge)


def rate_approved(
    plan: Plan,
    start: datetime,
    end: datetime,
    quantity: Decimal,
    by_period: dict[str, Decimal] | None,
    current: RatingCarry,
    at_detection: RatingCarry,
) -> Charge:
    """Rate an approved anomaly (usage between start and end) as a normal reading would
    be rated now: on the meter's current carry (sub-fen remainder, tier cycle and its
    usage), which the returned charge's carry replaces.

    Tier surcharges depend only on the cycle's cumulative usage, so rating the approved
    usage on top of what the cycle has used since gives the cycle's exact total. If the
    anomaly's tier cycle has closed meanwhile (approved next month), its usage is rated on
    that cycle's usage as it stood when the anomaly was detected (the best known: later
    usage of a closed cycle is not kept), and the meter keeps its current cycle's usage.
    """
    closed = cycle_at(plan, end)
    if current.cycle and closed and closed < current.cycle:
        carry = RatingCarry(current.remainder_fen, at_detection.cycle, at_detection.cycle_usage)
        c = rate(plan, start, end, quantity, carry, by_period)
        return replace(c, carry=RatingCarry(c.carry.remainder_fen, current.cycle, current.cycle_usage))
    return rate(plan, start, end, quantity, current, by_period)


def entry_id(meter_id: str, seq: int) -> str:
    return f"use:{meter_id}:{seq}"
