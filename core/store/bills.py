"""Bills (账单) in DynamoDB (table `bills`, core/store/models.py BillItem): one partition per
account; the bill item `<period>#BILL`, its lines `<period>#LINE#<charge_id>` and payments
`<period>#PAY#<payment_id>`, so one Query reads a whole bill.

Every line is put (condition: its sk absent) in one transaction with the ADD of its amount
to the bill's total, and every payment with the ADD to paid: Σ lines = total and
Σ payments = paid hold at every moment, and a line or payment applied twice changes nothing.
"""

from __future__ import annotations

import json
from datetime import date

from pynamodb.expressions.condition import Condition

from core.domain.bills import CONFIRMED, DRAFT, ISSUED, Bill, BillLine, Payment, issued_event
from core.domain.events import Event
from core.domain.reports import bill_key
from core.domain.writes import AddBillLine, NoBillLine
from core.store import events as events_store
from core.store.models import BillItem, LedgerEntryItem
from core.store.tx import Tx, update_if
from core.store.usage import Summary

BILL_SK = "BILL"
ISSUE_TAG = "issue"  # the bill's update, when a line's write also issues it (AddBillLine.issue_by)


def bill_sk(period: str) -> str:
    return f"{period}#{BILL_SK}"


def line_sk(period: str, charge_id: str) -> str:
    return f"{period}#LINE#{charge_id}"


def pay_sk(period: str, payment_id: str) -> str:
    return f"{period}#PAY#{payment_id}"


def list_key(state: str, period: str, account_id: str) -> str:
    return f"{state}#{period}#{account_id}"


# --- transaction items (core/store/unit.py) ---------------------------------------------------


def add_line(tx: Tx, w: AddBillLine, tag: str, summary: Summary | None = None) -> None:
    """The line (absent before) and the bill's total, created as a draft when new; and the
    line's amount on the account's report summary of its day (docs/reports.md), through
    `summary` when the transaction gathers one (core/store/ledger.py), else written here."""
    ln = w.line
    _summarise(tx, tag, summary, ln.account_id, ln.created_at, f"b#{bill_key(ln.source, ln.charge_id)}", ln.amount)
    body = {"source": ln.source, "source_id": ln.source_id, "name": ln.name, "formula": ln.formula,
            "inputs": ln.inputs, "mode": ln.mode, "note": ln.note, "actor": ln.actor}
    item = BillItem(ln.account_id, line_sk(ln.period, ln.charge_id), kind="line", period=ln.period,
                    ref_id=ln.charge_id, amount=ln.amount, body=json.dumps(body, ensure_ascii=False, sort_keys=True),
                    created_at=ln.created_at)
    tx.put(item, BillItem.sk.does_not_exist(), tag=tag)
    header = BillItem(ln.account_id, bill_sk(ln.period))
    actions = [
        BillItem.kind.set("bill"),
        BillItem.period.set(ln.period),
        BillItem.property_id.set(BillItem.property_id | w.property_id),
        BillItem.paid.set(BillItem.paid | 0),
        BillItem.created_at.set(BillItem.created_at | ln.created_at),
        BillItem.updated_at.set(ln.created_at),
        BillItem.total.add(ln.amount),
        BillItem.line_count.add(1),
    ]
    if not w.issue_by:
        actions += [BillItem.state.set(BillItem.state | DRAFT),
                    BillItem.list_key.set(BillItem.list_key | list_key(DRAFT, ln.period, ln.account_id))]
    for attr, value in ((BillItem.building_id, w.building_id), (BillItem.room_id, w.room_id),
                        (BillItem.name, w.account_name), (BillItem.due_date, w.due)):
        if value:
            actions.append(attr.set(attr | value))
    condition: Condition | None = None
    if w.issue_by:  # confirmed and issued in this write: a new bill, a draft or a confirmed one only
        at = w.issue_at or ln.created_at
        actions += [BillItem.state.set(ISSUED), BillItem.list_key.set(list_key(ISSUED, ln.period, ln.account_id)),
                    BillItem.confirmed_at.set(BillItem.confirmed_at | at),
                    BillItem.confirmed_by.set(BillItem.confirmed_by | w.issue_by),
                    BillItem.issued_at.set(at), BillItem.issued_by.set(w.issue_by)]
        condition = BillItem.state.does_not_exist() | BillItem.state.is_in(DRAFT, CONFIRMED)
        tag = ISSUE_TAG
        # the bill's `bill_issued` event (put if absent) in the same write: an issued bill always has
        # it; same tag, so a bill issued before still reads "issued_before" (put_line_issuing)
        events_store.add_event(tx, issued_event(ln.account_id, ln.period, w.property_id, at, w.issue_by), tag=tag)
    if w.late_fee_before is not None:
        actions.append(BillItem.late_fee_total.add(ln.amount))
        condition = BillItem.late_fee_total == w.late_fee_before
        if w.late_fee_before == 0:
            condition = condition | BillItem.late_fee_total.does_not_exist()
    tx.update(header, actions, condition, tag=tag)


