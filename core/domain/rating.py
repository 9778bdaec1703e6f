"""Turning a meter's readings into charges: what is billed, what is an anomaly.

Bad readings never make bad money. Against the last rated reading of a meter, a new
reading is one of:
- the first: it becomes the baseline, nothing is billed;
- a duplicate or an overtaken reading (seq not after the last rated one): ignored — a
  redelivery, or an older reading that a newer one overtook on the queue (its usage is
  inside the newer reading's delta);
- out of order (a newer seq but a read time not after the last rated one: the meter's
  clock went back): an anomaly, the baseline stays;
- backwards (a register smaller than before: reset, rollover, replaced meter): an
  anomaly, the baseline moves to the new values, nothing is billed;
- an implausible jump (more than the meter's rated power could pass in the interval) or
  a gap (an interval longer than the offline limit): an anomaly with the proposed
  charge, the baseline moves, nothing is billed until an admin approves;
- otherwise: rated and billed, once, under the entry id use:<meter>:<seq>.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from core.domain.tariff import PERIODS, RatingCarry

RESOLUTION = Decimal("0.01")  # register resolution; sums of TOU registers may differ by this
JUMP_MARGIN = Decimal("1.2")  # allow 20% over the rated power before calling it implausible
DEFAULT_MAX_GAP = timedelta(hours=6)

BILL = "bill"
BASELINE = "baseline"
DUPLICATE = "duplicate"
OUT_OF_ORDER = "out_of_order"
BACKWARDS = "register_backwards"
JUMP = "implausible_jump"
GAP = "gap"
ANOMALIES = (OUT_OF_ORDER, BACKWARDS, JUMP, GAP)
ANOMALY_NAMES = {
    OUT_OF_ORDER: "读数时间早于已计费读数",
    BACKWARDS: "读数倒走（清零、翻转或换表）",
    JUMP: "用量超过表计额定功率可能的上限",
    GAP: "离线后长时间无读数",
}


@dataclass(frozen=True)
class MeterReading:
    meter_id: str
    seq: int
    read_at: datetime  # the meter's own read time
    total: Decimal
    registers: dict[str, Decimal] = field(default_factory=dict)  # TOU registers, when reported
    balance: int | None = None  # meter-side money (fen), when the meter keeps it
    purchase_count: int | None = None

    def values(self) -> tuple:
        return (self.total, tuple(sorted(self.registers.items())))


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
) -> Verdict:
    if last is None:
        return Verdict(BASELINE, True)
    if r.seq <= last.seq:
        # Already accounted for: a redelivery, or an older reading overtaken by a newer
        # one on the (unordered) queue — its usage is inside the newer reading's delta.
        return Verdict(DUPLICATE, False)
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


def entry_id(meter_id: str, seq: int) -> str:
    return f"use:{meter_id}:{seq}"
