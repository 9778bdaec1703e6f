"""Common-area apportionment (公摊): a master meter's period usage shared over rooms
(docs/billing.md "Common-area apportionment").

Pure rules, no I/O. A group is a master meter and its members (rooms, each optionally with
its own sub-meters), a usage mode, a split method, whether vacant rooms take a share and a
loss threshold. For one period (a local month, "YYYY-MM") `compute` takes the master's
usage by band and each member's usage, prices the usage to share by the master's tariff
(core.domain.tariff.rate, on the master's band usage) and splits the amount to the fen
(`split`, largest remainder). Each share becomes a `Charge` (source "apportion", source id
= group id) whose formula a tenant reads.

- Usage to share: the master's usage (MASTER), or the master minus the sum of the members'
  sub-meters (NET). NET below zero shares nothing and says why (a sub-meter over-reads, a
  sub-meter of another circuit was listed, or a reading is missing): never a negative charge.
- Loss ratio = (master - Σ sub-meters) / master, in percent to two decimals, reported for
  every period where the master used anything; flagged above the group's threshold, and
  flagged when negative.
- Split: fixed ratio, room area (m²), or each room's usage share. Under usage share a room
  that used nothing gets 0; if every room used nothing the split falls back to area (the
  preview and every formula say so) rather than refusing the month.
- Vacant rooms (no open account): with `vacant_share` they keep their share in the split
  and the owner bears it (shown, never posted: there is no tenant to charge); without it
  they are left out and the occupied rooms share everything.
- `split` is exact: quotas amount × w / Σw as fractions, each room gets the floor, and the
  fen left over (fewer than the rooms) go one each in order of the larger fractional
  remainder, ties by the room's key ascending ("building/room"): Σ shares = amount, and
  the result does not depend on the order the rooms are given in.
- Pricing: the usage to share is rated over the period with the master's plan on the
  master's band usage (scaled to the usage to share, band by band in proportion, when it is
  the NET usage), with an empty rating carry: the amount is the exact yuan rounded down to
  the fen; tiers count from zero (the shared usage is not added to the master's cycle).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from math import floor

from core.domain.charges import BILL, DEDUCT, Charge
from core.domain.errors import ValidationError
from core.domain.money import yuan
from core.domain.naming import require_id
from core.domain.tariff import Plan, RatingCarry, rate
from core.domain.usage import LOCAL_TZ, UNITS

MASTER = "master"
NET = "master_minus_subs"
USAGE_MODES = {MASTER: "总表用量", NET: "总表减分表合计"}
RATIO, AREA, USAGE = "ratio", "area", "usage"
METHODS = {RATIO: "按固定比例", AREA: "按面积", USAGE: "按用量"}
MODE_NAMES = {BILL: "计入账单", DEDUCT: "从预付余额扣除"}
MAX_MEMBERS = 500
MAX_SUB_METERS = 20  # per member

# runs: preview -> approve -> posted
PREVIEWED, APPROVED, POSTED = "previewed", "approved", "posted"
RUN_STATUS_NAMES = {PREVIEWED: "待审批", APPROVED: "已审批，入账中", POSTED: "已入账"}

# the action log (core/domain/action_log.py ACTION_NAMES)
ACTION_CREATE, ACTION_UPDATE, ACTION_APPROVE = "apportion_group_created", "apportion_group_updated", "apportion_approved"

SOURCE = "apportion"
_PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_Q9 = Decimal("0.000000001")
_2 = Decimal("0.01")


def _bad(message: str, code: str, field: str | None = None) -> ValidationError:
    return ValidationError(message, code=code, **({"field": field} if field else {}))


# --- the group ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A room under the master meter. ratio: its weight under RATIO; area_m2: the area to
    split by (None: the room's own area from the directory); sub_meters: the meters that
    measure it (none: its open account's meters of the master's utility)."""

    building_id: str
    room_id: str
    ratio: Decimal | None = None
    area_m2: Decimal | None = None
    sub_meters: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.building_id}/{self.room_id}"

    def to_doc(self) -> dict:
        out: dict = {"building_id": self.building_id, "room_id": self.room_id}
        if self.ratio is not None:
            out["ratio"] = format(self.ratio, "f")
        if self.area_m2 is not None:
            out["area_m2"] = format(self.area_m2, "f")
        if self.sub_meters:
            out["sub_meters"] = list(self.sub_meters)
        return out