def _summarise(tx: Tx, tag: str, summary: Summary | None, account_id: str, at: str, name: str, fen: int) -> None:
    own = summary is None
    s = Summary() if own else summary
    s.money(account_id, at, name, fen)
    if own:
        s.flush(tx, "summary")


def add_payment_summary(tx: Tx, p: Payment, tag: str, summary: Summary | None = None) -> None:
    """A bill payment's amount on the account's report summary (m#bill_payment)."""
    _summarise(tx, tag, summary, p.account_id, p.paid_at, "m#bill_payment", p.amount)


def add_no_line(tx: Tx, w: NoBillLine, tag: str) -> None:
    tx.check(BillItem, w.account_id, line_sk(w.period, w.charge_id), condition=BillItem.sk.does_not_exist(), tag=tag)


def put_line_alone(w: AddBillLine) -> bool:
    """A line that joins no posting (a bill-mode charge, or a deduct-mode one the ledger
    could take nothing of), unless the line or a ledger entry with its id exists (a charge
    is applied once, whichever way). True if written, False if either was there (or a
    late fee's cap moved)."""
    tx = Tx()
    tx.check(LedgerEntryItem, w.line.account_id, w.line.charge_id, condition=LedgerEntryItem.entry_id.does_not_exist(),
             tag="entry")
    add_line(tx, w, "line")
    return tx.commit() is None


def put_line_issuing(w: AddBillLine) -> str:
    """put_line_alone with `w.issue_by`: "applied" (written, the bill issued), "issued_before"
    (the line could be written but the bill is issued or paid already: nothing written),
    "refused" (the line or an entry with its id exists, or a late fee's cap moved)."""
    assert w.issue_by
    tx = Tx()
    tx.check(LedgerEntryItem, w.line.account_id, w.line.charge_id, condition=LedgerEntryItem.entry_id.does_not_exist(),
             tag="entry")
    add_line(tx, w, "line")
    failures = tx.commit()
    if failures is None:
        return "applied"
    failed = {f.tag for f in failures if f.code == "ConditionalCheckFailed"}
    return "issued_before" if failed == {ISSUE_TAG} else "refused"


# --- reads ------------------------------------------------------------------------------------


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _bill(i: BillItem) -> Bill:
    return Bill(account_id=i.account_id, period=i.period, property_id=i.property_id or "",
                building_id=i.building_id or "", room_id=i.room_id or "", name=i.name or "", state=i.state or DRAFT,
                total=int(i.total or 0), paid=int(i.paid or 0), late_fee_total=int(i.late_fee_total or 0),
                line_count=int(i.line_count or 0), due_date=_date(i.due_date), created_at=i.created_at or "",
                confirmed_at=i.confirmed_at or "", confirmed_by=i.confirmed_by or "", issued_at=i.issued_at or "",
                issued_by=i.issued_by or "")


def _line(i: BillItem) -> BillLine:
    b = json.loads(i.body or "{}")
    return BillLine(i.account_id, i.period, i.ref_id, b.get("source", ""), b.get("source_id", ""), b.get("name", ""),
                    int(i.amount), b.get("formula", ""), b.get("inputs") or {}, b.get("mode", "bill"),
                    b.get("note", ""), i.created_at or "", b.get("actor", ""))


def _payment(i: BillItem) -> Payment:
    b = json.loads(i.body or "{}")
    return Payment(i.account_id, i.period, i.ref_id, int(i.amount), b.get("method", ""), b.get("actor", ""),
                   i.created_at or "", b.get("memo", ""))


def get_bill(account_id: str, period: str) -> Bill | None:
    """A bill with its lines and payments (one consistent Query)."""
    bill, lines, pays = None, [], []
    for i in BillItem.query(account_id, BillItem.sk.startswith(f"{period}#"), consistent_read=True):
        if i.kind == "bill":
            bill = _bill(i)
        elif i.kind == "line":
            lines.append(_line(i))
        elif i.kind == "payment":
            pays.append(_payment(i))
    if bill is None:
        return None
    lines.sort(key=lambda ln: (ln.created_at, ln.charge_id))
    pays.sort(key=lambda p: (p.paid_at, p.payment_id))
    return Bill(**{**bill.__dict__, "lines": tuple(lines), "payments": tuple(pays)})


