"""Commands to meters: records first, messages second (docs/control.md).

A new command, its audit event, the meter's outstanding-command pointer (relay commands)
or pending purchase (RECHARGE) and the superseding of the previous command are one
transaction."""

from __future__ import annotations

from core.domain.control import OPEN_STATES, Command
from core.domain.events import Event
from core.domain.writes import IssueRelay
from core.store.events import add_event
from core.store.meters import METER_TAG
from core.store.models import CommandItem, MeterItem
from core.store.tx import Tx, update_if


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
                   event: Event, relay_seq: int | None = None, attempts: int | None = None,
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
    _add_command(tx, c, property_id, account_id, "command")
    if relay is not None:
        _add_relay_pointer(tx, c, supersede, relay, relay_seq, attempts, METER_TAG)
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


def _add_command(tx: Tx, c: Command, property_id: str, account_id: str, tag: str) -> None:
    item = CommandItem(
        c.command_id, site_id=c.site_id, meter_id=c.meter_id, property_id=property_id, account_id=account_id,
        op=c.op, args=c.args, state=c.state, cause=c.cause, actor=c.actor, issued_at=c.issued_at,
        expires_at=c.expires_at, updated_at=c.issued_at, open_key="OPEN",
    )
    tx.put(item, CommandItem.command_id.does_not_exist(), tag=tag)


def _add_relay_pointer(tx: Tx, c: Command, supersede: str | None, relay: str, relay_seq: int | None,
                       attempts: int | None, tag: str) -> None:
    """The meter's outstanding relay command becomes `c` in place of `supersede`."""
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
    tx.update(MeterItem(c.meter_id), actions, cond, tag=tag)


def add_issue_relay(tx: Tx, w: IssueRelay, tag: str) -> None:
    """The items of an IssueRelay record (core.domain.writes), all under one tag."""
    _add_command(tx, w.command, w.property_id, w.command.account_id, tag)
    _add_relay_pointer(tx, w.command, None, w.relay, w.relay_seq, 1, tag)
    add_event(tx, w.event, tag)


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


# --- the room detail page's read (core/services/room_detail.py) -------------------------------


def recent_commands(meter_id: str, limit: int = 20) -> list:
    """A meter's newest commands with their states and results (one Query of by_meter)."""
    from core.domain.room_detail import CommandRow

    return [
        CommandRow(command_id=i.command_id, meter_id=i.meter_id, op=i.op, state=i.state, cause=i.cause or "",
                   actor=i.actor or "", issued_at=i.issued_at, updated_at=i.updated_at or "",
                   expires_at=i.expires_at or "", result=i.result.as_dict() if i.result else {})
        for i in CommandItem.by_meter.query(meter_id, scan_index_forward=False, limit=limit, page_size=limit)
    ]