@dataclass(frozen=True)
class Group:
    property_id: str
    group_id: str
    name: str
    master_meter: str
    usage_mode: str
    method: str
    vacant_share: bool
    loss_threshold_pct: Decimal  # flag a period whose loss ratio is above this (percent)
    mode: str  # charges.BILL | charges.DEDUCT
    members: tuple[Member, ...]
    version: int = 0  # bumped by every edit (stored)

    def to_doc(self) -> dict:
        return {"name": self.name, "master_meter": self.master_meter, "usage_mode": self.usage_mode,
                "method": self.method, "vacant_share": self.vacant_share,
                "loss_threshold_pct": format(self.loss_threshold_pct, "f"), "mode": self.mode,
                "members": [m.to_doc() for m in self.members]}

    @property
    def sub_meters(self) -> tuple[str, ...]:
        return tuple(s for m in self.members for s in m.sub_meters)


def _decimal(value: object, field: str, label: str, *, allow_zero: bool = True, places: int = 4) -> Decimal:
    """A non-negative decimal given as a string or an integer (never a float). Error codes
    name the attribute ("area_m2_negative"); the field names its place ("members[0].area_m2")."""
    code = field.rsplit(".", 1)[-1]
    if isinstance(value, (bool, float)) or not isinstance(value, (str, int)):
        raise _bad(f"{label}必须是数字字符串，例如 \"12.50\"", f"{code}_invalid", field)
    try:
        num = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _bad(f"{label}不是有效数字", f"{code}_invalid", field) from None
    if not num.is_finite():
        raise _bad(f"{label}不是有效数字", f"{code}_invalid", field)
    if num < 0:
        raise _bad(f"{label}不能为负数", f"{code}_negative", field)
    if num == 0 and not allow_zero:
        raise _bad(f"{label}必须大于 0", f"{code}_invalid", field)
    if num != num.quantize(Decimal(1).scaleb(-places)) or num > 1_000_000:
        raise _bad(f"{label}最多 {places} 位小数且不超过 1000000", f"{code}_invalid", field)
    return num


def _text(value: object, field: str, label: str, max_len: int = 60) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{label}不能为空", "field_required", field)
    if len(value.strip()) > max_len:
        raise _bad(f"{label}不能超过 {max_len} 个字", "field_too_long", field)
    return value.strip()


def _member(raw: object, i: int, method: str) -> Member:
    where = f"members[{i}]"
    if not isinstance(raw, dict):
        raise _bad(f"第 {i + 1} 个房间的格式无效", "member_invalid", where)
    b = require_id(raw.get("building_id"), f"{where}.building_id")
    r = require_id(raw.get("room_id"), f"{where}.room_id")
    ratio = raw.get("ratio")
    if method == RATIO:
        if ratio is None or ratio == "":
            raise _bad(f"房间 {b}/{r} 缺少分摊比例", "apportion_ratio_required", f"{where}.ratio")
        ratio_d = _decimal(ratio, f"{where}.ratio", f"房间 {b}/{r} 的分摊比例")
    else:
        ratio_d = None if ratio is None or ratio == "" else _decimal(ratio, f"{where}.ratio", f"房间 {b}/{r} 的分摊比例")
    area = raw.get("area_m2")
    area_d = None if area is None or area == "" else _decimal(area, f"{where}.area_m2", f"房间 {b}/{r} 的面积",
                                                              places=2)
    subs_raw = raw.get("sub_meters") or []
    if not isinstance(subs_raw, list) or len(subs_raw) > MAX_SUB_METERS:
        raise _bad(f"房间 {b}/{r} 的分表列表无效（最多 {MAX_SUB_METERS} 块）", "sub_meters_invalid", f"{where}.sub_meters")
    subs = tuple(require_id(s, f"{where}.sub_meters") for s in subs_raw)
    return Member(b, r, ratio_d, area_d, subs)


