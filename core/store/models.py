"""pynamodb models: the one definition of every table, key and index.

Access patterns (docs/ARCHITECTURE.md has the full list):
- directory: property tree in one partition per property, sort key by kind and path.
- accounts.by_building: rooms of a building -> their accounts (keys only; balances
  are read with a consistent BatchGet so that index writes do not follow every posting).
- accounts.by_property_balance: accounts of a property below a balance.
- tenants.by_openid: a WeChat user's tenant records.
- meters.by_account / meters.by_site: meters of an account / of a bridge.
- ledger.by_time: entries of an account in time order.
- accounts.by_building_state / meters.by_property: the room monitor's reads (one query per
  building, one per property; docs/console.md).
- tariffs.by_property: a property's plans; events.by_open_anomaly (sparse): anomalies awaiting
  review (docs/console.md "Tariffs", "Anomalies").
- admin_users.by_company: a company's admins (keys only; docs/console.md "Users").
- memberships: a WeChat user's accounts (openid -> accounts) and memberships.by_account: an
  account's WeChat users (roommates); rate_limits: fixed-window counters (docs/tenant-auth.md).
- events.by_account_feed (sparse): a tenant's notifications; refund_requests (per account,
  by_pending sparse for the console's queue, by_property); alarm_preferences (openid, account)
  (docs/tenant-api.md "Money chain, refunds, preferences, notifications").
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
    LocalSecondaryIndex,
)
from pynamodb.models import Model

from core.settings import resource_name
from core.store import connections


class _Base(Model):
    class Meta:
        abstract = True

    @classmethod
    def _get_connection(cls):
        # every model reads through one connection on the process's one botocore session
        # (core/store/connections.py), not a session and a client of its own
        return connections.share(super()._get_connection(), cls.Meta.max_retry_attempts)


def _meta(name: str, **extra) -> type:
    return type(
        "Meta",
        (),
        {
            "table_name": resource_name(name),
            "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
            "max_retry_attempts": 3,
            **extra,  # stream_view_type: a DynamoDB stream (core/store/schema.py)
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
    protection = MapAttribute(null=True)


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


class AccountsByCutDue(GlobalSecondaryIndex):
    """Sparse: only accounts with a pending cut carry cut_pending."""

    Meta = _index_meta("by_cut_due", KeysOnlyProjection())
    cut_pending = UnicodeAttribute(hash_key=True)
    cut_due_at = UnicodeAttribute(range_key=True)


class AccountsBySupplyCheck(GlobalSecondaryIndex):
    """Sparse: only accounts whose supply (relays, meter-side money) must be looked at
    carry supply_check ("Y"), due at supply_check_at."""

    Meta = _index_meta("by_supply_check", KeysOnlyProjection())
    supply_check = UnicodeAttribute(hash_key=True)
    supply_check_at = UnicodeAttribute(range_key=True)


class AccountsByBuildingState(GlobalSecondaryIndex):
    """The room monitor's read of a building (core/services/monitor.py): each account with
    what its tile shows, but not the balance (it moves with every posting; the monitor reads
    it from by_property_balance). Nothing projected here changes with a posting, so
    postings never write this index; settings, cut and restore changes do."""

    Meta = _index_meta("by_building_state", IncludeProjection(
        ["property_id", "building_id", "tenant_id", "name", "status", "keep_supply", "cut_state", "alarm_levels",
         "overdraft_limit"]))
    building_key = UnicodeAttribute(hash_key=True)  # "<property_id>#<building_id>"
    room_id = UnicodeAttribute(range_key=True)


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
    payment_mode = UnicodeAttribute(null=True)  # "postpaid" (后付费) or absent/"prepaid" (docs/billing.md)
    opened_at = UnicodeAttribute()
    last_posted_at = UnicodeAttribute()
    settings_rev = NumberAttribute(default=0)  # bumped by every settings change
    meter_side = BooleanAttribute(default=False)  # holds a meter that keeps the money
    alarm_levels = ListAttribute(of=NumberAttribute, null=True)
    alarm_repeats = ListAttribute(of=NumberAttribute, null=True)
    alarm_state = MapAttribute(default=dict)
    restore_line = NumberAttribute(default=0)
    cut_state = UnicodeAttribute(default="none")
    cut_due_at = UnicodeAttribute(null=True)
    cut_pending = UnicodeAttribute(null=True)
    # supply reconciliation: set with every change of intent, cleared once meters agree
    supply_check = UnicodeAttribute(null=True)
    supply_check_at = UnicodeAttribute(null=True)
    supply_token = UnicodeAttribute(null=True)
    # ledger audit checkpoint: entries up to audit_seq verified (docs/ledger.md); the
    # balance_after and posted_at of that entry, and when the audit recorded it
    audit_seq = NumberAttribute(null=True)
    audit_balance = NumberAttribute(null=True)
    audit_posted_at = UnicodeAttribute(null=True)
    audit_at = UnicodeAttribute(null=True)
    # the costs (fen) of the account's last 8 local days, {"YYYY-MM-DD": fen}: set with every
    # metered posting, planned on the exact state it is made against (core/domain/usage.py)
    daily_costs = MapAttribute(null=True)
    by_building = AccountsByBuilding()
    by_tenant = AccountsByTenant()
    by_property_balance = AccountsByPropertyBalance()
    by_cut_due = AccountsByCutDue()
    by_supply_check = AccountsBySupplyCheck()
    by_building_state = AccountsByBuildingState()


# --- meters ---------------------------------------------------------------------------


class MetersByAccount(GlobalSecondaryIndex):
    Meta = _index_meta("by_account", KeysOnlyProjection())
    account_id = UnicodeAttribute(hash_key=True)
    meter_id = UnicodeAttribute(range_key=True)


class MetersBySite(GlobalSecondaryIndex):
    Meta = _index_meta("by_site", KeysOnlyProjection())
    site_id = UnicodeAttribute(hash_key=True)
    meter_id = UnicodeAttribute(range_key=True)


class MetersByLastSeen(GlobalSecondaryIndex):
    """Sparse: only meters believed online carry online_key ("ON")."""

    Meta = _index_meta("by_last_seen", KeysOnlyProjection())
    online_key = UnicodeAttribute(hash_key=True)
    last_seen = UnicodeAttribute(range_key=True)


class MetersByProperty(GlobalSecondaryIndex):
    """The room monitor's read of a property's meters: relay state as last read back, the
    outstanding relay command, online. Readings re-set relay_state and online to the same
    values, which does not write the index; only a change does."""

    Meta = _index_meta("by_property", IncludeProjection(
        ["account_id", "kind", "relay_state", "online", "keep_supply", "relay_command_id", "retired"]))
    property_id = UnicodeAttribute(hash_key=True)
    meter_id = UnicodeAttribute(range_key=True)


class ReadingAttribute(MapAttribute):
    read_at = UnicodeAttribute()
    total = UnicodeAttribute()
    seq = NumberAttribute(default=0)
    registers = MapAttribute(default=dict)
    power_kw = UnicodeAttribute(null=True)  # average power over the interval it closes (core/domain/usage.py)


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
    plan_id = UnicodeAttribute(null=True)
    # rating baseline: the last reading accounted for
    rated_seq = NumberAttribute(null=True)
    rated_at = UnicodeAttribute(null=True)
    rated_total = UnicodeAttribute(null=True)
    rated_registers = MapAttribute(null=True)
    carry_fen = UnicodeAttribute(default="0")
    cycle = UnicodeAttribute(default="")
    cycle_usage = UnicodeAttribute(default="0")
    last_seen = UnicodeAttribute(null=True)
    online_key = UnicodeAttribute(null=True)
    relay_command_id = UnicodeAttribute(null=True)
    desired_relay = UnicodeAttribute(null=True)
    relay_seen_at = UnicodeAttribute(null=True)  # when relay_state was last read back
    relay_seq = NumberAttribute(default=0)  # relay commands ever issued (makes ids fresh)
    relay_attempts = NumberAttribute(default=0)  # failed attempts in the current streak
    relay_last_try = UnicodeAttribute(null=True)
    # meter-side billing mirror
    meter_balance = NumberAttribute(null=True)
    purchase_count = NumberAttribute(null=True)
    purchase_expected = NumberAttribute(default=0)  # the last purchase known applied
    purchase_pending = NumberAttribute(null=True)  # purchase issued, outcome not known yet
    purchase_pending_amount = NumberAttribute(null=True)
    purchase_attempt = NumberAttribute(default=0)
    retired = BooleanAttribute(default=False)
    replaced_by = UnicodeAttribute(null=True)
    manual_open = BooleanAttribute(default=False)  # an admin's manual trip holds the relay open (docs/console.md)
    manual_reason = UnicodeAttribute(null=True)
    # the meter closes its relay only after a press of its button (按键合闸): the tenant is
    # told so while a restore waits (core/domain/progress.py)
    close_needs_local_confirm = BooleanAttribute(null=True)
    by_account = MetersByAccount()
    by_site = MetersBySite()
    by_last_seen = MetersByLastSeen()
    by_property = MetersByProperty()


# --- sites (on-prem bridges) ----------------------------------------------------------


class SitesByProperty(GlobalSecondaryIndex):
    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    site_id = UnicodeAttribute(range_key=True)


class SitesWatched(GlobalSecondaryIndex):
    """Sparse: only sites whose bridge is believed up carry watch_key ("ON"), by the last
    heartbeat's arrival; the tick finds stale ones here (core/services/outages.py)."""

    Meta = _index_meta("by_watch", KeysOnlyProjection())
    watch_key = UnicodeAttribute(hash_key=True)
    heartbeat_at = UnicodeAttribute(range_key=True)


