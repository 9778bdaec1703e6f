"""Reports (报表) and the income figures, read from the building rollups, never from the
ledger or readings (docs/reports.md); and the rollup consumer that keeps them.

- `monthly`, `totals`, `by_building`, `comparison`, `top_consumers`, `income`: rollups only
  (core/store/rollups.py): one Query per building and period range, plus the directory
  (one Query) and the tenants (one Query) for names.
- `arrears`: live balances (accounts below zero) and the issued bills still owed.
- `shared_loss`: the apportionment runs of the period (core/store/apportion.py).
- `Rollups.records(...)`: the usage table's stream (functions/report_rollup.py) turned into
  room changes and applied exactly once (core/store/rollups.py); `Rollups.backfill(...)`
  rebuilds a property's rollups from the summaries (idempotent: run it any time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from decimal import Decimal

from cachetools import LRUCache

from core.domain import reports as rules
from core.domain.bills import bill_id_of
from core.domain.clock import utcnow
from core.domain.errors import NotFound, ValidationError
from core.domain.reports import PeriodTotals, RoomPeriod
from core.domain.usage import KINDS, LOCAL_TZ
from core.store import apportion as apportion_store
from core.store import bills as bills_store
from core.store import charge_items as charge_items_store
from core.store import directory as directory_store
from core.store import rollups as store

GRANULARITIES = ("day", "month", "year")
MAX_PERIODS = {"day": 92, "month": 120, "year": 10}
PARALLEL = 8  # building Queries in flight at once
CATEGORY_TTL = 300.0  # seconds a property's item -> category map is trusted


# --- input ------------------------------------------------------------------------------------


def _month(value: object, field: str = "month") -> str:
    if isinstance(value, str) and len(value) == 7 and value[4] == "-":
        try:
            date(int(value[:4]), int(value[5:]), 1)
            return value
        except ValueError:
            pass
    raise ValidationError("月份格式应为 YYYY-MM", code="month_invalid", field=field)


def _period(granularity: str, value: object, field: str) -> str:
    fmt = {"day": ("YYYY-MM-DD", 10), "month": ("YYYY-MM", 7), "year": ("YYYY", 4)}[granularity]
    try:
        if not isinstance(value, str) or len(value) != fmt[1]:
            raise ValueError
        if granularity == "day":
            date.fromisoformat(value)
        elif granularity == "month":
            _month(value)
        else:
            date(int(value), 1, 1)
        return value
    except (ValueError, ValidationError):
        raise ValidationError(f"日期格式应为 {fmt[0]}", code="period_invalid", field=field) from None


def _periods(granularity: str, start: object, end: object) -> list[str]:
    if granularity not in GRANULARITIES:
        raise ValidationError("统计粒度只能是 day、month 或 year", code="granularity_invalid", field="granularity")
    first, last = _period(granularity, start, "start"), _period(granularity, end, "end")
    if first > last:
        raise ValidationError("开始日期不能晚于结束日期", code="range_invalid", field="start")
    if granularity == "day":
        a, b = date.fromisoformat(first), date.fromisoformat(last)
        out = [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]
    elif granularity == "month":
        out, m = [], first
        while m <= last:
            out.append(m)
            m = rules.previous_month(m, -1)
    else:
        out = [f"{y:04d}" for y in range(int(first), int(last) + 1)]
    if len(out) > MAX_PERIODS[granularity]:
        raise ValidationError(f"一次最多查询 {MAX_PERIODS[granularity]} 个周期", code="range_too_long", field="end")
    return out


def _buildings(property_id: str, building_id: str | None) -> tuple[list[str], dict[str, str], dict]:
    """The property's building ids (or just building_id), room names and the tree (one Query)."""
    prop, blds, _floors, rms = directory_store.property_tree(property_id)
    if prop is None:
        raise NotFound("物业不存在", code="property_not_found")
    ids = [b.building_id for b in blds]
    if building_id is not None:
        if building_id not in ids:
            raise NotFound("楼栋不存在", code="building_not_found")
        ids = [building_id]
    room_names = {f"{r.building_id}/{r.room_id}": r.name for r in rms}
    return ids, room_names, {b.building_id: b.name for b in blds}