def parse_group(doc: object, property_id: str, group_id: str, version: int = 0) -> Group:
    """Validate a group's settings (from the console's form or the API's JSON); every error
    names the field at fault."""
    if not isinstance(doc, dict):
        raise _bad("公摊组必须是 JSON 对象", "body_invalid")
    require_id(property_id, "property_id")
    require_id(group_id, "group_id")
    name = _text(doc.get("name"), "name", "公摊组名称")
    master = require_id(doc.get("master_meter"), "master_meter")
    usage_mode = doc.get("usage_mode", MASTER)
    if usage_mode not in USAGE_MODES:
        raise _bad("用量口径只能是 master（总表用量）或 master_minus_subs（总表减分表合计）", "usage_mode_invalid",
                   "usage_mode")
    method = doc.get("method")
    if method not in METHODS:
        raise _bad("分摊方式只能是 ratio（固定比例）、area（面积）或 usage（用量）", "method_invalid", "method")
    vacant = doc.get("vacant_share", False)
    if not isinstance(vacant, bool):
        raise _bad("vacant_share 必须是 true 或 false", "vacant_share_invalid", "vacant_share")
    threshold = _decimal(doc.get("loss_threshold_pct", "5"), "loss_threshold_pct", "损耗率阈值", places=2)
    if threshold > 100:
        raise _bad("损耗率阈值必须在 0 到 100 之间", "loss_threshold_pct_invalid", "loss_threshold_pct")
    mode = doc.get("mode", BILL)
    if mode not in (BILL, DEDUCT):
        raise _bad("入账方式只能是 bill（计入账单）或 deduct（从预付余额扣除）", "charge_mode_invalid", "mode")
    raw_members = doc.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        raise _bad("至少需要一个分摊房间", "members_required", "members")
    if len(raw_members) > MAX_MEMBERS:
        raise _bad(f"一个公摊组最多 {MAX_MEMBERS} 个房间", "members_too_many", "members")
    members = tuple(_member(m, i, method) for i, m in enumerate(raw_members))
    seen: set[str] = set()
    for m in members:
        if m.key in seen:
            raise _bad(f"房间 {m.key} 重复出现", "member_duplicate", "members")
        seen.add(m.key)
    subs = [s for m in members for s in m.sub_meters]
    if master in subs:
        raise _bad("总表不能同时作为分表", "master_is_sub_meter", "members")
    if len(set(subs)) != len(subs):
        dup = next(s for s in subs if subs.count(s) > 1)
        raise _bad(f"分表 {dup} 出现在多个房间", "sub_meter_duplicate", "members")
    if method == RATIO and sum((m.ratio or Decimal(0)) for m in members) == 0:
        raise _bad("分摊比例合计为 0，无法分摊", "apportion_ratio_zero", "members")
    return Group(property_id, group_id, name, master, usage_mode, method, vacant, threshold, mode, members, version)


def check_overlap(group: Group, others: Sequence[Group]) -> None:
    """A room belongs to at most one group of the same master meter (it would pay twice)."""
    mine = {m.key for m in group.members}
    for o in others:
        if o.group_id == group.group_id or o.master_meter != group.master_meter:
            continue
        both = sorted(mine & {m.key for m in o.members})
        if both:
            raise _bad(f"房间 {both[0]} 已在同一总表的公摊组「{o.name}」中，不能重复分摊", "member_in_other_group",
                       "members")


def group_from_json(text: str, property_id: str, group_id: str, version: int) -> Group:
    return parse_group(json.loads(text), property_id, group_id, version)


# --- periods -----------------------------------------------------------------------------------


def parse_period(value: object) -> str:
    if not isinstance(value, str) or not _PERIOD_RE.match(value):
        raise _bad("账期格式应为 YYYY-MM（例如 2026-11）", "period_invalid", "period")
    return value


def period_bounds(period: str) -> tuple[datetime, datetime]:
    """The local month's start and end (Asia/Shanghai, the usage aggregates' months), in UTC."""
    y, m = int(period[:4]), int(period[5:7])
    start = datetime(y, m, 1, tzinfo=LOCAL_TZ)
    end = datetime(y + (m == 12), 1 if m == 12 else m + 1, 1, tzinfo=LOCAL_TZ)
    return start.astimezone(UTC), end.astimezone(UTC)


def period_day(period: str) -> date:
    return date(int(period[:4]), int(period[5:7]), 1)


def check_preview_period(period: object, now: datetime) -> str:
    """A period may be previewed once it has started (a month under way: a trial)."""
    p = parse_period(period)
    if period_bounds(p)[0] > now:
        raise _bad("不能试算尚未开始的账期", "period_future", "period")
    return p


def check_approvable(period: str, now: datetime) -> None:
    """A period's shares are posted only once it has ended (its usage is complete)."""
    if now < period_bounds(period)[1]:
        raise _bad(f"账期 {period} 尚未结束，结束后才能审批入账", "period_open", "period")


# --- the split -----------------------------------------------------------------------------------


