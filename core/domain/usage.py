"""Usage aggregates: what one rated reading adds to its account's day and month, how the
aggregates read back as a tenant's points (day, month, year), and the balance forecast.

Pure rules (no I/O). The store (core/store/usage.py) keeps one item per (account, local
day) and one per (account, local month), each holding per-meter, per-band quantity and
cost, added in the same transaction that rates the reading (core/services/ingest.py).

- **Days are the property's local days** (Asia/Shanghai). A reading's usage counts on the
  local day of its read time (the end of its interval): the same day as its ledger entry's
  `occurred_at`, so a day's cost is exactly the sum of that day's metered entries. A
  reading whose interval spans midnight counts wholly on the later day.
- **Bands** are the rating's priced periods (sharp, peak, flat, valley, deep_valley).
  Quantities are exact decimals as the rating splits them; the reading's charge in fen is
  apportioned over its bands by their exact value (largest remainder), so the bands of a
  reading sum exactly to its ledger entry.
- A reading that bills less than a fen (the sub-fen part is carried to the next reading)
  still adds its quantity, with zero cost: the kWh are real; the fen follow later.
- **Forecast** ("余额约可用 N 天"): the account item keeps the costs of its last 8 local days
  (`roll_daily_costs`, planned on the exact state a posting is made against); the daily
  cost is the average over the days of the last 7 complete local days that have a cost
  (fewer days: their average; none: no forecast), and N = floor((balance - cut line) / it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from core.domain.tariff import PERIOD_NAMES, PERIODS, Charge

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
KINDS = ("electricity", "water")
UNITS = {"electricity": "kWh", "water": "m³"}
BANDS = PERIODS
BAND_NAMES = PERIOD_NAMES
RECENT_DAYS = 8  # days of cost kept on the account item: 7 complete days and today
FORECAST_DAYS = 7  # complete days the forecast averages over
MAX_DAYS = 92  # the longest range of daily points one request may ask for (one Query)
MAX_MONTHS = 36
MAX_YEARS = 10
GRANULARITIES = ("day", "month", "year")
POWER_QUANT = Decimal("0.001")


def utility(meter_kind: str) -> str:
    """A meter kind (electric_1p, electric_3p, water) as its utility: electricity or water."""
    return "water" if str(meter_kind) == "water" else "electricity"


def local_day(t: datetime) -> date:
    """The local day (Asia/Shanghai) of an aware time."""
    return t.astimezone(LOCAL_TZ).date()


def month_of(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


# --- what one reading adds ------------------------------------------------------------------


@dataclass(frozen=True)
class BandUsage:
    band: str
    quantity: Decimal
    fen: int


@dataclass(frozen=True)
class Usage:
    """One rated reading's usage, added to its account's day and month items."""

    account_id: str
    meter_id: str
    kind: str  # electricity | water
    day: date
    bands: tuple[BandUsage, ...]

    @property
    def month(self) -> str:
        return month_of(self.day)

    @property
    def fen(self) -> int:
        return sum(b.fen for b in self.bands)

    @property
    def quantity(self) -> Decimal:
        return sum((b.quantity for b in self.bands), Decimal(0))


def _apportion_fen(total: int, weights: list[Decimal]) -> list[int]:
    """Split `total` fen in proportion to weights (largest remainder): the parts sum to
    total exactly; ties go to the earlier weight."""
    if not weights:
        return []
    wsum = sum(weights)
    if wsum <= 0:
        weights, wsum = [Decimal(1)] * len(weights), Decimal(len(weights))
    exact = [Decimal(total) * w / wsum for w in weights]
    parts = [int(x.to_integral_value(rounding="ROUND_FLOOR")) for x in exact]
    short = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:short]:
        parts[i] += 1
    return parts


def band_split(charge: Charge) -> tuple[BandUsage, ...]:
    """A charge as quantity and fen per band, in band order.

    Quantity per band: the energy lines' quantities (the rating's split by period). Value
    per band: its energy amount plus its share, by quantity, of the lines that belong to no
    period (tier surcharges, extra components); the charge's fen are apportioned on that
    value, so the bands sum to the fen debited."""
    qty: dict[str, Decimal] = {}
    value: dict[str, Decimal] = {}
    other = Decimal(0)
    for line in charge.lines:
        if line.kind == "energy":
            band = line.period or "flat"
            qty[band] = qty.get(band, Decimal(0)) + line.quantity
            value[band] = value.get(band, Decimal(0)) + line.amount
        else:
            other += line.amount
    if not qty:  # nothing split by period (no lines): all on flat
        qty = {"flat": charge.quantity}
        value = {"flat": Decimal(0)}
    total_q = sum(qty.values())
    bands = [b for b in BANDS if b in qty] + sorted(b for b in qty if b not in BANDS)
    weights = [value[b] + (other * qty[b] / total_q if total_q else Decimal(0)) for b in bands]
    fens = _apportion_fen(charge.fen, weights)
    return tuple(BandUsage(b, qty[b], f) for b, f in zip(bands, fens, strict=True))


def average_power(quantity: Decimal, start: datetime | None, end: datetime) -> Decimal | None:
    """kW over [start, end] for `quantity` kWh (3 decimals); None without an interval. The
    readings carry no power register, so a meter's latest power is the average over the
    interval its last billed reading closes."""
    if start is None or end <= start:
        return None
    hours = Decimal(int((end - start).total_seconds() * 1_000_000)) / Decimal(3_600_000_000)
    return (quantity / hours).quantize(POWER_QUANT, rounding=ROUND_HALF_UP)


def usage_of(account_id: str, meter_id: str, meter_kind: str, charge: Charge, end: datetime) -> Usage:
    """The usage a reading ending at `end` (its read time) adds, rated as `charge`."""
    return Usage(account_id, meter_id, utility(meter_kind), local_day(end), band_split(charge))


# --- the account's recent daily costs (forecast) -------------------------------------------


def roll_daily_costs(costs: Mapping[str, int], day: date, fen: int, keep: int = RECENT_DAYS) -> dict[str, int]:
    """The recent daily costs after adding `fen` to `day` ("YYYY-MM-DD" -> fen): only the
    last `keep` days up to the newest day known are kept. A day older than that window is
    not recent and is left out (a late approval of an old anomaly)."""
    out = {k: int(v) for k, v in costs.items()}
    newest = max([day, *(date.fromisoformat(k) for k in out)])
    oldest = newest - timedelta(days=keep - 1)
    if day >= oldest and fen:
        key = day.isoformat()
        out[key] = out.get(key, 0) + fen
    return {k: v for k, v in sorted(out.items()) if date.fromisoformat(k) >= oldest}


@dataclass(frozen=True)
class Forecast:
    days: int | None
    daily_cost_fen: int
    text: str

    def to_dict(self) -> dict:
        return {"days": self.days, "daily_cost_fen": self.daily_cost_fen, "text": self.text}


NO_USAGE_TEXT = "暂无近期用量，无法估算可用天数"
EXHAUSTED_TEXT = "余额已不足 1 天用量，请尽快充值"


def forecast(balance: int, cut_line: int, daily_costs: Mapping[str, int], today: date) -> Forecast:
    """How many days the balance lasts at the recent daily cost.

    The daily cost is the average (fen, rounded half up) of the days among the last 7
    complete local days (today excluded: it is not over) that have a cost; with fewer such
    days, their average; with none, no forecast (days None). Days = floor((balance - cut
    line) / daily cost), 0 when the balance is at or below the cut-off line."""
    first = today - timedelta(days=FORECAST_DAYS)
    costs = [int(v) for k, v in daily_costs.items() if first <= date.fromisoformat(k) < today and int(v) > 0]
    if not costs:
        return Forecast(None, 0, NO_USAGE_TEXT)
    daily = int((Decimal(sum(costs)) / len(costs)).to_integral_value(rounding=ROUND_HALF_UP))
    daily = max(daily, 1)
    days = max(0, (balance - cut_line) // daily)
    return Forecast(days, daily, EXHAUSTED_TEXT if days == 0 else f"余额约可用 {days} 天")


# --- reading aggregates back ---------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One meter's quantity and cost in one band of one aggregate item."""

    kind: str
    meter_id: str
    band: str
    quantity: Decimal = Decimal(0)
    fen: int = 0


