"""Tenant recharges with WeChat Pay, payment and refund notifications, the active query
of pending orders, refunds, daily reconciliation and counter cash."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from core.domain import payments as rules
from core.domain.bills import Payment, parse_bill_id
from core.domain.clock import Clock, utcnow
from core.domain.errors import ConditionFailed, Conflict, FeikongError, NotFound, ValidationError, WriteRefused
from core.domain.events import Event, Subject
from core.domain.ledger import Entry, format_time, require_id
from core.domain.money import require_fen
from core.domain.payments import Limits, Order, Refund
from core.domain.writes import FailRefund, MarkPaid, PayBill, StartRefund
from core.integrations import wechatpay
from core.services import observability, tenancy
from core.services.control import Control
from core.services.limits import Limiter
from core.settings import get_settings
from core.store import bills as bills_store
from core.store import directory as dstore
from core.store import events as events_store
from core.store import payments as payments_store
from core.store import unit as unit_store

log = Logger(service="feikong", child=True)
SH = ZoneInfo("Asia/Shanghai")
SUCCESS_BODY = {"code": "SUCCESS", "message": "成功"}
# Settings (core/settings.py): FEIKONG_NOTIFY_REJECT_LOG_SECONDS (one rejection log line per
# reason per period), FEIKONG_PAY_QUERY_AFTER_MINUTES (query an order pending this long),
# FEIKONG_REFUND_QUERY_AFTER_MINUTES (a refund create waits at most 2 x (3 s connect + 10 s
# read): after this, a refund WeChat does not know was never received by it).


class RateLimitedWarning:
    """One warning per reason per period; the next one says how many were left out.
    Requests anyone can send must not be able to flood the logs (or fill a table)."""

    def __init__(self, message: str, every: timedelta) -> None:
        self.message, self.every = message, every
        self._last: dict[str, datetime] = {}
        self._skipped: dict[str, int] = {}
        self._lock = threading.Lock()

    def note(self, reason: str, now: datetime, **data: object) -> bool:
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self.every:
                self._skipped[reason] = self._skipped.get(reason, 0) + 1
                return False
            self._last[reason] = now
            skipped = self._skipped.pop(reason, 0)
        log.warning(self.message, reason=reason, suppressed=skipped, **data)
        return True


def fail_body(message: str) -> dict:
    return {"code": "FAIL", "message": message}


def limits_from_settings() -> Limits:
    s = get_settings()
    return Limits(s.recharge_min_fen, s.recharge_max_fen)


class Payments:
    def __init__(self, control: Control | None = None, pay: wechatpay.WeChatPayClient | None = None,
                 clock: Clock = utcnow, limits: Limits | None = None, *, orders=payments_store,
                 events=events_store, directory=dstore, bills=bills_store, unit=unit_store) -> None:
        self.control = control or Control(clock=clock)
        self.orders, self.events, self.directory = orders, events, directory
        self.bills, self.unit = bills, unit  # paying a bill online (docs/billing.md)
        self._pay = pay
        self.clock = clock
        self.limits = limits or limits_from_settings()
        s = get_settings()
        self.query_after = timedelta(minutes=s.pay_query_after_minutes)
        self.refund_query_after = timedelta(minutes=s.refund_query_after_minutes)
        self._rejections = RateLimitedWarning("payment notification rejected",
                                              timedelta(seconds=s.notify_reject_log_seconds))
        self.limiter = Limiter(clock)

    @property
    def pay(self) -> wechatpay.WeChatPayClient:
        return self._pay or wechatpay.client()

    # -- tenant: create a recharge ---------------------------------------------------------

    def create_recharge(self, openid: str, account_id: str, amount: object) -> dict:
        """A recharge order by a member of the account (core/services/tenancy.py: the
        tenant or a roommate). Rate limited per openid and per client address
        (core/services/limits.py): a refused attempt is counted too."""
        require_id(account_id, "account_id")
        amount = rules.check_amount(amount, self.limits)
        self.limiter.order(openid)
        account = tenancy.account_of(openid, account_id)  # 404 for another tenant's account
        if account.status != "OPEN":
            raise Conflict("账户已销户，不能充值", code="account_closed")
        return self._place(openid, account, amount, f"{account.name} 预付费充值")

    def _place(self, openid: str, account, amount: int, description: str, purpose: str = rules.RECHARGE,
               bill_id: str = "") -> dict:
        """An order at WeChat Pay (JSAPI) for a recharge or a bill: the same path for both."""
        now = self.clock()
        order = Order(
            out_trade_no=rules.new_out_trade_no(now.astimezone(SH)), property_id=account.property_id,
            account_id=account.account_id, tenant_id=account.tenant_id, openid=openid, amount=amount,
            status=rules.PENDING, created_at=format_time(now), expires_at=format_time(now + rules.ORDER_TTL),
            purpose=purpose, bill_id=bill_id,
        )
        self.orders.create_order(order)
        prepay_id = self.pay.prepay(order.out_trade_no, amount, openid, description,
                                    (now + rules.ORDER_TTL).astimezone(SH).isoformat(timespec="seconds"))
        log.info("recharge order created" if purpose == rules.RECHARGE else "bill order created",
                 out_trade_no=order.out_trade_no, account_id=account.account_id, amount=amount,
                 bill_id=bill_id or None)
        return {"out_trade_no": order.out_trade_no, "amount": amount, "expires_at": order.expires_at,
                "pay_params": self.pay.jsapi_params(prepay_id)}

    def create_bill_payment(self, openid: str, bill_id: object) -> dict:
        """An order paying what an issued bill still owes, by a member of its account (another
        tenant's bill is a 404, like a missing one). Settled by `settle` as a bill payment."""
        try:
            account_id, period = parse_bill_id(bill_id)
        except ValidationError:
            raise NotFound("账单不存在", code="bill_not_found") from None
        self.limiter.order(openid)
        try:
            account = tenancy.account_of(openid, account_id)
        except NotFound:
            raise NotFound("账单不存在", code="bill_not_found") from None
        bill = self.bills.get_bill(account_id, period)
        if bill is None:
            raise NotFound("账单不存在", code="bill_not_found")
        if bill.state != "issued":
            raise Conflict("账单尚未出账，暂不能缴费", code="bill_not_issued")
        if bill.outstanding <= 0:
            raise Conflict("账单已缴清", code="bill_paid")
        return {**self._place(openid, account, bill.outstanding, f"{account.name} {period} 账单缴费", rules.BILL,
                              bill.bill_id), "bill_id": bill.bill_id}

    def order_for_tenant(self, openid: str, out_trade_no: str) -> Order:
        order = self.orders.get_order(rules.check_out_no(out_trade_no, "out_trade_no"))
        if order is None or order.openid != openid:
            raise NotFound("订单不存在", code="order_not_found")
        return order

    # -- notifications -----------------------------------------------------------------------

    def handle_notification(self, headers: object, body: bytes | str | None) -> tuple[int, dict]:
        """Answer a WeChat Pay notification: (HTTP status, body). Success only once the
        credit (or the refund outcome) is durable; any failure makes WeChat retry.

        A request that does not verify (headers, body, timestamp, serial, signature,
        decryption) is answered before any work and writes nothing: anyone can send one,
        so it only leaves a log line, at most one per reason per FEIKONG_NOTIFY_REJECT_LOG_SECONDS."""
        try:
            data = self.pay.verify_notification(headers, body, self.clock())
        except wechatpay.NotificationRejected as e:
            self._rejections.note(e.reason, self.clock())
            return e.status, fail_body(e.message)
        resource, event = data["resource"], data["event_type"]
        problem = rules.notification_problem(event, resource)
        if problem:  # authentic but unusable: WeChat retries, a person reads the log
            self._rejections.note(problem, self.clock(), event_type=event[:40])
            return 400, fail_body(f"通知内容无法处理：{problem}")
        if event == "TRANSACTION.SUCCESS":
            ok, message = self.settle(resource, "notify")
        else:
            ok, message = self.refund_outcome(resource)
        return (200, SUCCESS_BODY) if ok else (400, fail_body(message))

    def settle(self, tx: dict, source: str) -> tuple[bool, str]:
        """Credit a successful transaction once: the order turns PAID in the same DynamoDB
        transaction as the ledger credit `pay:<transaction_id>`."""
        out_trade_no = str(tx.get("out_trade_no", ""))
        order = self.orders.get_order(out_trade_no) if out_trade_no else None
        problem = rules.transaction_problem(tx, order, self.pay.config.appid, self.pay.config.mchid)
        if problem:  # one alert per order and problem, however often WeChat or the sweep repeat it
            txid = str(tx.get("transaction_id", ""))[:64]
            amount = tx.get("amount") if isinstance(tx.get("amount"), dict) else {}
            self._alert(order.property_id if order else "unknown", out_trade_no[:64] or "unknown", problem,
                        {"source": source, "transaction_id": txid, "amount": str(amount.get("total"))[:20],
                         "currency": str(amount.get("currency"))[:8]}, key=out_trade_no[:64] or txid or "unknown")
            return False, problem
        txid = tx["transaction_id"]
        if order.status == rules.PAID:
            if order.transaction_id != txid:  # one order paid twice at WeChat: a person must refund one
                self._alert(order.property_id, out_trade_no, "paid_twice", {"first": order.transaction_id,
                                                                            "second": txid},
                            key=f"{out_trade_no}:{txid}")
            return True, "duplicate"
        paid_at = tx.get("success_time") or format_time(self.clock())
        paid_date = datetime.fromisoformat(paid_at.replace("Z", "+00:00")).astimezone(SH).date().isoformat()
        if order.purpose == rules.BILL:
            return self._settle_bill(order, txid, paid_at, paid_date, source)
        try:
            entry = self.control.credit(
                extras=[MarkPaid(out_trade_no, order.amount, txid, paid_at, paid_date)],
                # the tenant's receipt "充值到账" with the new balance (core/domain/tenant_feed.py; a
                # notification, docs/notifications.md), in the credit's transaction
                notice=lambda e: Event(Subject.notice(order.account_id), f"paid:{txid}", "payment_credited",
                                       order.property_id, format_time(self.clock()), status="to_notify",
                                       data={"amount": order.amount, "out_trade_no": out_trade_no,
                                             "account_id": order.account_id, "balance_after": e.balance_after,
                                             "paid_at": paid_at}),
                account_id=order.account_id, entry_id=f"pay:{txid}", kind="recharge", amount=order.amount,
                cause=f"order:{out_trade_no}", actor="wechatpay", occurred_at=paid_at, memo="微信支付充值",
            )
        except ConditionFailed:
            now = self.orders.get_order(out_trade_no)
            if now is not None and now.status == rules.PAID and now.transaction_id == txid:
                return True, "duplicate"
            self._alert(order.property_id, out_trade_no, "order_state", {"status": now.status if now else ""})
            return False, "order_state"
        observability.count("PaymentsCredited", not entry.duplicate)
        log.info("payment credited", out_trade_no=out_trade_no, transaction_id=txid, source=source,
                 duplicate=entry.duplicate, balance_after=entry.balance_after)
        return True, "credited"

    def _settle_bill(self, order: Order, txid: str, paid_at: str, paid_date: str, source: str) -> tuple[bool, str]:
        """A paid bill order: the bill payment (id = out_trade_no, method wechat) and the order
        turning PAID in one transaction; what the bill no longer owes (paid at the counter
        meanwhile) is credited to the prepaid balance as `pay:<transaction_id>` in that same
        transaction (docs/billing.md). A bill that moved between the read and the write is
        read again; a duplicate finds the order PAID."""
        account_id, period = parse_bill_id(order.bill_id)
        no, now = order.out_trade_no, None
        for _ in range(5):
            bill = self.bills.get_bill(account_id, period)
            to_bill, excess = rules.bill_settlement(order.amount, bill.state if bill else None,
                                                    bill.total if bill else 0, bill.paid if bill else 0)
            writes: list = [MarkPaid(no, order.amount, txid, paid_at, paid_date)]
            if to_bill:
                writes.append(PayBill(Payment(account_id, period, no, to_bill, "wechat", "wechatpay", paid_at,
                                              "微信支付缴费"), bill.total, bill.paid))
            try:
                if excess:
                    self.control.credit(extras=writes, account_id=order.account_id, entry_id=f"pay:{txid}",
                                        kind="recharge", amount=excess, cause=f"order:{no}", actor="wechatpay",
                                        occurred_at=paid_at, memo="账单缴费超出应缴部分，转入余额")
                    refused: tuple = ()
                else:
                    refused = self.unit.commit(writes)
            except WriteRefused as e:
                refused = e.refused
            except ConditionFailed:
                refused = (None,)
            if not refused:
                observability.count("PaymentsCredited")
                log.info("bill paid online", out_trade_no=no, transaction_id=txid, bill_id=order.bill_id,
                         to_bill=to_bill, to_balance=excess, source=source)
                return True, "credited"
            now = self.orders.get_order(no)
            if now is not None and now.status == rules.PAID:
                if now.transaction_id == txid:
                    return True, "duplicate"
                break
            if not all(r is not None and isinstance(r.write, PayBill) for r in refused):
                break
            # the bill moved meanwhile (a counter payment): read it again
        self._alert(order.property_id, no, "order_state", {"status": now.status if now else ""})
        return False, "order_state"

    def _alert(self, property_id: str, ref: str, reason: str, data: dict, key: str | None = None) -> None:
        """Leave a payment_alert event for a person, once per (reason, key): its id is
        deterministic and the put is conditional, so a notification WeChat repeats or an
        order the sweep meets every minute is one alert, not one per pass. key defaults to ref."""
        now = format_time(self.clock())
        first = self.events.put_event(Event(
            Subject.payments(property_id), f"alert:{reason}:{key or ref}", "payment_alert", property_id, now,
            status="open", message=ALERTS.get(reason, reason), data={"ref": ref, "reason": reason, **data}))
        if first:
            log.warning("payment alert", reason=reason, ref=ref, **data)

    # -- the sweep: orders whose notification never came -----------------------------------

    def sweep(self) -> dict:
        now = self.clock()
        counts = {"queried": 0, "credited": 0, "closed": 0, **self.sweep_refunds()}
        for out_trade_no in self.orders.pending_orders(format_time(now - self.query_after)):
            order = self.orders.get_order(out_trade_no)
            if order is None or order.status != rules.PENDING:
                continue
            counts["queried"] += 1
            try:
                tx = self.pay.query(out_trade_no)
                if tx and tx.get("trade_state") == "SUCCESS":
                    ok, how = self.settle(tx, "query")
                    counts["credited"] += ok and how == "credited"
                elif order.expires_at <= format_time(now) and (tx is None
                                                               or tx.get("trade_state") in ("NOTPAY", "CLOSED")):
                    if tx is not None:
                        self.pay.close(out_trade_no)
                    counts["closed"] += self.orders.close_order(out_trade_no)
            except Exception:  # one order's failure (WeChat down, a bad answer) must not stop the rest
                counts["errors"] = counts.get("errors", 0) + 1
                log.exception("order query failed", out_trade_no=out_trade_no)
        # stuck: paid at WeChat with no notification (credited now), or a query that failed
        observability.count("SweepStuckOrders", counts["credited"] + counts.get("errors", 0))
        observability.count("SweepStuckRefunds", counts["refunds_settled"] + counts["refunds_errors"])
        return counts

    # -- refunds ---------------------------------------------------------------------------

    def refund(self, property_id: str, out_trade_no: str, amount: object, reason: str, actor: str) -> Refund:
        """Refund part or all of a paid recharge. The ledger debit (which never takes the
        balance below zero) and the order's refunded total are written before WeChat is
        asked; if WeChat refuses or the refund later fails, one reversal gives it back.
        When WeChat's answer is unknown (timeout, 5xx) the refund is returned PROCESSING and
        the sweep settles it."""
        order = self.orders.get_order(rules.check_out_no(out_trade_no, "out_trade_no"))
        if order is None or order.property_id != property_id:
            raise NotFound("订单不存在", code="order_not_found")
        amount = require_fen(amount, "amount")
        if order.status != rules.PAID or order.channel != "wechat" or order.purpose != rules.RECHARGE:
            raise Conflict("只能退款已支付的微信充值", code="order_not_refundable")
        if amount > rules.refundable(order):
            raise Conflict(f"退款金额超过可退金额 {rules.refundable(order) / 100:.2f} 元", code="refund_too_large",
                           refundable=rules.refundable(order))
        now = self.clock()
        r = Refund(out_refund_no=rules.new_out_trade_no(now.astimezone(SH), "F"), out_trade_no=out_trade_no,
                   property_id=property_id, account_id=order.account_id, amount=amount,
                   status=rules.REFUND_PROCESSING, reason=(reason or "")[:80], actor=actor, created_at=format_time(now))
        try:
            self.control.ledger.post(extras=[StartRefund(r, order.refunded)], account_id=order.account_id,
                                     entry_id=f"refund:{r.out_refund_no}", kind="refund", amount=amount,
                                     cause=f"order:{out_trade_no}", actor=actor, memo=r.reason or "退款")
        except ConditionFailed:
            raise Conflict("订单正在处理其他退款，请稍后重试", code="refund_busy") from None
        try:
            result = self._ask_refund(r, order.amount)
        except wechatpay.WeChatPayError as e:  # a definite refusal: nothing happened at WeChat
            self._reverse(r, rules.REFUND_FAILED)
            log.warning("refund refused", out_refund_no=r.out_refund_no, status=e.status, code=e.code)
            raise Conflict(f"微信支付拒绝退款：{e.message}", code="refund_refused", wechat_code=e.code) from None
        if result is None:
            return self.orders.get_refund(r.out_refund_no)  # PROCESSING: the sweep asks WeChat later
        if result.get("refund_id"):
            self.orders.set_refund_id(r.out_refund_no, result["refund_id"])
        if result.get("status") in ("SUCCESS", "CLOSED", "ABNORMAL"):
            self.refund_outcome({**result, "out_refund_no": r.out_refund_no, "refund_status": result["status"]})
        return self.orders.get_refund(r.out_refund_no)

    def _ask_refund(self, r: Refund, total: int) -> dict | None:
        """WeChat's answer to the refund create, or None if it is unknown after one retry
        with the same out_refund_no (WeChat answers a repeat with the refund it has, so a
        retry never refunds twice). Raises WeChatPayError only for a definite refusal of
        the first attempt: after an unanswered attempt, even a 4xx does not prove that
        WeChat has no refund."""
        for attempt in (1, 2):
            try:
                return self.pay.refund(r.out_trade_no, r.out_refund_no, r.amount, total, r.reason or "退款")
            except wechatpay.WeChatPayError as e:
                if e.definite and attempt == 1:
                    raise
                log.warning("refund create unanswered", out_refund_no=r.out_refund_no, attempt=attempt,
                            status=e.status, code=e.code)
        return None

    def refund_outcome(self, resource: dict, source: str = "notify") -> tuple[bool, str]:
        """Apply WeChat's final word on a refund (a notification's resource or a query's
        answer). Every transition is conditioned on PROCESSING, so a notification and the
        sweep racing (or duplicates) land on one outcome."""
        no = str(resource.get("out_refund_no", ""))
        r = self.orders.get_refund(no) if no else None
        if r is None:
            self._alert("unknown", no[:64] or "unknown", "unknown_refund", {"source": source})
            return False, "unknown_refund"
        refunded = (resource.get("amount") or {}).get("refund", r.amount)
        if resource.get("out_trade_no", r.out_trade_no) != r.out_trade_no or refunded != r.amount:
            self._alert(r.property_id, no, "refund_mismatch", {"source": source, "amount": str(refunded),
                                                               "out_trade_no": str(resource.get("out_trade_no"))[:64]})
            return False, "refund_mismatch"
        status = resource.get("refund_status") or resource.get("status")
        if status == "SUCCESS":
            if self.orders.finish_refund(no, rules.REFUND_SUCCESS, str(resource.get("refund_id", ""))):
                log.info("refund succeeded", out_refund_no=no, source=source)
                self._refund_done(r)
                return True, "refunded"
            settled = self._settled_before(no, rules.REFUND_SUCCESS, status, source)
            if settled[1] == "duplicate":
                self._refund_done(r)  # a crash between the two writes: the retry records it (once: its id)
            return settled
        if status in ("CLOSED", "ABNORMAL"):
            entry = self._reverse(r, rules.REFUND_FAILED)
            if entry is not None and not entry.duplicate:
                log.info("refund reversed", out_refund_no=no, wechat_status=status, source=source)
                return True, "reversed"
            return self._settled_before(no, rules.REFUND_FAILED, status, source)
        return False, f"refund status {status}"

    def _refund_done(self, r: Refund) -> None:
        """The tenant's news that a refund reached their WeChat (a notification, docs/notifications.md)."""
        self.events.put_event(Event(Subject.notice(r.account_id), f"refund_done:{r.out_refund_no}", "refund_done",
                                    r.property_id, format_time(self.clock()), status="to_notify",
                                    data={"account_id": r.account_id, "amount": r.amount,
                                          "out_refund_no": r.out_refund_no, "out_trade_no": r.out_trade_no}))

    def _settled_before(self, no: str, expected: str, wechat_status: str, source: str) -> tuple[bool, str]:
        """The refund had already left PROCESSING: a duplicate if it agrees with WeChat's
        word; otherwise (WeChat paid out a refund we gave back) a person must act."""
        now = self.orders.get_refund(no)
        if now is not None and now.status == expected:
            return True, "duplicate"
        self._alert(now.property_id if now else "unknown", no, "refund_state_conflict",
                    {"source": source, "ours": now.status if now else "", "wechat": str(wechat_status)})
        return True, "conflict"  # acknowledged: WeChat retrying would not change anything

    def sweep_refunds(self) -> dict:
        """Settle refunds PROCESSING for more than `refund_query_after` by asking WeChat: SUCCESS
        is final, CLOSED/ABNORMAL and never-received (404) are reversed once."""
        now = self.clock()
        counts = {"refunds_queried": 0, "refunds_settled": 0, "refunds_errors": 0}
        for no in self.orders.processing_refunds(format_time(now - self.refund_query_after)):
            r = self.orders.get_refund(no)
            if r is None or r.status != rules.REFUND_PROCESSING:
                continue
            counts["refunds_queried"] += 1
            try:
                found = self.pay.query_refund(no)
                if found is None:  # WeChat never received the create: give the money back
                    entry = self._reverse(r, rules.REFUND_FAILED)
                    how = "reversed" if entry is not None and not entry.duplicate else "duplicate"
                    log.warning("refund never reached WeChat", out_refund_no=no, outcome=how)
                elif found.get("status") == rules.REFUND_PROCESSING:
                    how = "processing"
                else:
                    _, how = self.refund_outcome({**found, "refund_status": found.get("status")}, "query")
            except (wechatpay.WeChatPayError, FeikongError) as e:  # one refund never stops the others
                counts["refunds_errors"] += 1
                log.warning("refund query failed", out_refund_no=no, error=str(e)[:200])
                continue
            counts["refunds_settled"] += how in ("refunded", "reversed")
        return counts

    def _reverse(self, r: Refund, status: str) -> Entry | None:
        """Give a failed refund's money back, once: the entry id `refund-reversal:<no>` is
        deterministic and the refund must still be PROCESSING (same transaction). None if
        the refund had already settled the other way."""
        try:
            return self.control.credit(extras=[FailRefund(r, status)], account_id=r.account_id,
                                       entry_id=f"refund-reversal:{r.out_refund_no}", kind="refund_reversal",
                                       amount=r.amount, cause=f"refund:{r.out_refund_no}", actor="wechatpay",
                                       memo="退款失败，退回余额")
        except ConditionFailed:
            return None  # already settled one way or the other

    # -- reconciliation --------------------------------------------------------------------

    def reconcile(self, bill_date: str) -> dict:
        """Compare WeChat's trade bill of a day with our paid orders; record every mismatch."""
        try:
            datetime.strptime(bill_date, "%Y-%m-%d")
        except ValueError:
            raise ValidationError("日期格式应为 YYYY-MM-DD", code="date_invalid") from None
        theirs = wechatpay.parse_trade_bill(self.pay.trade_bill(bill_date))
        ours = {o.out_trade_no: o for o in self.orders.paid_orders_on(bill_date) if o.channel == "wechat"}
        mismatches = []
        for no, t in theirs.items():
            o = ours.get(no) or self.orders.get_order(no)
            if o is None or o.status != rules.PAID:
                mismatches.append({"kind": "paid_there_not_here", "out_trade_no": no, "their_amount": t["amount"],
                                   "transaction_id": t["transaction_id"]})
            elif o.amount != t["amount"]:
                mismatches.append({"kind": "amount_differs", "out_trade_no": no, "their_amount": t["amount"],
                                   "our_amount": o.amount})
        for no, o in ours.items():
            if no not in theirs:
                mismatches.append({"kind": "here_not_there", "out_trade_no": no, "our_amount": o.amount})
        now = format_time(self.clock())
        for m in mismatches:
            order = ours.get(m["out_trade_no"]) or self.orders.get_order(m["out_trade_no"])
            pid = order.property_id if order else "unknown"
            self.events.put_event(Event(Subject.reconcile(bill_date), f"{m['kind']}:{m['out_trade_no']}",
                                        "reconcile_mismatch", pid, now, status="open", message=ALERTS[m["kind"]],
                                        data={k: str(v) for k, v in m.items()}))
        self._reconcile_days(bill_date, mismatches, ours, now)
        report = {"date": bill_date, "their_trades": len(theirs), "our_orders": len(ours), "mismatches": mismatches,
                  "trades": theirs, "orders": ours}  # the compared sides, stored per property by core/services/finance.py
        log.info("reconciliation", date=bill_date, mismatches=len(mismatches))
        observability.count("ReconcileMismatches", len(mismatches))
        return report

    def _reconcile_days(self, bill_date: str, mismatches: list[dict], ours: dict, now: str) -> None:
        """One `reconcile_day` event per property with mismatches on the day (the admins'
        message, docs/notifications.md), its id from the day: a rerun records nothing new."""
        by_property: dict[str, list[dict]] = {}
        for m in mismatches:
            order = ours.get(m["out_trade_no"]) or self.orders.get_order(m["out_trade_no"])
            by_property.setdefault(order.property_id if order else "unknown", []).append(m)
        for pid, ms in sorted(by_property.items()):
            kinds: dict[str, int] = {}
            for m in ms:
                kinds[m["kind"]] = kinds.get(m["kind"], 0) + 1
            theirs = sum(int(m.get("their_amount") or 0) for m in ms)
            here = sum(int(m.get("our_amount") or 0) for m in ms)
            self.events.put_event(Event(Subject.reconcile(bill_date), f"day:{pid}", "reconcile_day", pid, now,
                                        status="to_notify", message=f"{bill_date} 对账不一致 {len(ms)} 笔",
                                        data={"bill_date": bill_date, "count": len(ms), "kinds": kinds,
                                              "their_fen": theirs, "our_fen": here,
                                              "orders": [m["out_trade_no"] for m in ms[:20]]}))

    # -- counter cash ----------------------------------------------------------------------

    def counter_recharge(self, property_id: str, account_id: str, amount: object, receipt_no: str, channel: str,
                         actor: str) -> Entry:
        account = self._account(property_id, account_id)
        if channel not in ("cash", "bank"):
            raise ValidationError("渠道必须是 cash 或 bank", code="channel_invalid")
        receipt_no = rules.check_out_no(receipt_no, "receipt_no")
        return self.control.credit(account_id=account.account_id, entry_id=f"{channel}:{receipt_no}",
                                   kind="recharge", amount=require_fen(amount, "amount"),
                                   cause=f"receipt:{receipt_no}", actor=actor,
                                   memo="现金充值" if channel == "cash" else "银行转账充值")

    def counter_refund(self, property_id: str, account_id: str, amount: object, receipt_no: str, actor: str) -> Entry:
        account = self._account(property_id, account_id)
        receipt_no = rules.check_out_no(receipt_no, "receipt_no")
        return self.control.ledger.post(account_id=account.account_id, entry_id=f"cash-refund:{receipt_no}",
                                        kind="refund", amount=require_fen(amount, "amount"),
                                        cause=f"receipt:{receipt_no}", actor=actor, memo="柜台退款")

    def _account(self, property_id: str, account_id: str):
        a = self.directory.get_account(require_id(account_id, "account_id"))
        if a is None or a.property_id != property_id:
            raise NotFound("账户不存在", code="account_not_found")
        return a


ALERTS = {
    "unknown_order": "收到未知订单的支付通知",
    "appid_mismatch": "支付通知的 AppID 不符",
    "mchid_mismatch": "支付通知的商户号不符",
    "not_success": "支付通知的交易状态不是成功",
    "no_transaction_id": "支付通知缺少微信订单号",
    "amount_mismatch": "支付金额与订单金额不符",
    "currency_mismatch": "支付币种不是人民币，未入账",
    "payer_mismatch": "付款人与下单人不符",
    "paid_twice": "同一订单被支付两次，需人工退款",
    "order_state": "订单状态不允许入账",
    "unknown_refund": "收到未知退款单的通知",
    "refund_mismatch": "退款通知的订单号或金额与退款单不符",
    "refund_state_conflict": "退款结果与平台记录冲突（已退回余额的退款被微信退款成功），需人工处理",
    "paid_there_not_here": "对账：微信已收款，平台未入账",
    "here_not_there": "对账：平台已入账，微信账单中没有",
    "amount_differs": "对账：金额不一致",
}


def encode(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)