def split(amount_fen: int, weights: Sequence[Decimal | int | Fraction], keys: Sequence[str] | None = None
          ) -> list[int]:
    """Split amount_fen in proportion to weights, exactly (largest remainder, Hamilton).

    Each part is the floor of its exact quota amount × w / Σw; the fen left over (fewer than
    the parts with a fractional quota) go one each to the parts with the larger fractional
    remainder, ties broken by key ascending (default: position). Σ parts = amount_fen; a
    zero weight gets 0. Refused: a negative amount or weight, Σ weights = 0."""
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or amount_fen < 0:
        raise _bad("分摊金额必须是非负整数（分）", "apportion_amount_invalid")
    n = len(weights)
    if keys is None:
        keys = [f"{i:09d}" for i in range(n)]
    if len(keys) != n:
        raise ValueError("one key per weight")
    ws = [Fraction(w) for w in weights]
    if any(w < 0 for w in ws):
        raise _bad("分摊权重不能为负数", "apportion_weight_negative")
    total = sum(ws, Fraction(0))
    if n == 0 or total == 0:
        raise _bad("分摊权重合计为 0，无法分摊", "apportion_weights_zero")
    quotas = [amount_fen * w / total for w in ws]
    parts = [floor(q) for q in quotas]
    left = amount_fen - sum(parts)
    order = sorted(range(n), key=lambda i: (-(quotas[i] - parts[i]), keys[i]))
    for i in order[:left]:
        parts[i] += 1
    return parts


# --- a period's computation ----------------------------------------------------------------------


@dataclass(frozen=True)
class RoomInput:
    """A member as the period sees it (the service reads these)."""

    building_id: str
    room_id: str
    name: str
    account_id: str | None  # the room's paying account; None: vacant
    area_m2: Decimal | None  # the member's area, or the room's
    usage: Decimal  # Σ of its sub-meters' usage in the period
    ratio: Decimal | None = None

    @property
    def key(self) -> str:
        return f"{self.building_id}/{self.room_id}"


@dataclass(frozen=True)
class Share:
    building_id: str
    room_id: str
    name: str
    account_id: str | None
    vacant: bool
    weight: str  # this room's weight (ratio, m² or usage) as shown
    weight_total: str
    amount: int  # fen
    formula: str

    @property
    def posted(self) -> bool:
        """Whether it becomes a charge: a tenant's account and at least a fen."""
        return self.account_id is not None and self.amount > 0

    def to_dict(self) -> dict:
        return {"building_id": self.building_id, "room_id": self.room_id, "name": self.name,
                "account_id": self.account_id, "vacant": self.vacant, "weight": self.weight,
                "weight_total": self.weight_total, "amount": self.amount, "formula": self.formula}


@dataclass(frozen=True)
class Result:
    """One period of one group: what the preview shows and approval posts."""

    period: str
    group_version: int
    utility: str
    method: str  # the method used (AREA when USAGE fell back)
    master_usage: Decimal
    sub_usage: Decimal
    loss_ratio_pct: Decimal | None  # None: the master used nothing
    loss_flag: bool
    shared_usage: Decimal
    amount: int  # fen to share
    price_text: str  # "公摊电量 120.00 kWh × 1.00 元/kWh = 120.00 元"
    notes: tuple[str, ...] = ()
    shares: tuple[Share, ...] = ()
    lines: tuple[dict, ...] = ()  # the rating's lines (ChargeLine.to_dict)
    mode: str = BILL  # the group's, when computed: how its charges are applied
    group_name: str = ""

    @property
    def loss(self) -> Decimal:
        return self.master_usage - self.sub_usage

    @property
    def posted_total(self) -> int:
        return sum(s.amount for s in self.shares if s.posted)

    @property
    def owner_total(self) -> int:
        """The vacant rooms' shares: borne by the owner, not posted."""
        return sum(s.amount for s in self.shares if not s.posted)

    def to_dict(self) -> dict:
        return {"period": self.period, "group_version": self.group_version, "utility": self.utility,
                "method": self.method, "master_usage": format(self.master_usage, "f"),
                "sub_usage": format(self.sub_usage, "f"),
                "loss_ratio_pct": None if self.loss_ratio_pct is None else format(self.loss_ratio_pct, "f"),
                "loss_flag": self.loss_flag, "shared_usage": format(self.shared_usage, "f"), "amount": self.amount,
                "price_text": self.price_text, "notes": list(self.notes), "shares": [s.to_dict() for s in self.shares],
                "lines": list(self.lines), "mode": self.mode, "group_name": self.group_name}

    @staticmethod
    def from_dict(d: dict) -> Result:
        ratio = d.get("loss_ratio_pct")
        return Result(
            period=d["period"], group_version=int(d["group_version"]), utility=d["utility"], method=d["method"],
            master_usage=Decimal(d["master_usage"]), sub_usage=Decimal(d["sub_usage"]),
            loss_ratio_pct=None if ratio is None else Decimal(ratio), loss_flag=bool(d["loss_flag"]),
            shared_usage=Decimal(d["shared_usage"]), amount=int(d["amount"]), price_text=d["price_text"],
            notes=tuple(d.get("notes") or ()), lines=tuple(d.get("lines") or ()), mode=d.get("mode", BILL),
            group_name=d.get("group_name", ""),
            shares=tuple(Share(s["building_id"], s["room_id"], s["name"], s.get("account_id"), bool(s["vacant"]),
                               s["weight"], s["weight_total"], int(s["amount"]), s["formula"])
                         for s in d.get("shares") or ()))


