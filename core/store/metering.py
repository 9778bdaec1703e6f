"""Persistence for rating and control: meter baselines, tariffs, commands, events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from core.domain.control import OPEN_STATES, Command
from core.domain.rating import Baseline
from core.domain.tariff import RatingCarry
from core.store.models import (
    AccountItem,
    CommandItem,
    DirectoryItem,
    EventItem,
    MeterItem,
    TariffItem,
)
from core.store.tx import Tx, save, save_if, update_if, update_item

METER_TAG = "meter"


# --- meters as rating sees them -----------------------------------------------------


@dataclass(frozen=True)
class MeterContext:
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


def _context(i: MeterItem) -> MeterContext:
    baseline = None
    if i.rated_seq is not None:
        regs = i.rated_registers.as_dict() if i.rated_registers else {}
        baseline = Baseline(
            seq=int(i.rated_seq),
            read_at=datetime.fromisoformat(i.rated_at),
            total=Decimal(i.rated_total),
            registers={k: Decimal(str(v)) for k, v in regs.items()},
            carry=RatingCarry(Decimal(i.carry_fen or "0"), i.cycle or "", Decimal(i.cycle_usage or "0")),
        )
    return MeterContext(
        meter_id=i.meter_id,
        property_id=i.property_id,
        account_id=i.account_id,
        site_id=i.site_id,
        kind=i.kind,
        billing_mode=i.billing_mode,
        rated_kw=Decimal(i.rated_kw),
        plan_id=i.plan_id,
        baseline=baseline,
        online=bool(i.online),
        keep_supply=bool(i.keep_supply),
        relay_state=i.relay_state,
        relay_command_id=i.relay_command_id,
        desired_relay=i.desired_relay,
        meter_balance=int(i.meter_balance) if i.meter_balance is not None else None,
        purchase_count=int(i.purchase_count) if i.purchase_count is not None else None,
        purchase_expected=int(i.purchase_expected or 0),
        retired=bool(i.retired),
        relay_seen_at=i.relay_seen_at or "",
        relay_seq=int(i.relay_seq or 0),
        relay_attempts=int(i.relay_attempts or 0),
        relay_last_try=i.relay_last_try or "",
        purchase_pending=int(i.purchase_pending) if i.purchase_pending is not None else None,
        purchase_pending_amount=int(i.purchase_pending_amount) if i.purchase_pending_amount is not None else None,
        purchase_attempt=int(i.purchase_attempt or 0),
    )


def load_meter(meter_id: str) -> MeterContext | None:
    try:
        return _context(MeterItem.get(meter_id, consistent_read=True))
    except MeterItem.DoesNotExist:
        return None


def meters_of_account(account_id: str) -> list[MeterContext]:
    """Every meter of an account as control sees it (one query, one consistent batch read)."""
    ids = [i.meter_id for i in MeterItem.by_account.query(account_id)]
    return [_context(i) for i in MeterItem.batch_get(ids, consistent_read=True)] if ids else []


def meter_from_raw(raw: dict) -> MeterContext:
    return _context(MeterItem.from_raw_data(raw))


@dataclass(frozen=True)
class MeterUpdate:
    """How a processed reading changes its meter (one UpdateItem in the reading's transaction)."""

    meter_id: str
    expected_seq: int | None  # the baseline seq the decision was made against (None: none yet)
    baseline: Baseline | None  # new baseline, or None to keep it
    seen_at: str
    reading: dict | None  # last_reading map (None: an out-of-order reading leaves it)
    online: bool
    meter_balance: int | None = None
    purchase_count: int | None = None
    relay_state: str | None = None  # read back with the reading (only "open" / "closed")

    def add_to(self, tx: Tx) -> None:
        actions = [
            MeterItem.last_seen.set(self.seen_at),
            MeterItem.online.set(True),
            MeterItem.online_key.set("ON"),
        ]
        if self.reading is not None:
            actions.append(MeterItem.last_reading.set(self.reading))
        if self.baseline is not None:
            actions += baseline_actions(self.baseline)
        if self.meter_balance is not None:
            actions.append(MeterItem.meter_balance.set(self.meter_balance))
        if self.purchase_count is not None:
            actions.append(MeterItem.purchase_count.set(self.purchase_count))
        if self.relay_state is not None and self.reading is not None:
            actions += [MeterItem.relay_state.set(self.relay_state),
                        MeterItem.relay_seen_at.set(self.reading["read_at"])]
        if self.expected_seq is None:
            cond = MeterItem.rated_seq.does_not_exist()
        else:
            cond = MeterItem.rated_seq == self.expected_seq
        # a retired (replaced) meter takes no more readings, whatever a warm process remembers
        cond &= MeterItem.retired != True  # noqa: E712  (a DynamoDB condition, not a Python test)
        tx.update(MeterItem(self.meter_id), actions, MeterItem.meter_id.exists() & cond, tag=METER_TAG)


def commit_without_posting(update: MeterUpdate, events: Iterable[dict] = ()) -> list | None:
    """A reading that moves no money: the meter update (and its events) alone."""
    tx = Tx()
    update.add_to(tx)
    for e in events:
        add_event(tx, e)
    return tx.commit()


def set_meter_offline(meter_id: str, last_seen: str, event: dict) -> bool:
    """Mark offline if it has not been seen since last_seen. False if it has."""
    tx = Tx()
    tx.update(
        MeterItem(meter_id),
        [MeterItem.online.set(False), MeterItem.online_key.remove()],
        MeterItem.last_seen == last_seen,
        tag=METER_TAG,
    )
    add_event(tx, event)
    return tx.commit() is None


def stale_meters(cutoff: str, limit: int = 500) -> list[tuple[str, str]]:
    return [
        (i.meter_id, i.last_seen)
        for i in MeterItem.by_last_seen.query("ON", MeterItem.last_seen < cutoff, limit=limit)
    ]


def set_meter_plan(meter_id: str, plan_id: str) -> None:
    update_item(MeterItem(meter_id), [MeterItem.plan_id.set(plan_id)], MeterItem.meter_id.exists())


def retire_meter(meter_id: str, replaced_by: str) -> None:
    update_item(
        MeterItem(meter_id),
        [MeterItem.retired.set(True), MeterItem.replaced_by.set(replaced_by), MeterItem.online_key.remove()],
        MeterItem.meter_id.exists(),
    )


def baseline_actions(b: Baseline) -> list:
    """SET actions that make b the meter's rating baseline."""
    return [
        MeterItem.rated_seq.set(b.seq),
        MeterItem.rated_at.set(b.read_at.isoformat()),
        MeterItem.rated_total.set(str(b.total)),
        MeterItem.rated_registers.set({k: str(v) for k, v in b.registers.items()}),
        MeterItem.carry_fen.set(str(b.carry.remainder_fen)),
        MeterItem.cycle.set(b.carry.cycle),
        MeterItem.cycle_usage.set(str(b.carry.cycle_usage)),
    ]


def seed_baseline(meter_id: str, baseline: Baseline) -> None:
    update_item(MeterItem(meter_id), baseline_actions(baseline), MeterItem.meter_id.exists())


def set_relay_state(meter_id: str, state: str) -> None:
    update_item(MeterItem(meter_id), [MeterItem.relay_state.set(state)])


def set_purchase_expected(meter_id: str, count: int) -> None:
    """Raise the purchase count the meter should report (never lowers it)."""
    update_if(MeterItem(meter_id), [MeterItem.purchase_expected.set(count)], MeterItem.purchase_expected < count)


# --- events (anomalies, alarms, meter and command events: the audit trail) -----------


def event_item(e: dict) -> EventItem:
    return EventItem(
        e["scope"],
        e["event_id"],
        property_id=e["property_id"],
        at=e["at"],
        type=e["type"],
        status=e.get("status", ""),
        message=e.get("message", ""),
        data=e.get("data", {}),
    )


def add_event(tx: Tx, e: dict) -> None:
    tx.put(event_item(e), EventItem.event_id.does_not_exist(), tag=f"event:{e['event_id']}")


def put_event(e: dict) -> bool:
    return save_if(event_item(e), EventItem.event_id.does_not_exist())


def _event(i: EventItem) -> dict:
    return {
        "scope": i.scope,
        "event_id": i.event_id,
        "property_id": i.property_id,
        "at": i.at,
        "type": i.type,
        "status": i.status,
        "message": i.message,
        "data": json.loads(json.dumps(i.data.as_dict() if i.data else {}, default=str)),
    }


def events_of(scope: str) -> list[dict]:
    return [_event(i) for i in EventItem.query(scope, consistent_read=True)]


def events_of_property(property_id: str, since: str = "", limit: int = 200) -> list[dict]:
    cond = EventItem.at >= since if since else None
    return [_event(i) for i in EventItem.by_property.query(property_id, cond, limit=limit, scan_index_forward=False)]


def get_event(scope: str, event_id: str) -> dict | None:
    try:
        return _event(EventItem.get(scope, event_id, consistent_read=True))
    except EventItem.DoesNotExist:
        return None


def set_event_status(scope: str, event_id: str, expected: str, status: str, by: str) -> bool:
    return update_if(
        EventItem(scope, event_id),
        [EventItem.status.set(status), EventItem.data["decided_by"].set(by)],
        EventItem.status == expected,
    )


# --- tariffs --------------------------------------------------------------------------


def put_tariff(plan_id: str, property_id: str, document: dict, at: str, by: str) -> None:
    save(TariffItem(plan_id, property_id=property_id, document=json.dumps(document, ensure_ascii=False),
                    updated_at=at, updated_by=by))


def get_tariff(plan_id: str) -> tuple[str, dict] | None:
    try:
        i = TariffItem.get(plan_id, consistent_read=True)
    except TariffItem.DoesNotExist:
        return None
    return i.property_id, json.loads(i.document)


# --- property protection settings -----------------------------------------------------


def get_protection(property_id: str) -> dict | None:
    try:
        i = DirectoryItem.get(property_id, "PROPERTY")
    except DirectoryItem.DoesNotExist:
        return None
    return i.protection.as_dict() if i.protection else {}


def set_protection(property_id: str, settings: dict) -> None:
    update_item(DirectoryItem(property_id, "PROPERTY"), [DirectoryItem.protection.set(settings)],
                DirectoryItem.sk.exists())


# --- accounts: control fields outside postings ----------------------------------------


def set_cut_state(account_id: str, cut_state: str, due_at: str = "", expected: str | None = None) -> bool:
    actions = [AccountItem.cut_state.set(cut_state)]
    if cut_state == "pending":
        actions += [AccountItem.cut_due_at.set(due_at), AccountItem.cut_pending.set("Y")]
    else:
        actions += [AccountItem.cut_due_at.remove(), AccountItem.cut_pending.remove()]
    cond = AccountItem.account_id.exists()
    if expected is not None:
        cond &= AccountItem.cut_state == expected
    return update_if(AccountItem(account_id), actions, cond)


def set_alarm_state(account_id: str, state: dict) -> None:
    update_item(AccountItem(account_id), [AccountItem.alarm_state.set(state)])


def due_cuts(now_iso: str, limit: int = 500) -> list[str]:
    return [i.account_id for i in AccountItem.by_cut_due.query("Y", AccountItem.cut_due_at <= now_iso, limit=limit)]


# --- commands -------------------------------------------------------------------------


def _command(i: CommandItem) -> Command:
    return Command(
        command_id=i.command_id,
        site_id=i.site_id,
        meter_id=i.meter_id,
        op=i.op,
        args=i.args.as_dict() if i.args else {},
        cause=i.cause,
        actor=i.actor,
        issued_at=i.issued_at,
        expires_at=i.expires_at,
        state=i.state,
        account_id=i.account_id or "",
    )


def get_command(command_id: str) -> Command | None:
    try:
        return _command(CommandItem.get(command_id, consistent_read=True))
    except CommandItem.DoesNotExist:
        return None


def commands_of_meter(meter_id: str) -> list[Command]:
    return [_command(i) for i in CommandItem.by_meter.query(meter_id, scan_index_forward=True)]


def command_result(command_id: str) -> dict | None:
    try:
        i = CommandItem.get(command_id, consistent_read=True)
    except CommandItem.DoesNotExist:
        return None
    return i.result.as_dict() if i.result else None


def create_command(c: Command, property_id: str, account_id: str, supersede: str | None, relay: str | None,
                   event: dict, relay_seq: int | None = None, attempts: int | None = None,
                   purchase: tuple[int, int, int] | None = None, expected_purchase: int | None = None,
                   supersede_open: bool = True) -> str:
    """Write a new command (queued) with its audit event; if it is a relay command, make it
    the meter's outstanding one in place of `supersede` (relay_seq must still be
    relay_seq - 1: two issuers never both win), and mark `supersede` superseded when
    supersede_open says it may still run. A RECHARGE records its
    purchase (count, amount, attempt) as the meter's pending one, only while no other
    purchase is pending and the meter's last applied purchase is count - 1.
    Returns "created", "exists" or "retry" (the meter moved meanwhile)."""
    tx = Tx()
    item = CommandItem(
        c.command_id, site_id=c.site_id, meter_id=c.meter_id, property_id=property_id, account_id=account_id,
        op=c.op, args=c.args, state=c.state, cause=c.cause, actor=c.actor, issued_at=c.issued_at,
        expires_at=c.expires_at, updated_at=c.issued_at, open_key="OPEN",
    )
    tx.put(item, CommandItem.command_id.does_not_exist(), tag="command")
    if relay is not None:
        cond = MeterItem.meter_id.exists()
        cond &= MeterItem.relay_command_id == supersede if supersede else MeterItem.relay_command_id.does_not_exist()
        actions = [MeterItem.relay_command_id.set(c.command_id), MeterItem.desired_relay.set(relay)]
        if relay_seq is not None:
            same_seq = MeterItem.relay_seq == relay_seq - 1
            if relay_seq == 1:
                same_seq |= MeterItem.relay_seq.does_not_exist()
            cond &= same_seq
            actions += [MeterItem.relay_seq.set(relay_seq), MeterItem.relay_last_try.set(c.issued_at)]
        if attempts is not None:
            actions.append(MeterItem.relay_attempts.set(attempts))
        tx.update(MeterItem(c.meter_id), actions, cond, tag=METER_TAG)
    if purchase is not None:
        count, amount, attempt = purchase
        cond = MeterItem.meter_id.exists() & (
            (MeterItem.purchase_pending == count)
            | (MeterItem.purchase_pending.does_not_exist() & (MeterItem.purchase_expected == count - 1))
        )
        if expected_purchase is not None:
            cond &= MeterItem.purchase_attempt == expected_purchase
        tx.update(MeterItem(c.meter_id), [MeterItem.purchase_pending.set(count),
                                          MeterItem.purchase_pending_amount.set(amount),
                                          MeterItem.purchase_attempt.set(attempt)], cond, tag=METER_TAG)
    if supersede and supersede_open:
        tx.update(
            CommandItem(supersede),
            [CommandItem.state.set("superseded"), CommandItem.superseded_by.set(c.command_id),
             CommandItem.open_key.remove(), CommandItem.updated_at.set(c.issued_at)],
            CommandItem.state.is_in(*OPEN_STATES),
            tag="previous",
        )
    add_event(tx, event)
    failures = tx.commit()
    if failures is None:
        return "created"
    tags = {f.tag for f in failures if f.code == "ConditionalCheckFailed"}
    if "command" in tags:
        return "exists"
    return "retry"


def move_command(command_id: str, to: str, at: str, from_states: tuple[str, ...], result: dict | None = None) -> bool:
    actions = [CommandItem.state.set(to), CommandItem.updated_at.set(at)]
    if to not in OPEN_STATES:
        actions.append(CommandItem.open_key.remove())
    if result is not None:
        actions.append(CommandItem.result.set(result))
    return update_if(CommandItem(command_id), actions, CommandItem.state.is_in(*from_states))


def open_commands(now_iso: str, limit: int = 500) -> list[str]:
    """Queued or sent commands that have not expired yet."""
    return [i.command_id for i in CommandItem.by_open.query("OPEN", CommandItem.expires_at >= now_iso, limit=limit)]


def expired_commands(now_iso: str, limit: int = 500) -> list[str]:
    return [i.command_id for i in CommandItem.by_open.query("OPEN", CommandItem.expires_at < now_iso, limit=limit)]


def clear_relay_command(meter_id: str, command_id: str, relay_state: str | None, seen_at: str = "") -> None:
    """The meter's outstanding relay command finished: forget it and record the state the
    meter's read-back reported (never one it did not report)."""
    outstanding = MeterItem.relay_command_id == command_id
    if relay_state:  # the common case in one write: forget the command, record what it read back
        actions = [MeterItem.relay_command_id.remove(), MeterItem.relay_attempts.set(0),
                   MeterItem.relay_state.set(relay_state), MeterItem.relay_seen_at.set(seen_at)]
        if update_if(MeterItem(meter_id), actions, outstanding & _not_older(seen_at)):
            return
    update_if(MeterItem(meter_id), [MeterItem.relay_command_id.remove()], outstanding)
    if relay_state:
        record_relay(meter_id, relay_state, seen_at)


def _not_older(seen_at: str):
    cond = MeterItem.meter_id.exists()
    if seen_at:
        cond &= MeterItem.relay_seen_at.does_not_exist() | (MeterItem.relay_seen_at <= seen_at)
    return cond


def record_relay(meter_id: str, relay_state: str, seen_at: str) -> bool:
    """Record a read-back relay state unless a newer read-back is already recorded."""
    return update_if(MeterItem(meter_id), [MeterItem.relay_state.set(relay_state), MeterItem.relay_seen_at.set(seen_at)],
                     _not_older(seen_at))


def reset_relay_attempts(meter_id: str) -> None:
    update_item(MeterItem(meter_id), [MeterItem.relay_attempts.set(0)], MeterItem.meter_id.exists())


def purchase_applied(meter_id: str, count: int) -> None:
    """Purchase `count` is on the meter: it becomes the last applied one and, if it was the
    pending one, nothing is pending any more."""
    set_purchase_expected(meter_id, count)
    update_if(MeterItem(meter_id), [MeterItem.purchase_pending.remove(), MeterItem.purchase_pending_amount.remove()],
              MeterItem.purchase_pending <= count)


# --- supply checks (the reconciler's work list) ----------------------------------------


def flag_supply(account_id: str, at: str, token: str) -> None:
    """Ask the reconciler to look at an account's supply at `at` (or earlier if asked)."""
    update_item(
        AccountItem(account_id),
        [AccountItem.supply_check.set("Y"), AccountItem.supply_check_at.set(at), AccountItem.supply_token.set(token)],
        AccountItem.account_id.exists(),
    )


def supply_check(account_id: str) -> tuple[str, str] | None:
    """(token, due at) of an account's pending supply check, None if there is none."""
    try:
        i = AccountItem.get(account_id, consistent_read=True, attributes_to_get=["supply_check", "supply_token",
                                                                                  "supply_check_at"])
    except AccountItem.DoesNotExist:
        return None
    return (i.supply_token or "", i.supply_check_at or "") if i.supply_check else None


def settle_supply_check(account_id: str, token: str, next_at: str | None) -> bool:
    """Clear the check (next_at None) or move it to next_at, unless somebody flagged the
    account again meanwhile (the token changed): then their flag stands."""
    if next_at is None:
        actions = [AccountItem.supply_check.remove(), AccountItem.supply_check_at.remove(),
                   AccountItem.supply_token.remove()]
    else:
        actions = [AccountItem.supply_check_at.set(next_at)]
    return update_if(AccountItem(account_id), actions, AccountItem.supply_token == token)


def due_supply_checks(now_iso: str, limit: int = 500) -> list[str]:
    return [i.account_id for i in AccountItem.by_supply_check.query("Y", AccountItem.supply_check_at <= now_iso,
                                                                    limit=limit)]


# --- the rating carry outside a reading (approved anomalies; readings and rating) -------


def _carry_is(c: RatingCarry):
    """The meter's stored rating carry is c (an absent attribute reads as its default)."""

    def same(attr, value: str, default: str):
        cond = attr == value
        return cond | attr.does_not_exist() if value == default else cond

    return (same(MeterItem.carry_fen, str(c.remainder_fen), "0") & same(MeterItem.cycle, c.cycle, "")
            & same(MeterItem.cycle_usage, str(c.cycle_usage), "0"))


class _MeterAlsoIf:
    """A transaction seen through which the meter's update also requires `condition`."""

    def __init__(self, tx: Tx, condition) -> None:
        self._tx, self._condition = tx, condition

    def update(self, model, actions: list, condition=None, *, tag: str = "") -> None:
        if tag == METER_TAG:
            condition = self._condition if condition is None else condition & self._condition
        self._tx.update(model, actions, condition, tag=tag)

    def __getattr__(self, name: str):
        return getattr(self._tx, name)


@dataclass(frozen=True)
class RatedMeterUpdate(MeterUpdate):
    """A MeterUpdate that also requires the rating carry it was planned on: an approved
    anomaly moves the carry without moving the baseline seq, possibly from another
    process, and a reading planned on the old carry must fail (and be planned again)
    rather than overwrite it."""

    expected_carry: RatingCarry | None = None

    def add_to(self, tx: Tx) -> None:
        super().add_to(tx if self.expected_carry is None else _MeterAlsoIf(tx, _carry_is(self.expected_carry)))


def add_carry(tx: Tx, meter_id: str, expected: RatingCarry, carry: RatingCarry) -> None:
    """Move a meter's rating carry from `expected` to `carry` (not for a retired meter)."""
    tx.update(
        MeterItem(meter_id),
        [MeterItem.carry_fen.set(str(carry.remainder_fen)), MeterItem.cycle.set(carry.cycle),
         MeterItem.cycle_usage.set(str(carry.cycle_usage))],
        MeterItem.meter_id.exists() & (MeterItem.retired != True) & _carry_is(expected),  # noqa: E712
        tag=METER_TAG,
    )


def add_event_decision(tx: Tx, scope: str, event_id: str, expected: str, status: str, by: str,
                       data: dict[str, str | int]) -> None:
    """Decide an event (status expected -> status) with who decided and what came of it."""
    actions = [EventItem.status.set(status), EventItem.data["decided_by"].set(by)]
    actions += [EventItem.data[k].set(v) for k, v in data.items()]
    tx.update(EventItem(scope, event_id), actions, EventItem.status == expected, tag=f"decision:{event_id}")


def commit_ops(ops: Iterable) -> list | None:
    """One transaction of the given `op(tx)` writers: None if applied, else the failures."""
    tx = Tx()
    for op in ops:
        op(tx)
    return tx.commit()