@dataclass(frozen=True)
class Row:
    """One aggregate item: its period ("2026-11-29" a day, "2026-11" a month) and its cells."""

    period: str
    cells: tuple[Cell, ...] = ()


@dataclass
class Point:
    period: str
    electricity_kwh: Decimal = Decimal(0)
    water_m3: Decimal = Decimal(0)
    cost_fen: int = 0
    bands: dict[tuple[str, str], list] = field(default_factory=dict)  # (kind, band) -> [quantity, fen]

    def add(self, c: Cell) -> None:
        if c.kind == "electricity":
            self.electricity_kwh += c.quantity
        elif c.kind == "water":
            self.water_m3 += c.quantity
        self.cost_fen += c.fen
        slot = self.bands.setdefault((c.kind, c.band), [Decimal(0), 0])
        slot[0] += c.quantity
        slot[1] += c.fen

    def merge(self, other: Point) -> None:
        self.electricity_kwh += other.electricity_kwh
        self.water_m3 += other.water_m3
        self.cost_fen += other.cost_fen
        for key, (q, f) in other.bands.items():
            slot = self.bands.setdefault(key, [Decimal(0), 0])
            slot[0] += q
            slot[1] += f

    def band_list(self) -> list[tuple[str, str, Decimal, int]]:
        """(kind, band, quantity, fen) in kind then band order."""
        def order(key: tuple[str, str]) -> tuple[int, int, str]:
            kind, band = key
            return (KINDS.index(kind) if kind in KINDS else 9, BANDS.index(band) if band in BANDS else 9, band)

        return [(k, b, q, f) for (k, b), (q, f) in sorted(self.bands.items(), key=lambda kv: order(kv[0]))]


