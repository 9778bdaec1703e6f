"""Bills (账单) and applying charges (docs/billing.md "Post-paid mode, bills, late fees, deposits").

`apply_charges(charges, *, actor, due=None)` is the one way an amount owed reaches an
account: each `Charge` (core/domain/charges.py) is deducted from the prepaid balance
(a FEE posting, entry id = charge id; the part the overdraft line stops becomes a line on
the period's bill in the same transaction) or put on the account's bill for the period
(line id = charge id). Applying a charge again changes nothing.

`record_payment(bill_id, payment_id, amount, method, actor)` records a payment of an
issued bill (the counter's receipt number, or an order's out_trade_no), once per id.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from core.domain import bills as rules
from core.domain.bills import Bill, BillLine, Payment
from core.domain.charges import BILL, DEDUCT, Charge
from core.domain.clock import Clock, utcnow
from core.domain.directory import Account
from core.domain.errors import (
    Conflict,
    ContentionError,
    IdempotencyConflict,
    InsufficientFunds,
    NotFound,
    ValidationError,
    WriteRefused,
)
from core.domain.ledger import ACCOUNT_OPEN, AccountState, Entry, EntryKind, format_time
from core.domain.money import yuan
from core.domain.writes import AddBillLine, AddEvent, NoBillLine
from core.store import bills as store
from core.store import charge_items as items_store
from core.store import directory as dstore
from core.store import events as events_store

log = Logger(service="feikong", child=True)

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")
NOT_FOUND = "账单不存在"
SHORTFALL_NOTE = "预付余额不足，全额转入账单"


def shortfall_note(deducted: int, billed: int) -> str:
    """What a tenant reads beside a deduct-mode charge's line."""
    if deducted == 0:
        return SHORTFALL_NOTE
    return f"预付余额不足：已从余额扣 {yuan(deducted)} 元，差额 {yuan(billed)} 元转入账单"
ATTEMPTS = 8


class _Resplit(Exception):
    """A deduct-mode charge's split was planned on a state other than the one its
    transaction is conditioned on: plan it again on `state`."""

    def __init__(self, state: AccountState) -> None:
        super().__init__("split planned on another state")
        self.state = state


@dataclass(frozen=True)
class ApplyResult:
    """What applying one charge did. status: deducted (all from the balance), billed (all
    on the bill), split (part deducted, the rest billed), duplicate (applied before:
    nothing changed), conflict (the same charge id was applied with another amount, or a
    late fee's cap moved meanwhile: nothing changed)."""

    charge_id: str
    account_id: str
    status: str
    deducted: int = 0  # fen taken from the prepaid balance by this call
    billed: int = 0  # fen put on the bill by this call
    bill_id: str | None = None
    message: str = ""
    issued: bool = False  # the line's write also confirmed and issued the bill (apply_charges issue_with)


@dataclass(frozen=True)
class PaymentResult:
    bill: Bill
    payment: Payment
    duplicate: bool


