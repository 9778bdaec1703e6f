"""In-memory repositories: the same functions as the core/store modules, over dicts, so
that service logic runs in unit tests without the emulator.

One `InMemoryStore` holds every table; `repos` (core.bootstrap.Repositories) holds the
repositories the services take (`ledger`, `accounts`, `events`, `orders`, `meters`,
`commands`, `unit`, `directory`). Write records (core.domain.writes) are applied as the
store applies them: every condition is checked first, then all or nothing is written,
and a refused record comes back as `Refused`. `build()` wires the services on it.

What the fakes do not model, the emulator tests keep: DynamoDB's retries, lost answers,
index lag, concurrency between processes.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from dataclasses import replace

from core.bootstrap import Repositories, Services
from core.bootstrap import build as build_services
from core.domain import control as policy
from core.domain.clock import Clock
from core.domain.control import Command
from core.domain.directory import Account, Meter, Site, Tenant
from core.domain.events import Event, Subject
from core.domain.ledger import AccountState, Entry, EntryKind
from core.domain.meters import MeterState, MeterUpdate
from core.domain.payments import CLOSED, PAID, PENDING, REFUND_PROCESSING, Order, Refund
from core.domain.rating import Baseline
from core.domain.writes import (
    AddEvent,
    AddUsage,
    DecideEvent,
    FailRefund,
    IssueRelay,
    MarkPaid,
    MoveCarry,
    Refused,
    StartRefund,
    Write,
)
from core.store.ledger import Outcome

CONTROL_DEFAULTS = {"cut_state": "none", "cut_due_at": ""}
SUPPLY_FIELDS = ("supply_check", "supply_check_at", "supply_token", "cut_pending")


class InMemoryStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.states: dict[str, AccountState] = {}
        self.account_records: dict[str, Account] = {}
        self.supply: dict[str, dict] = {}  # the reconciler's and the cut index's fields per account
        self.entries: dict[str, dict[str, Entry]] = {}
        self.events: dict[tuple[Subject, str], Event] = {}
        self.orders: dict[str, Order] = {}
        self.paid_dates: dict[str, str] = {}
        self.refunds: dict[str, Refund] = {}
        self.meters: dict[str, MeterState] = {}
        self.last_seen: dict[str, str] = {}
        self.commands: dict[str, Command] = {}
        self.command_results: dict[str, dict] = {}
        self.tenants: dict[str, Tenant] = {}
        self.sites: dict[str, Site] = {}
        self.sent: list[tuple[str, str, str, str]] = []  # (queue, body, group, dedup) of commands sent
        self.usage: list = []  # core.domain.usage.Usage added to the aggregates, in order (AddUsage)
        self.repos = Repositories(ledger=FakeLedger(self), accounts=FakeAccounts(self), meters=FakeMeters(self),
                                  commands=FakeCommands(self), events=FakeEvents(self), orders=FakeOrders(self),
                                  directory=FakeDirectory(self), unit=FakeUnit(self))

    # -- setting up ----------------------------------------------------------------------

    def open(self, account_id: str, balance: int = 0, *, property_id: str = "p1", tenant_id: str = "t1",
             at: str = "2026-01-01T00:00:00.000000Z", overdraft_limit: int = 0, **control) -> Account:
        """An open account with its opening entry (as directory.open_account leaves it) and
        any control fields (cut_state, meter_side, alarm_levels...)."""
        account = Account(account_id, property_id, "B1", f"R-{account_id}", tenant_id, account_id, balance, 1,
                          overdraft_limit=overdraft_limit, opened_at=at)
        opening = Entry(account_id, f"open:{account_id}", 1, EntryKind.OPENING, balance, balance,
                        f"account:{account_id}", "system", at, property_id=property_id)
        assert self.repos.ledger.open_account(account, opening)
        if control:
            s = self.states[account_id]
            self.states[account_id] = replace(s, control={**s.control, **control})
        return account

    def add_meter(self, m: MeterState, last_seen: str = "") -> None:
        self.meters[m.meter_id] = m
        if last_seen:
            self.last_seen[m.meter_id] = last_seen

    def build(self, clock: Clock, protection: dict | None = None, plans: dict | None = None,
              pay: object | None = None) -> Services:
        """The services on this store, with its sites, the given protection settings (one
        for every property; none: no protected time), plans (plan id -> Plan) and a
        WeChat Pay client (a stand-in with the client's methods)."""
        settings = policy.ProtectionSettings.from_dict(protection or {"night": None, "holidays": False})
        return build_services(clock, self.repos, pay=pay, sites=self.sites.get, protection_of=lambda _p: settings,
                              plans=(plans or {}).__getitem__, send=self.send)

    def send(self, queue: str, body: str, *, group: str, dedup: str) -> None:
        """The command queue (Control's `send`)."""
        self.sent.append((queue, body, group, dedup))

    # -- write records: check all, then apply all ------------------------------------------

    def refusal(self, w: Write) -> Refused | None:
        match w:
            case AddEvent(event=e):
                return Refused(w) if (e.subject, e.event_id) in self.events else None
            case DecideEvent():
                e = self.events.get((w.subject, w.event_id))
                return Refused(w) if e is None or e.status != w.expected else None
            case MeterUpdate():
                m = self.meters.get(w.meter_id)
                if m is None:
                    return Refused(w)
                seq = m.baseline.seq if m.baseline else None
                carry_moved = w.expected_carry is not None and m.baseline and m.baseline.carry != w.expected_carry
                return Refused(w, m) if seq != w.expected_seq or m.retired or carry_moved else None
            case MoveCarry():
                m = self.meters.get(w.meter_id)
                if m is None:
                    return Refused(w)
                carry = m.baseline.carry if m.baseline else None
                return Refused(w, m) if m.retired or carry != w.expected else None
            case MarkPaid():
                o = self.orders.get(w.out_trade_no)
                return None if o is not None and o.status in (PENDING, CLOSED) and o.amount == w.amount else Refused(w)
            case StartRefund(refund=r):
                o = self.orders.get(r.out_trade_no)
                ok = (r.out_refund_no not in self.refunds and o is not None and o.status == PAID
                      and o.refunded == w.order_refunded_before)
                return None if ok else Refused(w)
            case FailRefund(refund=r):
                now, o = self.refunds.get(r.out_refund_no), self.orders.get(r.out_trade_no)
                ok = now is not None and now.status == REFUND_PROCESSING and o is not None and o.refunded >= r.amount
                return None if ok else Refused(w)
            case IssueRelay(command=c):
                m = self.meters.get(c.meter_id)
                ok = (c.command_id not in self.commands and m is not None and m.relay_command_id is None
                      and m.relay_seq == w.relay_seq - 1 and (w.event.subject, w.event.event_id) not in self.events)
                return None if ok else Refused(w)
            case AddUsage():
                return None  # unconditioned: joins records that make the reading count once
        raise TypeError(f"not a write record: {w!r}")

    def apply(self, w: Write) -> None:
        match w:
            case AddEvent(event=e):
                self.events[(e.subject, e.event_id)] = copy.deepcopy(e)
            case DecideEvent():
                e = self.events[(w.subject, w.event_id)]
                self.events[(w.subject, w.event_id)] = replace(e, status=w.status,
                                                               data={**e.data, "decided_by": w.by, **w.data})
            case MeterUpdate():
                m = self.meters[w.meter_id]
                self.last_seen[w.meter_id] = w.seen_at
                relay = w.relay_state if w.relay_state is not None and w.reading is not None else m.relay_state
                self.meters[w.meter_id] = replace(
                    m, online=True, baseline=w.baseline or m.baseline, relay_state=relay,
                    meter_balance=w.meter_balance if w.meter_balance is not None else m.meter_balance,
                    purchase_count=w.purchase_count if w.purchase_count is not None else m.purchase_count)
            case MoveCarry():
                m = self.meters[w.meter_id]
                self.meters[w.meter_id] = replace(m, baseline=replace(m.baseline, carry=w.carry))
            case MarkPaid():
                self.orders[w.out_trade_no] = replace(self.orders[w.out_trade_no], status=PAID,
                                                      transaction_id=w.transaction_id, paid_at=w.paid_at)
                self.paid_dates[w.out_trade_no] = w.paid_date
            case StartRefund(refund=r):
                self.refunds[r.out_refund_no] = replace(r, status=REFUND_PROCESSING)
                o = self.orders[r.out_trade_no]
                self.orders[r.out_trade_no] = replace(o, refunded=w.order_refunded_before + r.amount)
            case FailRefund(refund=r):
                self.refunds[r.out_refund_no] = replace(self.refunds[r.out_refund_no], status=w.status)
                o = self.orders[r.out_trade_no]
                self.orders[r.out_trade_no] = replace(o, refunded=o.refunded - r.amount)
            case IssueRelay(command=c):
                self.commands[c.command_id] = c
                self.meters[c.meter_id] = replace(self.meters[c.meter_id], relay_command_id=c.command_id,
                                                  desired_relay=w.relay, relay_seq=w.relay_seq,
                                                  relay_last_try=c.issued_at, relay_attempts=1)
                self.events[(w.event.subject, w.event.event_id)] = copy.deepcopy(w.event)
            case AddUsage():
                self.usage.append(w.usage)

    def commit(self, writes: Iterable[Write]) -> tuple[Refused, ...]:
        writes = list(writes)
        with self.lock:
            refused = tuple(r for r in map(self.refusal, writes) if r is not None)
            if not refused:
                for w in writes:
                    self.apply(w)
            return refused


class FakeUnit:
    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def commit(self, writes: Iterable[Write]) -> tuple[Refused, ...]:
        return self.db.commit(writes)


class FakeLedger:
    """core.store.ledger.LedgerRepository in memory."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db
        self.commits = 0  # transactions attempted (tests count requests per posting)

    def load_state(self, account_id: str) -> AccountState | None:
        return self.db.states.get(account_id)

    def get_entry(self, account_id: str, entry_id: str) -> Entry | None:
        return self.db.entries.get(account_id, {}).get(entry_id)

    def commit(self, entry: Entry, state: AccountState, extras: Iterable[Write] = (),
               account_changes: dict | None = None) -> Outcome:
        db, extras = self.db, list(extras)
        with db.lock:
            self.commits += 1
            done = self.get_entry(entry.account_id, entry.entry_id)
            if done is not None:
                return Outcome("duplicate", entry=done)
            now = db.states.get(entry.account_id)
            if now is None:
                return Outcome("missing")
            if now.version != state.version or now.settings_rev != state.settings_rev:
                return Outcome("stale", state=now)
            refused = tuple(r for r in map(db.refusal, extras) if r is not None)
            if refused:
                return Outcome("extra_failed", refused=refused)
            db.entries.setdefault(entry.account_id, {})[entry.entry_id] = entry
            control, supply = dict(now.control), db.supply.setdefault(entry.account_id, {})
            for name, value in (account_changes or {}).items():
                target = supply if name in SUPPLY_FIELDS else control
                if value is None:
                    target.pop(name, None)
                    if name in CONTROL_DEFAULTS:
                        control[name] = CONTROL_DEFAULTS[name]
                else:
                    target[name] = value
            db.states[entry.account_id] = replace(now, balance=entry.balance_after, version=entry.seq,
                                                  last_posted_at=entry.posted_at, control=control)
            for w in extras:
                db.apply(w)
            return Outcome("applied", entry=entry)

    def open_account(self, account: Account, opening: Entry | None) -> bool:
        with self.db.lock:
            if account.account_id in self.db.states:
                return False
            self.db.account_records[account.account_id] = account
            self.db.states[account.account_id] = AccountState(
                account_id=account.account_id, balance=account.balance, version=account.version,
                overdraft_limit=account.overdraft_limit, status=account.status,
                last_posted_at=opening.posted_at if opening else account.opened_at, property_id=account.property_id,
                control={"keep_supply": account.keep_supply, "meter_side": False, "restore_line": 0,
                         "alarm_levels": None, "alarm_repeats": None, "alarm_state": {}, **CONTROL_DEFAULTS},
            )
            self.db.entries[account.account_id] = {opening.entry_id: opening} if opening else {}
            return True

    def entries(self, account_id: str, since: str | None = None, until: str | None = None, limit: int = 50,
                newest_first: bool = True, cursor: dict | None = None) -> tuple[list[Entry], dict | None]:
        found = sorted((e for e in self.all_entries(account_id)
                        if (not since or e.posted_at >= since) and (not until or e.posted_at <= until)),
                       key=lambda e: e.posted_at, reverse=newest_first)
        start = int((cursor or {}).get("offset", 0))
        page = found[start:start + limit]
        return page, ({"offset": start + limit} if start + limit < len(found) else None)

    def all_entries(self, account_id: str) -> list[Entry]:
        return list(self.db.entries.get(account_id, {}).values())


class FakeAccounts:
    """The account control fields of core.store.ledger in memory."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def _control(self, account_id: str, **changes) -> None:
        s = self.db.states[account_id]
        self.db.states[account_id] = replace(s, control={**s.control, **changes})

    def set_cut_state(self, account_id: str, cut_state: str, due_at: str = "", expected: str | None = None) -> bool:
        with self.db.lock:
            s = self.db.states.get(account_id)
            if s is None or (expected is not None and s.control.get("cut_state", "none") != expected):
                return False
            self._control(account_id, cut_state=cut_state, cut_due_at=due_at if cut_state == "pending" else "")
            supply = self.db.supply.setdefault(account_id, {})
            if cut_state == "pending":
                supply["cut_pending"] = "Y"
            else:
                supply.pop("cut_pending", None)
            return True

    def set_alarm_state(self, account_id: str, state: dict) -> None:
        self._control(account_id, alarm_state=state)

    def due_cuts(self, now_iso: str, limit: int = 500) -> list[str]:
        return [a for a, s in self.db.states.items() if self.db.supply.get(a, {}).get("cut_pending") == "Y"
                and s.control.get("cut_due_at", "") <= now_iso][:limit]

    def flag_supply(self, account_id: str, at: str, token: str) -> None:
        self.db.supply.setdefault(account_id, {}).update(supply_check="Y", supply_check_at=at, supply_token=token)

    def supply_check(self, account_id: str) -> tuple[str, str] | None:
        s = self.db.supply.get(account_id, {})
        return (s.get("supply_token", ""), s.get("supply_check_at", "")) if s.get("supply_check") else None

    def settle_supply_check(self, account_id: str, token: str, next_at: str | None) -> bool:
        s = self.db.supply.get(account_id, {})
        if s.get("supply_token") != token:
            return False
        if next_at is None:
            for k in ("supply_check", "supply_check_at", "supply_token"):
                s.pop(k, None)
        else:
            s["supply_check_at"] = next_at
        return True

    def due_supply_checks(self, now_iso: str, limit: int = 500) -> list[str]:
        return [a for a, s in self.db.supply.items()
                if s.get("supply_check") and s.get("supply_check_at", "") <= now_iso][:limit]


class FakeEvents:
    """core.store.events in memory."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def put_event(self, e: Event) -> bool:
        return not self.db.commit([AddEvent(e)])

    def events_of(self, subject: Subject) -> list[Event]:
        return sorted((e for (s, _), e in self.db.events.items() if s == subject), key=lambda e: e.event_id)

    def events_of_property(self, property_id: str, since: str = "", limit: int = 200) -> list[Event]:
        found = [e for e in self.db.events.values() if e.property_id == property_id and e.at >= since]
        return sorted(found, key=lambda e: e.at, reverse=True)[:limit]

    def get_event(self, subject: Subject, event_id: str) -> Event | None:
        return self.db.events.get((subject, event_id))

    def set_event_status(self, subject: Subject, event_id: str, expected: str, status: str, by: str,
                         data: dict | None = None) -> bool:
        return not self.db.commit([DecideEvent(subject, event_id, expected, status, by, dict(data or {}))])


class FakeOrders:
    """core.store.payments in memory."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def create_order(self, o: Order) -> bool:
        with self.db.lock:
            if o.out_trade_no in self.db.orders:
                return False
            self.db.orders[o.out_trade_no] = o
            return True

    def get_order(self, out_trade_no: str) -> Order | None:
        return self.db.orders.get(out_trade_no)

    def orders_of_account(self, account_id: str, limit: int = 50) -> list[Order]:
        found = [o for o in self.db.orders.values() if o.account_id == account_id]
        return sorted(found, key=lambda o: o.created_at, reverse=True)[:limit]

    def pending_orders(self, created_before: str, limit: int = 200) -> list[str]:
        return [o.out_trade_no for o in self.db.orders.values()
                if o.status == PENDING and o.created_at < created_before][:limit]

    def paid_orders_on(self, paid_date: str) -> list[Order]:
        return [self.db.orders[n] for n, d in self.db.paid_dates.items() if d == paid_date]

    def close_order(self, out_trade_no: str) -> bool:
        with self.db.lock:
            o = self.db.orders.get(out_trade_no)
            if o is None or o.status != PENDING:
                return False
            self.db.orders[out_trade_no] = replace(o, status=CLOSED)
            return True

    def get_refund(self, out_refund_no: str) -> Refund | None:
        return self.db.refunds.get(out_refund_no)

    def refunds_of(self, out_trade_no: str) -> list[Refund]:
        return [r for r in self.db.refunds.values() if r.out_trade_no == out_trade_no]

    def processing_refunds(self, created_before: str, limit: int = 200) -> list[str]:
        return [r.out_refund_no for r in self.db.refunds.values()
                if r.status == REFUND_PROCESSING and r.created_at < created_before][:limit]

    def finish_refund(self, out_refund_no: str, status: str, refund_id: str) -> bool:
        with self.db.lock:
            r = self.db.refunds.get(out_refund_no)
            if r is None or r.status != REFUND_PROCESSING:
                return False
            self.db.refunds[out_refund_no] = replace(r, status=status, refund_id=refund_id or r.refund_id)
            return True

    def set_refund_id(self, out_refund_no: str, refund_id: str) -> None:
        self.db.refunds[out_refund_no] = replace(self.db.refunds[out_refund_no], refund_id=refund_id)


class FakeMeters:
    """core.store.meters in memory."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def _set(self, meter_id: str, **changes) -> None:
        self.db.meters[meter_id] = replace(self.db.meters[meter_id], **changes)

    def load_meter(self, meter_id: str) -> MeterState | None:
        return self.db.meters.get(meter_id)

    def meter_ids_of_account(self, account_id: str) -> tuple[str, ...]:
        return tuple(sorted(m.meter_id for m in self.db.meters.values() if m.account_id == account_id))

    def load_meters(self, meter_ids: tuple[str, ...]) -> list[MeterState]:
        return [self.db.meters[i] for i in meter_ids if i in self.db.meters]

    def meters_of_account(self, account_id: str) -> list[MeterState]:
        return self.load_meters(self.meter_ids_of_account(account_id))

    def set_meter_offline(self, meter_id: str, last_seen: str, event: Event) -> bool:
        with self.db.lock:
            if self.db.last_seen.get(meter_id) != last_seen or self.db.commit([AddEvent(event)]):
                return False
            self._set(meter_id, online=False)
            return True

    def stale_meters(self, cutoff: str, limit: int = 500) -> list[tuple[str, str]]:
        return [(i, self.db.last_seen.get(i, "")) for i, m in self.db.meters.items()
                if m.online and self.db.last_seen.get(i, "") < cutoff][:limit]

    def set_meter_plan(self, meter_id: str, plan_id: str) -> None:
        self._set(meter_id, plan_id=plan_id)

    def retire_meter(self, meter_id: str, replaced_by: str) -> None:
        self._set(meter_id, retired=True)

    def seed_baseline(self, meter_id: str, baseline: Baseline) -> None:
        self._set(meter_id, baseline=baseline)

    def set_relay_state(self, meter_id: str, state: str) -> None:
        self._set(meter_id, relay_state=state)

    def clear_relay_command(self, meter_id: str, command_id: str, relay_state: str | None, seen_at: str = "") -> None:
        m = self.db.meters[meter_id]
        if m.relay_command_id == command_id:
            self._set(meter_id, relay_command_id=None, relay_attempts=0 if relay_state else m.relay_attempts)
        if relay_state:
            self.record_relay(meter_id, relay_state, seen_at)

    def record_relay(self, meter_id: str, relay_state: str, seen_at: str) -> bool:
        m = self.db.meters[meter_id]
        if seen_at and m.relay_seen_at and m.relay_seen_at > seen_at:
            return False
        self._set(meter_id, relay_state=relay_state, relay_seen_at=seen_at)
        return True

    def reset_relay_attempts(self, meter_id: str) -> None:
        self._set(meter_id, relay_attempts=0)

    def set_purchase_expected(self, meter_id: str, count: int) -> None:
        if self.db.meters[meter_id].purchase_expected < count:
            self._set(meter_id, purchase_expected=count)

    def purchase_applied(self, meter_id: str, count: int) -> None:
        self.set_purchase_expected(meter_id, count)
        pending = self.db.meters[meter_id].purchase_pending
        if pending is not None and pending <= count:
            self._set(meter_id, purchase_pending=None, purchase_pending_amount=None)


class FakeCommands:
    """core.store.commands in memory (the meter pointer and purchase conditions included)."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def get_command(self, command_id: str) -> Command | None:
        return self.db.commands.get(command_id)

    def commands_of_meter(self, meter_id: str) -> list[Command]:
        return sorted((c for c in self.db.commands.values() if c.meter_id == meter_id), key=lambda c: c.issued_at)

    def command_result(self, command_id: str) -> dict | None:
        return self.db.command_results.get(command_id)

    def create_command(self, c: Command, property_id: str, account_id: str, supersede: str | None,
                       relay: str | None, event: Event, relay_seq: int | None = None, attempts: int | None = None,
                       purchase: tuple[int, int, int] | None = None, expected_purchase: int | None = None,
                       supersede_open: bool = True) -> str:
        db = self.db
        with db.lock:
            if c.command_id in db.commands:
                return "exists"
            m = db.meters.get(c.meter_id)
            changes: dict = {}
            if relay is not None:
                if m is None or m.relay_command_id != supersede:
                    return "retry"
                if relay_seq is not None and m.relay_seq != relay_seq - 1:
                    return "retry"
                changes.update(relay_command_id=c.command_id, desired_relay=relay)
                if relay_seq is not None:
                    changes.update(relay_seq=relay_seq, relay_last_try=c.issued_at)
                if attempts is not None:
                    changes["relay_attempts"] = attempts
            if purchase is not None:
                count, amount, attempt = purchase
                ok = m is not None and (m.purchase_pending == count or (
                    m.purchase_pending is None and m.purchase_expected == count - 1))
                if not ok or (expected_purchase is not None and m.purchase_attempt != expected_purchase):
                    return "retry"
                changes.update(purchase_pending=count, purchase_pending_amount=amount, purchase_attempt=attempt)
            previous = db.commands.get(supersede) if supersede and supersede_open else None
            if supersede and supersede_open and (previous is None or previous.state not in policy.OPEN_STATES):
                return "retry"
            if db.commit([AddEvent(event)]):
                return "retry"
            db.commands[c.command_id] = c
            if changes:
                db.meters[c.meter_id] = replace(m, **changes)
            if previous is not None:
                db.commands[supersede] = replace(previous, state="superseded")
            return "created"

    def move_command(self, command_id: str, to: str, at: str, from_states: tuple[str, ...],
                     result: dict | None = None) -> bool:
        with self.db.lock:
            c = self.db.commands.get(command_id)
            if c is None or c.state not in from_states:
                return False
            self.db.commands[command_id] = replace(c, state=to)
            if result is not None:
                self.db.command_results[command_id] = result
            return True

    def open_commands(self, now_iso: str, limit: int = 500) -> list[str]:
        return [c.command_id for c in self.db.commands.values()
                if c.state in policy.OPEN_STATES and c.expires_at >= now_iso][:limit]

    def expired_commands(self, now_iso: str, limit: int = 500) -> list[str]:
        return [c.command_id for c in self.db.commands.values()
                if c.state in policy.OPEN_STATES and c.expires_at < now_iso][:limit]


class FakeDirectory:
    """The parts of core.store.directory the control and payment services use."""

    def __init__(self, db: InMemoryStore) -> None:
        self.db = db

    def get_account(self, account_id: str) -> Account | None:
        a, s = self.db.account_records.get(account_id), self.db.states.get(account_id)
        if a is None or s is None:
            return None
        return replace(a, balance=s.balance, version=s.version, overdraft_limit=s.overdraft_limit, status=s.status,
                       keep_supply=bool(s.control.get("keep_supply")), cut_state=s.control.get("cut_state", "none"))

    def tenants_by_openid(self, openid: str) -> list[Tenant]:
        return [t for t in self.db.tenants.values() if t.openid == openid]

    def set_account_settings(self, account_id: str, *, overdraft_limit: int | None = None,
                             keep_supply: bool | None = None, restore_line: int | None = None,
                             alarm_levels: list[int] | None = None, alarm_repeats: list[int] | None = None,
                             status: str | None = None) -> None:
        with self.db.lock:
            s = self.db.states[account_id]
            control = dict(s.control)
            for k, v in (("keep_supply", keep_supply), ("restore_line", restore_line),
                         ("alarm_levels", alarm_levels), ("alarm_repeats", alarm_repeats)):
                if v is not None:
                    control[k] = v
            self.db.states[account_id] = replace(
                s, overdraft_limit=s.overdraft_limit if overdraft_limit is None else overdraft_limit,
                status=status or s.status, control=control, settings_rev=s.settings_rev + 1)

    def get_meter(self, meter_id: str) -> Meter | None:
        raise NotImplementedError("directory meters are not modelled in memory")

    def get_site(self, site_id: str) -> Site | None:
        return self.db.sites.get(site_id)
