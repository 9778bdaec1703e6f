"""Finance (财务, docs/finance.md): the property's journal of money movements (订单流水) kept
from the tables' DynamoDB streams, its list with filters, totals and CSV export, the
backfill, and the daily WeChat trade-bill reconciliation stored per property and day (对账)
with the action taken for each trade and an admin's review."""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger
from cachetools import LRUCache

from core.domain import finance as rules
from core.domain.clock import Clock, utcnow
from core.domain.errors import Conflict, FeikongError, NotFound, ValidationError
from core.domain.ledger import format_time
from core.domain.money import yuan
from core.domain.payments import PAID
from core.integrations import wechatpay
from core.store import directory as dstore
from core.store import journal as journal_store
from core.store import payments as payments_store

log = Logger(service="feikong", child=True)


@dataclass(frozen=True)
class Listing:
    filters: rules.Filters
    rows: list[rules.JournalRow]  # this page, newest first
    totals: rules.Totals  # over every row the filters select
    pages: int
    timezone: str


class Finance:
    def __init__(self, payments=None, clock: Clock = utcnow, *, journal=journal_store, directory=dstore,
                 orders=payments_store) -> None:
        self._payments = payments
        self.clock = clock
        self.journal, self.directory, self.orders = journal, directory, orders
        self._who: LRUCache = LRUCache(maxsize=10_000)  # account -> Who (an account never changes room)
        self._lock = threading.Lock()

    @property
    def payments(self):
        if self._payments is None:
            from core.services.payments import Payments

            self._payments = Payments(clock=self.clock)
        return self._payments

    # -- the journal: stream records and the backfill ---------------------------------------

    def apply_record(self, record: dict) -> int:
        """One DynamoDB stream record (Lambda's shape) into the journal: 1 if a row was written."""
        src = self.journal.source_of(record)
        return 0 if src is None else self.apply(src)

    def apply(self, src) -> int:
        row = self._row(src)
        if row is None:
            return 0
        self.journal.put_row(row)
        return 1

    def _row(self, src) -> rules.JournalRow | None:
        if src.kind == "entry":
            e = src.value
            if str(e.kind) not in rules.JOURNAL_KINDS:
                return None
            args = (e.entry_id, str(e.kind), e.amount, e.cause, e.actor, e.posted_at, e.memo)
            if rules.row_from_entry(*args, rules.Who("", e.account_id)) is None:  # covered elsewhere: no read
                return None
            who = self.who(e.account_id)
            return rules.row_from_entry(*args, who) if who else None
        if src.kind == "order":  # the order as it is now: a late redelivery never brings an old state back
            o = self.orders.get_order(src.value)
            who = self.who(o.account_id) if o else None
            if who is None:
                return None
            memo = f"缴纳账单 {o.bill_id}" if o.purpose == "bill" else "微信支付充值"
            return rules.row_from_order(o.out_trade_no, o.status, o.amount, o.refunded, o.created_at, o.purpose,
                                        memo, who)
        if src.kind == "refund":
            r = self.orders.get_refund(src.value)
            who = self.who(r.account_id) if r else None
            if who is None:
                return None
            return rules.row_from_refund(r.out_refund_no, r.out_trade_no, r.status, r.amount, r.created_at, r.reason,
                                         r.actor, who)
        if src.kind == "bill_payment":
            p = src.value
            if p.method == "wechat":
                return None
            who = self.who(p.account_id)
            if who is None:
                return None
            return rules.row_from_bill_payment(p.period, p.payment_id, p.amount, p.method, p.paid_at, p.memo,
                                               p.actor, who)
        return None

    def who(self, account_id: str) -> rules.Who | None:
        with self._lock:
            found = self._who.get(account_id)
        if found is not None:
            return found
        a = self.directory.get_account(account_id)
        if a is None:
            log.warning("journal: account not found", account_id=account_id)
            return None
        t = self.directory.get_tenant(a.tenant_id) if a.tenant_id else None
        found = rules.Who(a.property_id, a.account_id, a.building_id, a.room_id, a.tenant_id, t.name if t else "",
                          a.name)
        with self._lock:
            self._who[account_id] = found
        return found

    def backfill(self, property_id: str) -> int:
        """Write the journal rows of everything a property's accounts hold (existing data, the
        demo's seed): the same rows, under the same keys, the streams would have written."""
        written = 0
        for b in self.directory.buildings(property_id):
            for a in self.directory.accounts_of_building(property_id, b.building_id):
                for src in self.journal.sources_of_account(a.account_id, rules.JOURNAL_KINDS):
                    written += self.apply(src)
        log.info("journal backfilled", property_id=property_id, rows=written)
        return written

    # -- the order list ---------------------------------------------------------------------

    def buildings(self, property_id: str) -> list:
        return self.directory.buildings(property_id)

    def _timezone(self, property_id: str) -> str:
        p = self.directory.get_property(property_id)
        if p is None:
            raise NotFound("物业不存在", code="property_not_found")
        return p.timezone or "Asia/Shanghai"

    def listing(self, property_id: str, args: dict) -> Listing:
        """The rows the filters select (bad filters: ValidationError with the reason), a page of
        them and the totals over all of them."""
        from zoneinfo import ZoneInfo

        tz = self._timezone(property_id)
        f = rules.parse_filters(args, self.clock().astimezone(ZoneInfo(tz)).date())
        if f.building and not self.directory.building_exists(property_id, f.building):
            raise ValidationError(f"楼栋不存在：{f.building}", code="building_not_found", field="building")
        rows = self._selected(property_id, f, tz)
        page, pages = rules.page_of(rows, f.page)
        if f.page > pages:
            raise ValidationError(f"页码超出范围（共 {pages} 页）", code="page_invalid", field="page")
        return Listing(f, page, rules.totals(rows), pages, tz)

    def _selected(self, property_id: str, f: rules.Filters, tz: str) -> list[rules.JournalRow]:
        start, end = f.utc_range(tz)
        return [r for r in self.journal.rows(property_id, start, end) if rules.matches(r, f)]

    def export_csv(self, property_id: str, args: dict) -> tuple[str, str]:
        """(file name, CSV text with a BOM so that Excel reads the Chinese) of every selected row."""
        listing = self.listing(property_id, {k: v for k, v in args.items() if k != "page"})
        f, tz = listing.filters, listing.timezone
        out = io.StringIO()
        out.write("\ufeff")
        w = csv.writer(out)
        w.writerow(rules.CSV_HEADER)
        for r in self._selected(property_id, f, tz):
            w.writerow(rules.csv_row(r, tz))
        t = listing.totals
        w.writerow(())
        w.writerow(("合计", f"{t.count} 笔", "", "收款", yuan(t.received), "退款", yuan(t.paid_out), "净收款",
                    yuan(t.net)))
        return f"orders-{property_id}-{f.date_from}-{f.date_to}.csv", out.getvalue()

    # -- reconciliation ---------------------------------------------------------------------

    def reconcile(self, day: str) -> dict:
        """Reconcile a day (core/services/payments.py `reconcile`: the comparison and its
        events), act on each mismatch, and store every trade's row per property and day."""
        day = rules.check_day(day)
        report = self.payments.reconcile(day)
        theirs: dict = report.get("trades", {})
        ours: dict = report.get("orders", {})
        kinds = {m["out_trade_no"]: rules.FROM_REPORT[m["kind"]] for m in report["mismatches"]}
        by_property: dict[str, list[rules.ReconRow]] = {}
        actions: dict[str, int] = {}
        for no in sorted(set(theirs) | set(ours) | set(kinds)):
            kind = kinds.get(no, rules.MATCHED)
            order = ours.get(no) or self.orders.get_order(no)
            t = theirs.get(no)
            action, note = self._act(day, kind, no, order, t)
            actions[action] = actions.get(action, 0) + 1
            row = rules.ReconRow(
                day=day, property_id=order.property_id if order else "unknown", out_trade_no=no, kind=kind,
                our_amount=order.amount if order is not None and order.status == PAID else None,
                their_amount=t["amount"] if t else None,
                transaction_id=(t or {}).get("transaction_id") or (order.transaction_id if order else ""),
                account_id=order.account_id if order else "", action=action, note=note)
            by_property.setdefault(row.property_id, []).append(row)
        now = format_time(self.clock())
        for pid, rows in by_property.items():
            old = {r.out_trade_no: r for r in self.journal.recon_rows(pid, day)}
            merged = [rules.merge(old.get(r.out_trade_no), r) for r in rows]
            merged += [r for no, r in old.items() if no not in {m.out_trade_no for m in merged}]
            for r in merged:
                self.journal.put_recon_row(r, now)
            self.journal.put_recon_day(pid, day, rules.day_summary(merged), now)
        log.info("reconciliation stored", date=day, properties=len(by_property), actions=actions)
        return {"date": day, "mismatches": len(report["mismatches"]), "rows": sum(map(len, by_property.values())),
                "actions": actions}

    def _act(self, day: str, kind: str, no: str, order, trade: dict | None) -> tuple[str, str]:
        """What is done about one trade: (action, note for the admin)."""
        if kind == rules.MATCHED:
            return rules.NONE, ""
        if kind == rules.AMOUNT_DIFFERS:
            return rules.FLAGGED, (f"微信账单 {yuan(trade['amount'])} 元，平台 {yuan(order.amount)} 元，"
                                   "请核对后处理")
        try:
            if kind == rules.MISSING_HERE:
                if order is None:
                    return rules.FLAGGED, "平台没有此订单号的订单，请核对商户号下的交易"
                tx = self.payments.pay.query(no)
                if not tx or tx.get("trade_state") != "SUCCESS":
                    return rules.FLAGGED, "微信查询未显示支付成功，请人工核对"
                ok, how = self.payments.settle(tx, "reconcile")
                if ok:
                    return rules.CREDITED, f"已按微信订单 {tx.get('transaction_id', '')} 补记入账 {yuan(order.amount)} 元"
                return rules.FLAGGED, f"补记入账失败（{how}），请人工处理"
            tx = self.payments.pay.query(no)  # MISSING_THERE: did WeChat book it on another day?
            when = (tx or {}).get("success_time") if (tx or {}).get("trade_state") == "SUCCESS" else None
            if when:
                from zoneinfo import ZoneInfo

                other = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(
                    ZoneInfo("Asia/Shanghai")).date().isoformat()
                if other != day:
                    return rules.OTHER_DAY, f"微信记在 {other} 的账单中"
            return rules.FLAGGED, "微信账单中没有此笔交易，请核实是否到账"
        except (wechatpay.WeChatPayError, FeikongError) as e:
            log.warning("reconcile action failed", out_trade_no=no, error=str(e)[:200])
            return rules.FLAGGED, "查询微信订单失败，请人工核对"

    def days(self, property_id: str) -> list[tuple[str, dict, str]]:
        return self.journal.recon_days(property_id)

    def day(self, property_id: str, day: object) -> list[rules.ReconRow]:
        """A day's rows, mismatches first."""
        rows = self.journal.recon_rows(property_id, rules.check_day(day))
        order = list(rules.KIND_NAMES)
        return sorted(rows, key=lambda r: (r.kind == rules.MATCHED, order.index(r.kind), r.out_trade_no))

    def mark_reviewed(self, property_id: str, day: object, out_trade_no: object, note: object, admin,
                      ip: str = "") -> rules.ReconRow:
        """An admin's review of a mismatch, once, in the action log (对账核查)."""
        from core.services import action_log

        day = rules.check_day(day)
        note = rules.check_review_note(note)
        no = str(out_trade_no or "")
        row = next((r for r in self.journal.recon_rows(property_id, day) if r.out_trade_no == no), None)
        if row is None or row.kind == rules.MATCHED:
            raise NotFound("对账记录不存在", code="reconcile_row_not_found")
        if row.reviewed_at:
            raise Conflict("该记录已核查", code="already_reviewed")
        at = format_time(self.clock())
        if not self.journal.mark_reviewed(property_id, day, no, admin.admin_id, note, at):
            raise Conflict("该记录已核查", code="already_reviewed")
        self.journal.put_recon_day(property_id, day, rules.day_summary(self.journal.recon_rows(property_id, day)), at)
        action_log.record(admin, "reconcile_review", property_id=property_id, target=f"reconcile:{day}:{no}",
                          before={"kind": row.kind, "action": row.action}, after={"note": note}, ip=ip,
                          record_id=f"reconcile_review:{day}:{no}")
        return next(r for r in self.journal.recon_rows(property_id, day) if r.out_trade_no == no)


_default: Finance | None = None


def service() -> Finance:
    """The process's Finance (its account cache lives as long as a warm Lambda or app worker)."""
    global _default
    if _default is None:
        _default = Finance()
    return _default
