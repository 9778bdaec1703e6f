"""The room detail page's rules (房间详情): the words an admin reads for a ledger entry's
cause, an account's supply (cut) state, a command and an event; the usage a statement's
metered entries add up to (today, by hour, by day); the statement's paging cursor.
Pure: core/services/room_detail.py reads the store and hands the values over.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.domain.control import CUT_DONE, CUT_PENDING, DEFAULT_LEVELS
from core.domain.errors import ValidationError
from core.domain.ledger import EntryKind
from core.domain.money import yuan
from core.domain.rating import ANOMALY_NAMES
from core.domain.tariff import PERIOD_NAMES, Plan

USAGE_DAYS = 30  # the daily chart's span
PAGE_SIZE = 20  # statement entries per page
MAX_PAGE_SIZE = 100
RECENT_COMMANDS = 20  # per meter
RECENT_EVENTS = 50  # meters' and accounts' events together

KIND_NAMES = {
    EntryKind.OPENING: "开户", EntryKind.RECHARGE: "充值", EntryKind.REFUND: "退款", EntryKind.WITHDRAWAL: "余额退还",
    EntryKind.ENERGY: "电费", EntryKind.WATER: "水费", EntryKind.FEE: "费用", EntryKind.ADJUST_CREDIT: "调账（增加）",
    EntryKind.ADJUST_DEBIT: "调账（扣减）", EntryKind.METER_TRANSFER: "充值到表", EntryKind.REFUND_REVERSAL: "退款退回",
}
ACTOR_NAMES = {"wechatpay": "微信支付", "rating": "系统计费", "control": "系统控制", "system": "系统",
               "tenant": "租户", "cli": "命令行"}
METER_KIND_NAMES = {"electric_1p": "单相电表", "electric_3p": "三相电表", "water": "水表"}
BILLING_NAMES = {"cloud": "平台计费", "meter": "表内计费"}
RELAY_NAMES = {"closed": "合闸（供电）", "open": "分闸（断电）", "unknown": "未知"}
OP_NAMES = {"TRIP": "拉闸", "CLOSE": "合闸", "SET_TARIFF": "下发电价", "RECHARGE": "充值到表", "SET_ALARM": "下发告警",
            "READ_NOW": "立即抄表"}
COMMAND_STATE_NAMES = {"queued": "排队中", "sent": "已发送", "applied": "已执行", "failed": "失败", "expired": "已过期",
                       "superseded": "已被取代"}
EVENT_NAMES = {"anomaly": "读数异常", "low_balance": "余额告警", "command": "命令", "meter_online": "表计上线",
               "meter_offline": "表计离线", "meter_without_plan": "未设电价", "reading_after_close": "销户后用量", "meter_mismatch": "表内数据不一致",
               "meter_replaced": "换表", "settings": "设置变更", "relay_alarm": "开关告警",
               "manual_relay": "手动分合闸", "supply_stuck": "命令多次未执行", "command_failing": "命令多次未执行",
               "cut_imminent": "即将断电", "supply_cut": "已断电", "supply_restored": "已复电",
               "meter_offline_long": "表计长时间离线", "refund_request": "退款申请"}
EVENT_STATUS_NAMES = {"open": "待审核", "approved": "已批准", "rejected": "已驳回", "recorded": "已记录",
                      "to_notify": "待通知", "notified": "已通知"}
UNITS = {"kWh": "kWh", "m³": "m³", "m3": "m³"}

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(kWh|m³|m3)")


# --- what the store hands over ---------------------------------------------------------


@dataclass(frozen=True)
class MeterDetail:
    """A meter as the detail page shows it (one item of the meters table)."""

    meter_id: str
    account_id: str
    site_id: str
    kind: str
    model: str
    bus: str
    address: int
    billing_mode: str
    rated_kw: str
    plan_id: str | None
    relay_state: str  # as last read back
    relay_seen_at: str
    relay_command_id: str | None  # outstanding relay command (in flight)
    desired_relay: str | None
    online: bool
    last_seen: str
    keep_supply: bool
    retired: bool
    replaced_by: str
    reading_at: str = ""  # the last reading: the meter's own read time
    reading_total: str = ""
    reading_seq: int = 0
    registers: dict[str, str] = field(default_factory=dict)  # time-of-use registers (peak, valley...)
    meter_balance: int | None = None  # meter-side billing: what the meter holds


@dataclass(frozen=True)
class CommandRow:
    command_id: str
    meter_id: str
    op: str
    state: str
    cause: str
    actor: str
    issued_at: str
    updated_at: str
    expires_at: str
    result: dict = field(default_factory=dict)


@dataclass(frozen=True)
class UsagePoint:
    """A metered entry reduced to what the usage figures need."""

    at: str  # when it was used: the reading's time (occurred_at), else posted_at
    kind: str  # energy | water
    amount: int  # fen, signed (a debit is negative)
    memo: str


# --- words -----------------------------------------------------------------------------


def quantity_of(memo: str) -> tuple[Decimal, str] | None:
    """(quantity, unit) of a metered entry's memo ("2.50 kWh", "1.2 m³ (异常审核后计费)")."""
    m = _QUANTITY.match(memo or "")
    return (Decimal(m.group(1)), UNITS[m.group(2)]) if m else None


