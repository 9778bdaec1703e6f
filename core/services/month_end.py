"""Month-end at scale (docs/billing.md "Month-end at scale").

Shortly after local midnight on the 1st, `start()` puts one message per property on the
month-end queue; the worker (functions/month_end.py) handles each message:

- **property**: a preview of each apportionment group's run for the month just closed
  (only where the group has no run for it yet: approval stays an admin's step), then one
  message per building.
- **building**: for each open account of the building, the charge items of the new month
  (core/domain/charge_items.py `charges_for`, applied by core/services/bills.py
  `apply_charges`, grouped by due date as the charge-items run does), the post-paid bill of
  the month just closed (core/services/postpaid.py `bill_period`), then the bills those
  touched are confirmed and issued.
- **late_fees**: the daily schedule's message per property: `Bills.run_late_fees` for the day,
  then `Bills.remind` (the day's due-soon and overdue bill reminders, recorded as events).

The periods travel in the messages (the closed month; the charged month is the one after
it), so a message redelivered days later does the same work. Every write below is
idempotent per (item, room, period): charges by charge id, post-paid billings by entry id,
previews only where none exists, issuing conditioned on the bill's state. A rerun of the
month or a redelivered message changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from core.domain import bills as bill_rules
from core.domain import charge_items as item_rules
from core.domain.admins import AdminPrincipal
from core.domain.bills import Bill
from core.domain.charge_items import AccountRef, RoomRef
from core.domain.charges import BILL as BILL_MODE
from core.domain.charges import Charge
from core.domain.clock import Clock, utcnow
from core.domain.directory import PaymentMode
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import ACCOUNT_OPEN, format_time
from core.domain.naming import id_problem
from core.integrations import queues
from core.services import apportion
from core.services.bills import Bills
from core.services.postpaid import Postpaid
from core.store import apportion as apportion_store
from core.store import bills as bills_store
from core.store import charge_items as items_store
from core.store import directory as dstore
from core.store import month_end as store

log = Logger(service="feikong", child=True)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
VERSION = 1
ACTOR = "month_end"
LATE_FEE_ACTOR = "late_fee"
PROPERTY, BUILDING, LATE_FEES = "property", "building", "late_fees"
KINDS = (PROPERTY, BUILDING, LATE_FEES)
# who a month-end preview is recorded as computed by (the console shows the name)
SYSTEM = AdminPrincipal("system:month_end", "月末结算（自动）", "", "system", ())
ISSUE_ATTEMPTS = 3
WORKERS = 8  # rooms of a building handled at once


# --- pure helpers: periods and messages ---------------------------------------------------------


def closed_period(now: datetime) -> str:
    """The local month before the one `now` falls in (Asia/Shanghai): the month just closed."""
    local = now.astimezone(LOCAL_TZ).date().replace(day=1) - timedelta(days=1)
    return f"{local.year:04d}-{local.month:02d}"


def next_period(period: str) -> str:
    first, last = item_rules.parse_period(period)
    after = last + timedelta(days=1)
    return f"{after.year:04d}-{after.month:02d}"


def local_day(now: datetime) -> date:
    return now.astimezone(LOCAL_TZ).date()


def message(kind: str, property_id: str, *, period: str = "", building_id: str = "", day: str = "") -> str:
    body: dict = {"v": VERSION, "kind": kind, "property_id": property_id}
    if period:
        body["period"] = period
    if building_id:
        body["building_id"] = building_id
    if day:
        body["day"] = day
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Message:
    kind: str
    property_id: str
    period: str = ""  # the closed month (property, building)
    building_id: str = ""
    day: date | None = None  # late_fees

    @property
    def charge_period(self) -> str:
        return next_period(self.period)


def parse_message(body: object) -> Message:
    """A queue message's body, checked; anything else is a ValidationError (the message is dropped)."""
    try:
        d = json.loads(body) if isinstance(body, str | bytes) else None
    except ValueError:
        d = None
    if not isinstance(d, dict) or d.get("v") != VERSION or d.get("kind") not in KINDS:
        raise ValidationError("not a month-end message", code="month_end_message_invalid")
    kind, pid = d["kind"], d.get("property_id")
    if not isinstance(pid, str) or id_problem(pid):
        raise ValidationError("bad property_id", code="month_end_message_invalid", field="property_id")
    if kind == LATE_FEES:
        try:
            day = date.fromisoformat(str(d.get("day")))
        except ValueError:
            raise ValidationError("bad day", code="month_end_message_invalid", field="day") from None
        return Message(kind, pid, day=day)
    period = d.get("period")
    item_rules.parse_period(period)
    bid = d.get("building_id") or ""
    if kind == BUILDING and (not isinstance(bid, str) or id_problem(bid)):
        raise ValidationError("bad building_id", code="month_end_message_invalid", field="building_id")
    return Message(kind, pid, period=period, building_id=bid if kind == BUILDING else "")


