"""Persistence of the property tree, tenants, accounts, meters and sites."""

from __future__ import annotations

from collections.abc import Iterable

from core.domain.directory import (
    Account,
    BillingMode,
    Building,
    Floor,
    Meter,
    MeterKind,
    PaymentMode,
    Property,
    Reading,
    RelayState,
    Room,
    Site,
    Tenant,
)
from core.domain.monitor import AccountSnapshot as MonitorAccount
from core.store.models import (
    AccountItem,
    DirectoryItem,
    MeterItem,
    SiteItem,
    TenantItem,
)
from core.store.tx import save_if, update_item

PROPERTY_SK = "PROPERTY"


class AlreadyExists(Exception):
    pass


def _create(item) -> None:
    hash_attr = item._hash_key_attribute()
    if not save_if(item, hash_attr.does_not_exist()):
        raise AlreadyExists(str(item))


def _batch_get(model, keys: list) -> list:
    out = []
    for start in range(0, len(keys), 100):
        out.extend(model.batch_get(keys[start : start + 100], consistent_read=True))
    return out


# --- property tree ----------------------------------------------------------------------


def put_property(p: Property) -> None:
    _create(DirectoryItem(p.property_id, PROPERTY_SK, kind="property", name=p.name, timezone=p.timezone))


def get_property(property_id: str) -> Property | None:
    try:
        i = DirectoryItem.get(property_id, PROPERTY_SK)
    except DirectoryItem.DoesNotExist:
        return None
    return Property(i.property_id, i.name, i.timezone or "Asia/Shanghai")


def put_building(b: Building) -> None:
    _create(DirectoryItem(b.property_id, f"BUILDING#{b.building_id}", kind="building", name=b.name, building_id=b.building_id))


def put_floor(f: Floor) -> None:
    _create(
        DirectoryItem(
            f.property_id,
            f"FLOOR#{f.building_id}#{f.floor_id}",
            kind="floor",
            name=f.name,
            building_id=f.building_id,
            floor_id=f.floor_id,
            level=f.level,
        )
    )


def put_room(r: Room) -> None:
    _create(
        DirectoryItem(
            r.property_id,
            f"ROOM#{r.building_id}#{r.room_id}",
            kind="room",
            name=r.name,
            building_id=r.building_id,
            floor_id=r.floor_id,
            room_id=r.room_id,
            area_m2=r.area_m2,
        )
    )


def _exists(property_id: str, sk: str) -> bool:
    return DirectoryItem.count(property_id, DirectoryItem.sk == sk) > 0


def building_exists(property_id: str, building_id: str) -> bool:
    return _exists(property_id, f"BUILDING#{building_id}")


def floor_exists(property_id: str, building_id: str, floor_id: str) -> bool:
    return _exists(property_id, f"FLOOR#{building_id}#{floor_id}")


def room_exists(property_id: str, building_id: str, room_id: str) -> bool:
    return _exists(property_id, f"ROOM#{building_id}#{room_id}")


def buildings(property_id: str) -> list[Building]:
    return [
        Building(i.property_id, i.building_id, i.name)
        for i in DirectoryItem.query(property_id, DirectoryItem.sk.startswith("BUILDING#"))
    ]


def floors(property_id: str, building_id: str) -> list[Floor]:
    return [
        Floor(i.property_id, i.building_id, i.floor_id, i.name, int(i.level))
        for i in DirectoryItem.query(property_id, DirectoryItem.sk.startswith(f"FLOOR#{building_id}#"))
    ]


def rooms(property_id: str, building_id: str) -> list[Room]:
    return [
        Room(i.property_id, i.building_id, i.floor_id, i.room_id, i.name, i.area_m2)
        for i in DirectoryItem.query(property_id, DirectoryItem.sk.startswith(f"ROOM#{building_id}#"))
    ]


# --- tenants ----------------------------------------------------------------------------


def _tenant(i: TenantItem) -> Tenant:
    return Tenant(i.tenant_id, i.property_id, i.name, i.phone, i.openid)


def put_tenant(t: Tenant) -> None:
    _create(TenantItem(t.tenant_id, property_id=t.property_id, name=t.name, phone=t.phone, openid=t.openid))


def get_tenant(tenant_id: str) -> Tenant | None:
    try:
        return _tenant(TenantItem.get(tenant_id))
    except TenantItem.DoesNotExist:
        return None


def bind_openid(tenant_id: str, openid: str) -> None:
    update_item(TenantItem(tenant_id), [TenantItem.openid.set(openid)], TenantItem.tenant_id.exists())


