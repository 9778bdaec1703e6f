"""The audit log page's filters and its export rows (审计日志, docs/console.md "Audit log").

Filters come from a query string: `since` and `until` are days (YYYY-MM-DD, the
property's time zone; `until` inclusive) or ISO-8601 times with a zone (`until`
exclusive); the default is the last 7 days. `actor` (an admin's login), `action` (an
action name), `target` (a part of the target) narrow it; `scope` is "property" (the
property's actions) or "company" (logins and account changes of the company's admins).

A record's `amount` in its `after` (else `before`) — an integer number of fen — is the
export's 金额（元） column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.domain.action_log import ActionRecord, action_name
from core.domain.errors import ValidationError

DEFAULT_DAYS = 7
MAX_DAYS = 400  # core/services/action_log.py query()
MAX_FILTER = 100
SCOPES = ("property", "company")
ROLE_NAMES = {"owner": "所有者", "operator": "运营", "finance": "财务", "viewer": "只读", "system": "系统",
              "tenant": "租户（微信）"}

HEADERS = ("时间", "操作人", "登录名", "角色", "操作", "操作代码", "对象", "金额（元）", "变更前", "变更后", "IP 地址")


@dataclass(frozen=True)
class AuditFilter:
    since: datetime  # inclusive, with zone
    until: datetime  # exclusive, with zone
    since_text: str  # as the form shows them again
    until_text: str
    actor: str = ""
    action: str = ""
    target: str = ""
    scope: str = "property"

    def query_args(self) -> dict[str, str]:
        """The filters as a query string's fields (links to the next page, the exports)."""
        args = {"since": self.since_text, "until": self.until_text, "actor": self.actor, "action": self.action,
                "target": self.target, "scope": self.scope}
        return {k: v for k, v in args.items() if v and not (k == "scope" and v == "property")}


def _text(args: Mapping[str, str], name: str, label: str) -> str:
    value = (args.get(name) or "").strip()
    if len(value) > MAX_FILTER:
        raise ValidationError(f"{label}不能超过 {MAX_FILTER} 个字符", code="filter_invalid", field=name)
    if any(ord(ch) < 32 for ch in value):
        raise ValidationError(f"{label}含有无效字符", code="filter_invalid", field=name)
    return value


def _moment(value: str, name: str, label: str, tz: ZoneInfo, end: bool) -> datetime:
    """A day (its start; `end`: the next day's start) or a time with a zone."""
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{label}日期无效，应为 YYYY-MM-DD", code="time_invalid", field=name) from None
        return datetime.combine(day + timedelta(days=1 if end else 0), time(), tz)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{label}无效，应为 YYYY-MM-DD 或带时区的时间", code="time_invalid", field=name) from None
    if t.tzinfo is None:
        raise ValidationError(f"{label}必须带时区，例如 2026-05-01T08:00:00+08:00", code="time_invalid", field=name)
    return t


def parse_filter(args: Mapping[str, str], now: datetime, tz: ZoneInfo) -> AuditFilter:
    """The filters of a request (400 with a Chinese message for a bad one)."""
    today = now.astimezone(tz).date()
    since_text = _text(args, "since", "开始日期") or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
    until_text = _text(args, "until", "结束日期") or today.isoformat()
    since = _moment(since_text, "since", "开始日期", tz, end=False)
    until = _moment(until_text, "until", "结束日期", tz, end=True)
    if since >= until:
        raise ValidationError("开始日期必须早于结束日期", code="range_invalid", field="since")
    if until - since > timedelta(days=MAX_DAYS):
        raise ValidationError(f"查询范围不能超过 {MAX_DAYS} 天", code="range_invalid", field="since")
    scope = _text(args, "scope", "范围") or "property"
    if scope not in SCOPES:
        raise ValidationError("范围只能是 property（本物业）或 company（公司账号）", code="filter_invalid", field="scope")
    return AuditFilter(since, until, since_text, until_text, actor=_text(args, "actor", "操作人"),
                       action=_text(args, "action", "操作类型"), target=_text(args, "target", "对象"), scope=scope)


def amount_fen(r: ActionRecord) -> int | None:
    """The money a record moved (fen): `amount` of its after, else of its before."""
    for side in (r.after, r.before):
        if side and isinstance(side.get("amount"), int) and not isinstance(side.get("amount"), bool):
            return side["amount"]
    return None


def amount_yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else Decimal(fen) / 100


def value_text(value: dict | None) -> str:
    return "" if not value else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def cell_text(value: str) -> str:
    """Text a spreadsheet must not run as a formula (=, +, -, @ first): quoted with '."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def row(r: ActionRecord, tz: ZoneInfo) -> tuple:
    """One export row, in HEADERS' order: the local time (naive, for a spreadsheet), the
    amount as Decimal yuan (None when the record moved no money), texts never formulas."""
    return (
        r.at.astimezone(tz).replace(tzinfo=None, microsecond=0), cell_text(r.actor_name), cell_text(r.actor_id),
        ROLE_NAMES.get(r.role, r.role), cell_text(action_name(r.action)), cell_text(r.action), cell_text(r.target),
        amount_yuan(amount_fen(r)), value_text(r.before), value_text(r.after), cell_text(r.ip),
    )