class SiteItem(_Base):
    Meta = _meta("sites")
    site_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    name = UnicodeAttribute()
    # no secret here: a site's signing keys live in Secrets Manager (core/services/sites.py)
    down_queue = UnicodeAttribute(default="")
    # the bridge's last heartbeat (core/store/sites.py): when it arrived, when the bridge
    # sent it, and its health figures as JSON (outbox depth, buses, meters, polls, failures)
    heartbeat_at = UnicodeAttribute(null=True)
    heartbeat_sent_at = UnicodeAttribute(null=True)
    heartbeat = UnicodeAttribute(null=True)
    # the bridge watch (issue 13): watch_key while up; offline_since = the last heartbeat's
    # arrival before an outage, while the bridge is reported offline
    watch_key = UnicodeAttribute(null=True)
    offline_since = UnicodeAttribute(null=True)
    by_property = SitesByProperty()
    by_watch = SitesWatched()


# --- ledger: append-only entries ------------------------------------------------------


class LedgerByTime(LocalSecondaryIndex):
    Meta = _index_meta("by_time", AllProjection())
    account_id = UnicodeAttribute(hash_key=True)
    posted_at = UnicodeAttribute(range_key=True)


class LedgerEntryItem(_Base):
    Meta = _meta("ledger", stream_view_type="NEW_IMAGE")  # feeds the finance journal (functions/journal_stream.py)
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