def tenants_by_openid(openid: str) -> list[Tenant]:
    return [_tenant(i) for i in TenantItem.by_openid.query(openid)]


def tenants_of_property(property_id: str) -> list[Tenant]:
    return [_tenant(i) for i in TenantItem.by_property.query(property_id)]


# --- accounts ---------------------------------------------------------------------------


def account_item(a: Account, last_posted_at: str) -> AccountItem:
    return AccountItem(
        a.account_id,
        property_id=a.property_id,
        building_id=a.building_id,
        building_key=f"{a.property_id}#{a.building_id}",
        room_id=a.room_id,
        tenant_id=a.tenant_id,
        name=a.name,
        balance=a.balance,
        version=a.version,
        overdraft_limit=a.overdraft_limit,
        status=a.status,
        keep_supply=a.keep_supply,
        opened_at=a.opened_at,
        last_posted_at=last_posted_at,
    )


def _account(i: AccountItem) -> Account:
    return Account(
        account_id=i.account_id,
        property_id=i.property_id,
        building_id=i.building_id,
        room_id=i.room_id,
        tenant_id=i.tenant_id,
        name=i.name,
        balance=int(i.balance),
        version=int(i.version),
        overdraft_limit=int(i.overdraft_limit or 0),
        status=i.status,
        keep_supply=bool(i.keep_supply),
        opened_at=i.opened_at,
        cut_state=i.cut_state or "none",
        daily_costs=_daily_costs(i.daily_costs),
        restore_line=int(i.restore_line or 0),
        alarm_levels=tuple(int(x) for x in i.alarm_levels) if i.alarm_levels else (),
        cut_due_at=i.cut_due_at or "",
        payment_mode=i.payment_mode or PaymentMode.PREPAID,
    )


def _daily_costs(value) -> tuple[tuple[str, int], ...]:
    """The account item's recent daily costs (a raw map, day -> fen), oldest day first."""
    if not value:
        return ()
    raw = value.as_dict() if hasattr(value, "as_dict") else dict(value)
    return tuple(sorted((str(k), int(v)) for k, v in raw.items()))


def get_account(account_id: str) -> Account | None:
    try:
        return _account(AccountItem.get(account_id, consistent_read=True))
    except AccountItem.DoesNotExist:
        return None


def accounts(account_ids: Iterable[str]) -> list[Account]:
    keys = list(dict.fromkeys(account_ids))
    return [_account(i) for i in _batch_get(AccountItem, keys)]


def accounts_of_building(property_id: str, building_id: str) -> list[Account]:
    return accounts(i.account_id for i in AccountItem.by_building.query(f"{property_id}#{building_id}"))


def accounts_of_tenant(tenant_id: str) -> list[Account]:
    return accounts(i.account_id for i in AccountItem.by_tenant.query(tenant_id))


def accounts_below(property_id: str, threshold: int) -> list[tuple[str, int]]:
    """(account_id, balance) of a property's accounts whose balance is below threshold,
    lowest first. From the index (eventually consistent): confirm before acting."""
    return [
        (i.account_id, int(i.balance))
        for i in AccountItem.by_property_balance.query(property_id, AccountItem.balance < threshold)
    ]


def set_account_settings(
    account_id: str,
    *,
    overdraft_limit: int | None = None,
    keep_supply: bool | None = None,
    restore_line: int | None = None,
    alarm_levels: list[int] | None = None,
    alarm_repeats: list[int] | None = None,
    status: str | None = None,
    payment_mode: str | None = None,
) -> None:
    """Change settings; bumps settings_rev so that no plan made before stays valid."""
    actions = []
    for attr, value in (
        (AccountItem.payment_mode, payment_mode),
        (AccountItem.overdraft_limit, overdraft_limit),
        (AccountItem.keep_supply, keep_supply),
        (AccountItem.restore_line, restore_line),
        (AccountItem.alarm_levels, alarm_levels),
        (AccountItem.alarm_repeats, alarm_repeats),
        (AccountItem.status, status),
    ):
        if value is not None:
            actions.append(attr.set(value))
    if actions:
        actions.append(AccountItem.settings_rev.add(1))
        update_item(AccountItem(account_id), actions, AccountItem.account_id.exists())


def mark_meter_side(account_id: str) -> None:
    """The account holds a meter that keeps the money: credits must reach it."""
    update_item(AccountItem(account_id), [AccountItem.meter_side.set(True), AccountItem.settings_rev.add(1)],
                AccountItem.account_id.exists())


