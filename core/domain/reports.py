"""Report figures: what the reports (报表) and the income charts read, and the pure rules that
turn the per-account summaries into them (docs/reports.md).

Pure (no I/O). The store keeps, per account and local day / month, a summary item (the
`usage` table's item, core/store/usage.py): usage per meter and band, and money by raw key
(`m#<key>` posted to the ledger, `b#<key>` put on a bill), the opening and closing balance;
a stream consumer copies each room's figures into building rollups (core/store/rollups.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.domain.charge_items import CATEGORIES as CHARGE_CATEGORIES
from core.domain.usage import BANDS, KINDS

UTILITIES = KINDS  # ("electricity", "water")

# key -> Chinese label (a tenant or admin reads it). Each figure is >= 0 (fen).
MONEY_CATEGORIES: dict[str, str] = {
    "recharge": "微信充值",
    "cash": "柜台收款",
    "refund": "退款",
    "bill_payment": "账单缴费",
    **{f"fee:{k}": v for k, v in CHARGE_CATEGORIES.items()},
    "shared": "公摊",
    "late_fee": "滞纳金",
    "adjust_credit": "调账（增加）",
    "adjust_debit": "调账（扣减）",
    # added beyond the first list: the other ledger movements, so that every fen has a place
    "refund_reversal": "退款退回",
    "deposit": "押金抵扣",
    "settlement": "退租结算",
    "withdrawal": "余额退还",
    "meter_transfer": "转入电表",
    "opening": "开户余额",
    "opening_debt": "开户欠款",
    "postpaid": "后付费账单",
}

# The composition of income (收入构成): what was CHARGED in the period (deducted from the
# balance or put on a bill): metered cost by utility; charge items of category rent; other
# charge items + late fees; shared-area charges.
INCOME_PARTS = ("electricity", "water", "rent", "fees", "shared")
INCOME_NAMES = {"electricity": "电费", "water": "水费", "rent": "租金", "fees": "其他费用", "shared": "公摊", "total": "合计"}


@dataclass(frozen=True)
class RoomPeriod:
    """One room's (account's) figures for one period."""

    property_id: str
    building_id: str
    room_id: str
    account_id: str
    room_name: str
    tenant_name: str
    period: str  # "YYYY-MM-DD" | "YYYY-MM" | "YYYY"
    quantity: Mapping[str, Mapping[str, Decimal]]  # utility -> band (core/domain/usage.py BANDS) -> kWh | m³
    cost: Mapping[str, Mapping[str, int]]  # utility -> band -> fen
    money: Mapping[str, int]  # category (MONEY_CATEGORIES) -> fen, each >= 0
    opening: int | None  # balance (fen) before the period's first posting; None: no posting
    closing: int | None  # balance (fen) after the period's last posting
    # added: the part of each money category that was put on a bill (the rest was posted)
    billed: Mapping[str, int] = field(default_factory=dict)

    def total_quantity(self, utility: str) -> Decimal:
        return sum(self.quantity.get(utility, {}).values(), Decimal(0))

    def total_cost(self, utility: str) -> int:
        return sum(self.cost.get(utility, {}).values())

    def income(self) -> dict[str, int]:
        """This room's part of the income composition (INCOME_PARTS, plus "total")."""
        return income_of({u: self.total_cost(u) for u in UTILITIES}, self.money)


@dataclass(frozen=True)
class PeriodTotals:
    """A building's or the property's sum for one period."""

    period: str
    building_id: str  # "" = the whole property
    rooms: int
    quantity: Mapping[str, Decimal]  # utility -> total
    cost: Mapping[str, int]  # utility -> fen
    money: Mapping[str, int]  # category -> fen

    def income(self) -> dict[str, int]:
        return income_of(self.cost, self.money)