# --- tariffs, commands, events --------------------------------------------------------


class TariffsByProperty(GlobalSecondaryIndex):
    """A property's plans (the console's tariff list)."""

    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    plan_id = UnicodeAttribute(range_key=True)


class TariffItem(_Base):
    Meta = _meta("tariffs")
    plan_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    document = UnicodeAttribute()  # the plan's JSON document, as imported
    updated_at = UnicodeAttribute()
    updated_by = UnicodeAttribute()
    by_property = TariffsByProperty()


class CommandsByMeter(GlobalSecondaryIndex):
    Meta = _index_meta("by_meter", AllProjection())
    meter_id = UnicodeAttribute(hash_key=True)
    issued_at = UnicodeAttribute(range_key=True)


class CommandsOpen(GlobalSecondaryIndex):
    """Sparse: only queued/sent commands carry open_key ("OPEN")."""

    Meta = _index_meta("by_open", KeysOnlyProjection())
    open_key = UnicodeAttribute(hash_key=True)
    expires_at = UnicodeAttribute(range_key=True)


class CommandItem(_Base):
    Meta = _meta("commands")
    command_id = UnicodeAttribute(hash_key=True)
    site_id = UnicodeAttribute()
    meter_id = UnicodeAttribute()
    property_id = UnicodeAttribute()
    account_id = UnicodeAttribute(default="")
    op = UnicodeAttribute()
    args = MapAttribute(default=dict)
    state = UnicodeAttribute()
    cause = UnicodeAttribute()
    actor = UnicodeAttribute()
    issued_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    open_key = UnicodeAttribute(null=True)
    superseded_by = UnicodeAttribute(null=True)
    result = MapAttribute(null=True)
    by_meter = CommandsByMeter()
    by_open = CommandsOpen()


class EventsByProperty(GlobalSecondaryIndex):
    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class EventsOpenAnomalies(GlobalSecondaryIndex):
    """Sparse: only anomalies awaiting an admin's decision carry open_anomaly (their
    property id); the console's review queue (异常审核)."""

    Meta = _index_meta("by_open_anomaly", AllProjection())
    open_anomaly = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class EventsByAccountFeed(GlobalSecondaryIndex):
    """Sparse: only tenant-facing events carry account_feed (their account id): the tenant's
    notifications, newest first (core/domain/tenant_feed.py)."""

    Meta = _index_meta("by_account_feed", AllProjection())
    account_feed = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class EventItem(_Base):
    """Anomalies, alarms, meter online/offline, commands and security events: the
    audit trail. scope is "meter#<id>", "account#<id>" or "site#<id>". Its stream (new
    images) feeds the notification router (functions/notify_route.py, docs/notifications.md)."""

    Meta = _meta("events", stream_view_type="NEW_IMAGE")
    scope = UnicodeAttribute(hash_key=True)
    event_id = UnicodeAttribute(range_key=True)
    property_id = UnicodeAttribute()
    at = UnicodeAttribute()
    type = UnicodeAttribute()
    status = UnicodeAttribute(default="")
    message = UnicodeAttribute(default="")
    data = MapAttribute(default=dict)
    by_property = EventsByProperty()
    open_anomaly = UnicodeAttribute(null=True)  # the property id while an anomaly awaits review
    by_open_anomaly = EventsOpenAnomalies()
    account_feed = UnicodeAttribute(null=True)  # the account whose tenants see it (tenant-facing events only)
    by_account_feed = EventsByAccountFeed()


# --- payments ---------------------------------------------------------------------------


