"""Low-balance alarms, the cut-off / restore policy and meter command states.

Alarms: up to three levels per account (fen, e.g. 5000 / 2000 / 0); falling below a
level raises one alarm for that crossing, repeated up to `repeats` times (one every
`repeat_every`) while the balance stays below; recovering above the level re-arms it.

Cut-off: supply is cut when the balance falls below the cut-off line (0 minus the
account's allowed overdraft), after an optional grace delay, never inside a protected
window (night hours, weekends, statutory holidays — each a property setting) and never
for keep-supply (保电) accounts or meters; a cut that may not run now stays pending and
runs when the window ends. Supply is restored as soon as the balance is above the
restore line. Post-paid (后付费) accounts are never below the line: they are billed each
period instead (docs/billing.md), and a cut in place when one turns post-paid is restored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.domain.calendar import HOLIDAY, WEEKEND, day_type
from core.domain.errors import ValidationError
from core.domain.money import yuan

DEFAULT_LEVELS = (5000, 2000, 0)
DEFAULT_REPEATS = (1, 1, 1)

# relay control
CUT_NONE = "none"  # supply may stay on
CUT_PENDING = "pending"  # a cut is due at cut_due_at (grace delay or protected window)
CUT_DONE = "cut"  # a cut has been ordered

# command operations and states
TRIP, CLOSE, SET_TARIFF, RECHARGE, SET_ALARM, READ_NOW = "TRIP", "CLOSE", "SET_TARIFF", "RECHARGE", "SET_ALARM", "READ_NOW"
OPERATIONS = (TRIP, CLOSE, SET_TARIFF, RECHARGE, SET_ALARM, READ_NOW)
RELAY_OPERATIONS = (TRIP, CLOSE)
QUEUED, SENT, APPLIED, FAILED, EXPIRED, SUPERSEDED = "queued", "sent", "applied", "failed", "expired", "superseded"
OPEN_STATES = (QUEUED, SENT)
TRANSITIONS = {
    QUEUED: {SENT, APPLIED, FAILED, EXPIRED, SUPERSEDED},
    SENT: {APPLIED, FAILED, EXPIRED, SUPERSEDED},
    APPLIED: set(),
    FAILED: set(),
    EXPIRED: set(),
    SUPERSEDED: set(),
}
COMMAND_TTL = timedelta(hours=1)


def can_move(state: str, to: str) -> bool:
    return to in TRANSITIONS.get(state, set())


@dataclass(frozen=True)
class AlarmConfig:
    levels: tuple[int, ...] = DEFAULT_LEVELS
    repeats: tuple[int, ...] = DEFAULT_REPEATS
    repeat_every: timedelta = timedelta(hours=24)

    @staticmethod
    def build(levels: object, repeats: object) -> AlarmConfig:
        if not isinstance(levels, list | tuple) or not 1 <= len(levels) <= 3:
            raise ValidationError("告警级别应为 1 到 3 个金额（分）", code="alarm_levels_invalid", field="levels")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in levels):
            raise ValidationError("告警金额必须是以分为单位的整数", code="alarm_levels_invalid", field="levels")
        if list(levels) != sorted(set(levels), reverse=True):
            raise ValidationError("告警金额必须从高到低且不重复", code="alarm_levels_invalid", field="levels")
        if not isinstance(repeats, list | tuple) or len(repeats) != len(levels) or any(
            isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10 for n in repeats
        ):
            raise ValidationError("每级告警的次数应为 1 到 10", code="alarm_repeats_invalid", field="repeats")
        return AlarmConfig(tuple(levels), tuple(repeats))


@dataclass(frozen=True)
class AlarmNotice:
    level_index: int  # 0-based
    threshold: int
    balance: int
    occurrence: int  # 1 for the crossing, 2.. for repeats
    crossing: int  # how many times this level has been crossed (makes ids unique)

    @property
    def message(self) -> str:
        if self.threshold <= 0:
            return f"您的账户余额 {yuan(self.balance)} 元，已欠费，请尽快充值以免停电停水"
        return f"您的账户余额 {yuan(self.balance)} 元，已低于 {yuan(self.threshold)} 元，请及时充值"


def alarms_after(
    config: AlarmConfig, state: dict, old_balance: int, new_balance: int, now: datetime
) -> tuple[dict, list[AlarmNotice]]:
    """State per level: {"<i>": {"active": bool, "sent": n, "crossings": n, "last": iso}}.
    Returns the new state and the notices to send now."""
    new_state = {k: dict(v) for k, v in state.items()}
    notices = []
    for i, threshold in enumerate(config.levels):
        s = new_state.setdefault(str(i), {"active": False, "sent": 0, "crossings": 0, "last": ""})
        if new_balance < threshold and not s["active"]:
            s.update(active=True, sent=1, crossings=s["crossings"] + 1, last=now.isoformat())
            notices.append(AlarmNotice(i, threshold, new_balance, 1, s["crossings"]))
        elif new_balance >= threshold and s["active"]:
            s.update(active=False, sent=0)
    # only the most severe new crossing is worth a message; record all levels as crossed
    if len(notices) > 1:
        notices = [min(notices, key=lambda n: n.threshold)]
    return new_state, notices


def due_repeats(config: AlarmConfig, state: dict, balance: int, now: datetime) -> tuple[dict, list[AlarmNotice]]:
    """Repeats of active alarms whose time has come (run by the schedule)."""
    new_state = {k: dict(v) for k, v in state.items()}
    notices = []
    for i, threshold in enumerate(config.levels):
        s = new_state.get(str(i))
        if not s or not s["active"] or balance >= threshold:
            continue
        repeats = config.repeats[i] if i < len(config.repeats) else 1
        if s["sent"] >= repeats or not s["last"]:
            continue
        if now - datetime.fromisoformat(s["last"]) >= config.repeat_every:
            s.update(sent=s["sent"] + 1, last=now.isoformat())
            notices.append(AlarmNotice(i, threshold, balance, s["sent"], s["crossings"]))
    return new_state, notices


@dataclass(frozen=True)
class ProtectionSettings:
    """When supply may not be cut (a property setting)."""

    night: tuple[time, time] | None = (time(22, 0), time(8, 0))
    weekends: bool = False
    holidays: bool = True
    grace: timedelta = timedelta(0)
    timezone: str = "Asia/Shanghai"

    def to_dict(self) -> dict:
        return {
            "night": [self.night[0].strftime("%H:%M"), self.night[1].strftime("%H:%M")] if self.night else None,
            "weekends": self.weekends,
            "holidays": self.holidays,
            "grace_minutes": int(self.grace.total_seconds() // 60),
            "timezone": self.timezone,
        }

    @staticmethod
    def from_dict(d: dict | None) -> ProtectionSettings:
        if not d:
            return ProtectionSettings()
        try:
            night = d.get("night")
            night_t = (time.fromisoformat(night[0]), time.fromisoformat(night[1])) if night else None
            grace = int(d.get("grace_minutes", 0))
            if grace < 0 or grace > 7 * 24 * 60:
                raise ValueError
            ZoneInfo(d.get("timezone", "Asia/Shanghai"))
        except (ValueError, TypeError, IndexError, KeyError):
            raise ValidationError("保护时段设置无效", code="protection_invalid") from None
        return ProtectionSettings(
            night_t, bool(d.get("weekends", False)), bool(d.get("holidays", True)), timedelta(minutes=grace),
            d.get("timezone", "Asia/Shanghai"),
        )

    def protected(self, t: datetime) -> bool:
        local = t.astimezone(ZoneInfo(self.timezone))
        dt = day_type(local.date())
        if self.weekends and dt == WEEKEND:
            return True
        if self.holidays and dt == HOLIDAY:
            return True
        if self.night:
            start, end = self.night
            now = local.time()
            if start <= end:
                return start <= now < end
            return now >= start or now < end
        return False

    def next_allowed(self, t: datetime, step: timedelta = timedelta(minutes=1), limit: timedelta = timedelta(days=40)) -> datetime:
        """The first moment at or after t outside every protected window."""
        probe = t
        while self.protected(probe):
            if probe - t > limit:
                raise ValidationError("保护时段覆盖了所有时间，无法断电", code="protection_always")
            # jump to the next whole minute, then walk in steps (windows are minute-aligned)
            probe = (probe + step).replace(second=0, microsecond=0)
        return probe


@dataclass(frozen=True)
class ControlView:
    """What the policy needs about an account."""

    balance: int
    overdraft_limit: int
    keep_supply: bool
    cut_state: str = CUT_NONE
    cut_due_at: str = ""
    restore_line: int = 0
    postpaid: bool = False  # 后付费 (docs/billing.md): billed each period, never cut for money

    @property
    def cut_line(self) -> int:
        return -self.overdraft_limit


@dataclass(frozen=True)
class ControlDecision:
    cut_state: str
    cut_due_at: str = ""
    trip_now: bool = False
    restore_now: bool = False
    changed: bool = False
    reason: str = ""


def decide(view: ControlView, settings: ProtectionSettings, now: datetime) -> ControlDecision:
    """Where the account's supply should be heading, given its balance now."""
    # a post-paid account is never below the line: what it owes is billed, not cut for;
    # a cut in place when it turns post-paid is restored
    below = view.balance < view.cut_line and not view.postpaid
    if view.cut_state == CUT_DONE:
        if view.postpaid:
            return ControlDecision(CUT_NONE, restore_now=True, changed=True, reason="postpaid")
        if view.balance > max(view.restore_line, view.cut_line):
            return ControlDecision(CUT_NONE, restore_now=True, changed=True, reason="balance above restore line")
        return ControlDecision(CUT_DONE)
    if not below or view.keep_supply:
        if view.cut_state == CUT_PENDING:
            return ControlDecision(CUT_NONE, changed=True, reason="pending cut cancelled")
        return ControlDecision(CUT_NONE)
    # below the line and supply on: cut now, or schedule it
    if view.cut_state == CUT_PENDING and view.cut_due_at:
        due = datetime.fromisoformat(view.cut_due_at)
    else:
        due = now + settings.grace
    due = settings.next_allowed(max(due, now)) if due <= now else settings.next_allowed(due)
    if due <= now:
        return ControlDecision(CUT_DONE, trip_now=True, changed=True, reason="balance below cut-off line")
    iso = due.astimezone(UTC).isoformat()
    return ControlDecision(CUT_PENDING, iso, changed=(view.cut_state != CUT_PENDING or view.cut_due_at != iso),
                           reason="cut delayed by grace or protected window")


