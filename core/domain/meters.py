"""Meters as rating and control see them, and how a processed reading changes one."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from core.domain.rating import Baseline
from core.domain.tariff import RatingCarry


@dataclass(frozen=True)
class MeterState:
    """A meter's rating baseline, relay and meter-side money state."""

    meter_id: str
    property_id: str
    account_id: str
    site_id: str
    kind: str
    billing_mode: str
    rated_kw: Decimal
    plan_id: str | None
    baseline: Baseline | None
    online: bool
    keep_supply: bool
    relay_state: str
    relay_command_id: str | None
    desired_relay: str | None
    meter_balance: int | None
    purchase_count: int | None
    purchase_expected: int
    retired: bool
    relay_seen_at: str = ""
    relay_seq: int = 0
    relay_attempts: int = 0
    relay_last_try: str = ""
    purchase_pending: int | None = None
    purchase_pending_amount: int | None = None
    purchase_attempt: int = 0
    manual_open: bool = False  # an admin's manual trip holds the relay open


@dataclass(frozen=True)
class MeterUpdate:
    """How a processed reading changes its meter: one write in the reading's transaction,
    conditioned on the baseline seq it was planned on (None: no baseline yet), on the meter
    not being retired and, when given, on the rating carry it was planned on (an approved
    anomaly moves the carry without moving the seq, possibly from another process)."""

    meter_id: str
    expected_seq: int | None
    baseline: Baseline | None  # new baseline, or None to keep it
    seen_at: str
    reading: dict | None  # last_reading map (None: an out-of-order reading leaves it)
    online: bool
    meter_balance: int | None = None
    purchase_count: int | None = None
    relay_state: str | None = None  # read back with the reading (only "open" / "closed")
    expected_carry: RatingCarry | None = None