def actor_text(actor: str) -> str:
    if actor.startswith("admin:"):  # a console admin (their login)
        return f"管理员 {actor.removeprefix('admin:')}"
    return ACTOR_NAMES.get(actor, actor)


def entry_cause_text(kind: str, entry_id: str, cause: str, memo: str = "", period: str = "") -> str:
    """The cause of a ledger entry in words. period: the tariff period of a metered entry
    (sharp / peak / flat / valley / deep_valley), "" when unknown or the plan is flat."""
    ref = cause.partition(":")[2]
    prefix = entry_id.partition(":")[0]
    if kind == EntryKind.OPENING:
        return "开户期初余额"
    if kind == EntryKind.RECHARGE:
        if cause.startswith("order:"):
            return f"微信支付充值（订单 {ref}）"
        if cause.startswith("receipt:"):
            return f"{'柜台现金充值' if prefix == 'cash' else '银行转账充值' if prefix == 'bank' else '柜台充值'}（收据 {ref}）"
        return _with_memo("充值", memo)
    if kind == EntryKind.REFUND:
        if cause.startswith("order:"):
            return _with_memo(f"微信退款（原订单 {ref}）", memo, skip=("退款",))
        if cause.startswith("receipt:"):
            return f"柜台退款（收据 {ref}）"
        return _with_memo("退款", memo)
    if kind == EntryKind.REFUND_REVERSAL:
        return f"退款失败，退回余额（退款单 {ref}）" if cause.startswith("refund:") else _with_memo("退款退回", memo)
    if kind in (EntryKind.ENERGY, EntryKind.WATER):
        return metered_text(kind, cause, memo, period)
    if kind == EntryKind.METER_TRANSFER:
        return memo or "充值到表"
    return _with_memo(KIND_NAMES.get(kind, kind), memo)


def _with_memo(text: str, memo: str, skip: tuple[str, ...] = ()) -> str:
    return f"{text}：{memo}" if memo and memo not in skip and memo != text else text


def metered_text(kind: str, cause: str, memo: str, period: str = "") -> str:
    """"用电 2.50 kWh · 峰时段 · 电表 m1 第 12 次读数"; an approved anomaly says so."""
    q = quantity_of(memo)
    what = "用电" if kind == EntryKind.ENERGY else "用水"
    parts = [f"{what} {q[0]} {q[1]}" if q else what]
    if period in PERIOD_NAMES:
        parts.append(f"{PERIOD_NAMES[period]}时段")
    source, _, rest = cause.partition(":")
    meter, _, tail = rest.rpartition(":")
    if source == "reading" and meter:
        parts.append(f"表 {meter} 第 {tail} 次读数")
    elif source == "anomaly":
        meter = rest.partition(":")[0]
        parts.append(f"表 {meter} 读数异常审核后计费")
    return " · ".join(parts)


def period_of(plan: Plan | None, read_at: str) -> str:
    """The tariff period a reading at read_at was billed in (the period of the end of its
    interval: readings come every few minutes, an interval rarely spans two); "" when the
    plan has one price or does not cover the time."""
    if plan is None or not read_at:
        return ""
    try:
        t = datetime.fromisoformat(read_at.replace("Z", "+00:00")) - timedelta(microseconds=1)
        v = plan.version_at(t.astimezone(UTC))
        if v is None or len(v.prices) <= 1:
            return ""
        return v.price_of(v.period_at(t.astimezone(plan.tz)))[0]
    except (ValueError, ValidationError):
        return ""