class OrdersByAccount(GlobalSecondaryIndex):
    Meta = _index_meta("by_account", AllProjection())
    account_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OrdersPending(GlobalSecondaryIndex):
    """Sparse: only PENDING orders carry pending_key."""

    Meta = _index_meta("by_pending", KeysOnlyProjection())
    pending_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class OrdersByPaidDate(GlobalSecondaryIndex):
    """Paid orders by their Asia/Shanghai payment date (reconciliation)."""

    Meta = _index_meta("by_paid_date", AllProjection())
    paid_date = UnicodeAttribute(hash_key=True)
    out_trade_no = UnicodeAttribute(range_key=True)


class OrderItem(_Base):
    Meta = _meta("orders", stream_view_type="NEW_IMAGE")  # feeds the finance journal (functions/journal_stream.py)
    out_trade_no = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    tenant_id = UnicodeAttribute(default="")
    openid = UnicodeAttribute(default="")
    amount = NumberAttribute()
    status = UnicodeAttribute()
    channel = UnicodeAttribute(default="wechat")
    created_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    transaction_id = UnicodeAttribute(null=True)
    paid_at = UnicodeAttribute(null=True)
    paid_date = UnicodeAttribute(null=True)
    refunded = NumberAttribute(default=0)
    receipt_no = UnicodeAttribute(default="")
    actor = UnicodeAttribute(default="")
    pending_key = UnicodeAttribute(null=True)
    purpose = UnicodeAttribute(null=True)  # "bill" (paying a bill, docs/billing.md) or absent: a recharge
    bill_id = UnicodeAttribute(null=True)  # the bill an order of purpose "bill" pays
    by_account = OrdersByAccount()
    by_pending = OrdersPending()
    by_paid_date = OrdersByPaidDate()


class RefundsByOrder(GlobalSecondaryIndex):
    Meta = _index_meta("by_order", AllProjection())
    out_trade_no = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundsProcessing(GlobalSecondaryIndex):
    """Sparse: only PROCESSING refunds carry processing_key (the sweep's work list)."""

    Meta = _index_meta("by_processing", KeysOnlyProjection())
    processing_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundItem(_Base):
    Meta = _meta("refunds", stream_view_type="NEW_IMAGE")  # feeds the finance journal (functions/journal_stream.py)
    out_refund_no = UnicodeAttribute(hash_key=True)
    out_trade_no = UnicodeAttribute()
    property_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    amount = NumberAttribute()
    status = UnicodeAttribute()
    reason = UnicodeAttribute(default="")
    actor = UnicodeAttribute()
    created_at = UnicodeAttribute()
    refund_id = UnicodeAttribute(null=True)
    processing_key = UnicodeAttribute(null=True)
    by_order = RefundsByOrder()
    by_processing = RefundsProcessing()


# --- tenant sessions (docs/tenant-auth.md) ------------------------------------------------


class TenantSessionItem(_Base):
    """One tenant login session: hashes of its current and last spent refresh tokens
    (never a token). Keyed by openid so that revoking a WeChat user's sessions is one
    consistent query; purge_at lets DynamoDB delete the item once the session is over."""

    Meta = _meta("tenant_sessions")
    openid = UnicodeAttribute(hash_key=True)
    session_id = UnicodeAttribute(range_key=True)
    refresh_hash = UnicodeAttribute()
    spent = ListAttribute(of=UnicodeAttribute, default=list)
    generation = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    refreshed_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    revoked_at = UnicodeAttribute(null=True)
    revoked_reason = UnicodeAttribute(null=True)
    purge_at = TTLAttribute()



# --- console admins and the action log (docs/console.md) -------------------------------


class AdminUsersByCompany(GlobalSecondaryIndex):
    """A company's admins (kind "user"), properties and record: the owner's user page
    (keys only; the records are read with a consistent BatchGet)."""

    Meta = _index_meta("by_company", KeysOnlyProjection())
    company_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute(range_key=True)


class AdminUserItem(_Base):
    """Console logins and companies in one small table, keyed by `pk`:
    `user#<login>` (an admin: password hash, role, grants, lockout, TOTP, live sessions as
    {session key: ends at}), `company#<id>` (name, properties) and `property#<id>` (the
    company that holds a property: a property belongs to one company). Every change is
    conditioned on `version`."""

    Meta = _meta("admin_users")
    pk = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # user | company | property
    company_id = UnicodeAttribute()
    name = UnicodeAttribute(null=True)
    role = UnicodeAttribute(null=True)
    password_hash = UnicodeAttribute(null=True)
    property_ids = ListAttribute(of=UnicodeAttribute, default=list)
    failures = NumberAttribute(default=0)
    locked_until = UnicodeAttribute(null=True)
    totp_secret = UnicodeAttribute(null=True)
    totp_last_step = NumberAttribute(default=0)
    sessions = MapAttribute(null=True)  # raw map: session key -> ends at (ISO time)
    created_at = UnicodeAttribute(null=True)
    password_changed_at = UnicodeAttribute(null=True)
    disabled = BooleanAttribute(default=False)
    version = NumberAttribute(default=0)
    last_login_at = UnicodeAttribute(null=True)  # the owner's user page
    by_company = AdminUsersByCompany()


