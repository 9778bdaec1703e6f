"""The tenant API's reads that no other store module has (core/services/tenant_reads.py):
the names of the properties and rooms of a tenant's accounts, and an account's orders a
page at a time. Each is one DynamoDB request."""

from __future__ import annotations

from collections.abc import Iterable

from core.domain.payments import Order
from core.store.directory import PROPERTY_SK
from core.store.models import DirectoryItem, OrderItem
from core.store.payments import _order

BATCH_MAX = 100  # BatchGetItem's limit


def place_names(rooms: Iterable[tuple[str, str, str]]) -> tuple[dict[str, tuple[str, str]], dict[tuple, str]]:
    """({property_id: (name, timezone)}, {(property_id, building_id, room_id): room name})
    of the given rooms and their properties: one BatchGet (per 100 keys)."""
    keys: list[tuple[str, str]] = []
    for property_id, building_id, room_id in rooms:
        keys.append((property_id, PROPERTY_SK))
        keys.append((property_id, f"ROOM#{building_id}#{room_id}"))
    keys = list(dict.fromkeys(keys))
    properties: dict[str, tuple[str, str]] = {}
    room_names: dict[tuple, str] = {}
    for start in range(0, len(keys), BATCH_MAX):
        for i in DirectoryItem.batch_get(keys[start : start + BATCH_MAX],
                                         attributes_to_get=["property_id", "sk", "kind", "name", "timezone",
                                                            "building_id", "room_id"]):
            if i.kind == "property":
                properties[i.property_id] = (i.name, i.timezone or "Asia/Shanghai")
            elif i.kind == "room":
                room_names[(i.property_id, i.building_id, i.room_id)] = i.name
    return properties, room_names


def orders_page(account_id: str, limit: int, after: tuple[str, str] | None = None
                ) -> tuple[list[Order], tuple[str, str] | None]:
    """An account's orders newest first, `limit` of them after (created_at, out_trade_no)
    of the previous page's last order; and that pair for the next page, None on the last
    page. One Query of orders.by_account for limit + 1 items."""
    start = None
    if after is not None:
        created_at, out_trade_no = after
        start = {"account_id": {"S": account_id}, "created_at": {"S": created_at},
                 "out_trade_no": {"S": out_trade_no}}
    items = list(OrderItem.by_account.query(account_id, scan_index_forward=False, limit=limit + 1,
                                            page_size=limit + 1, last_evaluated_key=start))
    orders = [_order(i) for i in items[:limit]]
    more = len(items) > limit and orders
    return orders, ((orders[-1].created_at, orders[-1].out_trade_no) if more else None)
