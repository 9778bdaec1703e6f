"""Finance (财务) rules: what a money movement looks like in the property's journal
(订单流水), the list's filters and totals, and the day's reconciliation rows (对账).

Pure: the stream consumer (core/services/finance.py) hands in plain values read from the
ledger, orders, refunds and bill payments; nothing here reads or writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.domain.errors import ValidationError

# --- the journal -----------------------------------------------------------------------------

WECHAT_RECHARGE, COUNTER_RECHARGE, REFUND = "wechat_recharge", "counter_recharge", "refund"
DEDUCTION, BILL_PAYMENT, ADJUSTMENT = "deduction", "bill_payment", "adjustment"
TYPE_NAMES = {
    WECHAT_RECHARGE: "微信充值",
    COUNTER_RECHARGE: "柜台充值",
    REFUND: "退款",
    DEDUCTION: "费用扣款",
    BILL_PAYMENT: "账单缴费",
    ADJUSTMENT: "调整",
}
TYPES = tuple(TYPE_NAMES)

PENDING, PAID, CLOSED = "pending", "paid", "closed"
PART_REFUNDED, REFUNDED = "part_refunded", "refunded"
PROCESSING, SUCCEEDED, FAILED, POSTED = "processing", "succeeded", "failed", "posted"
STATUS_NAMES = {
    PENDING: "待支付",
    PAID: "已支付",
    PART_REFUNDED: "部分退款",
    REFUNDED: "已全额退款",
    CLOSED: "已关闭",
    PROCESSING: "退款中",
    SUCCEEDED: "退款成功",
    FAILED: "退款失败",
    POSTED: "已入账",
}
STATUSES = tuple(STATUS_NAMES)
# rows whose money moved (counted in the totals): an unpaid or closed order moved nothing, a
# failed refund gave the money back; a refund still processing has left the balance already
EFFECTIVE = frozenset({PAID, PART_REFUNDED, REFUNDED, PROCESSING, SUCCEEDED, POSTED})

CHANNEL_NAMES = {"wechat": "微信支付", "cash": "现金", "bank": "银行转账", "balance": "余额", "other": "其他"}

# money in (+1) or out (-1) of the property's hands; deductions and adjustments move the
# tenant's prepaid balance only (their sign is the balance's)
CASH_SIGN = {WECHAT_RECHARGE: 1, COUNTER_RECHARGE: 1, BILL_PAYMENT: 1, REFUND: -1}

# ledger kinds the journal takes (serverless.yml's filter on the ledger stream says the same;
# a unit test compares): never the metered energy/water debits
JOURNAL_KINDS = ("recharge", "refund", "withdrawal", "fee", "adjust_credit", "adjust_debit")

# WeChat's order and refund states -> the journal's
ORDER_STATUS = {"PENDING": PENDING, "PAID": PAID, "CLOSED": CLOSED}
REFUND_STATUS = {"PROCESSING": PROCESSING, "SUCCESS": SUCCEEDED, "FAILED": FAILED}


@dataclass(frozen=True)
class Who:
    """The account a movement belongs to, as the journal shows and filters it."""

    property_id: str
    account_id: str
    building_id: str = ""
    room_id: str = ""
    tenant_id: str = ""
    tenant_name: str = ""
    account_name: str = ""


@dataclass(frozen=True)
class JournalRow:
    property_id: str
    at: str  # UTC ISO 8601, when it happened (an order: when it was placed)
    account_id: str
    ref: str  # deterministic from the source: order:<no> | refund:<no> | entry:<id> | billpay:<period>:<id>
    type: str
    channel: str
    status: str
    amount: int  # fen, positive; the direction is the type's
    ref_no: str = ""  # what a person looks it up by: order, refund or receipt number
    building_id: str = ""
    room_id: str = ""
    tenant_id: str = ""
    tenant_name: str = ""
    account_name: str = ""
    memo: str = ""
    actor: str = ""

    @property
    def month(self) -> str:
        return self.at[:7]

    @property
    def sort_key(self) -> str:
        return f"{self.at}#{self.account_id}#{self.ref}"

    @property
    def effective(self) -> bool:
        return self.status in EFFECTIVE

    @property
    def signed(self) -> int:
        """The amount with its direction: money received +, paid out -, a deduction -, an
        adjustment as it moved the balance."""
        if self.type in CASH_SIGN:
            return CASH_SIGN[self.type] * self.amount
        if self.type == DEDUCTION:
            return -self.amount
        return self.amount if self.channel == "credit" else -self.amount


def _placed(w: Who, **kw) -> JournalRow:
    return JournalRow(property_id=w.property_id, account_id=w.account_id, building_id=w.building_id,
                      room_id=w.room_id, tenant_id=w.tenant_id, tenant_name=w.tenant_name,
                      account_name=w.account_name, **kw)


def row_from_entry(entry_id: str, kind: str, amount: int, cause: str, actor: str, posted_at: str, memo: str,
                   who: Who) -> JournalRow | None:
    """The journal row of a ledger entry, or None where another source carries the movement
    (a WeChat credit is its order's row, a WeChat refund its refund's) or it is no money
    movement (metered usage, the opening balance, money moved into a meter)."""
    fen = abs(int(amount))
    base = {"at": posted_at, "ref": f"entry:{entry_id}", "status": POSTED, "amount": fen, "memo": memo or "",
            "actor": actor}
    if kind == "recharge":
        if cause.startswith("order:"):
            return None  # the order's row (orders stream)
        channel = entry_id.split(":", 1)[0]
        channel = channel if channel in ("cash", "bank") else "other"
        return _placed(who, type=COUNTER_RECHARGE, channel=channel, ref_no=_receipt(cause, entry_id), **base)
    if kind == "refund":
        if entry_id.startswith("refund:"):
            return None  # the WeChat refund's row (refunds stream)
        channel = "cash" if entry_id.startswith("cash-refund:") else "other"
        return _placed(who, type=REFUND, channel=channel, ref_no=_receipt(cause, entry_id), **base)
    if kind == "withdrawal":
        return _placed(who, type=REFUND, channel="balance", ref_no=entry_id, **base)
    if kind == "fee":
        return _placed(who, type=DEDUCTION, channel="balance", ref_no=entry_id, **base)
    if kind in ("adjust_credit", "adjust_debit"):
        return _placed(who, type=ADJUSTMENT, channel="credit" if kind == "adjust_credit" else "debit",
                       ref_no=entry_id, **base)
    return None


def _receipt(cause: str, entry_id: str) -> str:
    return cause.split(":", 1)[1] if cause.startswith("receipt:") else entry_id


def row_from_order(out_trade_no: str, status: str, amount: int, refunded: int, created_at: str, purpose: str,
                   memo: str, who: Who) -> JournalRow:
    """A WeChat order (a recharge or a bill paid online) in its current state."""
    st = ORDER_STATUS.get(status, PENDING)
    if st == PAID and refunded > 0:
        st = REFUNDED if refunded >= amount else PART_REFUNDED
    kind = BILL_PAYMENT if purpose == "bill" else WECHAT_RECHARGE
    return _placed(who, at=created_at, ref=f"order:{out_trade_no}", type=kind, channel="wechat", status=st,
                   amount=int(amount), ref_no=out_trade_no, memo=memo, actor="wechatpay")


def row_from_refund(out_refund_no: str, out_trade_no: str, status: str, amount: int, created_at: str,
                    reason: str, actor: str, who: Who) -> JournalRow:
    return _placed(who, at=created_at, ref=f"refund:{out_refund_no}", type=REFUND, channel="wechat",
                   status=REFUND_STATUS.get(status, PROCESSING), amount=int(amount), ref_no=out_refund_no,
                   memo=f"原订单 {out_trade_no}" + (f"：{reason}" if reason else ""), actor=actor)


def row_from_bill_payment(period: str, payment_id: str, amount: int, method: str, paid_at: str, memo: str,
                          actor: str, who: Who) -> JournalRow | None:
    """A payment on a bill; None for a WeChat one (its order's row carries it)."""
    if method == "wechat":
        return None
    return _placed(who, at=paid_at, ref=f"billpay:{period}:{payment_id}", type=BILL_PAYMENT,
                   channel=method if method in CHANNEL_NAMES else "other", status=POSTED, amount=int(amount),
                   ref_no=payment_id, memo=memo or f"{period} 账单", actor=actor)


# --- the list's filters ------------------------------------------------------------------------

MAX_DAYS = 92
PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    date_from: date
    date_to: date  # inclusive
    type: str = ""
    status: str = ""
    building: str = ""
    room: str = ""
    tenant: str = ""
    page: int = 1

    def utc_range(self, tz: str) -> tuple[str, str]:
        """[start, end) of the local days as UTC ISO strings (the journal's sort keys)."""
        zone = ZoneInfo(tz)
        start = datetime.combine(self.date_from, time(), zone).astimezone(UTC)
        end = datetime.combine(self.date_to + timedelta(days=1), time(), zone).astimezone(UTC)
        return _iso(start), _iso(end)

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (pagination and export links keep them)."""
        q = {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "type": self.type,
             "status": self.status, "building": self.building, "room": self.room, "tenant": self.tenant}
        return {k: v for k, v in q.items() if v}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _day(value: str, field: str, label: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{label}格式应为 YYYY-MM-DD", code="date_invalid", field=field) from None


def _short(value: object, field: str, label: str, limit: int = 64) -> str:
    text = str(value or "").strip()
    if len(text) > limit:
        raise ValidationError(f"{label}过长（最多 {limit} 个字符）", code="filter_invalid", field=field)
    return text


def parse_filters(args: dict, today: date) -> Filters:
    """The list's filters from a query string; every bad value is refused with a message
    the admin can act on. Default: the current month up to today."""
    known = {"from", "to", "type", "status", "building", "room", "tenant", "page"}
    unknown = sorted(k for k in args if k not in known)
    if unknown:
        raise ValidationError(f"未知的筛选条件：{', '.join(unknown)}", code="filter_unknown")
    raw_from, raw_to = str(args.get("from") or "").strip(), str(args.get("to") or "").strip()
    d_to = _day(raw_to, "to", "结束日期") if raw_to else today
    d_from = _day(raw_from, "from", "开始日期") if raw_from else d_to.replace(day=1)
    if d_from > d_to:
        raise ValidationError("开始日期不能晚于结束日期", code="date_range_invalid", field="from")
    if (d_to - d_from).days + 1 > MAX_DAYS:
        raise ValidationError(f"查询区间最长 {MAX_DAYS} 天，请缩小日期范围", code="date_range_too_long", field="from")
    kind = _short(args.get("type"), "type", "类型")
    if kind and kind not in TYPE_NAMES:
        raise ValidationError(f"未知的类型：{kind}（可选：{'、'.join(TYPE_NAMES.values())}）", code="type_invalid",
                              field="type")
    status = _short(args.get("status"), "status", "状态")
    if status and status not in STATUS_NAMES:
        raise ValidationError(f"未知的状态：{status}", code="status_invalid", field="status")
    building, room = _short(args.get("building"), "building", "楼栋"), _short(args.get("room"), "room", "房间")
    if room and not building:
        raise ValidationError("按房间筛选时请同时选择楼栋", code="building_required", field="building")
    raw_page = str(args.get("page") or "1").strip()
    if not raw_page.isascii() or not raw_page.isdigit() or not 1 <= int(raw_page) <= 100_000:
        raise ValidationError("页码必须是正整数", code="page_invalid", field="page")
    return Filters(d_from, d_to, kind, status, building, room, _short(args.get("tenant"), "tenant", "租户"),
                   int(raw_page))


def matches(row: JournalRow, f: Filters) -> bool:
    if f.type and row.type != f.type:
        return False
    if f.status and row.status != f.status:
        return False
    if f.building and row.building_id != f.building:
        return False
    if f.room and row.room_id != f.room:
        return False
    return not (f.tenant and f.tenant != row.tenant_id and f.tenant not in row.tenant_name)


@dataclass(frozen=True)
class Totals:
    by_type: dict  # type -> {"count", "amount"} (amount: effective rows only, fen, positive)
    count: int
    received: int  # money in: paid recharges and bill payments (WeChat, cash, bank)
    paid_out: int  # refunds (succeeded or processing) and balance withdrawals
    deducted: int  # charge items deducted from balances
    adjusted: int  # adjustments, net (credit +)

    @property
    def net(self) -> int:
        return self.received - self.paid_out


def totals(rows: list[JournalRow]) -> Totals:
    by_type = {t: {"count": 0, "amount": 0} for t in TYPES}
    received = paid_out = deducted = adjusted = 0
    for r in rows:
        by_type[r.type]["count"] += 1
        if not r.effective:
            continue
        by_type[r.type]["amount"] += r.amount
        if r.type in (WECHAT_RECHARGE, COUNTER_RECHARGE) or (r.type == BILL_PAYMENT and r.channel != "balance"):
            received += r.amount
        elif r.type == REFUND:
            paid_out += r.amount
        elif r.type == DEDUCTION:
            deducted += r.amount
        elif r.type == ADJUSTMENT:
            adjusted += r.signed
    return Totals(by_type, len(rows), received, paid_out, deducted, adjusted)


def page_of(rows: list[JournalRow], page: int, size: int = PAGE_SIZE) -> tuple[list[JournalRow], int]:
    """One page of rows (newest first, as given) and the number of pages (at least 1)."""
    pages = max(1, -(-len(rows) // size))
    return rows[(page - 1) * size: page * size], pages


def local_time(iso: str, tz: str) -> str:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(tz)).strftime(
            "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def channel_name(row: JournalRow) -> str:
    if row.type == ADJUSTMENT:
        return "调增" if row.channel == "credit" else "调减"
    return CHANNEL_NAMES.get(row.channel, row.channel)


CSV_HEADER = ("时间", "类型", "渠道", "状态", "金额（元）", "楼栋", "房间", "租户", "户名", "单号", "备注", "操作人")


def csv_row(row: JournalRow, tz: str) -> tuple[str, ...]:
    """One exported line: money as yuan with two decimals, signed by its direction."""
    sign = "-" if row.signed < 0 else ""
    return (local_time(row.at, tz), TYPE_NAMES[row.type], channel_name(row), STATUS_NAMES.get(row.status, row.status),
            f"{sign}{row.amount // 100}.{row.amount % 100:02d}", row.building_id, row.room_id, row.tenant_name,
            row.account_name, row.ref_no, row.memo, row.actor)


# --- reconciliation ----------------------------------------------------------------------------

MATCHED, MISSING_HERE, MISSING_THERE, AMOUNT_DIFFERS = "matched", "missing_here", "missing_there", "amount_differs"
KIND_NAMES = {
    MATCHED: "一致",
    MISSING_HERE: "平台缺失（微信有，平台未入账）",
    MISSING_THERE: "微信缺失（平台已入账，微信账单没有）",
    AMOUNT_DIFFERS: "金额不一致",
}
# reconcile()'s mismatch kinds (core/services/payments.py) -> ours
FROM_REPORT = {"paid_there_not_here": MISSING_HERE, "here_not_there": MISSING_THERE,
               "amount_differs": AMOUNT_DIFFERS}
NONE, CREDITED, OTHER_DAY, FLAGGED = "none", "credited", "other_day", "flagged"
ACTION_NAMES = {
    NONE: "无需处理",
    CREDITED: "已补记入账",
    OTHER_DAY: "微信记在其他日期，无需处理",
    FLAGGED: "待人工核查",
}


@dataclass(frozen=True)
class ReconRow:
    day: str
    property_id: str
    out_trade_no: str
    kind: str
    our_amount: int | None
    their_amount: int | None
    transaction_id: str = ""
    account_id: str = ""
    action: str = NONE
    note: str = ""  # what the action found, for the admin
    reviewed_at: str = ""
    reviewed_by: str = ""
    review_note: str = ""

    @property
    def needs_review(self) -> bool:
        return self.action == FLAGGED and not self.reviewed_at

    def doc(self) -> dict:
        return {"kind": self.kind, "out_trade_no": self.out_trade_no, "our_amount": self.our_amount,
                "their_amount": self.their_amount, "transaction_id": self.transaction_id,
                "account_id": self.account_id, "action": self.action, "note": self.note}


def merge(old: ReconRow | None, new: ReconRow) -> ReconRow:
    """A rerun of a day keeps what the first run found and did: a trade credited by the
    first run is matched by the second, and must still read 'missing here, credited'."""
    if old is None or old.kind == MATCHED or new.kind != MATCHED:
        return new
    return replace(old, our_amount=new.our_amount, account_id=new.account_id or old.account_id)


def day_summary(rows: list[ReconRow]) -> dict:
    counts = {k: 0 for k in KIND_NAMES}
    ours = theirs = 0
    for r in rows:
        counts[r.kind] += 1
        ours += r.our_amount or 0
        theirs += r.their_amount or 0
    return {"counts": counts, "rows": len(rows), "our_fen": ours, "their_fen": theirs,
            "open": sum(r.needs_review for r in rows)}


def check_day(value: object) -> str:
    return _day(str(value), "date", "日期").isoformat()


def check_review_note(value: object) -> str:
    note = str(value or "").strip()
    if not note:
        raise ValidationError("请填写核查说明", code="note_required", field="note")
    if len(note) > 200:
        raise ValidationError("核查说明最多 200 个字符", code="note_too_long", field="note")
    return note
