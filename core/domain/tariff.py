"""Tariff plans and the rating of a metered quantity over a time interval.

A plan is a JSON document (docs/tariffs.md): versions with an effective time, each with
period prices (flat, or sharp/peak/flat/valley/deep_valley on daily schedules chosen by
season and day type), optional tiers on usage cumulated per month or year with a
surcharge per band, and optional extra per-unit components (e.g. sewage treatment).

Rating is exact: quantities and prices are Decimals, the charge of an interval is an
exact yuan amount, and the sub-fen remainder is carried per meter (RatingCarry), so the
charges of any split of a period sum to the charge of the period rated at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.domain.calendar import DAY_TYPES, day_type
from core.domain.errors import ValidationError

PERIODS = ("sharp", "peak", "flat", "valley", "deep_valley")
PERIOD_NAMES = {"sharp": "尖", "peak": "峰", "flat": "平", "valley": "谷", "deep_valley": "深谷"}
UTILITIES = {"electricity": "kWh", "water": "m3"}
CYCLES = ("month", "year")
_PRICE_RE = re.compile(r"^\d{1,4}(\.\d{1,4})?$")
_TIME_RE = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_QUANT = Decimal("0.000000001")  # allocation resolution of quantities split by time
MINUTES_PER_DAY = 1440


def _fail(msg: str, where: str) -> ValidationError:
    return ValidationError(f"电价方案无效：{where}：{msg}", code="tariff_invalid", field=where)


def parse_price(value: object, where: str) -> Decimal:
    """A price in yuan per unit: at most 4 decimals, given as a string (never a float)."""
    if not isinstance(value, str) or not _PRICE_RE.match(value):
        raise _fail("价格必须是最多 4 位小数的字符串，例如 \"0.5283\"", where)
    return Decimal(value)


def parse_quantity(value: object, where: str) -> Decimal:
    try:
        q = Decimal(str(value))
    except InvalidOperation:
        raise _fail("数量无效", where) from None
    if not q.is_finite() or q <= 0 or isinstance(value, float):
        raise _fail("数量必须是正数（字符串）", where)
    return q


def _minutes(text: object, where: str) -> int:
    m = _TIME_RE.match(text) if isinstance(text, str) else None
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise _fail("时间格式应为 HH:MM", where)
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True)
class Schedule:
    months: frozenset[int]
    day_types: frozenset[str]
    # (start_minute, end_minute, period) with start < end, covering [0, 1440) exactly
    spans: tuple[tuple[int, int, str], ...]

    def period_at(self, minute: int) -> str:
        for start, end, period in self.spans:
            if start <= minute < end:
                return period
        raise AssertionError("schedule does not cover the day")  # validated at parse

    def boundaries(self) -> list[int]:
        return sorted({s for s, _, _ in self.spans} - {0})


@dataclass(frozen=True)
class Band:
    up_to: Decimal | None  # cumulative usage at which the band ends; None = no end
    surcharge: Decimal


@dataclass(frozen=True)
class Component:
    code: str
    name: str
    price: Decimal


@dataclass(frozen=True)
class PlanVersion:
    effective_from: datetime  # UTC
    prices: dict[str, Decimal]
    schedules: tuple[Schedule, ...]
    tier_cycle: str | None
    bands: tuple[Band, ...]
    components: tuple[Component, ...]
    raw: dict = field(compare=False, repr=False, default_factory=dict)

    def schedule_for(self, d: date) -> Schedule | None:
        if not self.schedules:
            return None
        dt = day_type(d)
        for s in self.schedules:
            if d.month in s.months and dt in s.day_types:
                return s
        raise AssertionError("no schedule for a day")  # coverage validated at parse

    def period_at(self, local: datetime) -> str:
        s = self.schedule_for(local.date())
        if s is None:
            return next(iter(self.prices))
        return s.period_at(local.hour * 60 + local.minute)

    def price_of(self, period: str) -> tuple[str, Decimal]:
        """The priced period for a register period: itself, else flat, else the only price."""
        if period in self.prices:
            return period, self.prices[period]
        if "flat" in self.prices:
            return "flat", self.prices["flat"]
        if len(self.prices) == 1:
            return next(iter(self.prices.items()))
        raise ValidationError(f"电价方案没有时段 {period} 的价格", code="tariff_period_unpriced")


@dataclass(frozen=True)
class Plan:
    plan_id: str
    name: str
    utility: str
    unit: str
    timezone: str
    versions: tuple[PlanVersion, ...]  # sorted by effective_from
    raw: dict = field(compare=False, repr=False, default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def version_at(self, t: datetime) -> PlanVersion | None:
        current = None
        for v in self.versions:
            if v.effective_from <= t:
                current = v
        return current

    def to_json(self) -> dict:
        return self.raw


# --- parsing ------------------------------------------------------------------------------


def parse_plan(doc: object) -> Plan:
    """Validate a plan document; every error names the field at fault."""
    if not isinstance(doc, dict):
        raise _fail("必须是 JSON 对象", "plan")
    plan_id = doc.get("plan_id")
    if not isinstance(plan_id, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$", plan_id):
        raise _fail("plan_id 只能包含字母、数字和 _.-", "plan_id")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail("名称不能为空", "name")
    utility = doc.get("utility")
    if utility not in UTILITIES:
        raise _fail("utility 必须是 electricity 或 water", "utility")
    tz_name = doc.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise _fail("未知时区", "timezone") from None
    raw_versions = doc.get("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        raise _fail("至少需要一个版本", "versions")
    versions = [_parse_version(v, f"versions[{i}]", tz_name) for i, v in enumerate(raw_versions)]
    versions.sort(key=lambda v: v.effective_from)
    if len({v.effective_from for v in versions}) != len(versions):
        raise _fail("两个版本的生效时间相同", "versions")
    return Plan(plan_id, name.strip(), utility, UTILITIES[utility], tz_name, tuple(versions), raw=doc)


def _parse_version(v: object, where: str, tz_name: str) -> PlanVersion:
    if not isinstance(v, dict):
        raise _fail("必须是对象", where)
    eff = v.get("effective_from")
    try:
        t = datetime.fromisoformat(str(eff).replace("Z", "+00:00"))
    except ValueError:
        raise _fail("生效时间格式无效（ISO 8601，带时区）", f"{where}.effective_from") from None
    if t.tzinfo is None:
        raise _fail("生效时间必须带时区", f"{where}.effective_from")
    prices_raw = v.get("prices")
    if not isinstance(prices_raw, dict) or not prices_raw:
        raise _fail("至少需要一个时段价格", f"{where}.prices")
    prices = {}
    for period, price in prices_raw.items():
        if period not in PERIODS:
            raise _fail(f"未知时段 {period}（可用：{', '.join(PERIODS)}）", f"{where}.prices")
        prices[period] = parse_price(price, f"{where}.prices.{period}")
    schedules = tuple(
        _parse_schedule(s, f"{where}.schedules[{i}]", prices) for i, s in enumerate(v.get("schedules") or [])
    )
    if len(prices) > 1:
        if not schedules:
            raise _fail("多时段电价需要时段表 schedules", f"{where}.schedules")
        for month in range(1, 13):
            for dt in DAY_TYPES:
                if not any(month in s.months and dt in s.day_types for s in schedules):
                    raise _fail(f"{month} 月的 {dt} 没有适用的时段表", f"{where}.schedules")
    elif schedules:
        raise _fail("单一电价不需要时段表", f"{where}.schedules")
    tier_cycle, bands = None, ()
    tiers = v.get("tiers")
    if tiers is not None:
        tier_cycle, bands = _parse_tiers(tiers, f"{where}.tiers")
    components = []
    for i, c in enumerate(v.get("components") or []):
        cw = f"{where}.components[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("code"), str) or not isinstance(c.get("name"), str):
            raise _fail("需要 code、name 和 price", cw)
        components.append(Component(c["code"], c["name"], parse_price(c.get("price"), f"{cw}.price")))
    if len({c.code for c in components}) != len(components):
        raise _fail("附加费代码重复", f"{where}.components")
    return PlanVersion(
        effective_from=t.astimezone(UTC),
        prices=prices,
        schedules=schedules,
        tier_cycle=tier_cycle,
        bands=bands,
        components=tuple(components),
        raw=v,
    )


def _parse_schedule(s: object, where: str, prices: dict) -> Schedule:
    if not isinstance(s, dict):
        raise _fail("必须是对象", where)
    months = s.get("months", list(range(1, 13)))
    if not isinstance(months, list) or not months or any(
        isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12 for m in months
    ):
        raise _fail("months 必须是 1–12 的整数列表", f"{where}.months")
    day_types = s.get("day_types", list(DAY_TYPES))
    if not isinstance(day_types, list) or not day_types or any(d not in DAY_TYPES for d in day_types):
        raise _fail(f"day_types 只能是 {', '.join(DAY_TYPES)}", f"{where}.day_types")
    spans: list[tuple[int, int, str]] = []
    for i, iv in enumerate(s.get("intervals") or []):
        iw = f"{where}.intervals[{i}]"
        if not isinstance(iv, dict):
            raise _fail("必须是对象", iw)
        start, end = _minutes(iv.get("start"), f"{iw}.start"), _minutes(iv.get("end"), f"{iw}.end")
        period = iv.get("period")
        if period not in prices:
            raise _fail(f"时段 {period} 没有价格", f"{iw}.period")
        if start == end:
            raise _fail("起止时间相同", iw)
        if start < end:
            spans.append((start, end, period))
        else:  # crosses midnight
            spans.append((start, MINUTES_PER_DAY, period))
            if end > 0:
                spans.append((0, end, period))
    spans.sort()
    pos = 0
    for start, end, _ in spans:
        if start != pos:
            raise _fail(f"时段表在 {pos // 60:02d}:{pos % 60:02d} 处有空缺或重叠", where)
        pos = end
    if pos != MINUTES_PER_DAY:
        raise _fail("时段表必须覆盖全天 24 小时", where)
    return Schedule(frozenset(months), frozenset(day_types), tuple(spans))


def _parse_tiers(tiers: object, where: str) -> tuple[str, tuple[Band, ...]]:
    if not isinstance(tiers, dict) or tiers.get("cycle") not in CYCLES:
        raise _fail("cycle 必须是 month 或 year", f"{where}.cycle")
    raw_bands = tiers.get("bands")
    if not isinstance(raw_bands, list) or len(raw_bands) < 2:
        raise _fail("阶梯至少需要两档", f"{where}.bands")
    bands = []
    last = Decimal(0)
    for i, b in enumerate(raw_bands):
        bw = f"{where}.bands[{i}]"
        if not isinstance(b, dict):
            raise _fail("必须是对象", bw)
        up_to = b.get("up_to")
        if i == len(raw_bands) - 1:
            if up_to is not None:
                raise _fail("最后一档的 up_to 必须为 null", bw)
            limit = None
        else:
            limit = parse_quantity(up_to, f"{bw}.up_to")
            if limit <= last:
                raise _fail("各档上限必须递增", bw)
            last = limit
        bands.append(Band(limit, parse_price(b.get("surcharge", "0"), f"{bw}.surcharge")))
    return tiers["cycle"], tuple(bands)


# --- rating -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingCarry:
    """What rating remembers per meter between readings."""

    remainder_fen: Decimal = Decimal(0)  # sub-fen part not yet charged, 0 <= r < 1
    cycle: str = ""  # tier cycle key ("2026-11" or "2026")
    cycle_usage: Decimal = Decimal(0)  # usage so far in that cycle


@dataclass(frozen=True)
class ChargeLine:
    kind: str  # "energy" | "tier" | "component"
    label: str  # shown to admins and tenants
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # exact yuan
    period: str = ""
    tier: int = 0
    component: str = ""
    version: str = ""  # effective_from of the plan version used

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "label": self.label,
            "quantity": format(self.quantity.normalize(), "f"),  # "10", never "1E+1"
            "unit_price": str(self.unit_price),
            "amount": format(self.amount.normalize(), "f"),
            "period": self.period,
            "tier": self.tier,
            "component": self.component,
            "version": self.version,
        }


@dataclass(frozen=True)
class Charge:
    lines: tuple[ChargeLine, ...]
    exact_yuan: Decimal
    fen: int  # what is debited now
    carry: RatingCarry  # to remember for the next reading
    quantity: Decimal


@dataclass(frozen=True)
class _Segment:
    start: datetime
    end: datetime
    version: PlanVersion
    period: str
    cycle: str

    @property
    def seconds(self) -> Decimal:
        return Decimal(int((self.end - self.start).total_seconds() * 1_000_000)) / 1_000_000


def _cycle_key(local: datetime, cycle: str | None) -> str:
    if cycle == "year":
        return f"{local.year:04d}"
    if cycle == "month":
        return f"{local.year:04d}-{local.month:02d}"
    return ""


def cycle_at(plan: Plan, end: datetime) -> str:
    """The tier cycle key of the usage just before `end` ("" when untiered)."""
    t = end.astimezone(UTC) - timedelta(microseconds=1)
    v = plan.version_at(t)
    return _cycle_key(t.astimezone(plan.tz), v.tier_cycle) if v is not None and v.bands else ""


def _segments(plan: Plan, start: datetime, end: datetime) -> list[_Segment]:
    tz = plan.tz
    cuts = {start, end}
    for v in plan.versions:
        if start < v.effective_from < end:
            cuts.add(v.effective_from)
    day = start.astimezone(tz).date()
    last_day = end.astimezone(tz).date()
    while day <= last_day:
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        for minute in [0, *_day_boundaries(plan, day)]:
            t = (midnight + timedelta(minutes=minute)).astimezone(UTC)
            if start < t < end:
                cuts.add(t)
        day += timedelta(days=1)
    points = sorted(cuts)
    segs = []
    for a, b in zip(points, points[1:], strict=False):
        v = plan.version_at(a)
        if v is None:
            raise ValidationError("读数时间早于电价方案的生效时间", code="tariff_not_effective")
        local = a.astimezone(tz)
        segs.append(_Segment(a, b, v, v.period_at(local), _cycle_key(local, v.tier_cycle)))
    return segs


def _day_boundaries(plan: Plan, day: date) -> list[int]:
    out: set[int] = set()
    for v in plan.versions:
        s = v.schedule_for(day)
        if s is not None:
            out.update(s.boundaries())
    return sorted(out)


def _apportion(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split total in proportion to weights; the parts sum to total exactly."""
    if not weights:
        return []
    wsum = sum(weights)
    if wsum == 0:
        weights, wsum = [Decimal(1)] * len(weights), Decimal(len(weights))
    with localcontext() as ctx:
        ctx.prec = 50
        parts = [(total * w / wsum).quantize(_QUANT) for w in weights[:-1]]
    parts.append(total - sum(parts))
    return parts