class Bills:
    def __init__(self, control=None, clock: Clock = utcnow) -> None:
        self._control = control
        self.clock = clock
        self._lock = threading.Lock()

    @property
    def control(self):
        if self._control is None:
            from core.services.control import Control

            with self._lock:
                if self._control is None:
                    self._control = Control(clock=self.clock)
        return self._control

    @property
    def ledger(self):
        return self.control.ledger

    def today(self) -> date:
        return self.clock().astimezone(BUSINESS_TZ).date()

    # -- applying charges -------------------------------------------------------------

    def apply_charges(self, charges: Iterable[Charge], *, actor: str, due: date | None = None,
                      accounts: Mapping[str, Account] | None = None,
                      issue_with: Collection[str] = ()) -> list[ApplyResult]:
        """Apply each charge by its mode (docs/billing.md). `accounts`: the charges' accounts
        as the caller already read them (month-end reads a building's at once), else one
        GetItem per account. `issue_with`: ids of bill-mode charges whose line's write also
        confirms and issues the bill (month-end's last line of a room's bill), unless the
        bill is issued already (then the line is written alone)."""
        if not isinstance(actor, str) or not actor.strip():
            raise ValidationError("actor 不能为空", code="field_required", field="actor")
        charges = list(charges)
        for c in charges:
            if not isinstance(c, Charge):
                raise ValidationError("只能应用 Charge", code="charge_invalid")
        rooms: dict[str, tuple[str, str, str]] = {}
        out = []
        for c in charges:
            if c.account_id not in rooms:
                a = (accounts or {}).get(c.account_id) or dstore.get_account(c.account_id)
                if a is None:
                    raise NotFound("账户不存在", code="account_not_found", account_id=c.account_id)
                if a.property_id != c.property_id:
                    raise ValidationError("费用的物业与账户不符", code="charge_property_mismatch")
                rooms[c.account_id] = (a.building_id, a.room_id, a.name)
            out.append(self._apply(c, actor, due, rooms[c.account_id], c.charge_id in issue_with))
        return out

    def _record(self, c: Charge, amount: int, actor: str, due: date | None, room: tuple[str, str, str],
                note: str = "") -> AddBillLine:
        late_before = None
        if c.source == rules.LATE_FEE:
            late_before = int(c.inputs.get("late_fee_before", 0))
        return AddBillLine(BillLine.of(c, amount, format_time(self.clock()), actor, note), c.property_id,
                           due.isoformat() if due else None, late_before, *room)

    def _apply(self, c: Charge, actor: str, due: date | None, room: tuple[str, str, str],
               issue: bool = False) -> ApplyResult:
        period = rules.bill_period_of(c)
        bill_id = rules.bill_id_of(c.account_id, period)
        if c.mode == BILL and issue:
            record = self._record(c, c.amount, actor, due, room)
            done = store.put_line_issuing(replace(record, issue_by=actor, issue_at=record.line.created_at))
            if done == "applied":
                log.info("bill line added, bill issued", charge_id=c.charge_id, account_id=c.account_id,
                         amount=c.amount, bill_id=bill_id, actor=actor)
                return ApplyResult(c.charge_id, c.account_id, "billed", billed=c.amount, bill_id=bill_id, issued=True)
            if done == "refused":
                return self._already(c, bill_id)
        if c.mode == BILL:  # (issued before: the line joins the issued bill, as any other line would)
            if store.put_line_alone(self._record(c, c.amount, actor, due, room)):
                log.info("bill line added", charge_id=c.charge_id, account_id=c.account_id, amount=c.amount,
                         bill_id=bill_id, actor=actor)
                return ApplyResult(c.charge_id, c.account_id, "billed", billed=c.amount, bill_id=bill_id)
            return self._already(c, bill_id)
        assert c.mode == DEDUCT
        return self._deduct(c, actor, due, room, bill_id)

    def _already(self, c: Charge, bill_id: str) -> ApplyResult:
        """The charge's line was not written: the charge was applied before (a duplicate,
        or a conflict if with another amount), or (a late fee) the bill's late fees moved."""
        return self._deducted_before(c, bill_id) or ApplyResult(
            c.charge_id, c.account_id, "conflict", bill_id=bill_id, message="账单的滞纳金累计已变化，请重新计算")

    def _deduct(self, c: Charge, actor: str, due: date | None, room: tuple[str, str, str],
                bill_id: str) -> ApplyResult:
        # No look for an earlier application first: the transaction's own conditions find
        # it (the entry's id, the line's absence) and _deducted_before then says which.
        # The split is planned on the account's remembered state (month-end remembers a
        # building's, read at once) or one read; the hook checks it against the exact state
        # the transaction is conditioned on and asks for a new split when they differ.
        state = self.ledger.state(c.account_id)
        fresh = False
        for _ in range(ATTEMPTS):
            deducted, billed = rules.deduct_split(c.amount, state.balance, state.overdraft_limit)
            if state.status != ACCOUNT_OPEN:
                deducted, billed = 0, c.amount
            if deducted == 0 and not fresh:  # billing it whole has no account condition: on a fresh read only
                state, fresh = self.ledger.state(c.account_id, fresh=True), True
                continue
            if deducted == 0:
                if store.put_line_alone(self._record(c, billed, actor, due, room, SHORTFALL_NOTE)):
                    log.info("deduct charge billed whole", charge_id=c.charge_id, account_id=c.account_id,
                             amount=billed, bill_id=bill_id, actor=actor)
                    return ApplyResult(c.charge_id, c.account_id, "billed", billed=billed, bill_id=bill_id)
                return self._deducted_before(c, bill_id) or ApplyResult(c.charge_id, c.account_id, "duplicate",
                                                                        bill_id=bill_id)
            extras = ([self._record(c, billed, actor, due, room, shortfall_note(deducted, billed))] if billed else
                      [NoBillLine(c.account_id, rules.bill_period_of(c), c.charge_id)])
            decided: dict = {}
            now = self.clock()

            def hook(st: AccountState, entry: Entry, decided=decided, now=now, split=(deducted, billed)):
                if st.status != ACCOUNT_OPEN or rules.deduct_split(c.amount, st.balance, st.overdraft_limit) != split:
                    raise _Resplit(st)  # the state moved since the split was planned
                changes, events, decision = self.control.decide_after(st, entry, now)
                decided["d"] = (st, decision)
                return changes, [AddEvent(e) for e in events]

            try:
                # planned on the state just read (the ledger remembers it): no second read
                entry = self.ledger.post(extras=extras, hook=hook, account_id=c.account_id,
                                         entry_id=c.charge_id, kind=str(EntryKind.FEE), amount=deducted,
                                         cause=f"charge:{c.charge_id}", actor=actor, memo=c.name[:100])
            except _Resplit as moved:
                state, fresh = moved.state, True
                continue
            except InsufficientFunds:
                state, fresh = self.ledger.state(c.account_id, fresh=True), True
                continue  # the balance fell since it was read: split again
            except (IdempotencyConflict, WriteRefused):
                return self._deducted_before(c, bill_id) or ApplyResult(c.charge_id, c.account_id, "duplicate",
                                                                        bill_id=bill_id)
            if entry.duplicate:
                return self._deducted_before(c, bill_id) or ApplyResult(c.charge_id, c.account_id, "duplicate",
                                                                        bill_id=bill_id)
            if "d" in decided:
                st, decision = decided["d"]
                if decision.trip_now:
                    self.control.apply(st, decision, f"charge:{c.charge_id}")
            log.info("deduct charge applied", charge_id=c.charge_id, account_id=c.account_id, deducted=deducted,
                     billed=billed, balance_after=entry.balance_after, actor=actor)
            return ApplyResult(c.charge_id, c.account_id, "split" if billed else "deducted", deducted=deducted,
                               billed=billed, bill_id=bill_id if billed else None)
        raise ContentionError("账户繁忙，请稍后重试", account_id=c.account_id)

    def _deducted_before(self, c: Charge, bill_id: str) -> ApplyResult | None:
        """A duplicate result if the charge's FEE entry or its bill line exists (a conflict
        if with another amount), else None."""
        entry = self.ledger.store.get_entry(c.account_id, c.charge_id)
        line = store.get_line(c.account_id, rules.bill_period_of(c), c.charge_id)
        if entry is None and line is None:
            return None
        total = (-entry.amount if entry else 0) + (line.amount if line else 0)
        if total != c.amount:
            log.error("charge applied before with another amount", charge_id=c.charge_id, account_id=c.account_id)
            return ApplyResult(c.charge_id, c.account_id, "conflict", bill_id=bill_id,
                               message="该费用已按不同金额入账")
        return ApplyResult(c.charge_id, c.account_id, "duplicate", bill_id=bill_id if line else None)

    # -- bills ------------------------------------------------------------------------

    def bill(self, bill_id: object, property_id: str | None = None) -> Bill:
        """A bill with its lines and payments; another property's is a 404 like a missing one."""
        try:
            account_id, period = rules.parse_bill_id(bill_id)
        except ValidationError:
            raise NotFound(NOT_FOUND, code="bill_not_found") from None
        b = store.get_bill(account_id, period)
        if b is None or (property_id is not None and b.property_id != property_id):
            raise NotFound(NOT_FOUND, code="bill_not_found")
        return b

    def bills_of_account(self, account_id: str) -> list[Bill]:
        return store.bills_of_account(account_id)

    def bills_of_property(self, property_id: str, status: str = "", period: str = "",
                          building_id: str = "") -> list[Bill]:
        """A property's bills, filtered by derived status, period and building."""
        if status and status not in rules.STATUSES:
            raise ValidationError("账单状态无效", code="status_invalid", field="status")
        if period:
            from core.domain.charge_items import parse_period

            parse_period(period)
        states = [status] if status in (rules.DRAFT, rules.CONFIRMED) else (
            [rules.ISSUED] if status else list(rules.STATES))
        today = self.today()
        out = []
        for s in states:
            out += store.bills_of_property(property_id, s, period)
        if status:
            out = [b for b in out if b.status(today) == status]
        if building_id:
            out = [b for b in out if b.building_id == building_id]
        return sorted(out, key=lambda b: (b.period, b.building_id, b.room_id, b.account_id), reverse=False)

    def transition(self, property_id: str, bill_id: object, action: str, actor: str) -> Bill:
        """confirm (draft → confirmed) or issue (confirmed → issued; due date kept, else
        today + DEFAULT_DUE_DAYS)."""
        b = self.bill(bill_id, property_id)
        state = rules.next_state(b, action)
        due = None
        if state == rules.ISSUED and b.due_date is None:
            due = self.today() + timedelta(days=rules.DEFAULT_DUE_DAYS)
        if not store.set_state(b, state, actor, format_time(self.clock()), due):
            raise Conflict("账单已被他人修改，请刷新后重试", code="bill_changed")
        log.info("bill state changed", bill_id=b.bill_id, state=state, actor=actor)
        return self.bill(b.bill_id, property_id)

    def record_payment(self, bill_id: object, payment_id: object, amount: object, method: object,
                       actor: str, property_id: str | None = None, memo: str = "") -> PaymentResult:
        """Record a payment of an issued bill, once per payment id: a counter receipt number
        (method cash / transfer) or an order's out_trade_no (wechat). Over-payment refused."""
        for _ in range(ATTEMPTS):
            b = self.bill(bill_id, property_id)
            if isinstance(payment_id, str):
                payment_id = payment_id.strip()
            if isinstance(payment_id, str) and payment_id:
                before = store.get_payment(b.account_id, b.period, payment_id)
                if before is not None:
                    return self._same_payment(b, before, amount, method)
            pid, fen, how = rules.check_payment(b, payment_id, amount, method)
            p = Payment(b.account_id, b.period, pid, fen, how, actor, format_time(self.clock()), memo[:200])
            outcome = store.add_payment(b, p)
            if outcome == "applied":
                log.info("bill payment recorded", bill_id=b.bill_id, payment_id=pid, amount=fen, method=how,
                         actor=actor)
                return PaymentResult(self.bill(b.bill_id), p, False)
            if outcome == "duplicate":
                before = store.get_payment(b.account_id, b.period, pid)
                return self._same_payment(self.bill(b.bill_id), before, amount, method)
        raise ContentionError("账单繁忙，请稍后重试")

    def _same_payment(self, b: Bill, before: Payment, amount: object, method: object) -> PaymentResult:
        if before.amount != amount or before.method != method:
            raise IdempotencyConflict("该收据编号已用于另一笔不同的缴费", code="payment_id_conflict",
                                      payment_id=before.payment_id)
        return PaymentResult(b, before, True)

    # -- late fees --------------------------------------------------------------------

    def run_late_fees(self, property_id: str, day: date, actor: str = "late_fee") -> list[ApplyResult]:
        """Post each overdue bill's late fee for `day` (idempotent per bill and day: run it
        again, or twice at once, and nothing more is posted)."""
        rule = items_store.late_fee_rule(property_id)
        if not rule.enabled:
            return []
        out = []
        for head in store.bills_of_property(property_id, rules.ISSUED, limit=None):  # every one, not a page
            if head.due_date is None or day <= head.due_date or head.outstanding <= 0:
                continue
            charge_id = f"{rules.LATE_FEE}:{head.bill_id}:{day.isoformat()}"
            if store.get_line(head.account_id, head.period, charge_id) is not None:  # posted before
                out.append(ApplyResult(charge_id, head.account_id, "duplicate", bill_id=head.bill_id))
                continue
            for _ in range(ATTEMPTS):
                b = store.get_bill(head.account_id, head.period)
                charge = rules.late_fee_for(rule, b, day)
                if charge is None:
                    break
                r = self.apply_charges([charge], actor=actor)[0]
                if r.status != "conflict" or store.get_line(b.account_id, b.period, charge.charge_id):
                    out.append(r)
                    break
        return out


    # -- reminders (docs/billing.md "Reminders") ---------------------------------------------

    def remind(self, property_id: str, day: date) -> list[str]:
        """Record the reminders the property's issued, unpaid bills call for on `day` (local;
        core/domain/bills.py `reminder_for`: due soon, overdue) as events, which the
        notification pipeline routes and sends. Read like run_late_fees (the index of issued
        bills, no scan). Idempotent: each event's id is deterministic (per bill, or per bill
        and day) and put if absent, so a rerun or a redelivered message records nothing twice.
        Returns the ids of the events recorded by this call."""
        at = format_time(self.clock())
        recorded = []
        for b in store.bills_of_property(property_id, rules.ISSUED, limit=None):
            r = rules.reminder_for(b, day)
            if r is not None and events_store.put_event(rules.reminder_event(b, r, day, at)):
                recorded.append(r.event_id)
        if recorded:
            log.info("bill reminders recorded", property_id=property_id, day=day.isoformat(), count=len(recorded))
        return recorded


