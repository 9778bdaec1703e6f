"""The room monitor (房间监控): a property's buildings -> floors -> room tiles, each with
its state (core/domain/monitor.py), balance, relay state as last read back (and whether
a relay command is in flight) and online state; filtered by chips and a search.

Reads (docs/console.md): the property's directory partition, its tenants, its balances
(by_property_balance) and its meters (meters.by_property), one query each, and one query
of accounts.by_building_state per building: never a request per room. Every read is an
index or a partition of the one property, so nothing of another property can appear.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from core.domain import monitor as rules
from core.domain.directory import Building, Floor, Property
from core.domain.errors import NotFound, ValidationError
from core.domain.money import yuan
from core.domain.naming import require_id
from core.store import directory as directory_store
from core.store import meters as meters_store


@dataclass(frozen=True)
class FloorView:
    floor: Floor
    tiles: list[rules.Tile]


@dataclass(frozen=True)
class BuildingView:
    building: Building
    floors: list[FloorView]

    @property
    def tiles(self) -> int:
        return sum(len(f.tiles) for f in self.floors)


@dataclass(frozen=True)
class MonitorView:
    property: Property
    buildings: list[BuildingView]  # only what matches the filters and search
    total: int  # tiles before filtering
    shown: int
    states: dict[str, int]  # tiles per state, before filtering
    chips: dict[str, int]  # tiles per filter chip, before filtering
    filters: frozenset[str] = field(default_factory=frozenset)
    query: str = ""


def parse_request(filters: list[str], q: str | None) -> tuple[frozenset[str], str]:
    """Check the chips and the search text of a request (a 400 with a Chinese message)."""
    try:
        chosen = rules.parse_filters(f for value in filters for f in value.split(","))
    except ValueError:
        raise ValidationError("未知的筛选条件", code="filter_invalid", field="filter",
                              allowed=list(rules.FILTERS)) from None
    query = rules.normalise_query(q)
    if len(query) > rules.MAX_QUERY:
        raise ValidationError(f"搜索内容不能超过 {rules.MAX_QUERY} 个字", code="query_too_long", field="q")
    return chosen, query


def room_monitor(property_id: str, filters: frozenset[str] = frozenset(), query: str = "", *,
                 directory=directory_store, meters=meters_store) -> MonitorView:
    """The monitor of a property. filters / query as parse_request returns them."""
    require_id(property_id, "property_id")
    prop, buildings, floors, rooms = directory.property_tree(property_id)
    if prop is None:
        raise NotFound("物业不存在", code="property_not_found", property_id=property_id)
    people = directory.tenant_contacts(property_id)
    balances = directory.account_balances(property_id)
    meters_of: dict[str, list[rules.MeterSnapshot]] = {}
    for m in meters.monitor_meters(property_id):
        meters_of.setdefault(m.account_id, []).append(m)

    floors_of = {(f.building_id, f.floor_id): f for f in floors}
    rooms_of: dict[str, list] = {}
    for r in rooms:
        rooms_of.setdefault(r.building_id, []).append(r)

    views, states, chips, total = [], Counter(), Counter(), 0
    for b in sorted(buildings, key=lambda b: b.building_id):
        accounts_of: dict[str, list[rules.AccountSnapshot]] = {}
        for a in directory.building_accounts(property_id, b.building_id, balances):
            accounts_of.setdefault(a.room_id, []).append(a)
        by_floor: dict[str, list[rules.Tile]] = {}
        for r in sorted(rooms_of.get(b.building_id, []), key=lambda r: r.room_id):
            ref = rules.RoomRef(r.building_id, r.floor_id, r.room_id, r.name)
            for tile in rules.room_tiles(ref, accounts_of.get(r.room_id, []), meters_of, people):
                total += 1
                states[tile.state] += 1
                chips.update(tile.flags)
                if rules.matches(tile, filters, query):
                    by_floor.setdefault(r.floor_id, []).append(tile)
        floor_views = [
            FloorView(floors_of.get((b.building_id, fid)) or Floor(property_id, b.building_id, fid, fid, 0), tiles)
            for fid, tiles in by_floor.items()
        ]
        floor_views.sort(key=lambda fv: (fv.floor.level, fv.floor.floor_id))
        if floor_views:
            views.append(BuildingView(b, floor_views))
    return MonitorView(
        property=prop, buildings=views, total=total, shown=sum(v.tiles for v in views),
        states={s: states[s] for s in rules.STATES}, chips={c: chips[c] for c in rules.FILTERS},
        filters=filters, query=query,
    )


def to_json(view: MonitorView) -> dict:
    """The monitor as the JSON endpoint returns it (money in fen and as a yuan string)."""
    return {
        "property": {"property_id": view.property.property_id, "name": view.property.name},
        "total": view.total,
        "shown": view.shown,
        "states": view.states,
        "chips": view.chips,
        "filters": sorted(view.filters),
        "q": view.query,
        "buildings": [
            {
                "building_id": bv.building.building_id,
                "name": bv.building.name,
                "floors": [
                    {
                        "floor_id": fv.floor.floor_id,
                        "name": fv.floor.name,
                        "level": fv.floor.level,
                        "rooms": [_tile_json(t) for t in fv.tiles],
                    }
                    for fv in bv.floors
                ],
            }
            for bv in view.buildings
        ],
    }


def _tile_json(t: rules.Tile) -> dict:
    return {
        "room_id": t.room.room_id,
        "room": t.room.name,
        "state": t.state,
        "label": t.label,
        "flags": sorted(t.flags),
        "account_id": t.account_id,
        "account_name": t.account_name,
        "tenant_name": t.tenant_name,
        "phone": t.phone,
        "balance_fen": t.balance,
        "balance": yuan(t.balance) if t.balance is not None else None,
        "alarm_level": t.alarm_level,
        "relay": t.relay,
        "relay_in_flight": t.in_flight,
        "online": t.online,
        "meters": t.meters,
        "protected": t.protected,
    }
