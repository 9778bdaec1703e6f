"""Persistence of recharge orders and refunds, and the transaction items that tie them
to ledger postings (so that an order turns PAID in the same transaction as the credit):
the records MarkPaid, StartRefund and FailRefund (core.domain.writes) become items here."""

from __future__ import annotations

import json

from core.domain.payments import CLOSED, PAID, PENDING, RECHARGE, REFUND_PROCESSING, Order, Refund
from core.domain.writes import FailRefund, MarkPaid, PayBill, StartRefund
from core.store import bills
from core.store.bills import bill_sk, pay_sk
from core.store.models import BillItem, OrderItem, RefundItem
from core.store.tx import Tx, save_if, update_if, update_item

ORDER_TAG = "order"
REFUND_TAG = "refund"


def _order(i: OrderItem) -> Order:
    return Order(
        out_trade_no=i.out_trade_no, property_id=i.property_id, account_id=i.account_id, tenant_id=i.tenant_id,
        openid=i.openid, amount=int(i.amount), status=i.status, created_at=i.created_at, expires_at=i.expires_at,
        channel=i.channel, transaction_id=i.transaction_id or "", paid_at=i.paid_at or "",
        refunded=int(i.refunded or 0), receipt_no=i.receipt_no or "", actor=i.actor or "",
        purpose=i.purpose or RECHARGE, bill_id=i.bill_id or "",
    )


def create_order(o: Order) -> bool:
    item = OrderItem(
        o.out_trade_no, property_id=o.property_id, account_id=o.account_id, tenant_id=o.tenant_id, openid=o.openid,
        amount=o.amount, status=o.status, channel=o.channel, created_at=o.created_at, expires_at=o.expires_at,
        receipt_no=o.receipt_no, actor=o.actor, pending_key="P" if o.status == PENDING else None,
        purpose=o.purpose if o.purpose != RECHARGE else None, bill_id=o.bill_id or None,
    )
    return save_if(item, OrderItem.out_trade_no.does_not_exist())


def get_order(out_trade_no: str) -> Order | None:
    try:
        return _order(OrderItem.get(out_trade_no, consistent_read=True))
    except OrderItem.DoesNotExist:
        return None


def orders_of_account(account_id: str, limit: int = 50) -> list[Order]:
    return [_order(i) for i in OrderItem.by_account.query(account_id, scan_index_forward=False, limit=limit)]


def pending_orders(created_before: str, limit: int = 200) -> list[str]:
    return [i.out_trade_no for i in OrderItem.by_pending.query("P", OrderItem.created_at < created_before, limit=limit)]


def paid_orders_on(paid_date: str) -> list[Order]:
    return [_order(i) for i in OrderItem.by_paid_date.query(paid_date)]


def add_mark_paid(tx: Tx, w: MarkPaid, tag: str = ORDER_TAG) -> None:
    """Transaction item: the order turns PAID, if it is still PENDING or CLOSED and its
    amount is the one paid."""
    tx.update(
        OrderItem(w.out_trade_no),
        [OrderItem.status.set(PAID), OrderItem.transaction_id.set(w.transaction_id), OrderItem.paid_at.set(w.paid_at),
         OrderItem.paid_date.set(w.paid_date), OrderItem.pending_key.remove()],
        OrderItem.status.is_in(PENDING, CLOSED) & (OrderItem.amount == w.amount),
        tag=tag,
    )


