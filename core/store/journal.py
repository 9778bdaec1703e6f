"""The finance journal (table `journal`) and the stored reconciliations (table
`reconciliations`): docs/finance.md. The only code that knows their keys, and how a DynamoDB
stream record of the ledger, orders, refunds and bills tables names its source."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.domain.finance import JournalRow, ReconRow
from core.store.ledger import entry_from_item
from core.store.models import (
    BillItem,
    JournalItem,
    LedgerEntryItem,
    OrderItem,
    ReconciliationItem,
    RefundItem,
)
from core.store.payments import _order, _refund
from core.store.tx import save, update_if, update_item

# --- the journal --------------------------------------------------------------------------


def _pk(property_id: str, month: str) -> str:
    return f"{property_id}#{month}"


def _item(row: JournalRow) -> JournalItem:
    return JournalItem(
        _pk(row.property_id, row.month), row.sort_key, property_id=row.property_id, at=row.at, type=row.type,
        channel=row.channel, status=row.status, amount=row.amount, account_id=row.account_id, ref=row.ref,
        ref_no=row.ref_no, building_id=row.building_id, room_id=row.room_id, tenant_id=row.tenant_id,
        tenant_name=row.tenant_name, account_name=row.account_name, memo=row.memo, actor=row.actor)


def _row(i: JournalItem) -> JournalRow:
    return JournalRow(
        property_id=i.property_id, at=i.at, account_id=i.account_id, ref=i.ref, type=i.type, channel=i.channel or "",
        status=i.status, amount=int(i.amount), ref_no=i.ref_no or "", building_id=i.building_id or "",
        room_id=i.room_id or "", tenant_id=i.tenant_id or "", tenant_name=i.tenant_name or "",
        account_name=i.account_name or "", memo=i.memo or "", actor=i.actor or "")


def put_row(row: JournalRow) -> None:
    """Write a row under its deterministic key (a redelivered record rewrites the same item)."""
    save(_item(row))


def _months(start: str, end: str) -> list[str]:
    y, m = int(start[:4]), int(start[5:7])
    out = []
    while f"{y:04d}-{m:02d}" <= end[:7]:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def rows(property_id: str, start: str, end: str) -> list[JournalRow]:
    """A property's rows with start <= at < end (UTC ISO), newest first: one Query per UTC
    month (paged by DynamoDB at 1 MB)."""
    out: list[JournalRow] = []
    for month in reversed(_months(start, end)):
        out += [_row(i) for i in JournalItem.query(_pk(property_id, month), JournalItem.sk.between(start, end),
                                                   scan_index_forward=False)]
    return out


# --- stream records -----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """What a stream record is about: `kind` entry | order | refund | bill_payment, and the
    value read from its new image (an Entry, an out_trade_no, an out_refund_no, a Payment)."""

    kind: str
    value: object
    account_id: str


def _table_of(arn: str) -> str:
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    return arn.split(":table/", 1)[-1].split("/", 1)[0]


def source_of(record: dict) -> Source | None:
    """The source a stream record (Lambda's DynamoDB stream record shape) is about, or None
    for a record the journal does not take (a removal, a bill or a line)."""
    image = (record.get("dynamodb") or {}).get("NewImage")
    if record.get("eventName") == "REMOVE" or not image:
        return None
    table = _table_of(str(record.get("eventSourceARN", "")))
    if table == LedgerEntryItem.Meta.table_name:
        e = entry_from_item(LedgerEntryItem.from_raw_data(image))
        return Source("entry", e, e.account_id)
    if table == OrderItem.Meta.table_name:
        o = _order(OrderItem.from_raw_data(image))
        return Source("order", o.out_trade_no, o.account_id)
    if table == RefundItem.Meta.table_name:
        r = _refund(RefundItem.from_raw_data(image))
        return Source("refund", r.out_refund_no, r.account_id)
    if table == BillItem.Meta.table_name:
        from core.store.bills import _payment

        item = BillItem.from_raw_data(image)
        if item.kind != "payment":
            return None
        return Source("bill_payment", _payment(item), item.account_id)
    return None


# --- reconciliations ----------------------------------------------------------------------


def _recon_row(i: ReconciliationItem) -> ReconRow:
    d = json.loads(i.doc)
    return ReconRow(day=i.day, property_id=i.property_id, out_trade_no=d["out_trade_no"], kind=d["kind"],
                    our_amount=d.get("our_amount"), their_amount=d.get("their_amount"),
                    transaction_id=d.get("transaction_id") or "", account_id=d.get("account_id") or "",
                    action=d.get("action") or "none", note=d.get("note") or "", reviewed_at=i.reviewed_at or "",
                    reviewed_by=i.reviewed_by or "", review_note=i.review_note or "")


def recon_rows(property_id: str, day: str) -> list[ReconRow]:
    """A property's rows of a day (one Query, consistent)."""
    return [_recon_row(i) for i in ReconciliationItem.query(
        property_id, ReconciliationItem.sk.startswith(f"ROW#{day}#"), consistent_read=True)]


def put_recon_row(row: ReconRow, at: str) -> None:
    """The row's result (kind, amounts, action); an admin's review on it is left as it is."""
    update_item(ReconciliationItem(row.property_id, f"ROW#{row.day}#{row.out_trade_no}"),
                [ReconciliationItem.day.set(row.day), ReconciliationItem.doc.set(
                    json.dumps(row.doc(), ensure_ascii=False, sort_keys=True)),
                 ReconciliationItem.updated_at.set(at)])


def put_recon_day(property_id: str, day: str, summary: dict, at: str) -> None:
    update_item(ReconciliationItem(property_id, f"DAY#{day}"),
                [ReconciliationItem.day.set(day),
                 ReconciliationItem.doc.set(json.dumps(summary, ensure_ascii=False, sort_keys=True)),
                 ReconciliationItem.updated_at.set(at)])


def recon_days(property_id: str, limit: int = 62) -> list[tuple[str, dict, str]]:
    """The property's reconciled days, newest first: (day, summary, when it ran)."""
    return [(i.day, json.loads(i.doc), i.updated_at or "") for i in ReconciliationItem.query(
        property_id, ReconciliationItem.sk.startswith("DAY#"), scan_index_forward=False, limit=limit)]


def mark_reviewed(property_id: str, day: str, out_trade_no: str, admin: str, note: str, at: str) -> bool:
    """Record an admin's review on a row once: False if the row is missing or reviewed already."""
    return update_if(ReconciliationItem(property_id, f"ROW#{day}#{out_trade_no}"),
                     [ReconciliationItem.reviewed_at.set(at), ReconciliationItem.reviewed_by.set(admin),
                      ReconciliationItem.review_note.set(note)],
                     ReconciliationItem.sk.exists() & ReconciliationItem.reviewed_at.does_not_exist())


def sources_of_account(account_id: str, kinds: tuple[str, ...]) -> list[Source]:
    """Everything of an account the journal takes, read from the tables themselves (the
    backfill: the same sources the streams deliver): its ledger entries of `kinds`, its
    orders and their refunds, its bill payments."""
    out = [Source("entry", entry_from_item(i), account_id) for i in LedgerEntryItem.query(
        account_id, filter_condition=LedgerEntryItem.kind.is_in(*kinds))]
    for o in OrderItem.by_account.query(account_id):
        out.append(Source("order", o.out_trade_no, account_id))
        out += [Source("refund", r.out_refund_no, account_id) for r in RefundItem.by_order.query(o.out_trade_no)]
    from core.store.bills import _payment

    out += [Source("bill_payment", _payment(i), account_id) for i in BillItem.query(
        account_id, filter_condition=BillItem.kind == "payment")]
    return out
