"""The tenant API's usage views (/api/v1): usage and cost by day, month and year with the
time-of-use split, for an account or one of its meters, and realtime values
(docs/tenant-api.md "Usage"; rules in core/domain/usage.py, reads in core/services/usage.py).

Ids are resolved through core.services.tenancy (in the service), so another tenant's
account or meter is a 404 exactly like a missing one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

from flask import Blueprint, current_app, g, request
from pydantic import Field
from spectree import Response

from core.domain.money import yuan
from miniprogram_api.tenant import tenant_required
from miniprogram_api.tenant_spec import ApiModel, ErrorBody, spec

bp = Blueprint("tenant_usage", __name__, url_prefix="/api/v1")

TAGS = ["用量"]
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class UsageQuery(ApiModel):
    granularity: Literal["day", "month", "year"] = Field(
        "day", description="day（按日）、month（按月）或 year（按年）")
    start: str | None = Field(None, pattern=DATE_PATTERN, description="开始日期 YYYY-MM-DD（本地日期，含）")
    end: str | None = Field(None, pattern=DATE_PATTERN, description="结束日期 YYYY-MM-DD（含）；默认今天")

    error_codes: ClassVar[dict[str, tuple[str, str]]] = {
        "granularity": ("granularity_invalid", "统计粒度只能是 day、month 或 year"),
        "start": ("date_invalid", "日期格式应为 YYYY-MM-DD（例如 2026-11-29）"),
        "end": ("date_invalid", "日期格式应为 YYYY-MM-DD（例如 2026-11-29）"),
    }


class UsageBand(ApiModel):
    kind: Literal["electricity", "water"] = Field(description="electricity（电）或 water（水）")
    band: str = Field(description="时段：sharp 尖、peak 峰、flat 平、valley 谷、deep_valley 深谷")
    band_text: str
    quantity: str = Field(description="用量（精确小数：kWh 或 m³）")
    unit: str = Field(description="kWh 或 m³")
    cost_fen: int
    cost: str = Field(description="金额（元）")


class UsageTotals(ApiModel):
    electricity_kwh: str = Field(description="用电量 kWh（精确小数）")
    water_m3: str = Field(description="用水量 m³（精确小数）")
    cost_fen: int
    cost: str = Field(description="金额（元）")
    bands: list[UsageBand]


class UsagePoint(UsageTotals):
    period: str = Field(description="2026-11-29（日）、2026-11（月）或 2026（年）")


class UsageReport(ApiModel):
    granularity: Literal["day", "month", "year"]
    start: str
    end: str
    meter_id: str | None = None
    kind: Literal["electricity", "water"] | None = None
    points: list[UsagePoint]
    totals: UsageTotals


class RealtimeMeter(ApiModel):
    meter_id: str
    kind: Literal["electricity", "water"]
    power_kw: str | None = Field(description="最近一个抄表间隔的平均功率 kW（表计读数不含功率寄存器）；离线或今日无读数时为 null")
    read_at: str | None = Field(description="该数值对应的抄表时间")


class RealtimeToday(ApiModel):
    date: str = Field(description="本地日期（北京时间）")
    electricity_kwh: str
    water_m3: str
    cost_fen: int
    cost: str


class RealtimeValues(ApiModel):
    meters: list[RealtimeMeter]
    today: RealtimeToday


def reads():
    """The usage reads (core.services.usage.UsageReads), made on first use; a test may place
    its own (on its clock) in app.extensions["feikong.usage"] before the first request."""
    found = current_app.extensions.get("feikong.usage")
    if found is None:
        from core.services.usage import UsageReads

        found = current_app.extensions.setdefault("feikong.usage", UsageReads())
    return found


def _q(value: Decimal) -> str:
    """An exact decimal without trailing zeros or an exponent: 1.500 -> "1.5", 10 -> "10"."""
    return format(value.normalize(), "f") if value else "0"


UNITS = {"electricity": "kWh", "water": "m³"}


def _totals(p) -> dict:
    from core.domain.usage import BAND_NAMES

    return {
        "electricity_kwh": _q(p.electricity_kwh), "water_m3": _q(p.water_m3),
        "cost_fen": p.cost_fen, "cost": yuan(p.cost_fen),
        "bands": [{"kind": kind, "band": band, "band_text": BAND_NAMES.get(band, band), "quantity": _q(q),
                   "unit": UNITS.get(kind, ""), "cost_fen": fen, "cost": yuan(fen)}
                  for kind, band, q, fen in p.band_list()],
    }


def _report(r) -> UsageReport:
    return UsageReport.model_validate({
        "granularity": r.granularity, "start": r.start.isoformat(), "end": r.end.isoformat(),
        "meter_id": r.meter_id, "kind": r.kind,
        "points": [{"period": p.period, **_totals(p)} for p in r.points],
        "totals": _totals(r.totals),
    })


@bp.get("/accounts/<account_id>/usage")
@tenant_required(deferred=True)
@spec.validate(query=UsageQuery, resp=Response(HTTP_200=UsageReport, HTTP_404=ErrorBody), tags=TAGS)
def account_usage(account_id: str):
    """An account's usage and cost by day, month or year, with the time-of-use split.

    Ranges: at most 92 days, 36 months or 10 years; defaults: the last 30 days, 12 months
    or 5 years up to today. Every period of the range is present (zero when nothing was used)."""
    q: UsageQuery = request.context.query
    return _report(reads().account_usage(g.openid, account_id, q.granularity, q.start, q.end))


@bp.get("/meters/<meter_id>/usage")
@tenant_required(deferred=True)
@spec.validate(query=UsageQuery, resp=Response(HTTP_200=UsageReport, HTTP_404=ErrorBody), tags=TAGS)
def meter_usage(meter_id: str):
    """One meter's usage and cost by day, month or year (same ranges as the account's)."""
    q: UsageQuery = request.context.query
    return _report(reads().meter_usage(g.openid, meter_id, q.granularity, q.start, q.end))


@bp.get("/accounts/<account_id>/realtime")
@tenant_required(deferred=True)
@spec.validate(resp=Response(HTTP_200=RealtimeValues, HTTP_404=ErrorBody), tags=TAGS)
def realtime(account_id: str):
    """Each meter's latest power and today's usage and cost."""
    now = reads().realtime(g.openid, account_id)
    t = _totals(now.today)
    return RealtimeValues.model_validate({
        "meters": [{"meter_id": m.meter_id, "kind": m.kind,
                    "power_kw": _q(m.power_kw) if m.power_kw is not None else None, "read_at": m.read_at}
                   for m in now.meters],
        "today": {"date": now.day.isoformat(), **{k: t[k] for k in ("electricity_kwh", "water_m3", "cost_fen", "cost")}},
    })