@dataclass(frozen=True)
class Command:
    command_id: str
    site_id: str
    meter_id: str
    op: str
    args: dict = field(default_factory=dict)
    cause: str = ""
    actor: str = "system"
    issued_at: str = ""
    expires_at: str = ""
    state: str = QUEUED
    account_id: str = ""


# --- supply as reconciled state ----------------------------------------------------------
#
# Every cloud-billed meter has an intended relay state, derived from its account's cut
# state and the meter's keep-supply flag, and a reported relay state: only what a
# read-back confirmed (a command result or a reading that carries the supply register).
# The control tick reconciles every account flagged for a supply check: for each meter
# whose reported state differs from the intended one and that has no live relay command,
# it issues a new command (a fresh id per attempt), backing off between attempts and
# alarming the admin once a streak reaches ALARM_AFTER_ATTEMPTS.

OPEN_RELAY, CLOSED_RELAY = "open", "closed"
RECONCILE_BACKOFF = (
    timedelta(0), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5), timedelta(minutes=10),
    timedelta(minutes=30), timedelta(hours=1),
)
ALARM_AFTER_ATTEMPTS = 3
RECHECK_LIVE = timedelta(minutes=2)  # how soon to look again at an account whose command is on its way


def next_look(now: datetime, expires_at: str) -> datetime:
    """When to look again at a meter whose command is live: soon (its result usually
    settles it, and a success does not flag the account again), at the latest when it expires."""
    return min(now + RECHECK_LIVE, datetime.fromisoformat(expires_at))