def set_meter_keep_supply(meter_id: str, keep: bool) -> None:
    update_item(MeterItem(meter_id), [MeterItem.keep_supply.set(keep)], MeterItem.meter_id.exists())


# --- meters -----------------------------------------------------------------------------


def _meter(i: MeterItem) -> Meter:
    reading = None
    if i.last_reading is not None:
        reading = Reading(
            read_at=i.last_reading.read_at,
            total=i.last_reading.total,
            seq=int(i.last_reading.seq or 0),
            registers=dict(i.last_reading.registers.as_dict()) if i.last_reading.registers else {},
            power_kw=i.last_reading.power_kw,
        )
    return Meter(
        meter_id=i.meter_id,
        property_id=i.property_id,
        account_id=i.account_id,
        site_id=i.site_id,
        kind=MeterKind(i.kind),
        model=i.model,
        bus=i.bus,
        address=int(i.address),
        billing_mode=BillingMode(i.billing_mode),
        rated_kw=i.rated_kw,
        relay_state=RelayState(i.relay_state),
        online=bool(i.online),
        keep_supply=bool(i.keep_supply),
        last_reading=reading,
        plan_id=i.plan_id,
        retired=bool(i.retired),
    )


def put_meter(m: Meter) -> None:
    _create(
        MeterItem(
            m.meter_id,
            property_id=m.property_id,
            account_id=m.account_id,
            site_id=m.site_id,
            kind=str(m.kind),
            model=m.model,
            bus=m.bus,
            address=m.address,
            billing_mode=str(m.billing_mode),
            rated_kw=m.rated_kw,
            relay_state=str(m.relay_state),
            online=m.online,
            keep_supply=m.keep_supply,
        )
    )


def get_meter(meter_id: str) -> Meter | None:
    try:
        return _meter(MeterItem.get(meter_id, consistent_read=True))
    except MeterItem.DoesNotExist:
        return None


def meters(meter_ids: Iterable[str]) -> list[Meter]:
    return [_meter(i) for i in _batch_get(MeterItem, list(dict.fromkeys(meter_ids)))]


def meters_of_account(account_id: str) -> list[Meter]:
    return meters(i.meter_id for i in MeterItem.by_account.query(account_id))


def meters_of_site(site_id: str) -> list[Meter]:
    return meters(i.meter_id for i in MeterItem.by_site.query(site_id))


def meter_at_address_taken(site_id: str, bus: str, address: int) -> bool:
    return any(m.bus == bus and m.address == address and not m.retired for m in meters_of_site(site_id))


# --- sites ------------------------------------------------------------------------------


def _site(i: SiteItem) -> Site:
    # the site's keys are in Secrets Manager (core/services/sites.py), never in the table
    return Site(i.site_id, i.property_id, i.name, down_queue=i.down_queue or "")


def put_site(s: Site) -> None:
    _create(SiteItem(s.site_id, property_id=s.property_id, name=s.name, down_queue=s.down_queue))


def get_site(site_id: str) -> Site | None:
    try:
        return _site(SiteItem.get(site_id))
    except SiteItem.DoesNotExist:
        return None


def sites_of_property(property_id: str) -> list[Site]:
    return [_site(i) for i in SiteItem.by_property.query(property_id)]


# --- the room monitor's reads (core/services/monitor.py): a query per building or property, none per room
# Raw queries, only the attributes the tiles need, decoded here: a thousand pynamodb model
# instances cost more than the page's template (bench/console.py).


def _value(av: dict):
    (kind, v), = av.items()
    if kind == "S":
        return v
    if kind == "N":
        return int(v) if v.lstrip("-").isdigit() else float(v)
    if kind == "BOOL":
        return v
    if kind == "L":
        return [_value(x) for x in v]
    if kind == "M":
        return {k: _value(x) for k, x in v.items()}
    return None  # NULL


def raw_query(model, hash_key: str, index_name: str | None = None, attributes: list[str] | None = None):
    """Every item of a partition (of a table or an index) as plain dicts, page after page."""
    conn, start = model._get_connection(), None
    while True:
        page = conn.query(hash_key, index_name=index_name, attributes_to_get=attributes, exclusive_start_key=start)
        for item in page.get("Items", ()):
            yield {k: _value(v) for k, v in item.items()}
        start = page.get("LastEvaluatedKey")
        if not start:
            return