def income_of(cost: Mapping[str, int], money: Mapping[str, int]) -> dict[str, int]:
    """Income parts from metered cost by utility and money by category: rent = fee:rent;
    fees = the other charge items + late fees (+ move-out settlement charges); shared =
    shared-area charges. Payments, refunds and adjustments are not income."""
    out = {p: 0 for p in INCOME_PARTS}
    out["electricity"] = int(cost.get("electricity", 0))
    out["water"] = int(cost.get("water", 0))
    for key, fen in money.items():
        if key == "fee:rent":
            out["rent"] += int(fen)
        elif key.startswith("fee:") or key in ("late_fee", "settlement"):
            out["fees"] += int(fen)
        elif key == "shared":
            out["shared"] += int(fen)
    out["total"] = sum(out[p] for p in INCOME_PARTS)
    return out


# --- raw keys: what a posting, a bill line or a bill payment adds to an account's summary ----

FEE_SOURCES = {"apportion": "shared", "late_fee": "late_fee", "settlement": "settlement"}
BILL_SOURCES = {**FEE_SOURCES, "energy": "postpaid", "water": "postpaid"}


def _item_key(charge_id: str) -> str:
    """"item:<item_id>:<YYYY-MM>" -> "item:<item_id>" (ids may hold ':'; the period is last)."""
    return "item:" + charge_id[len("item:"):].rsplit(":", 1)[0]


def money_key(kind: str, entry_id: str, cause: str, amount: int) -> str | None:
    """The raw money key of a ledger posting (summary attribute `m#<key>`), None for metered
    usage (its cost is in the usage figures). A charge item's fee keeps its item id
    (`item:<id>`): the item's category is looked up when the rollup is made."""
    if kind == "recharge":
        return "cash" if cause.startswith("receipt:") else "recharge"
    if kind in ("refund", "refund_reversal", "withdrawal", "meter_transfer", "adjust_debit"):
        return kind
    if kind == "opening":
        return "opening" if amount >= 0 else "opening_debt"
    if kind == "adjust_credit":
        return "deposit" if cause.startswith("deposit:") else "adjust_credit"
    if kind == "fee":
        source = entry_id.split(":", 1)[0]
        if source == "item" and entry_id.count(":") >= 2:
            return _item_key(entry_id)
        return FEE_SOURCES.get(source, "fee:other")
    return None  # energy, water


def bill_key(source: str, charge_id: str) -> str:
    """The raw key of a bill line (summary attribute `b#<key>`)."""
    if source == "item" and charge_id.count(":") >= 2:
        return _item_key(charge_id)
    return BILL_SOURCES.get(source, "fee:other")


def category(raw_key: str, item_categories: Mapping[str, str]) -> str:
    """A raw key as its report category (MONEY_CATEGORIES): a charge item's by its category
    (an item whose category is unknown counts as fee:other)."""
    if raw_key.startswith("item:"):
        cat = item_categories.get(raw_key[len("item:"):], "other")
        return f"fee:{cat if cat in CHARGE_CATEGORIES else 'other'}"
    return raw_key


# --- figures: one summary (per account and period) and what a rollup keeps of it ------------


@dataclass(frozen=True)
class Figures:
    """One room's figures for one period, as a rollup keeps them: quantity and cost per
    (utility, band), money posted and billed per category, the opening and closing balance,
    and the version of the summary they were copied from."""

    quantity: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    cost: Mapping[tuple[str, str], int] = field(default_factory=dict)
    posted: Mapping[str, int] = field(default_factory=dict)
    billed: Mapping[str, int] = field(default_factory=dict)
    opening: int | None = None
    closing: int | None = None
    version: int = 0

    def flat(self) -> dict[str, Decimal | int]:
        """As flat attributes: q#<utility>#<band>, f#<utility>#<band>, m#<category>,
        b#<category>, ob, cb, v (zeros left out)."""
        out: dict[str, Decimal | int] = {}
        for (u, b), q in self.quantity.items():
            if q:
                out[f"q#{u}#{b}"] = q
        for (u, b), f in self.cost.items():
            if f:
                out[f"f#{u}#{b}"] = f
        out.update({f"m#{k}": v for k, v in self.posted.items() if v})
        out.update({f"b#{k}": v for k, v in self.billed.items() if v})
        if self.opening is not None:
            out["ob"] = self.opening
        if self.closing is not None:
            out["cb"] = self.closing
        out["v"] = self.version
        return out

    @classmethod
    def from_flat(cls, attrs: Mapping[str, Decimal | int]) -> Figures:
        q: dict[tuple[str, str], Decimal] = {}
        c: dict[tuple[str, str], int] = {}
        posted: dict[str, int] = {}
        billed: dict[str, int] = {}
        for name, value in attrs.items():
            parts = name.split("#")
            if len(parts) == 3 and parts[0] == "q":
                q[(parts[1], parts[2])] = Decimal(value)
            elif len(parts) == 3 and parts[0] == "f":
                c[(parts[1], parts[2])] = int(value)
            elif parts[0] == "m" and len(parts) == 2:
                posted[parts[1]] = int(value)
            elif parts[0] == "b" and len(parts) == 2:
                billed[parts[1]] = int(value)
        ob, cb = attrs.get("ob"), attrs.get("cb")
        return cls(q, c, posted, billed, None if ob is None else int(ob), None if cb is None else int(cb),
                   int(attrs.get("v", 0)))


