"""Refund requests (退款申请): a tenant asks (core/domain/refund_requests.py), an admin of
the property approves — refunded through WeChat Pay (Payments.refund) against the
account's paid recharges, newest first — or rejects with a reason. Both decisions are in
the action log and in the tenant's notifications."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain import refund_requests as rules
from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.errors import Conflict, FeikongError, NotFound
from core.domain.events import Event, Subject
from core.domain.ledger import format_time
from core.domain.money import yuan
from core.domain.naming import id_problem
from core.domain.payments import refundable
from core.domain.refund_requests import PaidOrder, RefundRequest
from core.services import action_log, tenancy
from core.store import directory as dstore
from core.store import events as events_store
from core.store import payments as orders
from core.store import tenant_money as store
from core.store.ledger import LedgerStore

NOT_FOUND = "退款申请不存在"
ORDERS_LOOKED_AT = 100  # paid recharges an account's refund may draw on (newest first)


def _paid_orders(account_id: str) -> list[PaidOrder]:
    return [PaidOrder(o.out_trade_no, o.paid_at or o.created_at, refundable(o), o.created_at)
            for o in orders.orders_of_account(account_id, limit=ORDERS_LOOKED_AT)
            if o.channel == "wechat" and refundable(o) > 0]


# --- the tenant -------------------------------------------------------------------------------


def create(openid: str, account_id: object, amount: object, reason: object, clock: Clock = utcnow) -> RefundRequest:
    account = tenancy.account_of(openid, account_id)
    reason = rules.check_reason(reason)
    state = LedgerStore().load_state(account.account_id)
    balance = state.balance if state else 0
    amount = rules.check_amount(amount, balance, sum(o.refundable for o in _paid_orders(account.account_id)))
    now = clock()
    r = RefundRequest(account_id=account.account_id, request_id=rules.new_request_id(now),
                      property_id=account.property_id, openid=openid, amount=amount, reason=reason,
                      status=rules.PENDING, created_at=format_time(now))
    if not store.create_request(r):
        raise Conflict("该账户已有待处理的退款申请，请等待物业处理", code="refund_request_open")
    # the admins' message "退款待审批" (docs/notifications.md): once per request (its id)
    events_store.put_event(Event(Subject.account(r.account_id), f"refund_request:{r.request_id}", "refund_request",
                                 r.property_id, r.created_at, status="to_notify",
                                 message=f"租户申请退款 {yuan(r.amount)} 元，待审批",
                                 data={"account_id": r.account_id, "request_id": r.request_id, "amount": r.amount,
                                       "building_id": account.building_id, "room_id": account.room_id, "reason": r.reason}))
    return r


def of_account(openid: str, account_id: object) -> list[RefundRequest]:
    return store.requests_of_account(tenancy.require_member(openid, account_id))


# --- the console ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A request as the console lists it."""

    request: RefundRequest
    room: str
    tenant: str
    phone: str
    balance: int | None


def _rows(property_id: str, requests: list[RefundRequest]) -> list[Row]:
    if not requests:
        return []
    accounts = {a.account_id: a for a in dstore.accounts({r.account_id for r in requests})}
    contacts = dstore.tenant_contacts(property_id)
    out = []
    for r in requests:
        a = accounts.get(r.account_id)
        name, phone = contacts.get(a.tenant_id, ("", "")) if a else ("", "")
        out.append(Row(r, a.name if a else r.account_id, name, phone, a.balance if a else None))
    return out


def queue(property_id: str) -> list[Row]:
    return _rows(property_id, store.open_requests(property_id))


def recent(property_id: str, limit: int = 30) -> list[Row]:
    return _rows(property_id, [r for r in store.recent_requests(property_id, limit) if r.status not in
                               rules.OPEN_STATUSES])


def _request(property_id: str, account_id: str, request_id: str) -> RefundRequest:
    r = None
    if not id_problem(account_id) and not id_problem(request_id):
        r = store.get_request(account_id, request_id)
    if r is None or r.property_id != property_id:
        raise NotFound(NOT_FOUND, code="refund_request_not_found")
    return r