def reading_of(cause: str) -> tuple[str, int] | None:
    """(meter_id, seq) of a metered entry billed from a reading."""
    source, _, rest = cause.partition(":")
    meter, _, seq = rest.rpartition(":")
    return (meter, int(seq)) if source == "reading" and meter and seq.isdigit() else None


@dataclass(frozen=True)
class Supply:
    """An account's supply in words: a short state and the reason."""

    state: str  # normal | pending | cut | tripped | protected
    label: str
    reason: str


def supply_text(cut_state: str, cut_due_at: str, balance: int, overdraft_limit: int, restore_line: int,
                keep_supply: bool, open_meters: Iterable[str] = (), tz: str = "Asia/Shanghai") -> Supply:
    """What the account's cut state means: cut (and why it is not restored yet), a pending
    cut (and when), keep-supply, a meter read back open without a cut (tripped by hand or
    not yet closed), or normal."""
    line = -overdraft_limit
    line_text = f"断电线 ¥{yuan(line)}" + (f"（允许透支 ¥{yuan(overdraft_limit)}）" if overdraft_limit else "")
    opened = sorted(open_meters)
    if cut_state == CUT_DONE:
        restore = max(restore_line, line)
        why = f"余额 ¥{yuan(balance)} 低于{line_text}" if balance < line else f"余额 ¥{yuan(balance)}"
        return Supply("cut", "已断电", f"{why}；余额高于 ¥{yuan(restore)} 时自动恢复供电")
    if cut_state == CUT_PENDING:
        when = local_time(cut_due_at, tz) if cut_due_at else "保护时段结束后"
        return Supply("pending", "待断电", f"余额 ¥{yuan(balance)} 低于{line_text}；宽限期或保护时段内暂不断电，"
                                         f"预计 {when} 断电")
    if opened:
        return Supply("tripped", "已分闸", f"表 {'、'.join(opened)} 回读为分闸，账户未处于断电状态（手动拉闸，或合闸命令尚未确认）")
    if keep_supply:
        return Supply("protected", "保电", "账户设为保电：余额不足也不会断电")
    if balance < line:
        return Supply("normal", "供电中", f"余额 ¥{yuan(balance)} 低于{line_text}，等待系统处理")
    return Supply("normal", "供电中", f"余额 ¥{yuan(balance)}，高于{line_text}")


def alarm_text(balance: int, levels: Iterable[int] | None) -> tuple[int, str]:
    """(level, words): level n = the balance is below the n-th alarm amount (0: none)."""
    amounts = tuple(levels) if levels else DEFAULT_LEVELS
    level = sum(1 for a in amounts if balance < a)
    if level == 0:
        return 0, f"未告警（告警金额 {' / '.join('¥' + yuan(a) for a in amounts)}）"
    return level, f"{level} 级告警：余额低于 ¥{yuan(amounts[level - 1])}"


def command_cause_text(cause: str, actor: str) -> str:
    """Why a command was issued, in words."""
    source, _, ref = cause.partition(":")
    if source == "reading":
        return "用电扣费后余额低于断电线"
    if source == "entry":
        return f"记账后供电状态变化（{ref}）"
    if source == "reconcile":
        return "供电状态核对后重发" + (f"（第 {ref} 次）" if ref else "")
    if source == "pending-cut":
        return "待断电到期"
    if source == "settings":
        return "账户设置变更"
    if source == "anomaly":
        return "读数异常审核后计费"
    if source == "manual":  # the reason is in the manual_relay event (and, given here, after the colon)
        return f"手动操作{'：' + ref if ref else ''}（{actor_text(actor)}）"
    return cause if actor in ACTOR_NAMES else f"{cause}（{actor_text(actor)}）"


def command_result_text(result: dict) -> str:
    if not result:
        return ""
    relay = result.get("relay_state")
    parts = []
    if relay:
        parts.append(f"回读{RELAY_NAMES.get(relay, relay)}")
    if result.get("detail"):
        parts.append(str(result["detail"])[:120])
    if result.get("status") and not parts:
        parts.append(str(result["status"]))
    return "，".join(parts)


