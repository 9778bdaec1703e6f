"""What the notification pipeline sends, to whom and when (docs/notifications.md). Pure.

- `KINDS`: the catalog. Each kind of message has an audience (tenant or admin), a Chinese
  title and body template, the WeChat template field names its values fill, the setting
  that names its SMS template, default channels, whether it must arrive (official-account
  template + SMS even without a mini-program consent), whether quiet hours hold it back
  (cut warnings ignore them) and its repeat policy (an alarm that remains is sent at most
  once a local day, not once per reading).
- `notice_of(event)`: a recorded event -> the notice it calls for (a catalog key, the
  rendered values, the account and the key deliveries are deduplicated by), or None.
- `render`, the quiet-hours arithmetic (`quiet_until`), the retry policy (`retry_delay`),
  delivery ids and recipient masking.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.domain.bills import ISSUED, Bill
from core.domain.events import Event, SubjectKind
from core.domain.money import yuan

TENANT, ADMIN = "tenant", "admin"
SUBSCRIBE, TEMPLATE, SMS, EMAIL, VOICE = "subscribe", "template", "sms", "email", "voice"
CHANNELS = (SUBSCRIBE, TEMPLATE, SMS, EMAIL, VOICE)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# delivery statuses (the delivery log)
SENDING, SENT, RETRYING, FAILED = "sending", "sent", "retrying", "failed"
NO_CONSENT, QUIET_DEFERRED, SUPPRESSED = "no_consent", "quiet_deferred", "suppressed"
FINAL = (SENT, FAILED, NO_CONSENT, SUPPRESSED)
STATUS_NAMES = {SENDING: "发送中", SENT: "已发送", RETRYING: "重试中", FAILED: "发送失败", NO_CONSENT: "未订阅",
                QUIET_DEFERRED: "免打扰延后", SUPPRESSED: "已取消"}
CHANNEL_NAMES = {SUBSCRIBE: "小程序订阅消息", TEMPLATE: "公众号模板消息", SMS: "短信", EMAIL: "邮件", VOICE: "语音电话"}

# retries of transient failures: 30 s, 1, 2, 4, 8 min, then failed
MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=15)
SENDING_LEASE = timedelta(minutes=2)  # a claim older than this (its sender died) may be taken again


@dataclass(frozen=True)
class Kind:
    key: str
    audience: str
    title: str
    body: str  # str.format template over the notice's values
    fields: tuple[tuple[str, str], ...]  # (WeChat template field name, value name), in SMS parameter order
    channels: tuple[str, ...]  # default channels (a tenant's preferences replace them)
    must_arrive: bool = False  # official-account template + SMS as well, whatever the preferences
    quiet: bool = True  # held back during the recipient's quiet hours
    repeat_daily: bool = False  # the same alarm at most once a local day (per subject and level)
    link: str = "/h5/"

    @property
    def sms_setting(self) -> str:
        """The setting naming this kind's SMS template id at the provider (FEIKONG_SMS_TEMPLATE_<KEY>)."""
        return f"sms_template_{self.key}"


def _k(key, audience, title, body, fields, channels, **kw) -> tuple[str, Kind]:
    return key, Kind(key, audience, title, body, fields, channels, **kw)