def _event(r: RefundRequest, kind: str, at: str, data: dict) -> None:
    events_store.put_event(Event(Subject.notice(r.account_id), f"{kind}:{r.request_id}", kind, r.property_id, at,
                                 data={"request_id": r.request_id, **data}))


def approve(who: AdminPrincipal, property_id: str, account_id: str, request_id: str, payments, ip: str = "",
            clock: Clock = utcnow) -> RefundRequest:
    """Refund the request's amount through WeChat Pay, split over the account's paid
    recharges newest first. Nothing refunded (WeChat refused the first part, the balance no
    longer covers it): the request stays pending and the admin sees why (409). Refused
    midway: the request is `failed` with what went through."""
    r = _request(property_id, account_id, request_id)
    if r.status != rules.PENDING:
        raise Conflict("该退款申请已处理", code="refund_request_decided")
    plan = rules.allocate(r.amount, _paid_orders(r.account_id))  # 409 when the recharges no longer cover it
    at = format_time(clock())
    if not store.start_approval(r.account_id, r.request_id, who.name, at):
        raise Conflict("该退款申请已处理", code="refund_request_decided")
    done: list[dict] = []
    refunded = 0
    try:
        for out_trade_no, amount in plan:
            refund = payments.refund(property_id, out_trade_no, amount, f"退款申请 {r.request_id}",
                                     f"admin:{who.admin_id}")
            done.append({"out_trade_no": out_trade_no, "out_refund_no": refund.out_refund_no, "amount": amount,
                         "status": refund.status})
            refunded += amount
            store.record_refunds(r.account_id, r.request_id, done, refunded)
    except FeikongError as e:
        if not done:  # nothing happened: back to the queue (it kept its open slot and queue entry)
            store.reopen(r.account_id, r.request_id)
            raise
        store.finish_request(r.account_id, r.request_id, rules.FAILED, rules.APPROVING, who.name, at)
        action_log.record(who, rules.ACTION_APPROVE, property_id=property_id, target=f"account:{r.account_id}",
                          before={"request_id": r.request_id, "amount": r.amount},
                          after={"status": rules.FAILED, "refunded": refunded, "refunds": done, "error": e.code},
                          ip=ip, record_id=f"refund-request:{r.request_id}")
        raise Conflict(f"退款未能全部完成：已退 {yuan(refunded)} 元；{e.message}", code="refund_partial",
                       refunded=refunded) from None
    store.finish_request(r.account_id, r.request_id, rules.APPROVED, rules.APPROVING, who.name, at)
    _event(r, "refund_approved", at, {"amount": r.amount})
    action_log.record(who, rules.ACTION_APPROVE, property_id=property_id, target=f"account:{r.account_id}",
                      before={"request_id": r.request_id, "amount": r.amount},
                      after={"status": rules.APPROVED, "refunded": refunded, "refunds": done}, ip=ip,
                      record_id=f"refund-request:{r.request_id}")
    return store.get_request(r.account_id, r.request_id) or r


def reject(who: AdminPrincipal, property_id: str, account_id: str, request_id: str, reason: object, ip: str = "",
           clock: Clock = utcnow) -> RefundRequest:
    r = _request(property_id, account_id, request_id)
    reason = rules.check_reason(reason, "reason", "驳回原因")
    if r.status != rules.PENDING:
        raise Conflict("该退款申请已处理", code="refund_request_decided")
    at = format_time(clock())
    if not store.finish_request(r.account_id, r.request_id, rules.REJECTED, rules.PENDING, who.name, at, reason):
        raise Conflict("该退款申请已处理", code="refund_request_decided")
    _event(r, "refund_rejected", at, {"amount": r.amount, "reason": reason})
    action_log.record(who, rules.ACTION_REJECT, property_id=property_id, target=f"account:{r.account_id}",
                      before={"request_id": r.request_id, "amount": r.amount},
                      after={"status": rules.REJECTED, "reason": reason}, ip=ip,
                      record_id=f"refund-request:{r.request_id}")
    return store.get_request(r.account_id, r.request_id) or r