# --- rooms ------------------------------------------------------------------------------------


def _room_period(property_id: str, doc: dict, period: str) -> RoomPeriod:
    """A stored room (core/store/rollups.py `_doc`: bands already in order) as a RoomPeriod."""
    billed = doc.get("bl", {})
    money = dict(doc.get("m", {}))
    for k, v in billed.items():
        money[k] = money.get(k, 0) + v
    return RoomPeriod(property_id, doc.get("b", ""), doc.get("r", ""), doc.get("a", ""),
                      doc.get("rn") or doc.get("r", ""), doc.get("tn", ""), period,
                      {u: {b: Decimal(q) for b, q in bands.items()} for u, bands in doc.get("q", {}).items()},
                      doc.get("c", {}), money, doc.get("ob"), doc.get("cb"), billed)


def _each(fn, items: list):
    """fn over items, a few at once (one Query per building: they overlap on the wire)."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(items))) as pool:
        return list(pool.map(fn, items))


def _building_ids(property_id: str, building_id: str | None) -> list[str]:
    """The property's buildings (or just building_id): a GetItem and a Query of the directory."""
    if directory_store.get_property(property_id) is None:
        raise NotFound("物业不存在", code="property_not_found")
    ids = [b.building_id for b in directory_store.buildings(property_id)]
    if building_id is not None:
        if building_id not in ids:
            raise NotFound("楼栋不存在", code="building_not_found")
        return [building_id]
    return ids


def monthly(property_id: str, month: str, building_id: str | None = None,
            building_ids: list[str] | None = None) -> list[RoomPeriod]:
    """Every room (account) with figures in the month, sorted by building, room (then account).
    Room and tenant names are the rollup's (set when the room's figures last changed).
    Requests: the directory (2; none when the caller passes the property's `building_ids`,
    as the console's page does, having read them already) + one Query per building."""
    month = _month(month)
    if building_ids is None:
        building_ids = _building_ids(property_id, building_id)
    elif building_id is not None:
        if building_id not in building_ids:
            raise NotFound("楼栋不存在", code="building_not_found")
        building_ids = [building_id]
    docs = _each(lambda b: store.rooms(property_id, b, month), building_ids)
    out = [_room_period(property_id, doc, month) for building in docs for doc in building]
    return sorted(out, key=lambda r: (r.building_id, r.room_id, r.account_id))


def top_consumers(property_id: str, month: str, utility: str, n: int = 10) -> list[RoomPeriod]:
    """The n rooms that used the most of a utility in the month (ties: building, room)."""
    if utility not in KINDS:
        raise ValidationError("能源类型只能是 electricity 或 water", code="utility_invalid", field="utility")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
        raise ValidationError("数量应在 1 到 1000 之间", code="n_invalid", field="n")
    rows = [r for r in monthly(property_id, month) if r.total_quantity(utility) > 0]
    rows.sort(key=lambda r: (-r.total_quantity(utility), r.building_id, r.room_id))
    return rows[:n]


# --- totals -----------------------------------------------------------------------------------


def _building_totals(property_id: str, building_id: str, granularity: str, periods: list[str]) -> dict[str, list]:
    """period -> the totals items (flat attributes) that make it, for one building: one Query
    (a year: its months)."""
    if granularity == "year":
        items = store.totals(property_id, building_id, f"{periods[0]}-01", f"{periods[-1]}-12")
        key = 4
    else:
        items = store.totals(property_id, building_id, periods[0], periods[-1])
        key = 10 if granularity == "day" else 7
    out: dict[str, list] = {p: [] for p in periods}
    for item in items:
        p = store.period_of(str(item["sk"]))[:key]
        if p in out:
            out[p].append({k: v for k, v in item.items() if not isinstance(v, str)})
    return out