def event_text(type_: str, message: str, data: dict) -> str:
    """An event's words: its message, and for an anomaly the proposed charge."""
    if type_ == "anomaly":
        kind = data.get("kind", "")
        text = message or ANOMALY_NAMES.get(kind, "读数异常")
        if data.get("proposed_fen") is not None:
            text += f"；建议计费 ¥{yuan(int(data['proposed_fen']))}（用量 {data.get('quantity', '')}）"
        return text
    if type_ == "command":
        op = data.get("op", "")
        return f"{OP_NAMES.get(op, op)}：{command_cause_text(data.get('cause', ''), data.get('actor', ''))}"
    return message or EVENT_NAMES.get(type_, type_)


def local_time(iso: str, tz: str = "Asia/Shanghai", seconds: bool = False) -> str:
    """An ISO time as the property's local wall time ("2026-11-29 13:05"); "" for ""."""
    if not iso:
        return ""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


# --- usage -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Metered usage of an account: today's quantity and cost per unit, today's kWh by
    hour and the last USAGE_DAYS days' kWh by day (local days of the property)."""

    today: dict[str, Decimal]  # unit -> quantity
    today_fen: dict[str, int]  # unit -> cost
    hours: list[Decimal]  # 24 values, kWh
    days: list[tuple[str, Decimal]]  # (YYYY-MM-DD, kWh), oldest first, USAGE_DAYS of them

    @property
    def has_readings(self) -> bool:
        return any(self.hours) or any(q for _, q in self.days)


def usage_since(now: datetime, tz: str = "Asia/Shanghai") -> datetime:
    """The earliest time the usage figures need: the start of the first day charted."""
    return _start_of(now.astimezone(ZoneInfo(tz)).date() - timedelta(days=USAGE_DAYS - 1), tz)


def _start_of(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def usage(points: Iterable[UsagePoint], now: datetime, tz: str = "Asia/Shanghai") -> Usage:
    """Sum metered entries by the local hour of today and by local day. Each entry counts
    at its reading's time (the end of its interval). Costs are what was debited."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=USAGE_DAYS - 1)
    hours = [Decimal(0)] * 24
    days = {first + timedelta(days=i): Decimal(0) for i in range(USAGE_DAYS)}
    qty: dict[str, Decimal] = {}
    cost: dict[str, int] = {}
    for p in points:
        q = quantity_of(p.memo)
        try:
            at = datetime.fromisoformat(p.at.replace("Z", "+00:00")).astimezone(zone)
        except ValueError:
            continue
        if at.date() > today or at.date() < first:
            continue
        unit = q[1] if q else ("m³" if p.kind == EntryKind.WATER else "kWh")
        if at.date() == today:
            qty[unit] = qty.get(unit, Decimal(0)) + (q[0] if q else Decimal(0))
            cost[unit] = cost.get(unit, 0) - p.amount
        if q and unit == "kWh":
            days[at.date()] += q[0]
            if at.date() == today:
                hours[at.hour] += q[0]
    return Usage(today=qty, today_fen=cost, hours=hours, days=[(d.isoformat(), v) for d, v in days.items()])


# --- the statement's cursor ------------------------------------------------------------


def encode_cursor(posted_at: str, entry_id: str) -> str:
    """An opaque cursor for the next page: after the entry (posted_at, entry_id)."""
    return base64.urlsafe_b64encode(f"{posted_at}\n{entry_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    """(posted_at, entry_id) of a cursor made by encode_cursor; a 400 if it is not one."""
    if not cursor:
        return None
    bad = ValidationError("分页参数无效，请从第一页重新查看", code="cursor_invalid", field="cursor")
    if len(cursor) > 400:
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raise bad from None
    posted_at, sep, entry_id = text.partition("\n")
    if not sep or not entry_id or "\n" in entry_id:
        raise bad
    try:
        datetime.fromisoformat(posted_at.replace("Z", "+00:00"))
    except ValueError:
        raise bad from None
    return posted_at, entry_id


def page_size(value: object) -> int:
    """The statement's page size from a query string (default PAGE_SIZE); a 400 if bad."""
    if value in (None, ""):
        return PAGE_SIZE
    text = str(value)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise ValidationError(f"每页条数应为 1 到 {MAX_PAGE_SIZE}", code="limit_invalid", field="limit")
    return int(text)