def property_tree(property_id: str) -> tuple[Property | None, list[Building], list[Floor], list[Room]]:
    """The whole property tree in one query of its directory partition."""
    prop, blds, flrs, rms = None, [], [], []
    wanted = ["kind", "name", "building_id", "floor_id", "room_id", "level", "timezone", "area_m2"]
    for i in raw_query(DirectoryItem, property_id, attributes=wanted):
        kind = i.get("kind")
        if kind == "property":
            prop = Property(property_id, i["name"], i.get("timezone") or "Asia/Shanghai")
        elif kind == "building":
            blds.append(Building(property_id, i["building_id"], i["name"]))
        elif kind == "floor":
            flrs.append(Floor(property_id, i["building_id"], i["floor_id"], i["name"], int(i.get("level") or 0)))
        elif kind == "room":
            rms.append(Room(property_id, i["building_id"], i["floor_id"], i["room_id"], i["name"], i.get("area_m2", "")))
    return prop, blds, flrs, rms


def tenant_contacts(property_id: str) -> dict[str, tuple[str, str]]:
    """tenant_id -> (name, phone) of a property's tenants: one query of tenants.by_property."""
    return {i["tenant_id"]: (i.get("name", ""), i.get("phone", ""))
            for i in raw_query(TenantItem, property_id, "by_property",
                               ["tenant_id", "name", "phone"])}


def account_balances(property_id: str) -> dict[str, int]:
    """account_id -> balance of every account of a property, from by_property_balance (one
    query, eventually consistent: it may trail a posting by moments)."""
    return {i["account_id"]: int(i["balance"]) for i in raw_query(AccountItem, property_id, "by_property_balance")}


def building_accounts(property_id: str, building_id: str, balances: dict[str, int]) -> list[MonitorAccount]:
    """Every account of a building as the monitor shows it: one query of by_building_state,
    with each balance taken from `balances` (account_balances); an account the balance index
    has not caught up with yet is read with one consistent BatchGet for all such."""
    items = list(raw_query(AccountItem, f"{property_id}#{building_id}", "by_building_state"))
    missing = [i["account_id"] for i in items if i["account_id"] not in balances]
    if missing:
        balances = {**balances, **{a.account_id: a.balance for a in accounts(missing)}}
    return [
        MonitorAccount(
            account_id=i["account_id"],
            building_id=i.get("building_id") or building_id,
            room_id=i["room_id"],
            tenant_id=i.get("tenant_id", ""),
            name=i.get("name", ""),
            status=i.get("status", ""),
            balance=balances[i["account_id"]],
            overdraft_limit=int(i.get("overdraft_limit") or 0),
            keep_supply=bool(i.get("keep_supply")),
            cut_state=i.get("cut_state") or "none",
            alarm_levels=tuple(int(x) for x in i["alarm_levels"]) if i.get("alarm_levels") else None,
        )
        for i in items
        if i["account_id"] in balances
    ]


# --- the room detail page's reads (core/services/room_detail.py) ------------------------------


def room_context(property_id: str, building_id: str, room_id: str
                 ) -> tuple[Property | None, Building | None, Floor | None, Room | None]:
    """A room with its property, building and floor: one BatchGet of the first three, one
    GetItem of the floor. Keys are the property's own partition: nothing of another property."""
    keys = [(property_id, PROPERTY_SK), (property_id, f"BUILDING#{building_id}"), (property_id, f"ROOM#{building_id}#{room_id}")]
    prop = building = floor = room = None
    for i in DirectoryItem.batch_get(keys):
        if i.kind == "property":
            prop = Property(i.property_id, i.name, i.timezone or "Asia/Shanghai")
        elif i.kind == "building":
            building = Building(i.property_id, i.building_id, i.name)
        elif i.kind == "room":
            room = Room(i.property_id, i.building_id, i.floor_id, i.room_id, i.name, i.area_m2)
    if room is not None:
        try:
            f = DirectoryItem.get(property_id, f"FLOOR#{building_id}#{room.floor_id}")
            floor = Floor(f.property_id, f.building_id, f.floor_id, f.name, int(f.level))
        except DirectoryItem.DoesNotExist:
            floor = None
    return prop, building, floor, room


def room_account_ids(property_id: str, building_id: str, room_id: str) -> list[str]:
    """Every account (open or closed) of a room: one Query of by_building on the room."""
    return [i.account_id for i in AccountItem.by_building.query(f"{property_id}#{building_id}",
                                                                AccountItem.room_id == room_id)]