class ActionLogItem(_Base):
    """The action log (审计日志): `partition` = a property id, or `company:<id>` for logins;
    `sk` = `<at>#<record id>` (time order). Append-only."""

    Meta = _meta("action_log")
    partition = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    actor_name = UnicodeAttribute()
    role = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute(null=True)
    before = UnicodeAttribute(null=True)  # JSON
    after = UnicodeAttribute(null=True)  # JSON
    ip = UnicodeAttribute(null=True)
    property_id = UnicodeAttribute(null=True)

class ConsoleCodeItem(_Base):
    """Console room actions' claims (docs/console.md, "Room actions"), keyed by `code_key`:
    `binding#<code>` (a short single-use code a tenant redeems in the mini-program to bind
    their WeChat user to a tenant record; expires) and `receipt#<property>#<no>` (a counter
    receipt number, claimed once for one account and amount). purge_at lets DynamoDB
    delete an expired binding code."""

    Meta = _meta("console_codes")
    code_key = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # binding | receipt
    property_id = UnicodeAttribute()
    account_id = UnicodeAttribute(null=True)
    tenant_id = UnicodeAttribute(null=True)
    amount = NumberAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute(null=True)  # the admin's name
    expires_at = UnicodeAttribute(null=True)
    used_at = UnicodeAttribute(null=True)
    used_by = UnicodeAttribute(null=True)  # the openid that redeemed a binding code
    purge_at = TTLAttribute(null=True)



# --- tenant memberships and rate limits (docs/tenant-auth.md) ----------------------------


class MembershipsByAccount(GlobalSecondaryIndex):
    """An account's WeChat users (roommates). Sparse: only membership items carry
    account_id (a user's profile item does not)."""

    Meta = _index_meta("by_account", IncludeProjection(["property_id", "bound_at", "via"]))
    account_id = UnicodeAttribute(hash_key=True)
    openid = UnicodeAttribute(range_key=True)


class MembershipItem(_Base):
    """Who may see an account from WeChat, keyed by the WeChat user (openid, of the
    mini-program or of the official account): `sk` = `account#<account_id>` (a
    membership: one user at several properties, several users on one account) or
    `profile` (the user's WeChat nickname, when the official account's authorization
    gave one). A user's accounts are one Query; an account's users one index Query."""

    Meta = _meta("memberships")
    openid = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    account_id = UnicodeAttribute(null=True)
    property_id = UnicodeAttribute(null=True)
    tenant_id = UnicodeAttribute(null=True)
    bound_at = UnicodeAttribute(null=True)
    via = UnicodeAttribute(null=True)  # tenant (the tenant record's WeChat user) | code (a binding code), phone (phone + SMS code)
    nickname = UnicodeAttribute(null=True)  # profile items
    updated_at = UnicodeAttribute(null=True)
    by_account = MembershipsByAccount()


class RateCounterItem(_Base):
    """One fixed-window counter of a rate limit (`<rule>#<subject hash>#<window start>`):
    one UpdateItem ADD per check, shared by every Lambda instance; TTL removes it."""

    Meta = _meta("rate_limits")
    counter_key = UnicodeAttribute(hash_key=True)
    hits = NumberAttribute(default=0)
    purge_at = TTLAttribute()


class OtpCodeItem(_Base):
    """One-time SMS codes (binding by phone + room; docs/tenant-auth.md "Bindings"), one per
    phone number: `subject` = `bind#<sha256 of the number>`; the code only as an HMAC; at
    most 5 attempts (`attempts`, ADDed by each check); TTL removes it a day after expiry."""

    Meta = _meta("otp_codes")
    subject = UnicodeAttribute(hash_key=True)
    openid = UnicodeAttribute()  # the WeChat user who asked (only they may use the code)
    code_hash = UnicodeAttribute()
    sent_at = UnicodeAttribute()
    expires_at = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    used_at = UnicodeAttribute(null=True)
    purge_at = TTLAttribute()


# --- tenant self-service: refund requests, alarm preferences (docs/tenant-api.md) --------


