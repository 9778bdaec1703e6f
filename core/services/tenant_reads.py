"""The tenant API's reads (docs/tenant-api.md, "Reads"): my accounts, one account, its
meters, its statement and orders, a receipt. Access goes through core.services.tenancy
(another tenant's id is a 404 like a missing one); the words are core/domain/tenant_view.py.

DynamoDB requests per call (bench/api.py measures them), the session check included: the
views are `tenant_required(deferred=True)`, so the first access check of core.services.tenancy
reads the session item in its own BatchGet (docs/tenant-auth.md, "The per-request check"):
- my accounts: the memberships Query and one BatchGet of the session and the accounts
  (tenancy.accounts_of) = 2; property and room names come from a per-process cache
  (NAMES_TTL seconds) filled by one BatchGet for the names it does not hold yet.
- one account: one BatchGet of session, membership and account = 1.
- statement page: one BatchGet of session and membership, one Query of the ledger's
  by_time index = 2.
- orders page: BatchGet of session and membership, one Query of orders.by_account, one
  BatchGet of the payers' nicknames = 3. Meters: session + membership, then by_account
  Query + BatchGet = 3.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from core.domain import tenant_view as rules
from core.domain.directory import Account
from core.domain.errors import NotFound, ValidationError
from core.domain.ledger import Entry
from core.domain.payments import Order, check_out_no
from core.domain.room_detail import MeterDetail
from core.integrations import secrets as secrets_store
from core.services import tenancy
from core.store import ledger as lstore
from core.store import memberships as mstore
from core.store import meters as meter_store
from core.store import payments as pstore
from core.store import tenant_reads as store

NAMES_TTL = 300.0  # seconds a property's or room's name is remembered (they rarely change)
ORDER_NOT_FOUND = "订单不存在"


# --- names (cached) ----------------------------------------------------------------------------


class _Names:
    """Property (name, timezone) and room names, remembered NAMES_TTL seconds."""

    def __init__(self, ttl: float = NAMES_TTL) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._properties: dict[str, tuple[float, tuple[str, str]]] = {}
        self._rooms: dict[tuple, tuple[float, str]] = {}

    def of(self, accounts: list[Account]) -> tuple[dict[str, tuple[str, str]], dict[tuple, str]]:
        now = time.monotonic()
        rooms = {(a.property_id, a.building_id, a.room_id) for a in accounts}
        with self._lock:
            props = {p: v for p, (t, v) in self._properties.items() if now - t < self.ttl}
            known = {k: v for k, v in self._rooms.items() if now - v[0] < self.ttl and k in rooms}
        missing = [r for r in rooms if r not in known or r[0] not in props]
        if missing:
            loaded_props, loaded_rooms = store.place_names(missing)
            with self._lock:
                for p, v in loaded_props.items():
                    self._properties[p] = (now, v)
                for r, name in loaded_rooms.items():
                    self._rooms[r] = (now, name)
            props.update(loaded_props)
            known.update({r: (now, n) for r, n in loaded_rooms.items()})
        return props, {r: v[1] for r, v in known.items()}

    def clear(self) -> None:
        with self._lock:
            self._properties.clear()
            self._rooms.clear()


NAMES = _Names()


# --- accounts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantAccount:
    account: Account
    property_name: str
    room_name: str
    supply: rules.Supply
    alarm_level: int
    restore_line: int
    forecast: dict | None


def _forecast(account: Account) -> dict | None:
    """The balance forecast of core.services.usage (area A): from the account item itself."""
    try:
        from core.services.usage import forecast
    except ImportError:  # not there yet: the Account says so with forecast.days = null
        return None
    return forecast(account)


def _view(a: Account, props: dict[str, tuple[str, str]], rooms: dict[tuple, str]) -> TenantAccount:
    prop_name, tz = props.get(a.property_id, ("", "Asia/Shanghai"))
    return TenantAccount(
        account=a, property_name=prop_name, room_name=rooms.get((a.property_id, a.building_id, a.room_id), ""),
        supply=rules.supply(a.cut_state, a.cut_due_at, a.balance, a.overdraft_limit, a.restore_line, a.keep_supply, tz,
                           postpaid=a.payment_mode == "postpaid"),
        alarm_level=rules.alarm_level(a.balance, a.alarm_levels),
        restore_line=rules.restore_line(a.restore_line, a.overdraft_limit),
        forecast=_forecast(a),
    )


def my_accounts(openid: str) -> list[TenantAccount]:
    """The WeChat user's accounts, first bound first."""
    accounts = tenancy.accounts_of(openid)
    props, rooms = NAMES.of(accounts) if accounts else ({}, {})
    return [_view(a, props, rooms) for a in accounts]