# --- the service --------------------------------------------------------------------------------


def _send_to_queue(bodies: list[str]) -> None:
    queues.send_batch(queues.month_end_url(), bodies)


class MonthEnd:
    def __init__(self, clock: Clock = utcnow, bills: Bills | None = None, postpaid: Postpaid | None = None,
                 send: Callable[[list[str]], None] = _send_to_queue, issue: bool = True,
                 workers: int = WORKERS) -> None:
        self.clock = clock
        self.bills = bills or Bills(clock=clock)
        self.postpaid = postpaid or Postpaid(ledger=self.bills.ledger, clock=clock)
        self.send = send
        self.issue = issue  # confirm and issue the bills a building's run touched
        self.workers = workers

    # -- the schedules -------------------------------------------------------------------------

    def start(self, period: str | None = None, property_ids: Iterable[str] | None = None) -> dict:
        """Queue one property message per property for `period` (the month just closed, by
        default the one before today's local month)."""
        period = item_rules.parse_period(period)[0].strftime("%Y-%m") if period else closed_period(self.clock())
        ids = sorted(set(property_ids)) if property_ids is not None else store.property_ids()
        self.send([message(PROPERTY, p, period=period) for p in ids])
        log.info("month-end started", period=period, properties=len(ids))
        return {"period": period, "charge_period": next_period(period), "properties": len(ids)}

    def start_late_fees(self, day: date | None = None, property_ids: Iterable[str] | None = None) -> dict:
        """Queue one late-fee message per property for `day` (by default today, local time)."""
        day = day or local_day(self.clock())
        ids = sorted(set(property_ids)) if property_ids is not None else store.property_ids()
        self.send([message(LATE_FEES, p, day=day.isoformat()) for p in ids])
        return {"day": day.isoformat(), "properties": len(ids)}

    # -- the worker ----------------------------------------------------------------------------

    def handle(self, body: str) -> dict:
        try:
            m = parse_message(body)
        except ValidationError as e:  # never valid on a retry either: logged and dropped
            log.error("month-end message refused", reason=e.message, body=str(body)[:200])
            return {"status": "refused", "reason": e.message}
        if m.kind == PROPERTY:
            return self.run_property(m.property_id, m.period)
        if m.kind == BUILDING:
            return self.run_building(m.property_id, m.building_id, m.period)
        return self.run_late_fees(m.property_id, m.day)

    def run_property(self, property_id: str, period: str) -> dict:
        """Previews of the apportionment groups' runs for `period` (where none exists), then
        one message per building."""
        previewed, problems = [], []
        inputs_of = apportion.PropertyInputs(property_id)  # the property's meters and rooms, read once for all groups
        for g in apportion_store.groups(property_id):
            try:
                apportion.run(property_id, g.group_id, period)
                continue  # previewed (or approved) before: the admin's, or an earlier month-end's
            except NotFound:
                pass
            try:
                apportion.preview(SYSTEM, property_id, g.group_id, period, clock=self.clock, inputs_of=inputs_of)
                previewed.append(g.group_id)
            except (ValidationError, Conflict) as e:  # a group set up wrong, or an admin previewing now
                log.warning("month-end apportionment preview skipped", property_id=property_id,
                            group_id=g.group_id, period=period, reason=e.message)
                problems.append({"group_id": g.group_id, "problem": e.message})
        buildings = sorted(b.building_id for b in dstore.buildings(property_id))
        self.send([message(BUILDING, property_id, period=period, building_id=b) for b in buildings])
        log.info("month-end property fanned out", property_id=property_id, period=period, buildings=len(buildings),
                 previews=len(previewed))
        return {"status": "ok", "kind": PROPERTY, "buildings": len(buildings), "previewed": previewed,
                "problems": problems}

    def run_building(self, property_id: str, building_id: str, period: str) -> dict:
        """A building's rooms: the charge items of the month after `period`, the post-paid
        bills of `period`, then their bills confirmed and issued. Rooms are independent (one
        account each), so `workers` of them run at once: a room's work is a chain of
        DynamoDB round trips, and a Lambda waits on them, not on its CPU."""
        charge_period = next_period(period)
        read = store.building_accounts(property_id, building_id)  # consistent: the postings plan on these states
        self.bills.ledger.remember([st for a, st in read if a.status == ACCOUNT_OPEN])
        accounts = sorted((a for a, _ in read if a.status == ACCOUNT_OPEN), key=lambda a: (a.room_id, a.account_id))
        rooms = {r.room_id: r for r in dstore.rooms(property_id, building_id)}
        charges, problems = self._charges(property_id, building_id, accounts, rooms, charge_period)
        postpaid_due = item_rules.parse_period(charge_period)[0] + timedelta(days=bill_rules.DEFAULT_DUE_DAYS)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            done = list(pool.map(lambda a: self._room(a, charges.get(a.account_id, {}), period, postpaid_due),
                                 accounts))
        statuses: dict[str, int] = {}
        for d in done:
            for k, v in d["charges"].items():
                statuses[k] = statuses.get(k, 0) + v
        postpaid_billed = sum(d["postpaid_billed"] for d in done)
        issued = sum(d["issued"] for d in done)
        log.info("month-end building done", property_id=property_id, building_id=building_id, period=period,
                 rooms=len(accounts), charges=statuses, postpaid_billed=postpaid_billed, issued=issued)
        return {"status": "ok", "kind": BUILDING, "rooms": len(accounts), "charges": statuses,
                "postpaid_billed": postpaid_billed, "issued": issued, "problems": problems}

    def _room(self, a, charges: dict[date, list[Charge]], period: str, postpaid_due: date) -> dict:
        """One account: its charges, its post-paid bill, then the bills these touched issued.

        Deduct-mode charges go first (a shortfall puts a line on the bill), then bill-mode
        ones; the last bill-mode line of each bill confirms and issues it in its own write,
        so a room's bill costs no write of its own. A bill's due date is the earliest due
        date of its lines (as applying them in due-date order gave): a shortfall line
        carries min(its due, the bill-mode lines' earliest), a bill-mode line the latter."""
        statuses: dict[str, int] = {}
        touched: set[tuple[str, str]] = set()
        flat = [(due, c) for due in sorted(charges) for c in charges[due]]
        bill_due: dict[str, date] = {}
        for due, c in flat:
            if c.mode == BILL_MODE:
                p = bill_rules.bill_period_of(c)
                bill_due[p] = min(bill_due.get(p, due), due)
        ordered = [x for x in flat if x[1].mode != BILL_MODE] + [x for x in flat if x[1].mode == BILL_MODE]
        last_line = {bill_rules.bill_period_of(c): c.charge_id for _, c in ordered if c.mode == BILL_MODE}
        issued, issued_now = 0, set()
        for due, c in ordered:
            p = bill_rules.bill_period_of(c)
            issue_with = (c.charge_id,) if self.issue and last_line.get(p) == c.charge_id else ()
            for r in self.bills.apply_charges([c], actor=ACTOR, due=min(due, bill_due.get(p, due)),
                                              accounts={a.account_id: a}, issue_with=issue_with):
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.issued:
                    issued += 1
                    issued_now.add(bill_rules.parse_bill_id(r.bill_id))
                elif r.bill_id:
                    touched.add(bill_rules.parse_bill_id(r.bill_id))
        billed = 0
        if a.payment_mode == PaymentMode.POSTPAID:
            result = self.postpaid.bill_period(a.account_id, period, ACTOR, due=postpaid_due, account=a)
            billed = result.billed
            if result.status in ("billed", "nothing"):  # on a rerun the bill may still wait to be issued
                touched.add((a.account_id, period))
        if self.issue:
            issued += self._issue(sorted(touched - issued_now), postpaid_due, a.property_id)
        return {"charges": statuses, "postpaid_billed": billed, "issued": issued}

    def run_late_fees(self, property_id: str, day: date) -> dict:
        """The day's late fees, then the day's bill reminders (due soon, overdue: recorded as
        events for the notification pipeline; after the fees, so an overdue notice counts them)."""
        results = self.bills.run_late_fees(property_id, day, actor=LATE_FEE_ACTOR)
        posted = sum(1 for r in results if r.status in ("billed", "deducted", "split"))
        reminded = self.bills.remind(property_id, day)
        log.info("late fees run", property_id=property_id, day=day.isoformat(), bills=len(results), posted=posted,
                 reminders=len(reminded))
        return {"status": "ok", "kind": LATE_FEES, "bills": len(results), "posted": posted,
                "reminders": len(reminded)}

    # -- parts ---------------------------------------------------------------------------------

    def _charges(self, property_id: str, building_id: str, accounts: list, rooms: dict,
                 period: str) -> tuple[dict[str, dict[date, list[Charge]]], list[dict]]:
        """The building's charges of `period`, by account and due date (each item's version in
        effect: the period's first day + its due days, as core/services/charge_items.py `run`)."""
        versions = items_store.versions(property_id)
        by_item: dict[str, list] = {}
        for v in versions:
            by_item.setdefault(v.item_id, []).append(v)
        due_days = {}
        for item_id, vs in by_item.items():
            chosen = item_rules.version_for(vs, period)
            if chosen is not None:
                due_days[item_id] = chosen.due_days
        out: dict[str, dict[date, list[Charge]]] = {}
        problems = []
        if not versions:
            return out, problems
        for a in accounts:
            room = rooms.get(a.room_id)
            ref = RoomRef(building_id, a.room_id, room.area_m2 if room else "", room.name if room else a.room_id)
            try:
                found = item_rules.charges_for(versions, ref, AccountRef(a.account_id, a.property_id, a.status), period)
            except ValidationError as e:  # e.g. an area-based item on a room without an area
                log.warning("month-end charges skipped for a room", account_id=a.account_id, reason=e.message)
                problems.append({"account_id": a.account_id, "room_id": a.room_id, "problem": e.message})
                continue
            for c in found:
                due = item_rules.due_date(period, due_days.get(c.source_id, 15))
                out.setdefault(a.account_id, {}).setdefault(due, []).append(c)
        return out, problems

    def _issue(self, bills: list[tuple[str, str]], default_due: date, property_id: str) -> int:
        """Confirm and issue each of these bills that is a draft (or confirmed) with something
        on it; an issued one is left as it is. A draft takes one conditioned write; anything
        else is read first, and each step is conditioned on the state read."""
        issued = 0
        for account_id, period in bills:
            at = format_time(self.clock())
            if store.issue_draft(account_id, period, ACTOR, at, default_due.isoformat(), property_id):
                log.info("bill issued by month-end", bill_id=bill_rules.bill_id_of(account_id, period))
                issued += 1
                continue
            for _ in range(ISSUE_ATTEMPTS):
                b = bills_store.get_bill(account_id, period)
                if b is None or b.state == bill_rules.ISSUED or b.total <= 0:
                    break
                if self._advance(b, default_due):
                    issued += 1
                    break
        return issued

    def _advance(self, b: Bill, default_due: date) -> bool:
        """draft -> confirmed -> issued; False if the bill moved meanwhile (read it again)."""
        at = format_time(self.clock())
        if b.state == bill_rules.DRAFT:
            if not bills_store.set_state(b, bill_rules.CONFIRMED, ACTOR, at):
                return False
            b = replace(b, state=bill_rules.CONFIRMED)
        if not bills_store.set_state(b, bill_rules.ISSUED, ACTOR, at, None if b.due_date else default_due):
            return False
        log.info("bill issued by month-end", bill_id=b.bill_id, total=b.total)
        return True


_default: MonthEnd | None = None


def service() -> MonthEnd:
    """The process's month-end service (a warm Lambda keeps its ledger memory)."""
    global _default
    if _default is None:
        _default = MonthEnd()
    return _default