class RefundRequestsPending(GlobalSecondaryIndex):
    """Sparse: only open (pending or approving) requests carry pending_property: the
    console's queue (退款审批), oldest first."""

    Meta = _index_meta("by_pending", AllProjection())
    pending_property = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundRequestsByProperty(GlobalSecondaryIndex):
    """A property's requests by time (the console's recent decisions); markers carry no property_id."""

    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class RefundRequestItem(_Base):
    """A tenant's refund request: partition = the account, sort = the request id (time
    ordered). The account's item `~open` (a marker, no property_id) names its open request
    in `open_request`: one open request per account, claimed in the request's transaction."""

    Meta = _meta("refund_requests")
    account_id = UnicodeAttribute(hash_key=True)
    request_id = UnicodeAttribute(range_key=True)
    property_id = UnicodeAttribute(null=True)
    openid = UnicodeAttribute(null=True)
    amount = NumberAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    decided_at = UnicodeAttribute(null=True)
    decided_by = UnicodeAttribute(null=True)
    reject_reason = UnicodeAttribute(null=True)
    refunded = NumberAttribute(null=True)
    refunds = UnicodeAttribute(null=True)  # JSON list of {out_trade_no, out_refund_no, amount, status}
    pending_property = UnicodeAttribute(null=True)
    open_request = UnicodeAttribute(null=True)  # the marker's: the open request's id
    by_pending = RefundRequestsPending()
    by_property = RefundRequestsByProperty()


class AlarmPreferenceItem(_Base):
    """A tenant's alarm preferences for one account (per WeChat user and account)."""

    Meta = _meta("alarm_preferences")
    openid = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute(range_key=True)
    low_balance_fen = NumberAttribute(null=True)
    channels = ListAttribute(of=UnicodeAttribute, default=list)
    quiet_start = UnicodeAttribute(null=True)
    quiet_end = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()


# --- usage aggregates (core/store/usage.py, docs/ARCHITECTURE.md "Usage aggregates") ----


class UsageItem(_Base):
    """An account's usage of one local day (`period` = `day#YYYY-MM-DD`) or month
    (`month#YYYY-MM`), added to in the transaction that rates each reading. Besides the
    keys, flat number attributes named by core/store/usage.py (quantity and fen per meter
    and band, ADDed; a day's latest average power per meter, SET): not declared here, read
    raw."""

    Meta = _meta("usage", stream_view_type="NEW_AND_OLD_IMAGES")  # the report rollups' feed (docs/reports.md)
    account_id = UnicodeAttribute(hash_key=True)
    period = UnicodeAttribute(range_key=True)


# --- admin recipients of notifications (core/store/notify_recipients.py, issue 13) ----------


class NotifyRecipientItem(_Base):
    """Who among a property's staff is told of one admin event type: a JSON list of
    [channel, to] pairs (channel email | sms | template), changed under `version`."""

    Meta = _meta("notify_recipients")
    property_id = UnicodeAttribute(hash_key=True)
    event_type = UnicodeAttribute(range_key=True)
    recipients = UnicodeAttribute(default="[]")
    version = NumberAttribute(default=0)
    updated_at = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)


# --- notification consents (core/store/consents.py, docs/notifications.md "Channels") -----


class ConsentItem(_Base):
    """One-time mini-program subscribe-message grants of a WeChat user for one catalog
    template: `remaining` is ADDed by each accepted prompt and taken one by one (a
    conditional decrement) by each message sent."""

    Meta = _meta("consents")
    openid = UnicodeAttribute(hash_key=True)
    template_key = UnicodeAttribute(range_key=True)
    remaining = NumberAttribute(default=0)
    granted_total = NumberAttribute(default=0)
    updated_at = UnicodeAttribute(null=True)


# --- the delivery log of notifications (core/store/deliveries.py, docs/notifications.md) ---


class DeliveriesByAccount(GlobalSecondaryIndex):
    """Sparse: deliveries about an account (a tenant's, and admins' about the account)."""

    Meta = _index_meta("by_account", AllProjection())
    account_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DeliveriesByProperty(GlobalSecondaryIndex):
    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DeliveryItem(_Base):
    """One message to one recipient on one channel, keyed by its deterministic delivery id
    (event or repeat key, channel, recipient): the conditional claim that makes it sent once,
    and the delivery log (recipient masked)."""

    Meta = _meta("deliveries")
    delivery_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    account_id = UnicodeAttribute(null=True)
    event_ref = UnicodeAttribute()
    kind = UnicodeAttribute()
    channel = UnicodeAttribute()
    recipient = UnicodeAttribute()
    status = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    consent = BooleanAttribute(null=True)  # a subscribe grant was taken for it (not taken again on a retry)
    provider_id = UnicodeAttribute(null=True)
    detail = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute(null=True)
    lease_until = UnicodeAttribute(null=True)  # while sending: another copy may take it over after this
    claim_token = UnicodeAttribute(null=True)  # the last claim's (a claim whose answer was lost is known as ours)
    next_at = UnicodeAttribute(null=True)  # retrying / deferred: when it is tried again
    purge_at = TTLAttribute(null=True)
    by_account = DeliveriesByAccount()
    by_property = DeliveriesByProperty()


# --- charge items and bills (core/store/charge_items.py, core/store/bills.py; docs/billing.md) ---


class ChargeItemItem(_Base):
    """A property's charge items (费用项), one item per version: sk `ITEM#<item_id>#<version:04d>`
    (`body`: the version as JSON, core/domain/charge_items.py), and the property's late fee
    rule: sk `RULE#late_fee`."""

    Meta = _meta("charge_items")
    property_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    body = UnicodeAttribute()
    created_at = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)