def bill_head(account_id: str, period: str) -> Bill | None:
    """A bill without its lines and payments (one consistent GetItem of the bill item)."""
    try:
        i = BillItem.get(account_id, bill_sk(period), consistent_read=True)
    except BillItem.DoesNotExist:
        return None
    return _bill(i) if i.kind == "bill" else None


def get_line(account_id: str, period: str, charge_id: str) -> BillLine | None:
    try:
        return _line(BillItem.get(account_id, line_sk(period, charge_id), consistent_read=True))
    except BillItem.DoesNotExist:
        return None


def get_payment(account_id: str, period: str, payment_id: str) -> Payment | None:
    try:
        return _payment(BillItem.get(account_id, pay_sk(period, payment_id), consistent_read=True))
    except BillItem.DoesNotExist:
        return None


def bills_of_account(account_id: str, limit: int = 36) -> list[Bill]:
    """An account's bills (without lines), newest period first."""
    out = []
    for i in BillItem.query(account_id, scan_index_forward=False, filter_condition=BillItem.kind == "bill"):
        out.append(_bill(i))
        if len(out) >= limit:
            break
    return out


def bills_of_property(property_id: str, state: str, period: str = "", limit: int | None = 500) -> list[Bill]:
    """A property's bills in one stored state (and period, if given), by period then account;
    at most `limit` (None: all of them, page after page)."""
    prefix = f"{state}#{period}#" if period else f"{state}#"
    out = []
    for i in BillItem.by_property_state.query(property_id, BillItem.list_key.startswith(prefix), limit=limit):
        out.append(_bill(i))
    return out


# --- changes ----------------------------------------------------------------------------------


def set_state(bill: Bill, state: str, actor: str, at: str, due: date | None = None) -> bool:
    """Move a bill's stored state from the one read (condition) to `state`."""
    header = BillItem(bill.account_id, bill_sk(bill.period))
    actions = [BillItem.state.set(state), BillItem.list_key.set(list_key(state, bill.period, bill.account_id)),
               BillItem.updated_at.set(at)]
    if state == "confirmed":
        actions += [BillItem.confirmed_at.set(at), BillItem.confirmed_by.set(actor)]
    elif state == "issued":
        actions += [BillItem.issued_at.set(at), BillItem.issued_by.set(actor)]
    if due is not None:
        actions.append(BillItem.due_date.set(due.isoformat()))
    if state != ISSUED:
        return update_if(header, actions, BillItem.state == bill.state)
    event = issued_event(bill.account_id, bill.period, bill.property_id, at, actor)
    return issue_with_event(header, actions, BillItem.state == bill.state, event)


def issue_with_event(header: BillItem, actions: list, condition: Condition, event: Event) -> bool:
    """The update that issues a bill and its `bill_issued` event (put if absent) in one
    transaction. True if the bill was issued; False if its condition failed. (A bill is issued
    once, so its event is absent whenever the condition holds; an event there all the same is
    left as it is and the bill is issued alone.)"""
    tx = Tx()
    tx.update(header, actions, condition, tag="bill")
    events_store.add_event(tx, event, tag="event")
    failures = tx.commit()
    if failures is None:
        return True
    if {f.tag for f in failures if f.code == "ConditionalCheckFailed"} == {"event"}:
        return update_if(header, actions, condition)
    return False


def add_payment(bill: Bill, p: Payment) -> str:
    """Put a payment (absent before) and add it to paid, if the bill's total and paid are
    still those read (so the over-payment check holds) and it is issued.
    'applied' | 'duplicate' (the payment id is there) | 'stale' (the bill moved: read again)."""
    tx = Tx()
    body = {"method": p.method, "actor": p.actor, "memo": p.memo}
    tx.put(BillItem(p.account_id, pay_sk(p.period, p.payment_id), kind="payment", period=p.period, ref_id=p.payment_id,
                    amount=p.amount, body=json.dumps(body, ensure_ascii=False, sort_keys=True), created_at=p.paid_at),
           BillItem.sk.does_not_exist(), tag="payment")
    tx.update(BillItem(bill.account_id, bill_sk(bill.period)),
              [BillItem.paid.add(p.amount), BillItem.updated_at.set(p.paid_at)],
              (BillItem.total == bill.total) & (BillItem.paid == bill.paid) & (BillItem.state == "issued"), tag="bill")
    add_payment_summary(tx, p, "bill")
    failures = tx.commit()
    if failures is None:
        return "applied"
    tags = {f.tag for f in failures if f.code == "ConditionalCheckFailed"}
    return "duplicate" if "payment" in tags else "stale"
