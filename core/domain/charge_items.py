"""Charge items (费用项, docs/billing.md "Charge items"): rent, property fees, parking... as
versioned rules, and the pure function that turns them into the `Charge`s of one room's
account for one billing period.

- Basis: a fixed amount (fen) per cycle; a unit price (whole fen per m²) × the room's area
  (m², two decimals); a unit price (whole fen per unit) × a quantity (two decimals).
- Cycle: once | month | quarter | year. Periodic cycles are calendar-aligned (months,
  quarters Jan–Mar..., years); the item's start date and optional end date (both
  inclusive) may cut the first and last cycle short, which is then prorated by days:
  `amount = round_half_up(base × days_in_use / days_in_cycle)` with base the exact
  (unrounded) cycle amount — one rounding, to the fen. A cycle is charged on the billing
  period (YYYY-MM) in which it starts, or in which the item starts if that is later.
  A one-off item is charged in full on the period of its start date.
- Versions: a change is a new version effective from a date strictly after the latest
  version's; billing period P uses the version in effect on P's first day (the first
  version if none is in effect yet: the item begins inside P or later).
"""

from __future__ import annotations

import calendar
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from core.domain.charges import BILL, DEDUCT, Charge
from core.domain.errors import ValidationError
from core.domain.money import MAX_POSTING_FEN, yuan
from core.domain.naming import require_id

CATEGORIES = {"rent": "租金", "property_fee": "物业费", "service_fee": "服务费", "parking": "停车费",
              "garbage": "垃圾费", "other": "其他"}
FIXED, AREA, QUANTITY = "fixed", "area", "quantity"
BASES = {FIXED: "固定金额", AREA: "单价 × 房间面积", QUANTITY: "单价 × 数量"}
ONCE, MONTH, QUARTER, YEAR = "once", "month", "quarter", "year"
CYCLES = {ONCE: "一次性", MONTH: "按月", QUARTER: "按季", YEAR: "按年"}
CYCLE_UNITS = {ONCE: "次", MONTH: "月", QUARTER: "季", YEAR: "年"}
MODE_NAMES = {DEDUCT: "从预付余额扣除", BILL: "出账单"}
PROPERTY, BUILDING, ROOM = "property", "building", "room"
SCOPES = {PROPERTY: "全部房间", BUILDING: "指定楼栋", ROOM: "指定房间"}
MAX_DUE_DAYS = 365
MAX_QUANTITY = Decimal("100000")
CENT = Decimal("0.01")


def round_half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_period(value: object) -> tuple[date, date]:
    """'YYYY-MM' -> (first day, last day)."""
    if not isinstance(value, str) or len(value) != 7 or value[4] != "-":
        raise ValidationError("账期格式应为 YYYY-MM", code="period_invalid", field="period")
    try:
        y, m = int(value[:4]), int(value[5:])
        first = date(y, m, 1)
    except ValueError:
        raise ValidationError("账期格式应为 YYYY-MM", code="period_invalid", field="period") from None
    return first, date(y, m, calendar.monthrange(y, m)[1])


def period_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def cycle_span(cycle: str, day: date) -> tuple[date, date]:
    """The calendar cycle (first day, last day) holding `day`."""
    if cycle == MONTH:
        first_month = day.month
        months = 1
    elif cycle == QUARTER:
        first_month = (day.month - 1) // 3 * 3 + 1
        months = 3
    elif cycle == YEAR:
        first_month, months = 1, 12
    else:
        raise ValueError(cycle)
    first = date(day.year, first_month, 1)
    last_month = first_month + months - 1
    return first, date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])


def _date(value: object, field_name: str, label: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"{label}格式应为 YYYY-MM-DD", code=f"{field_name}_invalid", field=field_name) from None