def rate(
    plan: Plan,
    start: datetime,
    end: datetime,
    quantity: Decimal,
    carry: RatingCarry = RatingCarry(),
    by_period: dict[str, Decimal] | None = None,
) -> Charge:
    """Rate `quantity` used between start and end (aware datetimes).

    by_period: usage per TOU register where the meter reports them; otherwise the
    quantity is spread over the interval in proportion to time and priced by the
    schedule. Tiers apply to usage in time order; the carry's remainder is added.
    """
    if end <= start:
        raise ValidationError("读数区间无效", code="interval_invalid")
    segs = _segments(plan, start.astimezone(UTC), end.astimezone(UTC))
    # quantity per segment and period
    alloc: list[tuple[_Segment, str, Decimal]] = []
    if by_period:
        for period, q in sorted(by_period.items()):
            if q == 0:
                continue
            own = [s for s in segs if s.period == period]
            pool = own or segs
            for s, part in zip(pool, _apportion(q, [s.seconds for s in pool]), strict=True):
                alloc.append((s, period, part))
    else:
        for s, part in zip(segs, _apportion(quantity, [s.seconds for s in segs]), strict=True):
            alloc.append((s, s.period, part))
    lines: dict[tuple, list] = {}

    def add(key: tuple, kind: str, label: str, q: Decimal, price: Decimal, **kw) -> None:
        if key in lines:
            lines[key][3] += q
        else:
            lines[key] = [kind, label, price, q, kw]

    for s, period, q in alloc:
        priced, price = s.version.price_of(period)
        label = f"{PERIOD_NAMES[priced]}时段" if len(s.version.prices) > 1 else "电量" if plan.utility == "electricity" else "水量"
        add(("energy", s.version.effective_from, priced), "energy", label, q, price, period=priced)
        for c in s.version.components:
            add(("component", s.version.effective_from, c.code), "component", c.name, q, c.price, component=c.code)
    # tiers, in time order of segments
    per_seg: dict[int, Decimal] = {}
    for s, _, q in alloc:
        per_seg[id(s)] = per_seg.get(id(s), Decimal(0)) + q
    cycle, used = carry.cycle, carry.cycle_usage
    for s in segs:  # time order
        q = per_seg.get(id(s), Decimal(0))
        if not s.version.bands or q == 0:
            continue
        if s.cycle != cycle:
            cycle, used = s.cycle, Decimal(0)
        lower = Decimal(0)
        for i, band in enumerate(s.version.bands):
            upper = band.up_to
            lo = max(used, lower)
            hi = used + q if upper is None else min(used + q, upper)
            if hi > lo:
                add(("tier", s.version.effective_from, i), "tier", f"第{i + 1}档加价", hi - lo, band.surcharge, tier=i + 1)
            if upper is not None:
                lower = upper
        used += q
    out = []
    exact = Decimal(0)
    for (kind, eff, _), (_, label, price, q, kw) in lines.items():
        amount = q * price
        exact += amount
        out.append(ChargeLine(kind, label, q, price, amount, version=eff.isoformat(), **kw))
    total_fen = carry.remainder_fen + exact * 100
    fen = int(total_fen.to_integral_value(rounding=ROUND_FLOOR))
    return Charge(
        lines=tuple(out),
        exact_yuan=exact,
        fen=fen,
        carry=RatingCarry(total_fen - fen, cycle, used),
        quantity=quantity if not by_period else sum(by_period.values(), Decimal(0)),
    )