def figures_of_summary(attrs: Mapping[str, Decimal | int], item_categories: Mapping[str, str]) -> Figures:
    """An account's summary item (core/store/usage.py attributes: q#<kind>#<meter>#<band>,
    f#<kind>#<meter>#<band>, m#<raw key>, b#<raw key>, ob, cb, v) as the room's figures:
    meters summed per utility and band, raw keys as categories."""
    q: dict[tuple[str, str], Decimal] = {}
    c: dict[tuple[str, str], int] = {}
    posted: dict[str, int] = {}
    billed: dict[str, int] = {}
    for name, value in attrs.items():
        head, _, rest = name.partition("#")
        if head in ("q", "f"):
            parts = rest.split("#")
            if len(parts) != 3:
                continue
            key = (parts[0], parts[2])
            if head == "q":
                q[key] = q.get(key, Decimal(0)) + Decimal(value)
            else:
                c[key] = c.get(key, 0) + int(value)
        elif head in ("m", "b") and rest:
            target = posted if head == "m" else billed
            cat = category(rest, item_categories)
            target[cat] = target.get(cat, 0) + int(value)
    ob, cb = attrs.get("ob"), attrs.get("cb")
    return Figures(q, c, posted, billed, None if ob is None else int(ob), None if cb is None else int(cb),
                   int(attrs.get("v", 0)))


def totals_delta(old: Figures | None, new: Figures) -> dict[str, Decimal | int]:
    """What a building's totals item gains when a room's figures go from old to new (old
    None: the room is new to the period): q#<utility>, f#<utility>, m#<category>,
    b#<category>, rooms; zeros left out."""
    def sums(f: Figures | None) -> dict[str, Decimal | int]:
        out: dict[str, Decimal | int] = {}
        if f is None:
            return out
        for (u, _), q in f.quantity.items():
            out[f"q#{u}"] = out.get(f"q#{u}", Decimal(0)) + q
        for (u, _), fen in f.cost.items():
            out[f"f#{u}"] = out.get(f"f#{u}", 0) + fen
        for k, v in f.posted.items():
            out[f"m#{k}"] = out.get(f"m#{k}", 0) + v
        for k, v in f.billed.items():
            out[f"b#{k}"] = out.get(f"b#{k}", 0) + v
        return out

    a, b = sums(old), sums(new)
    delta = {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)}
    if old is None:
        delta["rooms"] = 1
    return {k: v for k, v in delta.items() if v}