def totals(property_id: str, granularity: str, start: str, end: str, building_id: str | None = None
           ) -> list[PeriodTotals]:
    """One PeriodTotals per period from start to end (inclusive; every period present), of
    one building or (None) the whole property (building_id ""). A year sums its months; its
    `rooms` is the most rooms any of its months had, per building."""
    periods = _periods(granularity, start, end)
    ids = _building_ids(property_id, building_id)
    per_period: dict[str, list] = {p: [] for p in periods}
    for found in _each(lambda b: _building_totals(property_id, b, granularity, periods), ids):
        for p, items in found.items():
            if granularity == "year" and items:
                rooms = max(int(i.get("rooms", 0)) for i in items)
                items = [{**i, "rooms": 0} for i in items] + [{"rooms": rooms}]
            per_period[p] += items
    return [rules.period_totals(p, building_id or "", per_period[p]) for p in periods]


def by_building(property_id: str, period: str) -> list[PeriodTotals]:
    """Each building's totals for one day, month or year (by the period's length)."""
    granularity = {10: "day", 7: "month", 4: "year"}.get(len(period) if isinstance(period, str) else 0)
    if granularity is None:
        raise ValidationError("周期格式应为 YYYY-MM-DD、YYYY-MM 或 YYYY", code="period_invalid", field="period")
    _period(granularity, period, "period")
    ids = _building_ids(property_id, None)
    found = _each(lambda b: _building_totals(property_id, b, granularity, [period])[period], ids)
    per: dict[str, list] = dict(zip(ids, found, strict=True))
    for b in ids:
        if granularity == "year" and per[b]:
            rooms = max(int(i.get("rooms", 0)) for i in per[b])
            per[b] = [{**i, "rooms": 0} for i in per[b]] + [{"rooms": rooms}]
    return [rules.period_totals(period, b, per[b]) for b in ids]


def comparison(property_id: str, month: str) -> dict:
    """This month, the month before and the same month a year before, per building and for
    the property: quantity and cost per utility, and the ratios (current / base − 1; None
    where the base is 0). One Query per building (13 months)."""
    month = _month(month)
    prev, last_year = rules.previous_month(month), rules.previous_month(month, 12)
    ids, _, names = _buildings(property_id, None)
    per: dict[str, dict[str, PeriodTotals]] = {}
    for b in ids:
        t = {x.period: x for x in totals(property_id, "month", last_year, month, b)}
        per[b] = {"this": t[month], "prev": t[prev], "last_year": t[last_year]}

    def whole(which: str) -> PeriodTotals:
        items = [{**{f"q#{u}": v for u, v in per[b][which].quantity.items()},
                  **{f"f#{u}": v for u, v in per[b][which].cost.items()}, "rooms": per[b][which].rooms} for b in ids]
        return rules.period_totals(month, "", items)

    buildings = []
    for b in ids:
        row = rules.compare(per[b]["this"], per[b]["prev"], per[b]["last_year"])
        row["building_name"] = names.get(b, b)
        buildings.append(row)
    prop = rules.compare(whole("this"), whole("prev"), whole("last_year"))
    return {"month": month, "previous_month": prev, "last_year_month": last_year, "buildings": buildings,
            "property": prop}


def income(property_id: str, granularity: str, start: str, end: str) -> list[dict]:
    """Per period: {part in INCOME_PARTS: fen} and total (what was charged in the period)."""
    return [{"period": t.period, **t.income()} for t in totals(property_id, granularity, start, end)]


# --- arrears and losses -----------------------------------------------------------------------


