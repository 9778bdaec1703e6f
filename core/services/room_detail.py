"""The room detail read model (房间详情, docs/console.md "Room detail"): a room, its
accounts with tenant, balance, supply (cut) state and why, alarm level, overdraft and
restore line; each account's meters with the last reading, registers, online and relay
state (and the relay command in flight); today's usage and cost and the usage charts
(from the metered ledger entries); the ledger statement paged newest first with every
entry's cause in words; the meters' commands; the meters' and accounts' events.

Reads go through core/store only. Every key read starts from the URL's property: the
room is looked up in the property's own directory partition and its accounts by
`property#building` + room, so a room or account of another property is not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.domain import room_detail as rules
from core.domain.clock import utcnow
from core.domain.directory import Account, Building, Floor, Property, Room, Tenant
from core.domain.errors import FeikongError, NotFound
from core.domain.events import Event, Subject
from core.domain.ledger import ACCOUNT_OPEN, AccountState, Entry, format_time
from core.domain.money import yuan
from core.domain.naming import require_id
from core.domain.tariff import Plan
from core.store import commands as commands_store
from core.store import directory as directory_store
from core.store import events as events_store
from core.store import ledger as ledger_store
from core.store import meters as meters_store


@dataclass(frozen=True)
class EntryRow:
    entry: Entry
    kind_name: str
    text: str  # the cause in words
    actor: str
    at: str  # posted, local time


@dataclass(frozen=True)
class Statement:
    account_id: str
    rows: list[EntryRow]
    next_cursor: str | None
    cursor: str | None = None  # the cursor this page was asked with (None: the first page)


@dataclass(frozen=True)
class CommandView:
    row: rules.CommandRow
    op_name: str
    state_name: str
    cause: str
    result: str
    issued: str
    updated: str

    @property
    def open(self) -> bool:
        return self.row.state in ("queued", "sent")


@dataclass(frozen=True)
class MeterView:
    meter: rules.MeterDetail
    kind_name: str
    billing_name: str
    relay_name: str
    plan_name: str
    reading_at: str  # local time of the last reading
    last_seen: str
    relay_seen: str
    registers: list[tuple[str, str]]  # (period name, value)
    in_flight: CommandView | None  # the outstanding relay command


@dataclass(frozen=True)
class EventRow:
    event: Event
    subject: str  # 表 m1 / 账户
    type_name: str
    text: str
    status_name: str
    at: str

    @property
    def anomaly(self) -> bool:
        return self.event.type == "anomaly"


@dataclass(frozen=True)
class AccountView:
    account: Account
    state: AccountState
    tenant: Tenant | None
    supply: rules.Supply
    alarm_level: int
    alarm_text: str
    alarm_levels: tuple[int, ...]
    meters: list[MeterView]
    commands: list[CommandView]
    usage: rules.Usage
    statement: Statement

    @property
    def open(self) -> bool:
        return self.account.status == ACCOUNT_OPEN

    @property
    def in_flight(self) -> bool:
        return any(m.in_flight for m in self.meters)


@dataclass(frozen=True)
class RoomDetail:
    property: Property
    building: Building
    floor: Floor | None
    room: Room
    accounts: list[AccountView]
    events: list[EventRow]
    now: datetime
    open_anomalies: int = 0

    @property
    def tz(self) -> str:
        return self.property.timezone


def room_detail(property_id: str, building_id: str, room_id: str, *, now: datetime | None = None,
                cursor: str | None = None, cursor_account: str | None = None,
                limit: int = rules.PAGE_SIZE) -> RoomDetail:
    """Everything the room detail page shows. cursor / cursor_account: the statement page
    of that account (the others show their first page)."""
    for value, name in ((property_id, "property_id"), (building_id, "building_id"), (room_id, "room_id")):
        require_id(value, name)
    after = rules.decode_cursor(cursor)
    now = now or utcnow()
    prop, building, floor, room = directory_store.room_context(property_id, building_id, room_id)
    if prop is None:
        raise NotFound("物业不存在", code="property_not_found", property_id=property_id)
    if building is None or room is None:
        raise NotFound("房间不存在", code="room_not_found", building_id=building_id, room_id=room_id)
    tz = prop.timezone
    found = ledger_store.account_details(directory_store.room_account_ids(property_id, building_id, room_id))
    # open accounts first, then the newest opened
    found.sort(key=lambda pair: (pair[0].status != ACCOUNT_OPEN, pair[0].opened_at))
    views, events = [], []
    for account, state in found:
        if account.property_id != property_id:  # never; the index is keyed by the property
            continue
        page_after = after if cursor_account == account.account_id else None
        view, evs = _account_view(account, state, now, tz, page_after, limit)
        views.append(view)
        events += evs
    events.sort(key=lambda e: e.at, reverse=True)
    open_anomalies = sum(1 for e in events if e.type == "anomaly" and e.status == "open")
    rows = [_event_row(e, tz) for e in events[: rules.RECENT_EVENTS]]
    return RoomDetail(prop, building, floor, room, views, rows, now, open_anomalies)


def _account_view(account: Account, state: AccountState, now: datetime, tz: str, after: tuple[str, str] | None,
                  limit: int) -> tuple[AccountView, list[Event]]:
    tenant = directory_store.get_tenant(account.tenant_id) if account.tenant_id else None
    if tenant is not None and tenant.property_id != account.property_id:
        tenant = None
    meters = meters_store.meter_details(account.account_id)
    commands: list[CommandView] = []
    meter_views = []
    for m in meters:
        rows = [_command_view(c, tz) for c in commands_store.recent_commands(m.meter_id, rules.RECENT_COMMANDS)]
        commands += rows
        in_flight = next((c for c in rows if c.row.command_id == m.relay_command_id), None) if m.relay_command_id \
            else None
        meter_views.append(_meter_view(m, in_flight, tz))
    commands.sort(key=lambda c: c.row.issued_at, reverse=True)
    c = state.control
    levels = tuple(c.get("alarm_levels") or rules.DEFAULT_LEVELS)
    level, alarm_words = rules.alarm_text(state.balance, levels)
    supply = rules.supply_text(
        c.get("cut_state") or "none", c.get("cut_due_at") or "", state.balance, state.overdraft_limit,
        int(c.get("restore_line") or 0), bool(c.get("keep_supply")),
        [m.meter_id for m in meters if not m.retired and m.relay_state == "open"], tz)
    points = ledger_store.usage_points(account.account_id, format_time(rules.usage_since(now, tz)))
    statement = _statement(account.account_id, after, limit, meters, tz)
    events = [e for m in meters for e in events_store.events_of(Subject.meter(m.meter_id))]
    events += events_store.events_of(Subject.account(account.account_id))
    events = [e for e in events if e.type != "command" and e.property_id == account.property_id]
    return AccountView(account, state, tenant, supply, level, alarm_words, levels, meter_views, commands,
                       rules.usage(points, now, tz), statement), events


def statement(property_id: str, account_id: str, cursor: str | None = None, limit: int = rules.PAGE_SIZE,
              tz: str | None = None) -> Statement:
    """One page of an account's ledger statement (newest first) for an admin of property_id:
    an account of another property is not found."""
    require_id(property_id, "property_id")
    require_id(account_id, "account_id")
    after = rules.decode_cursor(cursor)
    account = directory_store.get_account(account_id)
    if account is None or account.property_id != property_id:
        raise NotFound("账户不存在", code="account_not_found", account_id=account_id)
    if tz is None:
        prop = directory_store.get_property(property_id)
        tz = prop.timezone if prop else "Asia/Shanghai"
    return _statement(account_id, after, limit, meters_store.meter_details(account_id), tz, cursor)


def _statement(account_id: str, after: tuple[str, str] | None, limit: int, meters: list[rules.MeterDetail],
               tz: str, cursor: str | None = None) -> Statement:
    entries, following = ledger_store.entries_page(account_id, limit, after)
    plans = _plans({m.meter_id: m.plan_id for m in meters})
    rows = []
    for e in entries:
        period = ""
        reading = rules.reading_of(e.cause)
        if reading is not None:
            period = rules.period_of(plans.get(reading[0]), e.occurred_at or "")
        rows.append(EntryRow(e, rules.KIND_NAMES.get(e.kind, str(e.kind)),
                             rules.entry_cause_text(e.kind, e.entry_id, e.cause, e.memo, period),
                             rules.actor_text(e.actor), rules.local_time(e.posted_at, tz, seconds=True)))
    return Statement(account_id, rows, rules.encode_cursor(*following) if following else None,
                     cursor if after is not None else None)


def _plans(plan_of: dict[str, str | None]) -> dict[str, Plan]:
    from core.services import tariffs  # plans are cached there (one minute)

    out = {}
    for meter_id, plan_id in plan_of.items():
        if plan_id:
            try:
                out[meter_id] = tariffs.plan(plan_id)
            except FeikongError:
                continue
    return out


def _plan_name(plan_id: str | None) -> str:
    if not plan_id:
        return "未设置"
    plan = _plans({"m": plan_id}).get("m")
    return plan.name if plan is not None else plan_id


def _meter_view(m: rules.MeterDetail, in_flight: CommandView | None, tz: str) -> MeterView:
    from core.domain.tariff import PERIOD_NAMES

    registers = [(PERIOD_NAMES.get(k, k), v) for k, v in sorted(
        m.registers.items(), key=lambda kv: list(PERIOD_NAMES).index(kv[0]) if kv[0] in PERIOD_NAMES else 99)]
    return MeterView(
        meter=m, kind_name=rules.METER_KIND_NAMES.get(m.kind, m.kind),
        billing_name=rules.BILLING_NAMES.get(m.billing_mode, m.billing_mode),
        relay_name=rules.RELAY_NAMES.get(m.relay_state, m.relay_state), plan_name=_plan_name(m.plan_id),
        reading_at=rules.local_time(m.reading_at, tz, seconds=True), last_seen=rules.local_time(m.last_seen, tz),
        relay_seen=rules.local_time(m.relay_seen_at, tz), registers=registers, in_flight=in_flight,
    )


def _command_view(c: rules.CommandRow, tz: str) -> CommandView:
    return CommandView(c, rules.OP_NAMES.get(c.op, c.op), rules.COMMAND_STATE_NAMES.get(c.state, c.state),
                       rules.command_cause_text(c.cause, c.actor), rules.command_result_text(c.result),
                       rules.local_time(c.issued_at, tz, seconds=True), rules.local_time(c.updated_at, tz, seconds=True))


def _event_row(e: Event, tz: str) -> EventRow:
    subject = f"表 {e.subject.id}" if e.subject.kind == "meter" else "账户"
    return EventRow(e, subject, rules.EVENT_NAMES.get(e.type, e.type), rules.event_text(e.type, e.message, e.data),
                    rules.EVENT_STATUS_NAMES.get(e.status, e.status), rules.local_time(e.at, tz, seconds=True))


# --- JSON ------------------------------------------------------------------------------


def _money(fen: int | None) -> dict | None:
    return None if fen is None else {"fen": fen, "yuan": yuan(fen)}


def statement_json(s: Statement) -> dict:
    return {
        "account_id": s.account_id,
        "entries": [
            {"entry_id": r.entry.entry_id, "seq": r.entry.seq, "kind": str(r.entry.kind), "kind_name": r.kind_name,
             "amount_fen": r.entry.amount, "amount": yuan(r.entry.amount), "balance_after_fen": r.entry.balance_after,
             "balance_after": yuan(r.entry.balance_after), "cause": r.entry.cause, "cause_text": r.text,
             "memo": r.entry.memo, "actor": r.entry.actor, "actor_text": r.actor, "posted_at": r.entry.posted_at,
             "occurred_at": r.entry.occurred_at}
            for r in s.rows
        ],
        "next_cursor": s.next_cursor,
    }


def to_json(d: RoomDetail) -> dict:
    return {
        "property": {"property_id": d.property.property_id, "name": d.property.name},
        "building": {"building_id": d.building.building_id, "name": d.building.name},
        "floor": {"floor_id": d.floor.floor_id, "name": d.floor.name} if d.floor else None,
        "room": {"room_id": d.room.room_id, "name": d.room.name, "area_m2": d.room.area_m2},
        "accounts": [_account_json(a) for a in d.accounts],
        "events": [
            {"subject": e.subject, "event_id": e.event.event_id, "type": e.event.type, "type_name": e.type_name,
             "text": e.text, "status": e.event.status, "status_name": e.status_name, "at": e.event.at}
            for e in d.events
        ],
        "open_anomalies": d.open_anomalies,
    }


def _account_json(a: AccountView) -> dict:
    c = a.state.control
    u = a.usage
    return {
        "account_id": a.account.account_id,
        "name": a.account.name,
        "status": a.account.status,
        "opened_at": a.account.opened_at,
        "tenant": {"tenant_id": a.tenant.tenant_id, "name": a.tenant.name, "phone": a.tenant.phone,
                   "bound": bool(a.tenant.openid)} if a.tenant else None,
        "balance": _money(a.state.balance),
        "overdraft_limit": _money(a.state.overdraft_limit),
        "restore_line": _money(int(c.get("restore_line") or 0)),
        "alarm_levels": [_money(x) for x in a.alarm_levels],
        "alarm_level": a.alarm_level,
        "alarm_text": a.alarm_text,
        "keep_supply": bool(c.get("keep_supply")),
        "cut_state": c.get("cut_state") or "none",
        "cut_due_at": c.get("cut_due_at") or None,
        "supply": {"state": a.supply.state, "label": a.supply.label, "reason": a.supply.reason},
        "meters": [_meter_json(m) for m in a.meters],
        "usage": {
            "today": {unit: str(q) for unit, q in u.today.items()},
            "today_cost": {unit: _money(f) for unit, f in u.today_fen.items()},
            "hourly_kwh": [str(q) for q in u.hours],
            "daily_kwh": [{"date": day, "kwh": str(q)} for day, q in u.days],
        },
        "commands": [_command_json(c) for c in a.commands],
        "statement": statement_json(a.statement),
    }


def _meter_json(v: MeterView) -> dict:
    m = v.meter
    return {
        "meter_id": m.meter_id, "kind": m.kind, "model": m.model, "site_id": m.site_id, "bus": m.bus,
        "address": m.address, "billing_mode": m.billing_mode, "rated_kw": m.rated_kw, "plan_id": m.plan_id,
        "plan_name": v.plan_name, "online": m.online, "last_seen": m.last_seen or None,
        "relay_state": m.relay_state, "relay_seen_at": m.relay_seen_at or None, "keep_supply": m.keep_supply,
        "retired": m.retired, "replaced_by": m.replaced_by or None,
        "last_reading": {"read_at": m.reading_at, "total": m.reading_total, "seq": m.reading_seq,
                         "registers": m.registers} if m.reading_at else None,
        "meter_balance": _money(m.meter_balance),
        "relay_in_flight": _command_json(v.in_flight) if v.in_flight else (
            {"command_id": m.relay_command_id} if m.relay_command_id else None),
    }


def _command_json(c: CommandView) -> dict:
    r = c.row
    return {"command_id": r.command_id, "meter_id": r.meter_id, "op": r.op, "op_name": c.op_name, "state": r.state,
            "state_name": c.state_name, "cause": r.cause, "cause_text": c.cause, "actor": r.actor,
            "issued_at": r.issued_at, "updated_at": r.updated_at, "expires_at": r.expires_at, "result": r.result}