def fen_of(value: object, field_name: str, label: str) -> int:
    """A positive whole number of fen, given as fen (int) or as a yuan string ("2.35")."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        fen = Decimal(value)
    else:
        try:
            fen = Decimal(str(value).strip()) * 100
        except (InvalidOperation, ValueError):
            fen = Decimal("NaN")
    if not fen.is_finite() or fen <= 0:
        raise ValidationError(f"{label}必须大于 0", code=f"{field_name}_invalid", field=field_name)
    if fen != fen.to_integral_value():
        raise ValidationError(f"{label}最多精确到分（两位小数）", code=f"{field_name}_precision", field=field_name)
    if fen > MAX_POSTING_FEN:
        raise ValidationError(f"{label}超出允许范围", code=f"{field_name}_too_large", field=field_name)
    return int(fen)


def _quantity(value: object) -> str:
    try:
        q = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        q = Decimal("NaN")
    if not q.is_finite() or q <= 0 or q > MAX_QUANTITY or q != q.quantize(CENT):
        raise ValidationError("数量必须大于 0 且最多两位小数", code="quantity_invalid", field="quantity")
    return str(q.quantize(CENT))


def parse_area(value: object) -> Decimal | None:
    """A room's area as m² (two decimals), or None if it has no usable one."""
    try:
        a = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not a.is_finite() or a <= 0 or a != a.quantize(CENT):
        return None
    return a