def _q2(x: Decimal) -> str:
    return format(x.quantize(_2, rounding=ROUND_HALF_UP), "f")


def _price(p: Decimal) -> str:
    """A unit price as shown: at least two decimals, no trailing zeros beyond ("1.00", "0.5283")."""
    s = format(p.normalize(), "f")
    whole, _, frac = s.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _scaled(bands: dict[str, Decimal], target: Decimal) -> dict[str, Decimal]:
    """target split over the bands in proportion to their usage (to 10⁻⁹, rounded down; the
    last band takes the rest), so the parts sum to target exactly and none is negative."""
    total = sum(bands.values(), Decimal(0))
    if target == total:
        return {b: q for b, q in bands.items() if q > 0}
    items = sorted((b, q) for b, q in bands.items() if q > 0)
    out: dict[str, Decimal] = {}
    for b, q in items[:-1]:
        out[b] = (target * q / total).quantize(_Q9, rounding=ROUND_FLOOR)
    out[items[-1][0]] = target - sum(out.values(), Decimal(0))
    return {b: q for b, q in out.items() if q > 0}


def _kind_words(utility: str) -> tuple[str, str, str]:
    """(quantity label, charge name, unit)."""
    if utility == "water":
        return "公摊水量", "公摊水费", UNITS["water"]
    return "公摊电量", "公摊电费", UNITS["electricity"]


def _price_text(utility: str, quantity: Decimal, lines: Sequence, amount: int) -> str:
    label, _, unit = _kind_words(utility)
    if len(lines) == 1:
        ln = lines[0]
        return f"{label} {_q2(quantity)} {unit} × {_price(ln.unit_price)} 元/{unit} = {yuan(amount)} 元"
    parts = " + ".join(f"{ln.label} {_q2(ln.quantity)} {unit} × {_price(ln.unit_price)} 元" for ln in lines)
    return f"{label} {_q2(quantity)} {unit}（{parts}）= {yuan(amount)} 元"