def add_pay_bill(tx: Tx, w: PayBill, tag: str, summary=None) -> None:
    """Transaction items: the bill payment (absent before) and the bill's paid, if the bill is
    issued with the total and paid read (the same conditions as a counter payment:
    core/store/bills.py add_payment)."""
    p = w.payment
    body = {"method": p.method, "actor": p.actor, "memo": p.memo}
    tx.put(BillItem(p.account_id, pay_sk(p.period, p.payment_id), kind="payment", period=p.period, ref_id=p.payment_id,
                    amount=p.amount, body=json.dumps(body, ensure_ascii=False, sort_keys=True), created_at=p.paid_at),
           BillItem.sk.does_not_exist(), tag=tag)
    tx.update(BillItem(p.account_id, bill_sk(p.period)), [BillItem.paid.add(p.amount), BillItem.updated_at.set(p.paid_at)],
              (BillItem.total == w.total_before) & (BillItem.paid == w.paid_before) & (BillItem.state == "issued"),
              tag=tag)
    bills.add_payment_summary(tx, p, tag, summary)  # the report summary (docs/reports.md); merged when gathered


def close_order(out_trade_no: str) -> bool:
    return update_if(OrderItem(out_trade_no), [OrderItem.status.set(CLOSED), OrderItem.pending_key.remove()],
                     OrderItem.status == PENDING)


# --- refunds ----------------------------------------------------------------------------


def _refund(i: RefundItem) -> Refund:
    return Refund(i.out_refund_no, i.out_trade_no, i.property_id, i.account_id, int(i.amount), i.status,
                  i.reason or "", i.actor, i.created_at, i.refund_id or "")


def get_refund(out_refund_no: str) -> Refund | None:
    try:
        return _refund(RefundItem.get(out_refund_no, consistent_read=True))
    except RefundItem.DoesNotExist:
        return None


def refunds_of(out_trade_no: str) -> list[Refund]:
    return [_refund(i) for i in RefundItem.by_order.query(out_trade_no)]


def processing_refunds(created_before: str, limit: int = 200) -> list[str]:
    """Refunds still PROCESSING that were started before the given time (sparse index)."""
    return [i.out_refund_no for i in RefundItem.by_processing.query(
        "P", RefundItem.created_at < created_before, limit=limit)]


def add_start_refund(tx: Tx, w: StartRefund, tag: str = REFUND_TAG) -> None:
    """Transaction items: the refund record (PROCESSING) and the order's refunded total,
    conditioned on nobody else having changed that total meanwhile."""
    r = w.refund
    tx.put(RefundItem(r.out_refund_no, out_trade_no=r.out_trade_no, property_id=r.property_id,
                      account_id=r.account_id, amount=r.amount, status=REFUND_PROCESSING, reason=r.reason,
                      actor=r.actor, created_at=r.created_at, processing_key="P"),
           RefundItem.out_refund_no.does_not_exist(), tag=tag)
    tx.update(OrderItem(r.out_trade_no), [OrderItem.refunded.set(w.order_refunded_before + r.amount)],
              (OrderItem.status == PAID) & (OrderItem.refunded == w.order_refunded_before), tag=tag)


def add_fail_refund(tx: Tx, w: FailRefund, tag: str = REFUND_TAG) -> None:
    """Transaction items: the refund failed; the order's refundable amount comes back.
    Only from PROCESSING, so a refund is reversed at most once and never after success."""
    r = w.refund
    tx.update(RefundItem(r.out_refund_no), [RefundItem.status.set(w.status), RefundItem.processing_key.remove()],
              RefundItem.status == REFUND_PROCESSING, tag=tag)
    tx.update(OrderItem(r.out_trade_no), [OrderItem.refunded.add(-r.amount)], OrderItem.refunded >= r.amount,
              tag=tag)


def finish_refund(out_refund_no: str, status: str, refund_id: str) -> bool:
    """PROCESSING -> status (SUCCESS); False if the refund had already left PROCESSING."""
    actions = [RefundItem.status.set(status), RefundItem.processing_key.remove()]
    if refund_id:
        actions.append(RefundItem.refund_id.set(refund_id))
    return update_if(RefundItem(out_refund_no), actions, RefundItem.status == REFUND_PROCESSING)


def set_refund_id(out_refund_no: str, refund_id: str) -> None:
    update_item(RefundItem(out_refund_no), [RefundItem.refund_id.set(refund_id)])