def intended_relay(cut_state: str, billing_mode: str, meter_keep_supply: bool, retired: bool,
                   manual_open: bool = False) -> str | None:
    """The relay state a meter should report; None when the cloud does not steer it
    (meter-side billing keeps its own relay, a retired meter is gone). An admin's manual
    trip (`manual_open`, held until their manual close) keeps it open whatever the money."""
    if retired:
        return None
    if manual_open:
        return OPEN_RELAY
    if billing_mode != "cloud":
        return None
    if cut_state == CUT_DONE and not meter_keep_supply:
        return OPEN_RELAY
    return CLOSED_RELAY


def relay_op(intended: str) -> str:
    return TRIP if intended == OPEN_RELAY else CLOSE


def relay_target(op: str) -> str | None:
    """The relay state a relay command orders."""
    return {TRIP: OPEN_RELAY, CLOSE: CLOSED_RELAY}.get(op)


def needs_command(intended: str | None, reported: str) -> bool:
    """Whether a meter's reported state calls for a command. An unknown state is left
    alone while supply should be on (the next reading reports it) but tripped when the
    account is cut."""
    if intended is None:
        return False
    if reported in (OPEN_RELAY, CLOSED_RELAY):
        return reported != intended
    return intended == OPEN_RELAY


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after `attempts` failed attempts before the next one."""
    if attempts <= 0:
        return timedelta(0)
    return RECONCILE_BACKOFF[min(attempts, len(RECONCILE_BACKOFF) - 1)]


def relay_command_id(meter_id: str, op: str, attempt: int) -> str:
    """A relay command's id: deterministic per meter and attempt, fresh for every attempt
    (a retried write of the same attempt finds it, a new attempt never collides)."""
    return f"{op.lower()}-{hashlib.sha256(f'{meter_id}|{op}|{attempt}'.encode()).hexdigest()[:16]}"


# --- meter-side money: the purchase-count protocol ----------------------------------------
#
# A meter that keeps the money counts purchases. Purchase n is bound to one amount when it
# is first issued and never changes: every retry of purchase n carries the same amount and
# the same count, so the meter applies it at most once (the bridge writes only when the
# meter's count is n-1 and answers "already applied" when it is n). Purchase n+1 is only
# issued once n is known to be applied. The transfer out of the platform balance is posted
# under the entry id meter:<meter>:<n>, once, whichever result (late, redelivered, from an
# expired or superseded command) reports n as applied.


def purchase_entry_id(meter_id: str, count: int) -> str:
    return f"meter:{meter_id}:{count}"


def recharge_command_id(meter_id: str, count: int, attempt: int) -> str:
    return f"recharge-{hashlib.sha256(f'{meter_id}|{count}|{attempt}'.encode()).hexdigest()[:16]}"