def compute(group: Group, period: str, plan: Plan, master_bands: dict[str, Decimal],
            rooms: Sequence[RoomInput]) -> Result:
    """One period's shares. master_bands: the master's usage in the period per priced band;
    rooms: one per member, in any order."""
    utility = plan.utility
    label, _, unit = _kind_words(utility)
    master = sum(master_bands.values(), Decimal(0))
    subs = sum((r.usage for r in rooms), Decimal(0))
    loss = master - subs
    notes: list[str] = []
    ratio = None if master <= 0 else (loss * 100 / master).quantize(_2, rounding=ROUND_HALF_UP)
    flag = False
    if ratio is not None:
        if ratio < 0:
            flag = True
            notes.append(f"分表合计 {_q2(subs)} {unit} 大于总表 {_q2(master)} {unit}，损耗率为负：请检查分表是否接错或读数是否缺失")
        elif ratio > group.loss_threshold_pct:
            flag = True
            notes.append(f"损耗率 {ratio}% 超过阈值 {group.loss_threshold_pct}%")
    shared = master if group.usage_mode == MASTER else loss
    base = dict(period=period, group_version=group.version, utility=utility, master_usage=master, sub_usage=subs,
                loss_ratio_pct=ratio, loss_flag=flag, mode=group.mode, group_name=group.name)
    if shared <= 0:
        why = ("总表本期用量为 0，无可分摊" if group.usage_mode == MASTER or master <= 0 else
               f"总表 {_q2(master)} {unit} 减分表合计 {_q2(subs)} {unit} = {_q2(loss)} {unit}，不大于 0：本期不分摊")
        return Result(method=group.method, shared_usage=max(shared, Decimal(0)), amount=0,
                      price_text=f"{label} 0.00 {unit}", notes=(*notes, why), **base)
    start, end = period_bounds(period)
    charge = rate(plan, start, end, shared, RatingCarry(), _scaled(master_bands, shared))
    amount = charge.fen
    price_text = _price_text(utility, shared, charge.lines, amount)
    lines = tuple(ln.to_dict() for ln in charge.lines)
    # who takes part, and by what weight
    taking = [r for r in rooms if group.vacant_share or r.account_id is not None]
    method = group.method
    if not taking:
        return Result(method=method, shared_usage=shared, amount=amount, price_text=price_text, lines=lines,
                      notes=(*notes, "没有可分摊的房间（均为空置，且空置房间不参与分摊）"), **base)
    if method == USAGE and all(r.usage == 0 for r in taking):
        method = AREA
        notes.append("各户本期用量均为 0，改按面积分摊")
    weights: list[Decimal] = []
    for r in taking:
        if method == RATIO:
            w = r.ratio
        elif method == AREA:
            w = r.area_m2
            if w is None:
                raise _bad(f"房间 {r.key} 没有面积，无法按面积分摊", "area_missing", "members")
        else:
            w = r.usage
        if w is None or w < 0:
            raise _bad(f"房间 {r.key} 的分摊权重无效（不能为负数）", "apportion_weight_negative", "members")
        weights.append(w)
    total_w = sum(weights, Decimal(0))
    if total_w == 0:
        what = {RATIO: "分摊比例", AREA: "面积"}.get(method, "用量")
        raise _bad(f"参与分摊房间的{what}合计为 0，无法分摊", "apportion_weights_zero", "members")
    parts = split(amount, weights, [r.key for r in taking])
    shares = []
    for r, w, part in sorted(zip(taking, weights, parts, strict=True), key=lambda t: t[0].key):
        if method == RATIO:
            how = f"按固定比例 {format(w.normalize(), 'f')}/{format(total_w.normalize(), 'f')}"
            ws, ts = format(w.normalize(), "f"), format(total_w.normalize(), "f")
        elif method == AREA:
            how = f"按面积 {_q2(w)}/{_q2(total_w)} m²"
            ws, ts = _q2(w), _q2(total_w)
        else:
            how = f"按用量 {_q2(w)}/{_q2(total_w)} {unit}"
            ws, ts = _q2(w), _q2(total_w)
        formula = f"{price_text}，{how} 分摊 = {yuan(part)} 元"
        shares.append(Share(r.building_id, r.room_id, r.name, r.account_id, r.account_id is None, ws, ts, part,
                            formula))
    if any(s.vacant and s.amount for s in shares):
        notes.append("空置房间的分摊额由业主承担，不入账")
    return Result(method=method, shared_usage=shared, amount=amount, price_text=price_text, lines=lines,
                  notes=tuple(notes), shares=tuple(shares), **base)


def charges(group: Group, result: Result) -> list[Charge]:
    """The charges a result posts: one per share with a tenant's account and at least a fen,
    applied as the group was set when the result was computed (mode, name)."""
    _, name, unit = _kind_words(result.utility)
    out = []
    for s in result.shares:
        if not s.posted:
            continue
        out.append(Charge(
            account_id=s.account_id or "", property_id=group.property_id, period=result.period, source=SOURCE,
            source_id=group.group_id, amount=s.amount, name=name, formula=s.formula, mode=result.mode,
            inputs={"group": result.group_name, "room": s.name, "method": result.method,
                    "shared_usage": _q2(result.shared_usage), "unit": unit, "amount_to_share": result.amount,
                    "weight": s.weight, "weight_total": s.weight_total, "master_usage": _q2(result.master_usage),
                    "sub_usage": _q2(result.sub_usage)},
        ))
    return out


# --- runs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A group's period: previewed (shares computed and stored), approved by an admin,
    posted (every charge applied). Its id is "<group_id>:<period>"."""

    property_id: str
    group_id: str
    period: str
    status: str
    rev: int  # bumped by every preview: approval names the preview it approves
    result: Result
    computed_at: str = ""
    computed_by: str = ""
    approved_at: str = ""
    approved_by: str = ""
    posted_at: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return f"{self.group_id}:{self.period}"

    @property
    def status_text(self) -> str:
        return RUN_STATUS_NAMES.get(self.status, self.status)
