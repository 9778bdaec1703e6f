"""A month's report for a property of N rooms (docs/reports.md): its time and DynamoDB requests.

    .venv/bin/python bench/reports.py [--rooms 10000] [--per-building 500] [--entries 3]

Seeding is not timed: raw BatchWriteItem (25 items a request) of items in the store's own
shapes: the directory (buildings, rooms), tenants, accounts, `--entries` ledger entries per
room (each on its own local day of the month) and the summaries those entries leave (the
usage table's month item and one day item per entry: usage, money by key, opening and
closing balance, version). Then the rollup consumer (core/services/reports.py `Rollups`) is
handed those summaries as the usage table's stream would (INSERT images, 100 a batch),
untimed. Timed: what the console's monthly report page computes before rendering (its
route in miniprogram_api/console_reports.py): the property, its buildings (one Query), each
building's month from the rollups (`reports.monthly`: one Query per building) and the
report's tables (`report_export.monthly_report`: rooms, building subtotals, the total) —
cold (a fresh process's first call is in it) and then warm, with the emulator's request
counts around them. The building totals (`reports.by_building`) are read untimed and
checked against the same seeded sums.

Then the same for a second property with twice the entries per room. Targets: the report
(warm) under 1.0 s at N rooms; requests <= buildings + 2 (the property, its buildings, then
one Query per building); requests the same
with twice the entries; the report's figures equal the seeded ones (independent: the sums
the seeding computed). The last line is one JSON object (bench/report.py); exit 3 on a miss.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish  # noqa: E402
from infra.local.stack import dynamodb_request_counts, emulator_for_script  # noqa: E402

MONTH = "2026-10"
RECHARGE = 20_000  # fen, the first entry of each room
BANDS = (("peak", Decimal("3.250"), 325), ("valley", Decimal("1.500"), 75))  # per metered entry


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--per-building", type=int, default=500)
    parser.add_argument("--entries", type=int, default=3, help="ledger entries per room (the second run: twice)")
    parser.add_argument("--repeat", type=int, default=3, help="warm report runs (the best is kept)")
    args = parser.parse_args()
    if not 1 <= args.entries <= 15:
        parser.error("--entries must be 1..15 (twice that stays within the month's days)")
    with emulator_for_script():
        return run(args)


def _batch(client, table: str, items: list[dict]) -> None:
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]
        while requests:
            left = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
            requests = left.get(table, [])


def _n(v) -> dict:
    return {"N": str(v)}


def seed(args, entries: int) -> dict:
    """A property of --rooms rooms with `entries` ledger entries each: entry 1 a recharge on
    day 1, the others metered usage (3.25 kWh peak + 1.5 kWh valley = 4.00 yuan) on days
    2, 3, ...; the summaries they leave. Returns the seeded sums (the independent model)."""
    import boto3

    from core.domain.ledger import format_time
    from core.domain.usage import LOCAL_TZ
    from core.services import directory
    from core.store.models import AccountItem, DirectoryItem, LedgerEntryItem, TenantItem, UsageItem
    from testkit.builders import uid

    pid = uid("p")
    directory.create_property(pid, "报表压测物业")
    per = args.per_building
    buildings = [f"B{b + 1:02d}" for b in range((args.rooms + per - 1) // per)]
    for b in buildings:
        directory.add_building(pid, b, f"{b} 栋")
    client = boto3.client("dynamodb")
    dirs, tenants, accts, ledger, usage = [], [], [], [], []
    expected = {"rooms": args.rooms, "kwh": Decimal(0), "cost": 0, "recharge": 0, "closing": 0}
    now = format_time(datetime.now(UTC))
    for i in range(args.rooms):
        b, r, a, t = buildings[i // per], f"R{i:05d}", f"a-{pid}-{i}", f"t-{pid}-{i}"
        dirs.append({"property_id": {"S": pid}, "sk": {"S": f"ROOM#{b}#{r}"}, "kind": {"S": "room"}, "name": {"S": r},
                     "building_id": {"S": b}, "floor_id": {"S": "F1"}, "room_id": {"S": r}, "area_m2": {"S": "30.00"}})
        tenants.append({"tenant_id": {"S": t}, "property_id": {"S": pid}, "name": {"S": f"租户{i}"},
                        "phone": {"S": "13800000000"}})
        balance, month_attrs = 0, {}
        for n in range(entries):
            day = datetime(2026, 10, n + 1, 12, tzinfo=LOCAL_TZ)
            posted = format_time(day.astimezone(UTC))
            if n == 0:
                amount, kind, attrs = RECHARGE, "recharge", {"m#recharge": RECHARGE}
            else:
                amount, kind = -sum(f for _, _, f in BANDS), "energy"
                attrs = {}
                for band, q, f in BANDS:
                    attrs[f"q#electricity#m-{i}#{band}"] = q
                    attrs[f"f#electricity#m-{i}#{band}"] = f
            before, balance = balance, balance + amount
            ledger.append({"account_id": {"S": a}, "entry_id": {"S": f"e{n}"}, "seq": _n(n + 1), "kind": {"S": kind},
                           "amount": _n(amount), "balance_after": _n(balance), "cause": {"S": "bench"},
                           "actor": {"S": "bench"}, "posted_at": {"S": posted}, "property_id": {"S": pid}})
            usage.append({"account_id": {"S": a}, "period": {"S": f"day#{day.date().isoformat()}"},
                          **{k: _n(v) for k, v in attrs.items()}, "ob": _n(before), "cb": _n(balance), "v": _n(1)})
            for k, v in attrs.items():
                month_attrs[k] = month_attrs.get(k, 0) + v
            month_attrs.setdefault("ob", before)
            month_attrs["cb"] = balance
        usage.append({"account_id": {"S": a}, "period": {"S": f"month#{MONTH}"},
                      **{k: _n(v) for k, v in month_attrs.items()}, "v": _n(entries)})
        accts.append(_account_raw(a, pid, b, r, t, balance, entries, now))
        expected["kwh"] += sum(q for _, q, _ in BANDS) * (entries - 1)
        expected["cost"] += sum(f for _, _, f in BANDS) * (entries - 1)
        expected["recharge"] += RECHARGE
        expected["closing"] += balance
    for model, items in ((DirectoryItem, dirs), (TenantItem, tenants), (AccountItem, accts),
                         (LedgerEntryItem, ledger), (UsageItem, usage)):
        _batch(client, model.Meta.table_name, items)
    return {"property_id": pid, "buildings": len(buildings), "expected": expected, "usage": usage,
            "entries": len(ledger), "building_of": {f"a-{pid}-{i}": buildings[i // per] for i in range(args.rooms)}}


def _account_raw(a: str, pid: str, b: str, r: str, t: str, balance: int, version: int, now: str) -> dict:
    from core.domain.directory import Account
    from core.store.directory import account_item

    item = account_item(Account(a, pid, b, r, t, r, balance, version, opened_at=now), now)
    return item.serialize()


def consume(seeded: dict) -> dict:
    """The rollup consumer, handed the seeded summaries as INSERT stream records, a building
    at a time (as the backfill does; a stream batch is at most `batchSize` records)."""
    from core.services.reports import Rollups

    rollups = Rollups()
    stats: dict[str, int] = {}
    t = time.perf_counter()
    by_building: dict[str, list] = {}
    for img in seeded["usage"]:
        by_building.setdefault(seeded["building_of"][img["account_id"]["S"]], []).append(img)
    for images in by_building.values():
        records = [{"eventName": "INSERT", "dynamodb": {"NewImage": img}} for img in images]
        for k, v in rollups.records(records).items():
            stats[k] = stats.get(k, 0) + v
    return {"seconds": round(time.perf_counter() - t, 2), **stats}


def month_report(pid: str):
    """What the console's monthly report page (and its Excel export) computes before it
    renders (miniprogram_api/console_reports.py `monthly`): the property, its buildings,
    every room's month from the rollups, and the report's tables (rooms, building
    subtotals, the total)."""
    from core.domain import report_export
    from core.services import charge_items, reports, tariffs

    tariffs.property_of(pid)
    buildings = charge_items.buildings(pid)
    rows = reports.monthly(pid, MONTH, building_ids=[b.building_id for b in buildings])
    return rows, report_export.monthly_report(MONTH, rows, {b.building_id: b.name for b in buildings})


def report(seeded: dict, repeat: int) -> dict:
    from core.services import reports

    pid = seeded["property_id"]
    timings, counts = [], []
    rows = made = None
    for _ in range(1 + repeat):  # the first: cold (a fresh process's imports and connections)
        before = dynamodb_request_counts()
        t = time.perf_counter()
        rows, made = month_report(pid)
        timings.append(time.perf_counter() - t)
        after = dynamodb_request_counts()
        counts.append({k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)})
    # the building totals (a stream-kept sum, not the rooms' sum): untimed, checked
    totals = reports.by_building(pid, MONTH)
    e = seeded["expected"]
    exact = (len(rows) == e["rooms"]
             and sum(r.total_quantity("electricity") for r in rows) == e["kwh"]
             and sum(r.total_cost("electricity") for r in rows) == e["cost"]
             and sum(r.money.get("recharge", 0) for r in rows) == e["recharge"]
             and sum(r.closing or 0 for r in rows) == e["closing"]
             and [made.figure(k) for k in ("kwh", "electricity_cost", "payments", "closing")]
             == [e["kwh"], e["cost"], e["recharge"], e["closing"]]
             and len(made.buildings) == seeded["buildings"]
             and sum(t.rooms for t in totals) == e["rooms"]
             and sum(t.cost["electricity"] for t in totals) == e["cost"]
             and sum(t.money.get("recharge", 0) for t in totals) == e["recharge"]
             and all(r.tenant_name.startswith("租户") for r in rows))
    return {"cold_seconds": round(timings[0], 3), "seconds": round(min(timings[1:]), 3),
            "requests": sum(counts[-1].values()), "requests_by_operation": counts[-1], "exact": exact}


def run(args) -> int:
    runs = {}
    for entries in (args.entries, args.entries * 2):
        seeded = seed(args, entries)
        rollup = consume(seeded)
        runs[entries] = {"ledger_entries": seeded["entries"], "buildings": seeded["buildings"], "rollup": rollup,
                         **report(seeded, args.repeat)}
        print(f"{args.rooms} rooms, {entries} entries each: {runs[entries]}", file=sys.stderr)
    first, second = runs[args.entries], runs[args.entries * 2]
    buildings = first["buildings"]
    result = {"bench": "reports", "rooms": args.rooms, "buildings": buildings, "runs": list(runs.values()),
              "seconds": first["seconds"], "requests": first["requests"]}
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish(result, {
        "report_seconds": ("the monthly report page's data (property, buildings, rooms, report tables) "
                           "under 1.0 s (warm)", max(first["seconds"], second["seconds"]) < 1.0),
        # the property (GetItem), its buildings (Query), then one Query per building
        "requests_per_building": (f"requests <= buildings + 2 ({buildings + 2})",
                                  max(first["requests"], second["requests"]) <= buildings + 2),
        "requests_independent_of_entries": ("the same requests with twice the ledger entries per room",
                                            first["requests"] == second["requests"]),
        "exact": ("the report's figures equal the seeded sums", first["exact"] and second["exact"]),
    })


if __name__ == "__main__":
    sys.exit(main())