def arrears(property_id: str, clock: Callable[[], datetime] = utcnow) -> list[dict]:
    """Accounts with a negative balance or issued bills still owed: room, tenant, balance,
    unpaid bill total, oldest due date, days overdue (0: nothing past due), sorted by
    building and room. Balances are confirmed with a consistent read."""
    today = clock().astimezone(LOCAL_TZ).date()
    _, room_names, _ = _buildings(property_id, None)
    tenants = directory_store.tenant_contacts(property_id)
    negative = [a for a, _ in directory_store.accounts_below(property_id, 0)]
    owed: dict[str, list] = {}
    for bill in bills_store.bills_of_property(property_id, "issued", limit=None):
        if bill.total - bill.paid > 0:
            owed.setdefault(bill.account_id, []).append(bill)
    out = []
    for a in directory_store.accounts(list(dict.fromkeys([*negative, *owed]))):
        unpaid = owed.get(a.account_id, [])
        if a.balance >= 0 and not unpaid:
            continue  # the index trailed a posting
        dues = [b.due_date for b in unpaid if b.due_date is not None]
        oldest = min(dues) if dues else None
        out.append({
            "account_id": a.account_id, "building_id": a.building_id, "room_id": a.room_id,
            "room_name": room_names.get(f"{a.building_id}/{a.room_id}", a.room_id),
            "tenant_name": tenants.get(a.tenant_id, ("", ""))[0] or a.name,
            "balance": a.balance, "unpaid_bills": sum(b.total - b.paid for b in unpaid),
            "bills": [bill_id_of(b.account_id, b.period) for b in sorted(unpaid, key=lambda b: b.period)],
            "oldest_due": oldest.isoformat() if oldest else None,
            "days_overdue": max(0, (today - oldest).days) if oldest else 0,
        })
    return sorted(out, key=lambda r: (r["building_id"], r["room_id"], r["account_id"]))


def shared_loss(property_id: str, period: str) -> list[dict]:
    """Per apportionment group: the master's usage, Σ sub-meters, the loss and loss ratio
    (percent), flagged; from the group's run of the period (None figures: no run yet)."""
    period = _month(period, "period")
    out = []
    for g in apportion_store.groups(property_id):
        run = apportion_store.get_run(property_id, g.group_id, period)
        r = run.result if run is not None else None
        out.append({
            "group_id": g.group_id, "name": g.name, "master_meter": g.master_meter, "period": period,
            "status": run.status if run else None, "utility": r.utility if r else None,
            "master_usage": r.master_usage if r else None, "sub_usage": r.sub_usage if r else None,
            "loss": r.loss if r else None, "loss_ratio_pct": r.loss_ratio_pct if r else None,
            "threshold_pct": g.loss_threshold_pct, "flagged": bool(r.loss_flag) if r else False,
        })
    return out


# --- the rollup consumer ----------------------------------------------------------------------