@dataclass(frozen=True)
class ItemVersion:
    """One version of a charge item. `price` is fen: the fixed amount per cycle, or fen per
    m² (area), or fen per unit (quantity). Scope ids: building ids (scope building) or
    "<building_id>/<room_id>" (scope room)."""

    property_id: str
    item_id: str
    version: int
    effective_from: date
    name: str
    category: str
    basis: str
    price: int
    cycle: str
    start: date
    end: date | None = None
    quantity: str | None = None  # basis quantity
    mode: str = BILL
    due_days: int = 15
    scope: str = PROPERTY
    scope_ids: tuple[str, ...] = ()
    created_at: str = ""
    created_by: str = ""

    # -- plain values for the store ------------------------------------------------------

    def to_json(self) -> str:
        d = asdict(self)
        d["effective_from"] = self.effective_from.isoformat()
        d["start"] = self.start.isoformat()
        d["end"] = self.end.isoformat() if self.end else None
        d["scope_ids"] = list(self.scope_ids)
        return json.dumps(d, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ItemVersion:
        d = json.loads(text)
        d["effective_from"] = date.fromisoformat(d["effective_from"])
        d["start"] = date.fromisoformat(d["start"])
        d["end"] = date.fromisoformat(d["end"]) if d.get("end") else None
        d["scope_ids"] = tuple(d.get("scope_ids") or ())
        return cls(**d)

    # -- what people read ---------------------------------------------------------------

    @property
    def category_name(self) -> str:
        return CATEGORIES.get(self.category, self.category)

    @property
    def cycle_name(self) -> str:
        return CYCLES.get(self.cycle, self.cycle)

    @property
    def mode_name(self) -> str:
        return MODE_NAMES.get(self.mode, self.mode)

    @property
    def scope_name(self) -> str:
        return SCOPES.get(self.scope, self.scope)

    @property
    def price_text(self) -> str:
        unit = CYCLE_UNITS[self.cycle]
        if self.basis == AREA:
            return f"{yuan(self.price)} 元/m²/{unit}"
        if self.basis == QUANTITY:
            return f"{yuan(self.price)} 元 × {self.quantity}/{unit}"
        return f"{yuan(self.price)} 元/{unit}"

    def applies_to(self, building_id: str, room_id: str) -> bool:
        if self.scope == PROPERTY:
            return True
        if self.scope == BUILDING:
            return building_id in self.scope_ids
        return f"{building_id}/{room_id}" in self.scope_ids


def check_version(raw: dict, *, property_id: str, item_id: str, version: int, created_at: str = "",
                  created_by: str = "") -> ItemVersion:
    """Validate a form or JSON body into a version; every problem is a ValidationError in Chinese."""
    require_id(property_id, "property_id")
    require_id(item_id, "item_id")
    name = str(raw.get("name") or "").strip()
    if not name:
        raise ValidationError("费用名称不能为空", code="name_required", field="name")
    if len(name) > 40:
        raise ValidationError("费用名称不能超过 40 个字", code="name_too_long", field="name")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise ValidationError("费用类别无效：可选 租金、物业费、服务费、停车费、垃圾费、其他", code="category_invalid",
                              field="category")
    basis = raw.get("basis")
    if basis not in BASES:
        raise ValidationError("计费方式无效：可选 固定金额、单价×面积、单价×数量", code="basis_invalid", field="basis")
    price = fen_of(raw.get("price"), "price", "单价" if basis != FIXED else "金额")
    quantity = _quantity(raw.get("quantity")) if basis == QUANTITY else None
    cycle = raw.get("cycle")
    if cycle not in CYCLES:
        raise ValidationError("计费周期无效：可选 一次性、按月、按季、按年", code="cycle_invalid", field="cycle")
    start = _date(raw.get("start"), "start", "开始日期")
    end_raw = raw.get("end")
    end = _date(end_raw, "end", "结束日期") if end_raw not in (None, "") else None
    if end is not None and end < start:
        raise ValidationError("结束日期不能早于开始日期", code="end_before_start", field="end")
    mode = raw.get("mode") or BILL
    if mode not in MODE_NAMES:
        raise ValidationError("收取方式只能是 从预付余额扣除 或 出账单", code="mode_invalid", field="mode")
    due_raw = raw.get("due_days", 15)
    try:
        due_days = int(str(due_raw).strip())
    except ValueError:
        due_days = -1
    if isinstance(due_raw, bool) or not 0 <= due_days <= MAX_DUE_DAYS:
        raise ValidationError(f"缴费期限必须是 0 到 {MAX_DUE_DAYS} 天", code="due_days_invalid", field="due_days")
    scope = raw.get("scope") or PROPERTY
    if scope not in SCOPES:
        raise ValidationError("适用范围无效：可选 全部房间、指定楼栋、指定房间", code="scope_invalid", field="scope")
    ids = raw.get("scope_ids") or ()
    if isinstance(ids, str):
        ids = [s for s in ids.replace("，", ",").replace("\n", ",").split(",")]
    ids = tuple(dict.fromkeys(s.strip() for s in ids if str(s).strip()))
    if scope == PROPERTY:
        ids = ()
    elif not ids:
        raise ValidationError("请填写适用的楼栋或房间", code="scope_ids_required", field="scope_ids")
    for s in ids:
        parts = s.split("/")
        if len(parts) != (1 if scope == BUILDING else 2):
            raise ValidationError("房间应写作 楼栋编号/房间编号，如 B1/R101" if scope == ROOM else "楼栋编号无效",
                                  code="scope_ids_invalid", field="scope_ids")
        for p in parts:
            require_id(p, "scope_ids")
    effective = _date(raw.get("effective_from") or start, "effective_from", "生效日期")
    return ItemVersion(property_id, item_id, version, effective, name, category, basis, price, cycle, start, end,
                       quantity, mode, due_days, scope, ids, created_at, created_by)


def check_new_version(existing: list[ItemVersion], new: ItemVersion) -> ItemVersion:
    """A new version must take effect strictly after every existing one (no duplicate or
    overlapping effective dates); its number follows the last."""
    if existing:
        last = max(existing, key=lambda v: v.effective_from)
        if new.effective_from <= last.effective_from:
            raise ValidationError(
                f"生效日期必须晚于当前最新版本的生效日期 {last.effective_from.isoformat()}（不能重复或重叠）",
                code="version_overlap", field="effective_from")
        if new.category != last.category:
            raise ValidationError("费用类别不能修改，请新建费用项", code="category_fixed", field="category")
        return replace(new, version=max(v.version for v in existing) + 1)
    return replace(new, version=1)


def version_for(versions: list[ItemVersion], period: str) -> ItemVersion | None:
    """The version billing period `period` uses: the one in effect on its first day, else the first one."""
    if not versions:
        return None
    first, _ = parse_period(period)
    ordered = sorted(versions, key=lambda v: v.effective_from)
    current = [v for v in ordered if v.effective_from <= first]
    return current[-1] if current else ordered[0]


@dataclass(frozen=True)
class Span:
    """The cycle a billing period charges for, and the days of it the item is in use."""

    cycle_first: date
    cycle_last: date
    use_first: date
    use_last: date

    @property
    def days_in_cycle(self) -> int:
        return (self.cycle_last - self.cycle_first).days + 1

    @property
    def days_in_use(self) -> int:
        return (self.use_last - self.use_first).days + 1

    @property
    def partial(self) -> bool:
        return self.days_in_use < self.days_in_cycle


def span_for(v: ItemVersion, period: str) -> Span | None:
    """The cycle that billing period `period` charges for under version v, or None."""
    p_first, p_last = parse_period(period)
    if v.cycle == ONCE:
        if p_first <= v.start <= p_last:
            return Span(v.start, v.start, v.start, v.start)
        return None
    if v.start > p_last or (v.end is not None and v.end < p_first):
        return None
    c_first, c_last = cycle_span(v.cycle, p_first)
    # charged on the period where the cycle starts, or where the item starts if later
    charge_day = max(c_first, v.start)
    if not p_first <= charge_day <= p_last:
        return None
    use_first = max(c_first, v.start)
    use_last = min(c_last, v.end) if v.end else c_last
    if use_last < use_first:
        return None
    return Span(c_first, c_last, use_first, use_last)


@dataclass(frozen=True)
class RoomRef:
    """The room a charge is for, as the directory has it."""

    building_id: str
    room_id: str
    area_m2: str = ""
    name: str = ""


@dataclass(frozen=True)
class AccountRef:
    account_id: str
    property_id: str
    status: str = "OPEN"


@dataclass(frozen=True)
class Worked:
    amount: int
    formula: str
    inputs: dict = field(default_factory=dict)


def work_out(v: ItemVersion, span: Span, room: RoomRef) -> Worked:
    """The amount of one cycle (prorated by days), its formula and inputs."""
    inputs: dict = {"basis": v.basis, "cycle": v.cycle, "price_fen": v.price, "version": v.version}
    if v.basis == AREA:
        area = parse_area(room.area_m2)
        if area is None:
            raise ValidationError(f"房间 {room.name or room.room_id} 没有有效的面积，无法按面积计费",
                                  code="room_area_missing", field="area_m2")
        base = area * v.price
        head = f"{area} m² × {yuan(v.price)} 元/m²"
        inputs["area_m2"] = str(area)
    elif v.basis == QUANTITY:
        q = Decimal(v.quantity or "0")
        base = q * v.price
        head = f"{v.quantity} × {yuan(v.price)} 元"
        inputs["quantity"] = v.quantity
    else:
        base = Decimal(v.price)
        head = f"{yuan(v.price)} 元"
    unit = CYCLE_UNITS[v.cycle]
    if v.cycle != ONCE:
        head += f"/{unit}"
        inputs.update(cycle_first=span.cycle_first.isoformat(), cycle_last=span.cycle_last.isoformat(),
                      use_first=span.use_first.isoformat(), use_last=span.use_last.isoformat(),
                      days_in_use=span.days_in_use, days_in_cycle=span.days_in_cycle)
    if v.cycle != ONCE and span.partial:
        amount = round_half_up(base * span.days_in_use / span.days_in_cycle)
        formula = (f"{head} × {span.days_in_use}/{span.days_in_cycle} 天"
                   f"（{span.use_first.isoformat()} 至 {span.use_last.isoformat()}）= {yuan(amount)} 元")
    else:
        amount = round_half_up(base)
        formula = f"{head} = {yuan(amount)} 元" if v.basis != FIXED else f"{head}"
    return Worked(amount, formula, inputs)


def charges_for(item_versions: list[ItemVersion], room: RoomRef, account: AccountRef, period: str) -> list[Charge]:
    """The charges of one room's account for billing period `period` (YYYY-MM) from a
    property's charge items (every version of every item; grouped here by item id).
    Pure. A charge of zero fen (a day's proration rounding to nothing) is left out."""
    parse_period(period)
    if account.status != "OPEN":
        return []
    by_item: dict[str, list[ItemVersion]] = {}
    for v in item_versions:
        if v.property_id == account.property_id:
            by_item.setdefault(v.item_id, []).append(v)
    out = []
    for item_id in sorted(by_item):
        v = version_for(by_item[item_id], period)
        if v is None or not v.applies_to(room.building_id, room.room_id):
            continue
        span = span_for(v, period)
        if span is None:
            continue
        worked = work_out(v, span, room)
        if worked.amount <= 0:
            continue
        out.append(Charge(account_id=account.account_id, property_id=account.property_id, period=period,
                          source="item", source_id=item_id, amount=worked.amount, name=v.name,
                          formula=worked.formula, inputs=worked.inputs, mode=v.mode))
    return out


def due_date(period: str, due_days: int) -> date:
    """A bill's due date: the period's first day + due days."""
    first, _ = parse_period(period)
    return first + timedelta(days=due_days)
