"""Use cases for the property tree, tenants, accounts, meters and sites.

Every read that an admin makes is scoped to a property: a resource of another
property is reported as not found, never shown.
"""

from __future__ import annotations

from dataclasses import replace

from core.domain.clock import Clock, utcnow
from core.domain.directory import (
    LOW_BALANCE_FEN,
    Account,
    BillingMode,
    Building,
    Floor,
    Meter,
    MeterKind,
    Property,
    RelayState,
    Room,
    Site,
    Tenant,
    require_area,
    require_decimal,
    require_name,
    require_phone,
    validate_ids,
)
from core.domain.errors import Conflict, NotFound, ValidationError
from core.domain.ledger import (
    ACCOUNT_OPEN,
    Entry,
    EntryKind,
    format_time,
    require_id,
)
from core.domain.memberships import VIA_TENANT, Membership
from core.domain.money import require_fen
from core.integrations import queues
from core.services import auth, sites
from core.store import directory as store
from core.store import memberships as members
from core.store.ledger import LedgerStore


def _create(put, item, what: str) -> None:
    try:
        put(item)
    except store.AlreadyExists:
        raise Conflict(f"{what}已存在", code="already_exists") from None


def _require_property(property_id: str) -> Property:
    require_id(property_id, "property_id")
    p = store.get_property(property_id)
    if p is None:
        raise NotFound("物业不存在", code="property_not_found", property_id=property_id)
    return p


def create_property(property_id: str, name: str, timezone: str = "Asia/Shanghai") -> Property:
    validate_ids(property_id=property_id)
    p = Property(property_id, require_name(name, "name"), timezone)
    _create(store.put_property, p, "物业")
    return p


def add_building(property_id: str, building_id: str, name: str) -> Building:
    validate_ids(building_id=building_id)
    _require_property(property_id)
    b = Building(property_id, building_id, require_name(name, "name"))
    _create(store.put_building, b, "楼栋")
    return b


def _require_building(property_id: str, building_id: str) -> None:
    require_id(building_id, "building_id")
    if not store.building_exists(property_id, building_id):
        raise NotFound("楼栋不存在", code="building_not_found", building_id=building_id)


def add_floor(property_id: str, building_id: str, floor_id: str, name: str, level: int) -> Floor:
    validate_ids(floor_id=floor_id)
    _require_property(property_id)
    _require_building(property_id, building_id)
    if isinstance(level, bool) or not isinstance(level, int) or not -10 <= level <= 200:
        raise ValidationError("楼层号无效", code="level_invalid", field="level")
    f = Floor(property_id, building_id, floor_id, require_name(name, "name"), level)
    _create(store.put_floor, f, "楼层")
    return f


def add_room(property_id: str, building_id: str, floor_id: str, room_id: str, name: str, area_m2: object) -> Room:
    validate_ids(room_id=room_id, floor_id=floor_id)
    _require_property(property_id)
    _require_building(property_id, building_id)
    if not store.floor_exists(property_id, building_id, floor_id):
        raise NotFound("楼层不存在", code="floor_not_found", floor_id=floor_id)
    r = Room(property_id, building_id, floor_id, room_id, require_name(name, "name"), require_area(area_m2))
    _create(store.put_room, r, "房间")
    return r


def register_tenant(property_id: str, tenant_id: str, name: str, phone: str) -> Tenant:
    validate_ids(tenant_id=tenant_id)
    _require_property(property_id)
    t = Tenant(tenant_id, property_id, require_name(name, "name", 50), require_phone(phone))
    _create(store.put_tenant, t, "租户")
    return t