def _merge(*maps: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = out.get(k, 0) + int(v)
    return {k: v for k, v in out.items() if v}


def room_period(f: Figures, *, property_id: str, building_id: str, room_id: str, account_id: str, room_name: str,
                tenant_name: str, period: str) -> RoomPeriod:
    quantity: dict[str, dict[str, Decimal]] = {}
    cost: dict[str, dict[str, int]] = {}
    for (u, b), q in f.quantity.items():
        quantity.setdefault(u, {})[b] = q
    for (u, b), c in f.cost.items():
        cost.setdefault(u, {})[b] = c
    order = {b: i for i, b in enumerate(BANDS)}
    quantity = {u: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], 9))) for u, v in quantity.items()}
    cost = {u: dict(sorted(v.items(), key=lambda kv: order.get(kv[0], 9))) for u, v in cost.items()}
    return RoomPeriod(property_id, building_id, room_id, account_id, room_name, tenant_name, period, quantity, cost,
                      _merge(f.posted, f.billed), f.opening, f.closing, _merge(f.billed))


def combine(rows: list[Figures]) -> Figures:
    """Several consecutive periods' figures of one room as one (a year of months, in order):
    sums, the first opening and the last closing known."""
    q: dict[tuple[str, str], Decimal] = {}
    c: dict[tuple[str, str], int] = {}
    opening = closing = None
    for f in rows:
        for k, v in f.quantity.items():
            q[k] = q.get(k, Decimal(0)) + v
        for k, v in f.cost.items():
            c[k] = c.get(k, 0) + v
        if opening is None and f.opening is not None:
            opening = f.opening
        if f.closing is not None:
            closing = f.closing
    return Figures(q, c, _merge(*(f.posted for f in rows)), _merge(*(f.billed for f in rows)), opening, closing)


def period_totals(period: str, building_id: str, attrs_list: list[Mapping[str, Decimal | int]]) -> PeriodTotals:
    """Totals items (flat: q#<utility>, f#<utility>, m#<category>, b#<category>, rooms) summed."""
    rooms = 0
    quantity: dict[str, Decimal] = {u: Decimal(0) for u in UTILITIES}
    cost: dict[str, int] = {u: 0 for u in UTILITIES}
    money: dict[str, int] = {}
    for attrs in attrs_list:
        for name, value in attrs.items():
            head, _, rest = name.partition("#")
            if name == "rooms":
                rooms += int(value)
            elif head == "q" and rest:
                quantity[rest] = quantity.get(rest, Decimal(0)) + Decimal(value)
            elif head == "f" and rest:
                cost[rest] = cost.get(rest, 0) + int(value)
            elif head in ("m", "b") and rest:
                money[rest] = money.get(rest, 0) + int(value)
    return PeriodTotals(period, building_id, rooms, quantity, cost, {k: v for k, v in money.items() if v})


# --- comparisons, arrears, losses -----------------------------------------------------------


def ratio(current: Decimal | int, base: Decimal | int) -> Decimal | None:
    """current / base - 1, to 0.0001 (half up); None where the base is 0."""
    if not base:
        return None
    from decimal import ROUND_HALF_UP

    return (Decimal(current) / Decimal(base) - 1).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def previous_month(month: str, back: int = 1) -> str:
    y, m = int(month[:4]), int(month[5:7])
    n = y * 12 + (m - 1) - back
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def compare(this: PeriodTotals, prev: PeriodTotals, last_year: PeriodTotals) -> dict:
    """Month-on-month and year-on-year of quantity and cost per utility."""
    out: dict = {"building_id": this.building_id, "utilities": {}}
    for u in UTILITIES:
        out["utilities"][u] = {
            "quantity": this.quantity.get(u, Decimal(0)), "cost": this.cost.get(u, 0),
            "previous_quantity": prev.quantity.get(u, Decimal(0)), "previous_cost": prev.cost.get(u, 0),
            "last_year_quantity": last_year.quantity.get(u, Decimal(0)), "last_year_cost": last_year.cost.get(u, 0),
            "mom_quantity": ratio(this.quantity.get(u, 0), prev.quantity.get(u, 0)),
            "mom_cost": ratio(this.cost.get(u, 0), prev.cost.get(u, 0)),
            "yoy_quantity": ratio(this.quantity.get(u, 0), last_year.quantity.get(u, 0)),
            "yoy_cost": ratio(this.cost.get(u, 0), last_year.cost.get(u, 0)),
        }
    return out
