"""Post-paid period bills (后付费, docs/billing.md "Post-paid mode, bills, late fees, deposits"):
what a period's run bills from the monthly usage aggregates. Pure; core/services/postpaid.py
reads the aggregates and the billings made so far and writes what this plans.

- A usage month M's metered cost is its aggregate (core/store/usage.py, added in each
  reading's own transaction, so exact to the fen), per utility: electricity -> a Charge of
  source "energy" (电费), water -> "water" (水费).
- **Billings are numbered per (utility, usage month)**: billing n of month M moves `amount`
  fen from the ledger to a bill. Its ledger entry id is `tobill:<source>:<M>.<n>` (an
  ADJUST_CREDIT "转入账单"), its charge (the bill line) `<source>:<M>.<n>:<bill period>`.
  Σ amounts of M's billings = what of M has been billed. Two runs planning the same n
  collide on the entry id (one wins, the other re-reads), so nothing is billed twice.
- The run for period P bills, per utility, month P's cost on P's bill (billing 1, once: a
  rerun of P never grows P's bill), and for each of the LOOKBACK months before P that were
  billed before (billing 1 exists), what their aggregate grew by since (a reading of the
  month's last day delivered after month end, an anomaly approved late) as a further
  billing on **P's** bill (补计). A month never billed before P (the account was prepaid
  then) is left alone. Usage that arrives later still stays owed in the ledger balance
  (a post-paid account's balance = its unbilled usage) and is settled at move-out.
- Only a closed month is billed: P ends at its last local midnight (Asia/Shanghai).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from core.domain.charges import Charge
from core.domain.errors import Conflict, ValidationError
from core.domain.money import yuan

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
LOOKBACK = 2  # earlier months a run looks at for late usage
SOURCES = {"electricity": "energy", "water": "water"}  # usage kind -> Charge source (and ledger kind)
NAMES = {"energy": "电费", "water": "水费"}
UNITS = {"energy": "kWh", "water": "m³"}
ENTRY_PREFIX = "tobill"


def parse_period(value: object) -> date:
    """'YYYY-MM' -> its first day; anything else is a 400."""
    if isinstance(value, str) and len(value) == 7 and value[4] == "-" and value[:4].isdigit() and value[5:].isdigit():
        try:
            return date(int(value[:4]), int(value[5:]), 1)
        except ValueError:
            pass
    raise ValidationError("账期格式应为 YYYY-MM", code="period_invalid", field="period")


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def add_months(first: date, n: int) -> date:
    y, m = divmod(first.year * 12 + first.month - 1 + n, 12)
    return date(y, m + 1, 1)


def period_end(period: str) -> datetime:
    """The first local instant after the period (its month) ends."""
    nxt = add_months(parse_period(period), 1)
    return datetime(nxt.year, nxt.month, 1, tzinfo=LOCAL_TZ)


def require_closed(period: str, now: datetime, settle: timedelta = timedelta(0)) -> None:
    """Refuse a month that has not ended (plus `settle`) yet: its usage is still coming."""
    if now < period_end(period) + settle:
        raise Conflict(f"{period} 账期尚未结束，不能出后付费账单", code="period_open")


def entry_id(source: str, month: str, n: int) -> str:
    return f"{ENTRY_PREFIX}:{source}:{month}.{n}"


def parse_entry_id(entry_id: str) -> tuple[str, str, int] | None:
    """(source, month, n) of a billing's entry id; None for any other id."""
    prefix, _, rest = entry_id.partition(":")
    source, _, tail = rest.partition(":")
    month, _, n = tail.rpartition(".")
    if prefix != ENTRY_PREFIX or source not in NAMES or len(month) != 7 or not n.isdigit():
        return None
    return source, month, int(n)


@dataclass(frozen=True)
class MonthUsage:
    """One usage month of one utility: its aggregate cost (fen) and quantity."""

    source: str  # energy | water
    month: str
    fen: int
    quantity: Decimal


def month_usage(month: str, cells: Iterable[tuple[str, Decimal, int]]) -> dict[str, MonthUsage]:
    """A month aggregate's cells (usage kind, quantity, fen) summed per utility."""
    out: dict[str, MonthUsage] = {}
    for kind, quantity, fen in cells:
        source = SOURCES.get(kind)
        if source is None:
            continue
        u = out.get(source) or MonthUsage(source, month, 0, Decimal(0))
        out[source] = MonthUsage(source, month, u.fen + int(fen), u.quantity + Decimal(quantity))
    return out


@dataclass(frozen=True)
class Billed:
    """What of a (utility, usage month) has been billed: `count` billings, `amount` fen."""

    count: int = 0
    amount: int = 0


@dataclass(frozen=True)
class Billing:
    """One billing to make: n-th of its usage month, `amount` fen, on the bill of `period`."""

    usage: MonthUsage
    n: int
    amount: int
    billed_before: int
    period: str

    @property
    def entry_id(self) -> str:
        return entry_id(self.usage.source, self.usage.month, self.n)

    @property
    def late(self) -> bool:
        return self.usage.month != self.period

    def charge(self, account_id: str, property_id: str) -> Charge:
        u, name = self.usage, NAMES[self.usage.source]
        unit = UNITS[u.source]
        if self.late:
            formula = (f"{u.month} 迟到抄表补计：当月{name}累计 {yuan(u.fen)} 元，已出账 {yuan(self.billed_before)} 元，"
                       f"本次 {yuan(self.amount)} 元")
            title = f"{name}补计（{u.month}）"
        else:
            qty = format(u.quantity.normalize(), "f") if u.quantity else "0"
            formula = f"{u.month} 用量 {qty} {unit}，按电价方案计费合计 {yuan(self.amount)} 元"
            if self.billed_before:
                formula = (f"{u.month} {name}累计 {yuan(u.fen)} 元，已出账 {yuan(self.billed_before)} 元，"
                           f"本次 {yuan(self.amount)} 元")
            title = name
        return Charge(account_id=account_id, property_id=property_id, period=self.period, source=u.source,
                      source_id=f"{u.month}.{self.n}", amount=self.amount, name=title, formula=formula,
                      inputs={"usage_month": u.month, "billing": self.n, "month_fen": u.fen,
                              "quantity": str(u.quantity), "billed_before": self.billed_before},
                      mode="bill")


def plan(period: str, usage: Mapping[str, Mapping[str, MonthUsage]],
         billed: Mapping[tuple[str, str], Billed]) -> list[Billing]:
    """The billings the run for `period` makes. `usage`: month -> source -> its aggregate
    (months P-LOOKBACK..P); `billed`: (source, month) -> what was billed of it so far."""
    first = parse_period(period)
    out = []
    for k in range(LOOKBACK, -1, -1):
        month = month_key(add_months(first, -k))
        for source, u in sorted(usage.get(month, {}).items()):
            b = billed.get((source, month), Billed())
            if month == period:
                if b.count == 0 and u.fen > 0:  # the period's own bill line, made once
                    out.append(Billing(u, 1, u.fen, 0, period))
            elif b.count > 0 and u.fen > b.amount:  # late usage of a month billed before
                out.append(Billing(u, b.count + 1, u.fen - b.amount, b.amount, period))
    return out