class BillsByPropertyState(GlobalSecondaryIndex):
    """Sparse (bill items only): a property's bills by stored state and period, for the
    console's list: `list_key` = `<state>#<period>#<account_id>`."""

    Meta = _index_meta("by_property_state", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    list_key = UnicodeAttribute(range_key=True)


class BillItem(_Base):
    """An account's bills (账单), one partition per account: sk `<period>#BILL` (the bill:
    state, total = Σ lines, paid = Σ payments), `<period>#LINE#<charge_id>` (a line, put with
    the total's ADD in one transaction), `<period>#PAY#<payment_id>` (a payment, with paid's)."""

    Meta = _meta("bills", stream_view_type="NEW_IMAGE")  # feeds the finance journal (functions/journal_stream.py)
    account_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()  # bill | line | payment
    period = UnicodeAttribute()
    # the bill
    property_id = UnicodeAttribute(null=True)  # bill items only (the index stays sparse)
    list_key = UnicodeAttribute(null=True)
    building_id = UnicodeAttribute(null=True)
    room_id = UnicodeAttribute(null=True)
    name = UnicodeAttribute(null=True)
    state = UnicodeAttribute(null=True)
    total = NumberAttribute(null=True)
    paid = NumberAttribute(null=True)
    late_fee_total = NumberAttribute(null=True)
    line_count = NumberAttribute(null=True)
    due_date = UnicodeAttribute(null=True)
    confirmed_at = UnicodeAttribute(null=True)
    confirmed_by = UnicodeAttribute(null=True)
    issued_at = UnicodeAttribute(null=True)
    issued_by = UnicodeAttribute(null=True)
    # a line or a payment
    ref_id = UnicodeAttribute(null=True)  # the charge id / the payment id
    amount = NumberAttribute(null=True)
    body = UnicodeAttribute(null=True)  # the line's or payment's other fields as JSON
    created_at = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    by_property_state = BillsByPropertyState()


# --- common-area apportionment (core/store/apportion.py, docs/billing.md "Common-area apportionment") --


class ApportionItem(_Base):
    """A property's apportionment groups (`sk` = `group#<group_id>`: the settings as JSON,
    changed under `version`) and runs (`run#<group_id>#<YYYY-MM>`: the stored preview as
    JSON, `status` previewed | approved | posted, `version` = the preview's revision), in
    one partition per property: a property's groups are one Query, another's are never read."""

    Meta = _meta("apportion")
    property_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    doc = UnicodeAttribute()
    version = NumberAttribute(default=0)
    status = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    approved_at = UnicodeAttribute(null=True)
    approved_by = UnicodeAttribute(null=True)
    posted_at = UnicodeAttribute(null=True)


# --- deposits (押金: core/store/deposits.py, docs/billing.md "Deposits") -------------------------


class DepositItem(_Base):
    """An account's deposit, one partition per account: sk `HELD` (what is held now = Σ
    movements, never below zero) and `MOV#<movement_id>` (one movement: taken, refunded,
    applied), each movement put with the ADD to held in one transaction."""

    Meta = _meta("deposits")
    account_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    property_id = UnicodeAttribute(null=True)
    held = NumberAttribute(null=True)  # the HELD item
    kind = UnicodeAttribute(null=True)  # a movement: take | refund | apply
    amount = NumberAttribute(null=True)  # a movement: signed fen (take +, refund/apply -)
    method = UnicodeAttribute(null=True)
    ref = UnicodeAttribute(null=True)  # receipt number, or what it was applied to
    actor = UnicodeAttribute(null=True)
    at = UnicodeAttribute(null=True)
    memo = UnicodeAttribute(null=True)


# --- move-out settlements (退租结算: core/store/settlements.py, docs/billing.md "Move-in, move-out and transfer")


class SettlementItem(_Base):
    """One move-out settlement per account (key: the leaving account): its inputs as asked
    first (`doc`, JSON: day, method, readings, transfer), its `status` and the statement
    (结算单, JSON) once worked out; `version` guards every update."""

    Meta = _meta("settlements")
    account_id = UnicodeAttribute(hash_key=True)
    property_id = UnicodeAttribute()
    doc = UnicodeAttribute()
    statement = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)  # reading | closing | refunding | settled
    version = NumberAttribute(default=0)
    created_at = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


# --- finance (core/store/journal.py, docs/finance.md) -------------------------------------------