class Rollups:
    """The usage table's stream into building rollups (functions/report_rollup.py). Rooms of
    accounts (which never move) and each property's item categories (which never change)
    are remembered per process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, cache_size: int = 20_000) -> None:
        self._rooms: LRUCache = LRUCache(cache_size)
        self._categories: dict[str, tuple[float, dict[str, str]]] = {}
        self._room_names: dict[tuple[str, str], tuple[float, dict[str, str]]] = {}
        self._tenants: dict[str, tuple[float, dict[str, tuple[str, str]]]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _accounts(self, ids: Iterable[str]) -> dict[str, object]:
        ids = list(dict.fromkeys(ids))
        with self._lock:
            missing = [i for i in dict.fromkeys(ids) if i not in self._rooms]
        if missing:
            found = directory_store.accounts(missing)
            with self._lock:
                for a in found:
                    self._rooms[a.account_id] = a
        with self._lock:
            return {i: self._rooms[i] for i in ids if i in self._rooms}

    def categories(self, property_id: str, need: Iterable[str] = ()) -> dict[str, str]:
        """item id -> category of a property's charge items (one Query; again after
        CATEGORY_TTL or when an item id is not known yet)."""
        now = self._clock()
        with self._lock:
            at, known = self._categories.get(property_id, (None, {}))
        if at is None or now - at > CATEGORY_TTL or any(i not in known for i in need):
            known = {v.item_id: v.category for v in charge_items_store.versions(property_id)}
            with self._lock:
                self._categories[property_id] = (now, known)
        return known

    def _names(self, property_id: str, building_id: str, tenant_id: str, room_id: str) -> tuple[str, str]:
        """(room name, tenant name): the building's rooms (one Query) and the property's
        tenants (one Query), remembered CATEGORY_TTL seconds, read again for one not known."""
        now = self._clock()
        key = (property_id, building_id)
        with self._lock:
            at, rooms = self._room_names.get(key, (None, {}))
            t_at, tenants = self._tenants.get(property_id, (None, {}))
        if at is None or now - at > CATEGORY_TTL or room_id not in rooms:
            rooms = {r.room_id: r.name for r in directory_store.rooms(property_id, building_id)}
            with self._lock:
                self._room_names[key] = (now, rooms)
        if tenant_id and (t_at is None or now - t_at > CATEGORY_TTL or tenant_id not in tenants):
            tenants = directory_store.tenant_contacts(property_id)
            with self._lock:
                self._tenants[property_id] = (now, tenants)
        return rooms.get(room_id, room_id), tenants.get(tenant_id, ("", ""))[0]

    def changes(self, images: list[dict]) -> list[store.Change]:
        """New images of summary items as room changes, in order; the images of accounts not
        found (deleted) are left out."""
        plain = [store.plain(new) for new in images]
        accounts = self._accounts(str(n["account_id"]) for n in plain)
        out = []
        for new in plain:
            a = accounts.get(str(new["account_id"]))
            if a is None:
                continue
            items = [k.split("#", 1)[1][len("item:"):] for k in new if k.startswith(("m#item:", "b#item:"))]
            cats = self.categories(a.property_id, items) if items else {}
            room_name, tenant_name = self._names(a.property_id, a.building_id, a.tenant_id, a.room_id)
            out.append(store.Change(
                a.property_id, a.building_id, a.room_id, a.account_id, room_name, tenant_name or a.name,
                str(new["period"]).split("#", 1)[1],
                rules.figures_of_summary({k: v for k, v in new.items() if not isinstance(v, str)}, cats)))
        return out

    def records(self, records: list[dict]) -> dict[str, int]:
        """DynamoDB stream records (raw, as Lambda hands them) of the usage table: INSERT and
        MODIFY copied, REMOVE ignored (summaries are never deleted)."""
        images = [r["dynamodb"]["NewImage"] for r in records
                  if r.get("eventName") in ("INSERT", "MODIFY") and r.get("dynamodb", {}).get("NewImage")]
        return store.apply(self.changes(images))

    def backfill(self, property_id: str) -> dict[str, int]:
        """Rebuild a property's rollups from its accounts' summaries: every room item brought
        to its summary's version, totals by the difference (idempotent; safe beside the
        consumer, which it never undoes: versions only move forward)."""
        _, blds, _, _ = directory_store.property_tree(property_id)
        stats = {"accounts": 0, "summaries": 0}
        for b in blds:
            images = []
            for a in directory_store.accounts_of_building(property_id, b.building_id):
                with self._lock:
                    self._rooms[a.account_id] = a
                stats["accounts"] += 1
                for _period, attrs in store.summaries(a.account_id):
                    images.append({k: ({"S": v} if isinstance(v, str) else {"N": str(v)}) for k, v in attrs.items()})
            stats["summaries"] += len(images)
            for k, v in store.apply(self.changes(images)).items():
                stats[k] = stats.get(k, 0) + v
        return stats


_service: Rollups | None = None


def service() -> Rollups:
    global _service
    if _service is None:
        _service = Rollups()
    return _service