KINDS: dict[str, Kind] = dict([
    # -- tenants ---------------------------------------------------------------------------------
    _k("low_balance", TENANT, "余额不足提醒", "您的账户余额 {balance} 元，{tip}，请及时充值。",
       (("thing1", "title"), ("amount2", "balance"), ("thing3", "tip")), (SUBSCRIBE,),
       repeat_daily=True, link="/h5/recharge"),
    _k("cut_imminent", TENANT, "即将停电提醒", "您的账户余额 {balance} 元，已低于断电线，将于 {due} 停止供电，请尽快充值。",
       (("thing1", "title"), ("amount2", "balance"), ("time3", "due")), (SUBSCRIBE, TEMPLATE),
       must_arrive=True, quiet=False, link="/h5/recharge"),
    _k("supply_cut", TENANT, "已停止供电", "{reason}（{time}）",
       (("thing1", "title"), ("time2", "time"), ("thing3", "reason")), (SUBSCRIBE, TEMPLATE),
       must_arrive=True, quiet=False, link="/h5/recharge"),
    _k("supply_restored", TENANT, "已恢复供电", "{reason}（{time}）",
       (("thing1", "title"), ("time2", "time"), ("thing3", "reason")), (SUBSCRIBE,), quiet=False),
    _k("payment_received", TENANT, "充值到账", "微信充值 {amount} 元已到账，当前余额 {balance} 元。",
       (("thing1", "title"), ("amount2", "amount"), ("amount3", "balance")), (SUBSCRIBE,), quiet=False,
       link="/h5/orders"),
    _k("refund_done", TENANT, "退款已到账", "退款 {amount} 元已原路退回您的微信。",
       (("thing1", "title"), ("amount2", "amount")), (SUBSCRIBE,), quiet=False, link="/h5/statement"),
    _k("meter_offline_long", TENANT, "表计长时间离线", "您的表计 {meter} 自 {since} 起未上报读数，物业已收到提醒。",
       (("thing1", "title"), ("thing2", "meter"), ("time3", "since")), (SUBSCRIBE,), repeat_daily=True),
    # bills (docs/billing.md "Reminders"): money owed by a date, so the official account's template
    # (no consent per message) as well as the subscribe message; never a cut, so not must-arrive
    _k("bill_issued", TENANT, "账单已出", "您 {period} 的账单已出，应缴 {total} 元，请于 {due} 前缴纳。",
       (("thing1", "title"), ("thing2", "period"), ("amount3", "total"), ("time4", "due")), (SUBSCRIBE, TEMPLATE)),
    _k("bill_due_soon", TENANT, "账单即将到期", "您 {period} 的账单尚有 {outstanding} 元未缴，将于 {due} 到期，请及时缴纳。",
       (("thing1", "title"), ("amount2", "outstanding"), ("time3", "due")), (SUBSCRIBE, TEMPLATE)),
    _k("bill_overdue", TENANT, "账单已逾期",
       "您 {period} 的账单已逾期 {days} 天（到期日 {due}），尚有 {outstanding} 元未缴{late_fee}，请尽快缴纳。",
       (("thing1", "title"), ("amount2", "outstanding"), ("time3", "due"), ("number4", "days")),
       (SUBSCRIBE, TEMPLATE)),
    # -- the property's admins -----------------------------------------------------------------
    _k("meter_offline", ADMIN, "表计离线", "表计 {meter} 自 {since} 起未上报读数，请检查表计和网关。",
       (("thing1", "title"), ("thing2", "meter"), ("time3", "since")), (TEMPLATE,), repeat_daily=True,
       quiet=False),
    _k("bridge_offline", ADMIN, "网关离线", "网关 {site} 自 {since} 起离线，其表计的读数和指令将延后。",
       (("thing1", "title"), ("thing2", "site"), ("time3", "since")), (TEMPLATE, SMS), repeat_daily=True,
       quiet=False),
    _k("command_failing", ADMIN, "指令多次失败", "表计 {meter} 已连续 {attempts} 次未执行{action}命令，请现场检查。",
       (("thing1", "title"), ("thing2", "meter"), ("thing3", "action")), (TEMPLATE, SMS), quiet=False),
    _k("anomaly_review", ADMIN, "读数异常待审核", "表计 {meter} 的读数异常（{anomaly}），请在后台审核。",
       (("thing1", "title"), ("thing2", "meter"), ("thing3", "anomaly")), (TEMPLATE,), quiet=False),
    _k("reconcile_mismatch", ADMIN, "对账不一致", "{date} 微信支付对账有 {count} 笔不一致（如订单 {order}），请在后台核对。",
       (("thing1", "title"), ("time2", "date"), ("number3", "count")), (TEMPLATE, EMAIL),
       quiet=False),
    _k("refund_request", ADMIN, "退款申请待审批", "账户 {account} 申请退款 {amount} 元，请在后台审批。",
       (("thing1", "title"), ("thing2", "account"), ("amount3", "amount")), (TEMPLATE,), quiet=False),
])