class JournalItem(_Base):
    """The property-level journal of money movements (订单流水), kept by the stream consumer
    functions/journal_stream.py from the ledger (money kinds), orders, refunds and bill payments:
    `pk` = `<property_id>#<YYYY-MM>` (UTC month of `at`), `sk` = `<at>#<account_id>#<ref>` (`ref`:
    `order:<no>`, `refund:<no>`, `entry:<entry_id>`, `billpay:<period>:<payment_id>`). A row's key
    is deterministic from its source, so a redelivered record rewrites the same item."""

    Meta = _meta("journal")
    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    property_id = UnicodeAttribute()
    at = UnicodeAttribute()
    type = UnicodeAttribute()
    channel = UnicodeAttribute(default="")
    status = UnicodeAttribute()
    amount = NumberAttribute()
    account_id = UnicodeAttribute()
    ref = UnicodeAttribute()
    ref_no = UnicodeAttribute(default="")
    building_id = UnicodeAttribute(default="")
    room_id = UnicodeAttribute(default="")
    tenant_id = UnicodeAttribute(default="")
    tenant_name = UnicodeAttribute(default="")
    account_name = UnicodeAttribute(default="")
    memo = UnicodeAttribute(default="")
    actor = UnicodeAttribute(default="")


class ReconciliationItem(_Base):
    """Each day's WeChat trade-bill reconciliation, per property (对账): sk `DAY#<YYYY-MM-DD>` (the
    day's counts as JSON) and `ROW#<YYYY-MM-DD>#<out_trade_no>` (one trade: its kind, both amounts,
    the action taken, and an admin's review). Property `unknown` holds trades no order names."""

    Meta = _meta("reconciliations")
    property_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    day = UnicodeAttribute()
    doc = UnicodeAttribute()  # the row or the day's summary as JSON (core/domain/finance.py)
    updated_at = UnicodeAttribute(null=True)
    reviewed_at = UnicodeAttribute(null=True)
    reviewed_by = UnicodeAttribute(null=True)
    review_note = UnicodeAttribute(null=True)


# --- batch operations (批量操作: core/store/batch.py, docs/batch.md) ----------------------------------


class BatchByProperty(GlobalSecondaryIndex):
    """Sparse (task items only): a property's tasks, newest first."""

    Meta = _index_meta("by_property", AllProjection())
    property_id = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class BatchDue(GlobalSecondaryIndex):
    """Sparse: scheduled tasks by start time (`due_key` = "DUE" only while scheduled)."""

    Meta = _index_meta("by_due", KeysOnlyProjection())
    due_key = UnicodeAttribute(hash_key=True)
    run_at = UnicodeAttribute(range_key=True)


class BatchTaskItem(_Base):
    """A batch task and its items in one partition: sk `TASK` (operation, parameters as JSON,
    state, schedule) and `ITEM#<00001>` (target, per-row values, state, result as JSON)."""

    Meta = _meta("batch_tasks")
    task_id = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    state = UnicodeAttribute()
    # the task
    property_id = UnicodeAttribute(null=True)  # task items only (the index stays sparse)
    created_at = UnicodeAttribute(null=True)
    op = UnicodeAttribute(null=True)
    params = UnicodeAttribute(null=True)
    total = NumberAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    created_by_name = UnicodeAttribute(null=True)
    title = UnicodeAttribute(null=True)
    run_at = UnicodeAttribute(null=True)
    due_key = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)
    schedule_name = UnicodeAttribute(null=True)
    # an item
    target = UnicodeAttribute(null=True)
    row_values = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    result = UnicodeAttribute(null=True)
    # both
    attempt = NumberAttribute(default=1)
    updated_at = UnicodeAttribute(null=True)
    by_property = BatchByProperty()
    by_due = BatchDue()


# --- report rollups (core/store/rollups.py, docs/reports.md) ------------------------------------


class RollupItem(_Base):
    """A building's report figures (core/store/rollups.py, docs/reports.md): room chunks,
    `scope` = `<property>#<building>#<period>`, `sk` = `CM#<YYYY-MM>#<n>` | `CD#<YYYY-MM-DD>#<n>`
    (the rooms' figures copied from their accounts' summaries by the usage stream's consumer:
    compressed JSON `z`, and `rev`); totals, `scope` = `<property>#<building>`, `sk` =
    `TM#<YYYY-MM>` | `TD#<YYYY-MM-DD>` (flat number attributes named by core/domain/reports.py:
    q#, f#, m#, b#, rooms). Read and written raw."""

    Meta = _meta("rollups")
    scope = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


ALL_MODELS: tuple[type[Model], ...] = (
    DirectoryItem,
    TenantItem,
    AccountItem,
    MeterItem,
    SiteItem,
    LedgerEntryItem,
    TariffItem,
    CommandItem,
    EventItem,
    OrderItem,
    RefundItem,
    TenantSessionItem,
    AdminUserItem,
    ActionLogItem,
    ConsoleCodeItem,
    MembershipItem,
    RateCounterItem,
    RefundRequestItem,
    AlarmPreferenceItem,
    UsageItem,
    NotifyRecipientItem,
    DeliveryItem,
    ConsentItem,
    OtpCodeItem,
    ChargeItemItem,
    BillItem,
    ApportionItem,
    DepositItem,
    SettlementItem,
    JournalItem,
    ReconciliationItem,
    BatchTaskItem,
    RollupItem,
)
