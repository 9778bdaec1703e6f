"""pynamodb models: the one definition of every table, key and index.

Access patterns (docs/ARCHITECTURE.md has the full list):
- directory: property tree in one partition per property, sort key by kind and path.
- accounts.by_building: rooms of a building -> their accounts (keys only; balances
  are read with a consistent BatchGet so that index writes do not follow every posting).
- accounts.by_property_balance: accounts of a property below a balance.
- tenants.by_openid: a WeChat user's tenant records.
- meters.by_account / meters.by_site: meters of an account / of a bridge.
- ledger.by_time: entries of an account in time order.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    KeysOnlyProjection,
    LocalSecondaryIndex,
)
from pynamodb.models import Model

from core.domain.naming import resource_name


class _Base(Model):
    class Meta:
        abstract = True


def _meta(name: str) -> type:
    return type(
        "Meta",
        (),
        {
            "table_name": resource_name(name),
            "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
            "max_retry_attempts": 3,
        },
    )


def _index_meta(name: str, projection) -> type:
    return type("Meta", (), {"index_name": name, "projection": projection})


# --- directory: property -> buildings -> floors -> rooms ---------------------------


class DirectoryItem(_Base):
    """sk: PROPERTY | BUILDING#<b> | FLOOR#<b>#<f> | ROOM#<b>#<r>"""

    Meta = _meta("directory")
    property_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    name = UnicodeAttribute()
    building_id = UnicodeAttribute(null=True)
    floor_id = UnicodeAttribute(null=True)
    room_id = UnicodeAttribute(null=True)
    level = NumberAttribute(null=True)
    area_m2 = UnicodeAttribute(null=True)
    timezone = UnicodeAttribute(null=True)


# --- tenants --------------------------------------------------------------------------


class TenantsByOpenid(GlobalSecondaryIndex):
    Meta = _index_meta("by_openid", AllProjection())
    openid = UnicodeAttribute(hash_key=True)


class TenantsByProperty(GlobalSecondaryIndex):
    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    tenant_id = UnicodeAttribute(range_key=True)


class TenantItem(_Base):
    Meta = _meta("tenants")
    tenant_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    name = UnicodeAttribute()
    phone = UnicodeAttribute()
    openid = UnicodeAttribute(null=True)
    by_openid = TenantsByOpenid()
    by_property = TenantsByProperty()


# --- accounts (户): balance and version live here -------------------------------------


class AccountsByBuilding(GlobalSecondaryIndex):
    Meta = _index_meta("by_building", KeysOnlyProjection())
    building_key = UnicodeAttribute(hash_key=True)  # "<property_id>#<building_id>"
    room_id = UnicodeAttribute(range_key=True)


class AccountsByTenant(GlobalSecondaryIndex):
    Meta = _index_meta("by_tenant", KeysOnlyProjection())
    tenant_id = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute(range_key=True)


class AccountsByPropertyBalance(GlobalSecondaryIndex):
    Meta = _index_meta("by_property_balance", KeysOnlyProjection())
    property_id = UnicodeAttribute(hash_key=True)
    balance = NumberAttribute(range_key=True)


class AccountItem(_Base):
    Meta = _meta("accounts")
    account_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    building_id = UnicodeAttribute()
    building_key = UnicodeAttribute()
    room_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute()
    name = UnicodeAttribute()
    balance = NumberAttribute()
    version = NumberAttribute()
    overdraft_limit = NumberAttribute(default=0)
    status = UnicodeAttribute()
    keep_supply = BooleanAttribute(default=False)
    opened_at = UnicodeAttribute()
    last_posted_at = UnicodeAttribute()
    by_building = AccountsByBuilding()
    by_tenant = AccountsByTenant()
    by_property_balance = AccountsByPropertyBalance()


# --- meters ---------------------------------------------------------------------------


class MetersByAccount(GlobalSecondaryIndex):
    Meta = _index_meta("by_account", KeysOnlyProjection())
    account_id = UnicodeAttribute(hash_key=True)
    meter_id = UnicodeAttribute(range_key=True)


class MetersBySite(GlobalSecondaryIndex):
    Meta = _index_meta("by_site", KeysOnlyProjection())
    site_id = UnicodeAttribute(hash_key=True)
    meter_id = UnicodeAttribute(range_key=True)


class ReadingAttribute(MapAttribute):
    read_at = UnicodeAttribute()
    total = UnicodeAttribute()
    seq = NumberAttribute(default=0)
    registers = MapAttribute(default=dict)


class MeterItem(_Base):
    Meta = _meta("meters")
    meter_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    site_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    model = UnicodeAttribute()
    bus = UnicodeAttribute()
    address = NumberAttribute()
    billing_mode = UnicodeAttribute()
    rated_kw = UnicodeAttribute()
    relay_state = UnicodeAttribute()
    online = BooleanAttribute(default=False)
    keep_supply = BooleanAttribute(default=False)
    last_reading = ReadingAttribute(null=True)
    by_account = MetersByAccount()
    by_site = MetersBySite()


# --- sites (on-prem bridges) ----------------------------------------------------------


class SitesByProperty(GlobalSecondaryIndex):
    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    site_id = UnicodeAttribute(range_key=True)


class SiteItem(_Base):
    Meta = _meta("sites")
    site_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    name = UnicodeAttribute()
    secret = UnicodeAttribute()
    down_queue = UnicodeAttribute(default="")
    by_property = SitesByProperty()


# --- ledger: append-only entries ------------------------------------------------------


class LedgerByTime(LocalSecondaryIndex):
    Meta = _index_meta("by_time", AllProjection())
    account_id = UnicodeAttribute(hash_key=True)
    posted_at = UnicodeAttribute(range_key=True)


class LedgerEntryItem(_Base):
    Meta = _meta("ledger")
    account_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)
    seq = NumberAttribute()
    kind = UnicodeAttribute()
    amount = NumberAttribute()
    balance_after = NumberAttribute()
    cause = UnicodeAttribute()
    actor = UnicodeAttribute()
    posted_at = UnicodeAttribute()
    occurred_at = UnicodeAttribute(null=True)
    memo = UnicodeAttribute(default="")
    property_id = UnicodeAttribute(default="")
    by_time = LedgerByTime()


ALL_MODELS: tuple[type[Model], ...] = (
    DirectoryItem,
    TenantItem,
    AccountItem,
    MeterItem,
    SiteItem,
    LedgerEntryItem,
)
