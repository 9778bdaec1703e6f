"""A tenant's usage and cost by day, month and year, realtime values, and the balance
forecast (rules in core/domain/usage.py, items in core/store/usage.py).

Reads are designed for two DynamoDB requests per call with the access check and the
session check: the membership check (core.services.tenancy.require_member) is one
BatchGet that also reads the request's session item (views guarded by
`tenant_required(deferred=True)`, docs/tenant-auth.md), and the range is one Query of the
account's usage partition (day items for days, month items for months and years), never
a read per day or per meter. A meter's view reads its
account's items and keeps that meter's cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from core.domain import usage as rules
from core.domain.clock import Clock, utcnow
from core.domain.directory import Account, Meter
from core.domain.errors import NotFound, ValidationError
from core.domain.naming import id_problem
from core.services import tenancy
from core.store import directory as directory_store
from core.store import usage as usage_store


@dataclass(frozen=True)
class Report:
    granularity: str
    start: date
    end: date
    points: list[rules.Point]
    totals: rules.Point
    meter_id: str | None = None
    kind: str | None = None  # the meter's kind, for a meter's report


@dataclass(frozen=True)
class MeterNow:
    meter_id: str
    kind: str
    power_kw: Decimal | None
    read_at: str | None


@dataclass(frozen=True)
class Realtime:
    day: date
    meters: list[MeterNow]
    today: rules.Point


def _date(value: str | date | None, field: str) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad_date(field)
    except ValueError:
        return _bad_date(field)


def _bad_date(field: str):
    raise ValidationError("日期格式应为 YYYY-MM-DD（例如 2026-11-29）", code="date_invalid", field=field)


def _range(granularity: str, start: str | date | None, end: str | date | None, now: datetime) -> tuple[date, date]:
    try:
        return rules.check_range(granularity, _date(start, "start"), _date(end, "end"), rules.local_day(now))
    except rules.RangeError as e:
        raise ValidationError(str(e), code="usage_range_invalid") from None


def _report(account_id: str, granularity: str, start: date, end: date, meter_id: str | None = None,
            kind: str | None = None) -> Report:
    rows = usage_store.days(account_id, start, end) if granularity == "day" else usage_store.months(
        account_id, start, end)
    pts = rules.points(granularity, start, end, rows, meter_id)
    return Report(granularity, start, end, pts, rules.total(pts), meter_id, kind)


def _meter_of(openid: str, meter_id: object) -> Meter:
    """tenancy.meter_of without reading the account (a usage view needs only its id): the
    meter's GetItem and the membership check, 404 `meter_not_found` alike for a missing
    meter and another tenant's."""
    if not isinstance(meter_id, str) or id_problem(meter_id):
        raise NotFound(tenancy.METER_NOT_FOUND, code="meter_not_found")
    m = directory_store.get_meter(meter_id)
    if m is None or not m.account_id:
        raise NotFound(tenancy.METER_NOT_FOUND, code="meter_not_found")
    try:
        tenancy.require_member(openid, m.account_id)
    except NotFound:
        raise NotFound(tenancy.METER_NOT_FOUND, code="meter_not_found") from None
    return m


class UsageReads:
    """The tenant's usage reads on a clock (today, default ranges)."""

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    def account_usage(self, openid: str, account_id: str, granularity: str = "day", start: str | date | None = None,
                      end: str | date | None = None) -> Report:
        """An account's usage and cost per day / month / year of a range (every period, zero
        when nothing was used); 404 if the WeChat user is not bound to the account."""
        account_id = tenancy.require_member(openid, account_id)
        first, last = _range(granularity, start, end, self.clock())
        return _report(account_id, granularity, first, last)

    def meter_usage(self, openid: str, meter_id: str, granularity: str = "day", start: str | date | None = None,
                    end: str | date | None = None) -> Report:
        """One meter's usage and cost (from its account's items); 404 if the meter is not on
        an account the WeChat user is bound to."""
        meter = _meter_of(openid, meter_id)
        first, last = _range(granularity, start, end, self.clock())
        return _report(meter.account_id, granularity, first, last, meter.meter_id, rules.utility(meter.kind))

    def realtime(self, openid: str, account_id: str) -> Realtime:
        """Each meter's latest power and today's usage and cost. The readings carry no
        power register: a meter's power is the average over the interval its last stored
        reading closes (electricity, a billed reading), null when the meter is offline."""
        account_id = tenancy.require_member(openid, account_id)
        today = rules.local_day(self.clock())
        meters = [m for m in directory_store.meters_of_account(account_id) if not m.retired]
        row = usage_store.day(account_id, today)
        out = []
        for m in sorted(meters, key=lambda m: m.meter_id):
            r = m.last_reading
            power = Decimal(r.power_kw) if r is not None and r.power_kw and m.online else None
            out.append(MeterNow(m.meter_id, rules.utility(m.kind), power, r.read_at if r is not None else None))
        pts = rules.points("day", today, today, [row] if row is not None else [])
        return Realtime(today, out, pts[0])

    def forecast(self, account: Account) -> dict:
        return forecast(account, clock=self.clock)


def forecast(account: Account, *, clock: Clock = utcnow) -> dict:
    """"余额约可用 N 天" from the account item's own recent daily costs (no request):
    {"days": int | None, "daily_cost_fen": int, "text": str}."""
    return rules.forecast(account.balance, -account.overdraft_limit, dict(account.daily_costs),
                          rules.local_day(clock())).to_dict()