_default_bills: Bills | None = None
_default_lock = threading.Lock()


def default() -> Bills:
    global _default_bills
    with _default_lock:
        if _default_bills is None:
            _default_bills = Bills()
        return _default_bills


def apply_charges(charges: Iterable[Charge], *, actor: str, due: date | None = None) -> list[ApplyResult]:
    """Apply each charge by its mode (docs/billing.md); idempotent per charge id."""
    return default().apply_charges(charges, actor=actor, due=due)


def record_payment(bill_id: str, payment_id: str, amount: int, method: str, actor: str) -> PaymentResult:
    """Record a payment of a bill once per payment id (the online path calls this with the
    order's out_trade_no and method "wechat")."""
    return default().record_payment(bill_id, payment_id, amount, method, actor)


def status_text(b: Bill, today: date) -> str:
    return rules.STATUS_NAMES[b.status(today)]


def describe(b: Bill) -> str:
    return f"{b.period} 账单 {yuan(b.total)} 元"



# --- the tenant's view (/api/v1, miniprogram_api/tenant_bills.py) ------------------------------

TENANT_STATES = (rules.ISSUED,)  # drafts and confirmed bills are the property's, not yet the tenant's


def tenant_bills(openid: str, account_id: object) -> tuple[list[Bill], date]:
    """The issued bills of an account of the WeChat user, newest first (another's is a 404)."""
    from core.services import tenancy

    account_id = tenancy.require_member(openid, account_id)
    return [b for b in store.bills_of_account(account_id) if b.state in TENANT_STATES], default().today()


def tenant_bill(openid: str, account_id: object, bill_id: object) -> tuple[Bill, date]:
    """One issued bill of an account of the WeChat user, with lines and payments."""
    from core.services import tenancy

    account_id = tenancy.require_member(openid, account_id)
    b = default().bill(bill_id)
    if b.account_id != account_id or b.state not in TENANT_STATES:
        raise NotFound(NOT_FOUND, code="bill_not_found")
    return b, default().today()