def bind_openid(tenant_id: str, openid: str, clock: Clock = utcnow) -> Tenant:
    """Make a WeChat user the tenant's own (the tenant record's openid) and a member of
    each of the tenant's open accounts (and of the accounts opened for the tenant later).

    A rebinding (the tenant had another openid: the room changed hands) takes the previous
    user's memberships of the tenant's accounts away and revokes the sessions of both
    WeChat users (docs/tenant-auth.md, "Revocation"): the previous user's before the write
    (a retry still knows who that was) and after it (a login in between), the new user's
    after. Roommates bound by a binding code keep their memberships. Binding the same
    openid again only completes memberships a failed call left undone."""
    require_id(openid, "openid")
    t = store.get_tenant(require_id(tenant_id, "tenant_id"))
    if t is None:
        raise NotFound("租户不存在", code="tenant_not_found")
    accounts = store.accounts_of_tenant(tenant_id)
    if t.openid == openid:
        _add_members(openid, accounts, clock)
        return t
    if t.openid:
        auth.revoke_openid(t.openid, "rebound")
        _remove_members(t.openid, accounts)
    store.bind_openid(tenant_id, openid)
    _add_members(openid, accounts, clock)
    if t.openid:
        _remove_members(t.openid, accounts)
        auth.revoke_openid(t.openid, "rebound")
    auth.revoke_openid(openid, "rebound")
    return replace(t, openid=openid)


def _add_members(openid: str, accounts: list[Account], clock: Clock) -> None:
    at = format_time(clock())
    for a in accounts:
        if a.status == ACCOUNT_OPEN:
            members.add(Membership(openid, a.account_id, a.property_id, a.tenant_id, at, VIA_TENANT))


def _remove_members(openid: str, accounts: list[Account]) -> None:
    for a in accounts:
        members.remove(openid, a.account_id)


def tenants_for_openid(openid: str) -> list[Tenant]:
    return store.tenants_by_openid(require_id(openid, "openid"))


def open_account(
    property_id: str,
    account_id: str,
    building_id: str,
    room_id: str,
    tenant_id: str,
    name: str,
    opening_balance: int = 0,
    overdraft_limit: int = 0,
    actor: str = "system",
    clock: Clock = utcnow,
) -> Account:
    """Open an account with its opening balance as the first ledger entry (seq 1)."""
    validate_ids(account_id=account_id)
    if isinstance(opening_balance, bool) or not isinstance(opening_balance, int):
        raise ValidationError("opening_balance 必须是以分为单位的整数", code="amount_not_integer", field="opening_balance")
    if overdraft_limit:
        require_fen(overdraft_limit, "overdraft_limit")
    _require_property(property_id)
    _require_building(property_id, building_id)
    require_id(room_id, "room_id")
    if not store.room_exists(property_id, building_id, room_id):
        raise NotFound("房间不存在", code="room_not_found", room_id=room_id)
    tenant = store.get_tenant(require_id(tenant_id, "tenant_id"))
    if tenant is None or tenant.property_id != property_id:
        raise NotFound("租户不存在", code="tenant_not_found", tenant_id=tenant_id)
    now = format_time(clock())
    account = Account(
        account_id=account_id,
        property_id=property_id,
        building_id=building_id,
        room_id=room_id,
        tenant_id=tenant_id,
        name=require_name(name, "name"),
        balance=opening_balance,
        version=1,
        overdraft_limit=overdraft_limit,
        status=ACCOUNT_OPEN,
        opened_at=now,
    )
    opening = Entry(
        account_id=account_id,
        entry_id=f"open:{account_id}",
        seq=1,
        kind=EntryKind.OPENING,
        amount=opening_balance,
        balance_after=opening_balance,
        cause=f"account:{account_id}",
        actor=actor,
        posted_at=now,
        property_id=property_id,
    )
    if not LedgerStore().open_account(account, opening):
        raise Conflict("账户已存在", code="already_exists", account_id=account_id)
    if tenant.openid:  # the tenant's own WeChat user sees the new account (docs/tenant-auth.md)
        members.add(Membership(tenant.openid, account_id, property_id, tenant_id, now, VIA_TENANT))
    return account


def account_in_property(property_id: str, account_id: str) -> Account:
    a = store.get_account(require_id(account_id, "account_id"))
    if a is None or a.property_id != property_id:
        raise NotFound("账户不存在", code="account_not_found", account_id=account_id)
    return a


def accounts_of_tenant(tenant_id: str) -> list[Account]:
    return store.accounts_of_tenant(require_id(tenant_id, "tenant_id"))


