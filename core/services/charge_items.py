"""Charge items (费用项, docs/billing.md "Charge items"): an admin creates an item, changes
it (a new version effective from a date), and runs a billing period for a property: a
preview of every room's charges (core/domain/charge_items.py `charges_for`), then the
same charges applied (core/services/bills.py `apply_charges`: deducted or billed, once
per charge id — running a period twice changes nothing)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from core.domain import charge_items as rules
from core.domain.bills import LateFeeRule, check_late_fee_rule
from core.domain.charge_items import AccountRef, ItemVersion, RoomRef
from core.domain.charges import Charge
from core.domain.clock import Clock, utcnow
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import ACCOUNT_OPEN, format_time
from core.domain.naming import id_problem
from core.store import charge_items as store
from core.store import directory as dstore

NOT_FOUND = "费用项不存在"


@dataclass(frozen=True)
class Item:
    """An item as the console lists it: its latest version and every version."""

    current: ItemVersion
    versions: tuple[ItemVersion, ...]

    @property
    def item_id(self) -> str:
        return self.current.item_id


def items(property_id: str) -> list[Item]:
    by: dict[str, list[ItemVersion]] = {}
    for v in store.versions(property_id):
        by.setdefault(v.item_id, []).append(v)
    out = [Item(max(vs, key=lambda v: v.effective_from), tuple(sorted(vs, key=lambda v: v.version)))
           for vs in by.values()]
    return sorted(out, key=lambda i: (i.current.category, i.current.name, i.item_id))


def buildings(property_id: str) -> list:
    """The property's buildings (the console's filters and scope choices)."""
    return sorted(dstore.buildings(property_id), key=lambda b: b.building_id)


def item(property_id: str, item_id: str) -> Item:
    if id_problem(item_id):
        raise NotFound(NOT_FOUND, code="charge_item_not_found")
    vs = store.versions(property_id, item_id)
    if not vs:
        raise NotFound(NOT_FOUND, code="charge_item_not_found")
    return Item(max(vs, key=lambda v: v.effective_from), tuple(sorted(vs, key=lambda v: v.version)))


def _check_scope(property_id: str, v: ItemVersion) -> None:
    if v.scope == rules.PROPERTY:
        return
    _, buildings, _, rooms = dstore.property_tree(property_id)
    known = ({b.building_id for b in buildings} if v.scope == rules.BUILDING
             else {f"{r.building_id}/{r.room_id}" for r in rooms})
    missing = [s for s in v.scope_ids if s not in known]
    if missing:
        what = "楼栋" if v.scope == rules.BUILDING else "房间"
        raise ValidationError(f"本物业没有{what}：{'、'.join(missing[:5])}", code="scope_ids_unknown", field="scope_ids")


def create(property_id: str, raw: dict, actor: str, clock: Clock = utcnow) -> ItemVersion:
    """A new item (version 1)."""
    item_id = str(raw.get("item_id") or "").strip() or f"ci-{uuid.uuid4().hex[:10]}"
    v = rules.check_version(raw, property_id=property_id, item_id=item_id, version=1,
                            created_at=format_time(clock()), created_by=actor)
    if store.versions(property_id, item_id):
        raise Conflict("费用项编号已存在", code="charge_item_exists")
    _check_scope(property_id, v)
    if not store.put_version(v):
        raise Conflict("费用项编号已存在", code="charge_item_exists")
    return v


def change(property_id: str, item_id: str, raw: dict, actor: str, clock: Clock = utcnow) -> ItemVersion:
    """A new version of an item, effective from its date (after every existing version's)."""
    existing = list(item(property_id, item_id).versions)
    v = rules.check_version(raw, property_id=property_id, item_id=item_id, version=0,
                            created_at=format_time(clock()), created_by=actor)
    v = rules.check_new_version(existing, v)
    _check_scope(property_id, v)
    if not store.put_version(v):
        raise Conflict("费用项刚被他人修改，请刷新后重试", code="charge_item_changed")
    return v


# --- a billing period --------------------------------------------------------------------------


@dataclass(frozen=True)
class RoomCharges:
    building_id: str
    room_id: str
    room_name: str
    account_id: str
    charges: tuple[Charge, ...] = ()
    problem: str = ""

    @property
    def total(self) -> int:
        return sum(c.amount for c in self.charges)


@dataclass(frozen=True)
class Preview:
    property_id: str
    period: str
    rooms: tuple[RoomCharges, ...] = ()
    due_days: dict = field(default_factory=dict)  # item id -> due days of the version used

    @property
    def total(self) -> int:
        return sum(r.total for r in self.rooms)

    @property
    def charges(self) -> list[Charge]:
        return [c for r in self.rooms for c in r.charges]

    @property
    def problems(self) -> list[RoomCharges]:
        return [r for r in self.rooms if r.problem]


def preview(property_id: str, period: object) -> Preview:
    """Every open account's charges for the period, room by room (nothing written)."""
    rules.parse_period(period)
    versions = store.versions(property_id)
    prop, buildings, _, rooms = dstore.property_tree(property_id)
    if prop is None:
        raise NotFound("物业不存在", code="property_not_found")
    area = {(r.building_id, r.room_id): r for r in rooms}
    out = []
    for b in sorted(buildings, key=lambda b: b.building_id):
        for a in sorted(dstore.accounts_of_building(property_id, b.building_id), key=lambda a: (a.room_id, a.account_id)):
            if a.status != ACCOUNT_OPEN:
                continue
            room = area.get((a.building_id, a.room_id))
            ref = RoomRef(a.building_id, a.room_id, room.area_m2 if room else "", room.name if room else a.room_id)
            try:
                charges = rules.charges_for(versions, ref, AccountRef(a.account_id, a.property_id, a.status), period)
            except ValidationError as e:
                out.append(RoomCharges(a.building_id, a.room_id, ref.name, a.account_id, (), e.message))
                continue
            if charges:
                out.append(RoomCharges(a.building_id, a.room_id, ref.name, a.account_id, tuple(charges)))
    by_item: dict[str, list[ItemVersion]] = {}
    for v in versions:
        by_item.setdefault(v.item_id, []).append(v)
    due = {}
    for item_id, vs in by_item.items():
        chosen = rules.version_for(vs, period)
        if chosen is not None:
            due[item_id] = chosen.due_days
    return Preview(property_id, period, tuple(out), due)


def run(property_id: str, period: object, actor: str, bills=None) -> tuple[Preview, list]:
    """Apply the period's charges (those the preview shows); each bill-mode charge's bill is
    due the period's first day + its item's due days. Rerun: nothing changes."""
    from core.services import bills as bills_service

    p = preview(property_id, period)
    bills = bills or bills_service.default()
    groups: dict[date, list[Charge]] = {}
    for c in p.charges:
        groups.setdefault(rules.due_date(p.period, p.due_days.get(c.source_id, 15)), []).append(c)
    results = []
    for due in sorted(groups):
        results += bills.apply_charges(groups[due], actor=actor, due=due)
    return p, results


# --- late fee rule -----------------------------------------------------------------------------


def late_fee_rule(property_id: str) -> LateFeeRule:
    return store.late_fee_rule(property_id)


def set_late_fee_rule(property_id: str, raw: dict, actor: str, clock: Clock = utcnow) -> LateFeeRule:
    rule = check_late_fee_rule(raw)
    store.put_late_fee_rule(property_id, rule, format_time(clock()), actor)
    return rule