ANOMALY_NAMES = {"implausible_jump": "读数跳变", "gap": "长时间无读数", "register_backwards": "读数倒退",
                 "read_time_future": "表计时钟超前", "meter_mismatch": "表内余额不符"}
OP_NAMES = {"TRIP": "断电", "CLOSE": "合闸", "RECHARGE": "充值"}


@dataclass(frozen=True)
class Notice:
    """What one recorded event calls for."""

    key: str  # catalog key
    event_ref: str  # "<scope>/<event id>": the event's identity
    property_id: str
    account_id: str  # "" when the event concerns no account
    values: dict[str, str] = field(default_factory=dict)
    dedupe: str = ""  # deliveries are unique per (dedupe, channel, recipient)
    at: str = ""

    @property
    def kind(self) -> Kind:
        return KINDS[self.key]


def local(at: str | datetime) -> datetime:
    t = datetime.fromisoformat(at.replace("Z", "+00:00")) if isinstance(at, str) else at
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(LOCAL_TZ)


def _hm(at: object) -> str:
    try:
        return local(str(at)).strftime("%m-%d %H:%M")
    except (ValueError, TypeError):
        return "-"


def _yuan(v: object) -> str:
    if v is None or isinstance(v, bool):
        return "-"
    try:
        return yuan(int(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"


# recorded event type -> catalog key, where they differ (producers: core/domain/events.py)
TYPE_KEYS = {"payment_credited": "payment_received", "reconcile_day": "reconcile_mismatch",
             "supply_stuck": "command_failing", "anomaly": "anomaly_review"}
# the recorded types the router reads: the stream's filter in serverless.yml lists exactly these
EVENT_TYPES = ("low_balance", "cut_imminent", "supply_cut", "supply_restored", "command", "payment_credited",
               "refund_done", "meter_offline_long", "meter_offline", "bridge_offline", "command_failing",
               "supply_stuck", "anomaly", "reconcile_day", "refund_request", "bill_issued", "bill_due_soon",
               "bill_overdue")
# kinds about one bill: the router reads the bill (with_bill) and drops the notice of a paid one
BILL_KINDS = ("bill_issued", "bill_due_soon", "bill_overdue")


def key_of(e: Event) -> str | None:
    """The catalog key a recorded event stands for, or None (not a message)."""
    if e.type == "anomaly":
        return "anomaly_review" if e.status == "open" else None
    if e.type == "command":  # the cut and the restore as the relay orders record them
        op, cause = e.data.get("op"), str(e.data.get("cause", ""))
        if op not in ("TRIP", "CLOSE") or cause.startswith("reconcile") or not e.data.get("account_id"):
            return None  # the reconciler's retries of an order are not news
        return "supply_cut" if op == "TRIP" else "supply_restored"
    key = TYPE_KEYS.get(e.type, e.type)
    return key if e.type in EVENT_TYPES and key in KINDS else None


def notice_of(e: Event) -> Notice | None:
    """The notice a newly recorded event calls for, or None. Deterministic: the same event
    always gives the same notice, so a redelivered stream record routes to the same deliveries."""
    key = key_of(e)
    if key is None:
        return None
    d = e.data or {}
    ref = f"{e.subject.kind}#{e.subject.id}/{e.event_id}"
    account = e.subject.id if e.subject.kind in (SubjectKind.ACCOUNT, SubjectKind.NOTICE) \
        else str(d.get("account_id") or "")
    day = local(e.at).date().isoformat() if e.at else ""
    meter = str(d.get("meter_id") or (e.subject.id if e.subject.kind == SubjectKind.METER else ""))
    values: dict[str, str] = {"title": KINDS[key].title}
    dedupe = ref
    if key == "low_balance":
        threshold = d.get("threshold")
        tip = "已欠费" if threshold is not None and int(threshold) <= 0 else f"已低于 {_yuan(threshold)} 元"
        values |= {"balance": _yuan(d.get("balance")), "threshold": _yuan(threshold), "tip": tip}
        dedupe = f"low_balance:{account}:{d.get('level', '')}:{day}"  # repeat policy: once a local day per level
    elif key == "cut_imminent":
        values |= {"balance": _yuan(d.get("balance")), "due": _hm(d.get("cut_at") or d.get("due_at"))}
    elif key in ("supply_cut", "supply_restored"):
        manual = str(d.get("cause", "")) == "manual"
        if key == "supply_cut":
            reason = "物业已对您的表计断电，如有疑问请联系物业" if manual else "账户余额低于断电线，已停止供电，充值到账后将自动恢复"
        else:
            reason = "物业已为您的表计合闸" if manual else "充值已到账，已发出合闸指令恢复供电"
        values |= {"time": _hm(e.at), "reason": reason, "balance": _yuan(d.get("balance"))}
        dedupe = f"{key}:{account}:{e.at[:16]}"  # one message per account and minute, not one per meter
    elif key == "payment_received":
        values |= {"amount": _yuan(d.get("amount")), "balance": _yuan(d.get("balance_after"))}
    elif key == "refund_done":
        values |= {"amount": _yuan(d.get("amount"))}
    elif key in ("meter_offline_long", "meter_offline"):
        values |= {"meter": meter, "since": _hm(d.get("last_seen") or e.at)}
        dedupe = f"{key}:{meter}:{day}"  # a meter that flaps is reported once a local day
    elif key == "bridge_offline":
        site = str(d.get("site_id") or e.subject.id)
        values |= {"site": str(d.get("site_name") or site), "since": _hm(d.get("last_heartbeat_at") or e.at)}
        dedupe = f"bridge_offline:{site}:{day}"
    elif key == "command_failing":
        values |= {"meter": meter, "attempts": str(d.get("attempts", "")),
                   "action": OP_NAMES.get(str(d.get("op", "")), str(d.get("op", "")))}
    elif key == "anomaly_review":
        kind = str(d.get("kind", ""))
        values |= {"meter": meter, "anomaly": ANOMALY_NAMES.get(kind, kind)}
    elif key == "reconcile_mismatch":
        orders = d.get("orders") or [d.get("out_trade_no", "")]
        values |= {"date": str(d.get("bill_date") or e.subject.id), "count": str(d.get("count", len(orders))),
                   "order": str(orders[0] if orders else "")}
    elif key == "refund_request":
        room = "-".join(str(d[k]) for k in ("building_id", "room_id") if d.get(k))
        values |= {"account": room or account, "amount": _yuan(d.get("amount"))}
    elif key in BILL_KINDS:  # the amounts as recorded; the router refreshes them from the bill (with_bill)
        values |= {"bill_id": str(d.get("bill_id", "")), "period": _period(d.get("period")),
                   "due": _date(d.get("due")), "days": str(d.get("days", "-")),
                   "outstanding": _yuan(d.get("outstanding")), "late_fee": _late_fee(d.get("late_fee_total"))}
    return Notice(key, ref, e.property_id, account, values, dedupe, e.at)


def _period(p: object) -> str:
    """'2026-05' -> '2026年5月'."""
    try:
        y, m = str(p).split("-")
        return f"{int(y)}年{int(m)}月"
    except (ValueError, TypeError):
        return "-"


def _date(d: object) -> str:
    """date(2026, 6, 15) or '2026-06-15' -> '2026年6月15日'."""
    try:
        x = d if isinstance(d, date) else date.fromisoformat(str(d))
        return f"{x.year}年{x.month}月{x.day}日"
    except (ValueError, TypeError):
        return "-"


def _late_fee(fen: object) -> str:
    try:
        return f"（含滞纳金 {yuan(int(fen))} 元）" if fen is not None and int(fen) > 0 else ""  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def bill_of(notice: Notice) -> tuple[str, str] | None:
    """(account_id, period) of the bill a bill notice is about, or None."""
    account_id, _, period = notice.values.get("bill_id", "").rpartition(":")
    return (account_id, period) if notice.key in BILL_KINDS and account_id == notice.account_id and period else None


def with_bill(notice: Notice, bill: Bill | None) -> Notice | None:
    """A bill notice with the bill's amounts as they are now (read by the router), or None if
    the bill is no longer one to tell about: missing, not issued, or paid (nothing outstanding)."""
    if bill is None or bill.state != ISSUED or bill.outstanding <= 0 or bill.account_id != notice.account_id:
        return None
    values = {**notice.values, "period": _period(bill.period), "total": yuan(bill.total),
              "outstanding": yuan(bill.outstanding), "late_fee": _late_fee(bill.late_fee_total)}
    if bill.due_date is not None:
        values["due"] = _date(bill.due_date)
    return replace(notice, values=values)


# -- rendering ---------------------------------------------------------------------------

# WeChat's limits on a template data value by the field's type (thing: 20 characters...)
FIELD_LIMITS = {"thing": 20, "phrase": 5, "character_string": 32, "amount": 20, "time": 30, "number": 32}


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    fields: dict[str, str]


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "-"


def _fit(name: str, value: str) -> str:
    kind = name.rstrip("0123456789")
    limit = FIELD_LIMITS.get(kind)
    if kind == "amount" and value not in ("", "-"):
        value = value + "元"
    return value[:limit] if limit else value


def render(key: str, values: dict[str, str]) -> Rendered:
    """The message a kind's templates make of a notice's values (a missing value reads "-")."""
    k = KINDS[key]
    v = _Missing(values)
    body = k.body.format_map(v)
    return Rendered(k.title, body, {name: _fit(name, v[value]) for name, value in k.fields})


# -- quiet hours ---------------------------------------------------------------------------


def _hhmm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def quiet_until(quiet: tuple[str, str] | list[str] | None, now: datetime) -> datetime | None:
    """When the quiet hours that `now` falls in end (UTC), or None if `now` is not in quiet
    hours. quiet = ("HH:MM", "HH:MM") local (Asia/Shanghai): start inclusive, end exclusive;
    an end before the start spans midnight (22:00-07:00)."""
    if not quiet or not quiet[0] or not quiet[1]:
        return None
    start, end = _hhmm(quiet[0]), _hhmm(quiet[1])
    t = local(now)
    tod = t.time().replace(second=0, microsecond=0)
    inside = start <= tod < end if start < end else tod >= start or tod < end
    if not inside:
        return None
    day = t.date() if tod < end else t.date() + timedelta(days=1)
    return datetime.combine(day, end, LOCAL_TZ).astimezone(UTC)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the attempts-th failed attempt: 30 s doubling, at most 15 min."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


# -- ids and masking -----------------------------------------------------------------------


def delivery_id(dedupe: str, channel: str, to: str) -> str:
    """Deterministic per (event or repeat key, channel, recipient)."""
    return "d-" + hashlib.sha256(f"{dedupe}|{channel}|{to}".encode()).hexdigest()[:32]


def e164(phone: str) -> str:
    """A phone number as the SMS providers take it: a mainland mobile number gets +86."""
    digits = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    if len(digits) == 11 and digits.startswith("1"):
        return "+86" + digits
    if digits.startswith("86") and len(digits) == 13:
        return "+" + digits
    return digits


def mask(channel: str, to: str) -> str:
    """A recipient as the delivery log shows it."""
    if channel in (SMS, VOICE):
        digits = to.removeprefix("+86")
        return (to[: len(to) - len(digits)] + digits[:3] + "****" + digits[-4:]) if len(digits) >= 7 else "****"
    if channel == EMAIL:
        name, _, host = to.partition("@")
        return f"{name[:1]}***@{host}"
    return f"{to[:4]}…{to[-4:]}" if len(to) > 10 else "…"


@dataclass(frozen=True)
class Delivery:
    """One row of the delivery log."""

    delivery_id: str
    property_id: str
    account_id: str
    event_ref: str
    kind: str
    channel: str
    recipient: str  # masked
    status: str
    attempts: int = 0
    provider_id: str = ""
    detail: str = ""
    created_at: str = ""
    updated_at: str = ""