def account(openid: str, account_id: object) -> TenantAccount:
    a = tenancy.account_of(openid, account_id)
    props, rooms = NAMES.of([a])
    return _view(a, props, rooms)


# --- meters ------------------------------------------------------------------------------------


def meters(openid: str, account_id: object) -> list[MeterDetail]:
    """The account's meters in service (retired ones left out), as last read back."""
    aid = tenancy.require_member(openid, account_id)
    return [m for m in meter_store.meter_details(aid) if not m.retired]


# --- statement and orders ----------------------------------------------------------------------


def _cursor_key() -> bytes:
    return rules.cursor_key(secrets_store.named("jwt"))


@dataclass(frozen=True)
class Page:
    items: list
    next_cursor: str | None


def statement(openid: str, account_id: object, cursor: str | None, limit: int | None) -> Page:
    """A page of the account's ledger entries, newest first."""
    aid = tenancy.require_member(openid, account_id)
    size = rules.page_size(limit)
    key, scope = _cursor_key(), f"statement:{aid}"
    after = rules.decode_cursor(key, scope, cursor, 2)
    entries, last = lstore.entries_page(aid, size, tuple(after) if after else None)
    return Page(entries, rules.encode_cursor(key, scope, list(last)) if last else None)


@dataclass(frozen=True)
class OrderView:
    order: Order
    payer_name: str
    is_me: bool


def _order_views(openid: str, orders: list[Order]) -> list[OrderView]:
    payers = [o.openid for o in orders if o.openid and o.channel == "wechat"]
    names = mstore.nicknames(payers) if payers else {}
    out = []
    for o in orders:
        name, me = rules.order_payer(o.openid, o.channel, openid, names.get(o.openid))
        out.append(OrderView(o, name, me))
    return out


def orders(openid: str, account_id: object, cursor: str | None, limit: int | None) -> Page:
    """A page of the account's orders, newest first, each with who paid (roommates see
    each other's payments)."""
    aid = tenancy.require_member(openid, account_id)
    size = rules.page_size(limit)
    key, scope = _cursor_key(), f"orders:{aid}"
    after = rules.decode_cursor(key, scope, cursor, 2)
    found, last = store.orders_page(aid, size, tuple(after) if after else None)
    return Page(_order_views(openid, found), rules.encode_cursor(key, scope, list(last)) if last else None)


@dataclass(frozen=True)
class Receipt:
    view: OrderView
    account: TenantAccount
    balance_after: int | None


def receipt(openid: str, out_trade_no: str) -> Receipt:
    """An order with its account and the balance right after its credit; a 404 unless the
    user is a member of the order's account."""
    try:
        order = pstore.get_order(check_out_no(out_trade_no, "out_trade_no"))
    except ValidationError:  # a malformed number is answered like a missing order
        raise NotFound(ORDER_NOT_FOUND, code="order_not_found") from None
    if order is None:
        raise NotFound(ORDER_NOT_FOUND, code="order_not_found")
    try:
        a = account(openid, order.account_id)
    except NotFound:
        raise NotFound(ORDER_NOT_FOUND, code="order_not_found") from None
    balance_after = None
    if order.transaction_id:
        entry: Entry | None = lstore.LedgerStore().get_entry(order.account_id, f"pay:{order.transaction_id}")
        balance_after = entry.balance_after if entry is not None else None
    return Receipt(_order_views(openid, [order])[0], a, balance_after)