def rooms_with_balances(property_id: str, building_id: str) -> list[dict]:
    """Rooms of a building with their accounts and balances, in room order."""
    _require_property(property_id)
    _require_building(property_id, building_id)
    by_room: dict[str, list[Account]] = {}
    for a in store.accounts_of_building(property_id, building_id):
        if a.property_id == property_id:  # the key already scopes it; belt and braces
            by_room.setdefault(a.room_id, []).append(a)
    rows = []
    for r in sorted(store.rooms(property_id, building_id), key=lambda r: r.room_id):
        accts = sorted(by_room.get(r.room_id, []), key=lambda a: a.account_id)
        rows.append({"room": r, "accounts": accts, "balance": sum(a.balance for a in accts)})
    return rows


def accounts_below(property_id: str, threshold: int) -> list[Account]:
    """Accounts of a property whose balance is below threshold (fen), lowest first,
    confirmed against the table (the index may lag a posting by moments)."""
    _require_property(property_id)
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ValidationError("threshold 必须是以分为单位的整数", code="amount_not_integer", field="threshold")
    ids = [a for a, _ in store.accounts_below(property_id, threshold)]
    found = [a for a in store.accounts(ids) if a.balance < threshold and a.property_id == property_id]
    return sorted(found, key=lambda a: (a.balance, a.account_id))


def register_site(property_id: str, site_id: str, name: str) -> Site:
    validate_ids(site_id=site_id)
    _require_property(property_id)
    if store.get_site(site_id) is not None:
        raise Conflict("站点已存在", code="already_exists", site_id=site_id)
    url = queues.ensure_site_queue(site_id)
    s = Site(site_id, property_id, require_name(name, "name"), down_queue=url)
    keys = sites.create_keys(site_id)  # in Secrets Manager, not in the table; before the record, so a retry finds it
    _create(store.put_site, s, "站点")
    return replace(s, secret=keys.current)  # shown once, for the site's bridge config


def add_meter(
    property_id: str,
    meter_id: str,
    account_id: str,
    site_id: str,
    kind: str,
    model: str,
    bus: str,
    address: int,
    billing_mode: str = BillingMode.CLOUD,
    rated_kw: str = "10",
) -> Meter:
    validate_ids(meter_id=meter_id, bus=bus, model=model)
    try:
        kind_v, mode_v = MeterKind(kind), BillingMode(billing_mode)
    except ValueError:
        raise ValidationError("表计类型或计费模式无效", code="meter_kind_invalid") from None
    Meter.validate_address(address)
    account_in_property(property_id, account_id)
    site = store.get_site(require_id(site_id, "site_id"))
    if site is None or site.property_id != property_id:
        raise NotFound("站点不存在", code="site_not_found", site_id=site_id)
    if store.meter_at_address_taken(site_id, bus, address):
        raise Conflict("该总线上的地址已被占用", code="address_taken", bus=bus, address=address)
    m = Meter(
        meter_id=meter_id,
        property_id=property_id,
        account_id=account_id,
        site_id=site_id,
        kind=kind_v,
        model=model,
        bus=bus,
        address=address,
        billing_mode=mode_v,
        rated_kw=require_decimal(rated_kw, "rated_kw", "额定功率"),
        relay_state=RelayState.UNKNOWN,
    )
    _create(store.put_meter, m, "表计")
    if mode_v == BillingMode.METER:
        store.mark_meter_side(account_id)
    return m


def meters_of_account(property_id: str, account_id: str) -> list[Meter]:
    account_in_property(property_id, account_id)
    return store.meters_of_account(account_id)


def property_overview(property_id: str) -> dict:
    """Every building of a property with its rooms and balances (the console's first page)."""
    prop = _require_property(property_id)
    blocks = [
        {"building": b, "rooms": rooms_with_balances(property_id, b.building_id)}
        for b in sorted(store.buildings(property_id), key=lambda b: b.building_id)
    ]
    accts = [a for b in blocks for row in b["rooms"] for a in row["accounts"]]
    return {
        "property": prop,
        "buildings": blocks,
        "total_rooms": sum(len(b["rooms"]) for b in blocks),
        "negative": sum(1 for a in accts if a.balance < 0),
        "low": sum(1 for a in accts if 0 <= a.balance < LOW_BALANCE_FEN),
        "low_line": LOW_BALANCE_FEN,  # the template highlights and words the line from this
        "cut": sum(1 for a in accts if a.cut_state == "cut"),
    }