def periods(granularity: str, start: date, end: date) -> list[str]:
    """Every period key from start to end inclusive."""
    if granularity == "day":
        return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    if granularity == "month":
        out, y, m = [], start.year, start.month
        while (y, m) <= (end.year, end.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out
    return [f"{y:04d}" for y in range(start.year, end.year + 1)]


def points(granularity: str, start: date, end: date, rows: Iterable[Row], meter_id: str | None = None) -> list[Point]:
    """The points of a range, every period present (zero when nothing was used), from day
    items (granularity day) or month items (month, year: a year sums its months); only
    `meter_id`'s cells when given."""
    out = {p: Point(p) for p in periods(granularity, start, end)}
    for row in rows:
        key = row.period[:4] if granularity == "year" else row.period
        point = out.get(key)
        if point is None:
            continue
        for c in row.cells:
            if meter_id is None or c.meter_id == meter_id:
                point.add(c)
    return list(out.values())


def total(pts: Iterable[Point]) -> Point:
    t = Point("")
    for p in pts:
        t.merge(p)
    return t


class RangeError(ValueError):
    """A range a tenant may not ask for; the message is for the tenant (Chinese)."""


def check_range(granularity: str, start: date | None, end: date | None, today: date) -> tuple[date, date]:
    """The range to read, defaults filled in: day -> the last 30 days, month -> the last 12
    months, year -> the last 5 years (each ending today); at most 92 days, 36 months or 10
    years, start not after end."""
    if granularity not in GRANULARITIES:
        raise RangeError("统计粒度只能是 day、month 或 year")
    try:
        if end is None:
            end = today if start is None else min(today, _default_end(granularity, start))
        if start is None:
            start = _default_start(granularity, end)
    except (OverflowError, ValueError):  # e.g. end=0001-01-05: its default start is before year 1
        raise RangeError("日期超出范围") from None
    if start > end:
        raise RangeError("开始日期不能晚于结束日期")
    if granularity == "day" and (end - start).days + 1 > MAX_DAYS:
        raise RangeError(f"按日统计一次最多查询 {MAX_DAYS} 天")
    if granularity == "month" and (end.year - start.year) * 12 + end.month - start.month + 1 > MAX_MONTHS:
        raise RangeError(f"按月统计一次最多查询 {MAX_MONTHS} 个月")
    if granularity == "year" and end.year - start.year + 1 > MAX_YEARS:
        raise RangeError(f"按年统计一次最多查询 {MAX_YEARS} 年")
    return start, end


def _default_start(granularity: str, end: date) -> date:
    if granularity == "day":
        return end - timedelta(days=29)
    if granularity == "month":
        y, m = (end.year, end.month - 11) if end.month > 11 else (end.year - 1, end.month + 1)
        return date(y, m, 1)
    return date(end.year - 4, 1, 1)


def _default_end(granularity: str, start: date) -> date:
    if granularity == "day":
        return start + timedelta(days=29)
    if granularity == "month":
        y, m = (start.year + 1, start.month - 1) if start.month > 1 else (start.year, 12)
        return date(y, m, 28)
    return date(start.year + 4, 12, 31)
