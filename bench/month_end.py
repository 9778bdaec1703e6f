"""Month-end at scale (docs/billing.md "Month-end at scale"): charge items, apportionment
previews (one group per building) and post-paid bills for N rooms, through the Lambda
handlers (functions/month_end.py: the schedule's handler queues the property, the worker
drains the month-end queue: property -> previews + building messages -> buildings); then
the same for 2N rooms.

The baseline, in the same run and emulator: **the very TransactWriteItems month-end sent,
replayed raw** with boto3, one after another in the order they were sent, on twin tables
(same keys, indexes and streams) holding the data as it was before month-end: the writes
month-end cannot avoid. ratio = replay time / month-end time, so it measures what month-end
adds to its own writes (its reads, its Python, its retries). A transaction costs the
emulator by its size (a posting carries its bill line, report summary and control state),
so a fixed two-item transaction says little; that one (an entry put + an account update, as
the first version of this bench used) is still printed as `ratio_2item` for comparison.
Seeding is not timed: raw BatchWriteItem (pynamodb batch_write, 25 items a request) of
items in the store's own shapes; nor is copying the twin tables.

    .venv/bin/python bench/month_end.py [--rooms 10000] [--per-building 500] [--postpaid-every 10] [--rerun]

Each room: 物业费 (area x price, deducted), 租金 (fixed, billed; its bill confirmed and
issued), every `--postpaid-every`-th room post-paid with 25.50 kWh in the closed month.
Targets: ratio >= 0.7 at N rooms; the 2N-room run <= 2.2x the N-room run; every balance
equals the sum of its entries and every bill's lines sum to its total (sampled); with
--rerun, running the N-room month again changes nothing (sampled). Phase times are summed
over the worker's threads. The last line is one JSON object (bench/report.py); the exit
code is 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish  # noqa: E402
from infra.local.stack import dynamodb_request_counts, emulator_for_script  # noqa: E402

PERIOD, CHARGE_PERIOD = "2026-10", "2026-11"
PLAN = {"plan_id": "bench-flat", "name": "压测平价", "utility": "electricity",
        "versions": [{"effective_from": "2020-01-01T00:00:00+08:00", "prices": {"flat": "1.0000"}}]}
OPENING = 1_000_000  # fen: every prepaid room can pay its fee
POSTPAID_KWH = Decimal("25.50")
MASTER_KWH = Decimal("1000.00")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--per-building", type=int, default=500)
    parser.add_argument("--postpaid-every", type=int, default=10)
    parser.add_argument("--sample", type=int, default=200, help="accounts checked for exactness after the runs")
    parser.add_argument("--rerun", action="store_true", help="run the N-room month again and check nothing changed")
    args = parser.parse_args()
    if not 1 <= args.per_building <= 500:  # an apportionment group holds at most 500 rooms
        parser.error("--per-building must be 1..500")
    with emulator_for_script():
        return run(args)


def total(counts: dict) -> int:
    return sum(counts.values())


class Bench:
    def __init__(self, args) -> None:
        from core.domain.admins import AdminPrincipal
        from testkit.builders import Clock, uid

        self.args = args
        self.uid = uid
        self.clock = Clock(datetime(2026, 10, 31, 16, 5, tzinfo=UTC))  # 00:05 on 1 November in Shanghai
        self.admin = AdminPrincipal("bench", "压测管理员", "bench", "owner", ())

    # -- seeding (not timed) ---------------------------------------------------------------------

    def seed(self, rooms: int) -> dict:
        """A property of `rooms` rooms in buildings of --per-building, a 公区 building holding one
        master meter's account per building, the charge items, one apportionment group per
        building. Returns what the checks need."""
        from core.domain.directory import Account
        from core.domain.ledger import format_time
        from core.services import apportion, charge_items, directory, tariffs
        from core.store.directory import account_item
        from core.store.models import AccountItem, DirectoryItem, LedgerEntryItem, MeterItem, UsageItem

        now = format_time(datetime.now(UTC))
        pid = self.uid("p")
        directory.create_property(pid, "月末压测物业")
        plan_id = tariffs.import_plan(pid, dict(PLAN, plan_id=self.uid("plan")), "bench").plan_id
        per = self.args.per_building
        buildings = [f"B{b + 1:02d}" for b in range((rooms + per - 1) // per)]
        for b in [*buildings, "PUB"]:
            directory.add_building(pid, b, f"{b} 栋")
            directory.add_floor(pid, b, "F1", "1 层", 1)
        accounts, postpaid, masters = [], [], {}
        usage_rows = []
        with DirectoryItem.batch_write() as dirs, AccountItem.batch_write() as accts, \
                LedgerEntryItem.batch_write() as entries, MeterItem.batch_write() as meters:
            def room(b: str, r: str, account_id: str, balance: int, mode: str = "") -> None:
                dirs.save(DirectoryItem(pid, f"ROOM#{b}#{r}", kind="room", name=r, building_id=b, floor_id="F1",
                                        room_id=r, area_m2="30.00"))
                item = account_item(Account(account_id, pid, b, r, f"t-{account_id}", r, balance, 1, opened_at=now), now)
                if mode:
                    item.payment_mode = mode
                accts.save(item)
                entries.save(LedgerEntryItem(account_id, f"open:{account_id}", seq=1, kind="opening", amount=balance,
                                             balance_after=balance, cause=f"account:{account_id}", actor="bench",
                                             posted_at=now, property_id=pid))

            def meter(account_id: str, meter_id: str, address: int) -> None:
                meters.save(MeterItem(meter_id, property_id=pid, account_id=account_id, site_id=f"s-{pid}",
                                      kind="electric_1p", model="acrel-ddsy1352", bus="bus1", address=address % 247 + 1,
                                      billing_mode="cloud", rated_kw="10", relay_state="closed", online=True,
                                      plan_id=plan_id))

            for i in range(rooms):
                b, r = buildings[i // per], f"R{i:05d}"
                a = f"a-{pid}-{i}"
                if self.args.postpaid_every and i % self.args.postpaid_every == 0:
                    fen = int(POSTPAID_KWH * 100)
                    room(b, r, a, -fen, "postpaid")
                    meter(a, f"m-{pid}-{i}", i)
                    usage_rows.append((a, f"m-{pid}-{i}", POSTPAID_KWH, fen))
                    postpaid.append(a)
                else:
                    room(b, r, a, OPENING)
                accounts.append(a)
            for n, b in enumerate(buildings):
                a, m = f"a-{pid}-pub-{b}", f"m-{pid}-pub-{b}"
                room("PUB", f"PUB{b}", a, OPENING)
                meter(a, m, rooms + n)
                usage_rows.append((a, m, MASTER_KWH, int(MASTER_KWH * 100)))
                masters[b] = m
                accounts.append(a)
        import boto3

        client = boto3.client("dynamodb")
        table = UsageItem.Meta.table_name
        for start in range(0, len(usage_rows), 25):
            requests = [{"PutRequest": {"Item": {
                "account_id": {"S": a}, "period": {"S": f"month#{PERIOD}"},
                f"q#electricity#{m}#flat": {"N": str(q)}, f"f#electricity#{m}#flat": {"N": str(fen)}}}}
                for a, m, q, fen in usage_rows[start:start + 25]]
            while requests:
                left = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
                requests = left.get(table, [])
        charge_items.create(pid, {"item_id": "fee", "name": "物业费", "category": "property_fee", "basis": "area",
                                  "price": "2.35", "cycle": "month", "start": "2026-01-01", "mode": "deduct"}, "bench")
        charge_items.create(pid, {"item_id": "rent", "name": "租金", "category": "rent", "basis": "fixed",
                                  "price": "1500.00", "cycle": "month", "start": "2026-01-01", "mode": "bill",
                                  "due_days": 10}, "bench")
        for b in buildings:
            members = [{"building_id": b, "room_id": f"R{i:05d}"}
                       for i in range(buildings.index(b) * per, min(rooms, (buildings.index(b) + 1) * per))]
            apportion.save_group(self.admin, pid, {"name": f"{b} 公区照明", "master_meter": masters[b],
                                                   "usage_mode": "master", "method": "area", "vacant_share": False,
                                                   "mode": "bill", "members": members}, clock=self.clock)
        return {"property_id": pid, "accounts": accounts, "postpaid": postpaid, "buildings": len(buildings)}

    # -- month-end (timed) -----------------------------------------------------------------------

    def month_end(self, seeded: dict) -> dict:
        from core.integrations.queues import month_end_url
        from core.services import month_end as service
        from functions import month_end
        from infra.fakes.sitesim import LambdaContext, drain_uplink

        me = service.MonthEnd(clock=self.clock)
        service._default = me  # the warm worker's service, on the bench's clock
        phases: dict[str, float] = defaultdict(float)

        def timed(name, fn):
            def wrapper(*a, **kw):
                t = time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    phases[name] += time.perf_counter() - t
            return wrapper

        me.run_property = timed("property: previews + fan-out", me.run_property)
        me.bills.apply_charges = timed("charge items", me.bills.apply_charges)
        me.postpaid.bill_period = timed("post-paid bills", me.postpaid.bill_period)
        me._issue = timed("issuing", me._issue)
        me.run_building = timed("buildings (all)", me.run_building)
        sent = self.capture_transactions()
        before = dynamodb_request_counts()
        t = time.perf_counter()
        month_end.handler({"period": PERIOD, "property_ids": [seeded["property_id"]]}, LambdaContext())
        handled = 0
        while True:  # the worker drains the queue as the event source mapping would
            n = drain_uplink(month_end_url(), month_end.worker)
            handled += n
            if not n:
                break
        elapsed = time.perf_counter() - t
        self.stop_capture()
        after = dynamodb_request_counts()
        counts = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        assert handled == 1 + seeded["buildings"] + 1, handled  # the property, its buildings, the 公区 building
        return {"seconds": elapsed, "requests": total(counts), "transactions": counts.get("TransactWriteItems", 0),
                "counts": {k: v for k, v in sorted(counts.items()) if v}, "phases": dict(phases), "sent": sent}

    # -- the baseline: month-end's own transactions, replayed raw ---------------------------------

    def capture_transactions(self) -> list[dict]:
        """Every TransactWriteItems' parameters, in the order sent (a hook on the store's
        botocore clients: core/store/connections.py)."""
        import copy
        import threading

        from core.store import connections

        sent: list[dict] = []
        lock = threading.Lock()

        def hook(params, **_):
            with lock:
                sent.append(copy.deepcopy(params))

        self._hooked = []
        for retries in (None, 0, 3):
            events = connections.connection(retries).client.meta.events
            events.register("before-parameter-build.dynamodb.TransactWriteItems", hook, unique_id=f"bench-{id(sent)}")
            self._hooked.append((events, f"bench-{id(sent)}"))
        return sent

    def stop_capture(self) -> None:
        for events, uid in self._hooked:
            events.unregister("before-parameter-build.dynamodb.TransactWriteItems", unique_id=uid)

    def twin_tables(self, suffix: str, accounts: list[str]) -> dict[str, str]:
        """A twin of every table (keys, indexes, stream); the account-keyed tables' twins hold
        what these accounts' partitions hold now (the emulator may hold other data: the
        smoke test shares its worker's)."""
        import boto3

        client = boto3.client("dynamodb")
        names = [n for page in client.get_paginator("list_tables").paginate() for n in page["TableNames"]
                 if "-twin" not in n]
        twins = {}
        for name in names:
            d = client.describe_table(TableName=name)["Table"]
            twin = f"{name}-twin{suffix}"
            spec = {"TableName": twin, "KeySchema": d["KeySchema"], "AttributeDefinitions": d["AttributeDefinitions"],
                    "BillingMode": "PAY_PER_REQUEST"}
            for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if d.get(kind):
                    spec[kind] = [{k: g[k] for k in ("IndexName", "KeySchema", "Projection")} for g in d[kind]]
            if (d.get("StreamSpecification") or {}).get("StreamEnabled"):
                spec["StreamSpecification"] = {"StreamEnabled": True,
                                               "StreamViewType": d["StreamSpecification"]["StreamViewType"]}
            client.create_table(**spec)
            twins[name] = twin
            hash_key = next(k["AttributeName"] for k in d["KeySchema"] if k["KeyType"] == "HASH")
            if hash_key != "account_id":
                continue
            batch: list[dict] = []
            for a in accounts:
                for page in client.get_paginator("query").paginate(
                        TableName=name, KeyConditionExpression="account_id = :a",
                        ExpressionAttributeValues={":a": {"S": a}}):
                    for item in page["Items"]:
                        batch.append({"PutRequest": {"Item": item}})
                        if len(batch) == 25:
                            self._write(client, twin, batch)
                            batch = []
            if batch:
                self._write(client, twin, batch)
        return twins

    @staticmethod
    def _write(client, table: str, requests: list[dict]) -> None:
        while requests:
            left = client.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
            requests = left.get(table, [])

    def replay(self, sent: list[dict], twins: dict[str, str]) -> tuple[float, int]:
        """Month-end's transactions, raw, one after another on the twins: (seconds, refused).
        A transaction month-end saw refused (a condition: e.g. a split planned again) is
        refused here too: it cost the emulator as much there."""
        import boto3

        client = boto3.client("dynamodb")
        for params in sent:
            for op in params["TransactItems"]:
                body = next(iter(op.values()))
                body["TableName"] = twins[body["TableName"]]
        refused = 0
        t = time.perf_counter()
        for params in sent:
            try:
                client.transact_write_items(**params)
            except client.exceptions.TransactionCanceledException:
                refused += 1
        return time.perf_counter() - t, refused

    def drop_twins(self, twins: dict[str, str]) -> None:
        import boto3

        client = boto3.client("dynamodb")
        for twin in twins.values():
            client.delete_table(TableName=twin)

    # -- the raw baseline ------------------------------------------------------------------------

    def raw(self, transactions: int) -> float:
        """`transactions` TransactWriteItems (entry put + account update) on 100 raw accounts."""
        import boto3

        from core.domain.ledger import format_time
        from core.store.models import AccountItem, LedgerEntryItem

        client = boto3.client("dynamodb")
        pool = [f"raw-{self.uid('a')}" for _ in range(100)]
        now = format_time(datetime.now(UTC))
        with AccountItem.batch_write() as batch:
            for a in pool:
                batch.save(AccountItem(a, property_id="bench-raw", building_id="B", building_key="bench-raw#B",
                                       room_id=a, tenant_id="t", name=a, balance=OPENING, version=1,
                                       overdraft_limit=0, status="OPEN", opened_at=now, last_posted_at=now))
        state = {a: [OPENING, 1] for a in pool}
        t = time.perf_counter()
        for i in range(transactions):
            a = pool[i % len(pool)]
            balance, version = state[a]
            b = balance - 7050
            client.transact_write_items(TransactItems=[
                {"Put": {"TableName": LedgerEntryItem.Meta.table_name, "Item": {
                    "account_id": {"S": a}, "entry_id": {"S": f"item:fee:{i}"}, "seq": {"N": str(version + 1)},
                    "kind": {"S": "fee"}, "amount": {"N": "-7050"}, "balance_after": {"N": str(b)},
                    "cause": {"S": f"charge:item:fee:{i}"}, "actor": {"S": "month_end"}, "posted_at": {"S": now},
                    "occurred_at": {"S": now}, "memo": {"S": "物业费"}, "property_id": {"S": "bench-raw"}},
                    "ConditionExpression": "attribute_not_exists(entry_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"Update": {"TableName": AccountItem.Meta.table_name, "Key": {"account_id": {"S": a}},
                            "UpdateExpression": "SET balance = :b, version = :n, last_posted_at = :t",
                            "ConditionExpression": "version = :v",
                            "ExpressionAttributeValues": {":b": {"N": str(b)}, ":n": {"N": str(version + 1)},
                                                          ":t": {"S": now}, ":v": {"N": str(version)}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
            ])
            state[a] = [b, version + 1]
        return time.perf_counter() - t

    # -- checks ----------------------------------------------------------------------------------

    def exact(self, seeded: dict) -> bool:
        """A sample of accounts: balance = Σ entries; their bills' lines sum to the totals; the
        prepaid rooms' fee and rent and the post-paid rooms' energy as worked by hand."""
        from core.services.ledger import LedgerService
        from core.store import bills as bills_store

        ledger = LedgerService()
        step = max(1, len(seeded["accounts"]) // self.args.sample)
        ok = True
        for a in seeded["accounts"][::step]:
            ok &= ledger.verify(a)["ok"]
            for p in (PERIOD, CHARGE_PERIOD):
                b = bills_store.get_bill(a, p)
                if b is not None:
                    ok &= sum(ln.amount for ln in b.lines) == b.total and b.state == "issued"
            rent = bills_store.get_bill(a, CHARGE_PERIOD)
            ok &= rent is not None and {ln.charge_id: ln.amount for ln in rent.lines}.get("item:rent:2026-11") == 150000
            if a in seeded["postpaid"]:
                energy = bills_store.get_bill(a, PERIOD)
                ok &= energy is not None and energy.total == int(POSTPAID_KWH * 100)
            else:
                ok &= ledger.store.get_entry(a, "item:fee:2026-11").amount == -7050
        return bool(ok)

    def fingerprint(self, seeded: dict) -> list:
        from core.services.ledger import LedgerService
        from core.store import bills as bills_store

        ledger = LedgerService()
        step = max(1, len(seeded["accounts"]) // self.args.sample)
        out = []
        for a in seeded["accounts"][::step]:
            out.append((a, ledger.balance(a), len(ledger.store.all_entries(a)),
                        [(b.period, b.state, b.total, b.line_count) for b in bills_store.bills_of_account(a)]))
        return out


def show(rooms: int, r: dict) -> None:
    print(f"{rooms} rooms ({r['seed_seconds']:.1f} s to seed):")
    print(f"  month-end:               {r['seconds']:8.1f} s  ({r['seconds'] / rooms * 1000:.2f} ms a room)")
    for name, s in sorted(r["phases"].items()):
        print(f"    {name:28s} {s:8.1f} s  (summed over the worker's threads)")
    print(f"  its transactions replayed raw: {r['replay_seconds']:8.1f} s  ({r['transactions']} transactions,"
          f" {r['replay_refused']} refused as they were for month-end)")
    print(f"  ratio replay/month-end:  {r['replay_seconds'] / r['seconds']:.3f}  (target >= 0.7)")
    print(f"  two-item raw baseline:   {r['raw_seconds']:8.1f} s  for {r['transactions']} transactions:"
          f" ratio {r['raw_seconds'] / r['seconds']:.3f}")
    print(f"  DynamoDB requests/room:  {r['requests'] / rooms:.2f}  ({r['counts']})")
    sys.stdout.flush()


def run(args) -> int:
    bench = Bench(args)
    results = {}
    exact, rerun_same = True, None  # None: not checked (no --rerun)
    for rooms in (args.rooms, 2 * args.rooms):
        t = time.perf_counter()
        seeded = bench.seed(rooms)
        twins = bench.twin_tables(f"-{rooms}", seeded["accounts"])  # the tables as month-end finds them
        seeded_s = time.perf_counter() - t
        me = bench.month_end(seeded)
        replay_s, refused = bench.replay(me.pop("sent"), twins)
        bench.drop_twins(twins)
        raw_s = bench.raw(me["transactions"])
        results[rooms] = {**me, "replay_seconds": replay_s, "replay_refused": refused, "raw_seconds": raw_s,
                          "seed_seconds": seeded_s}
        exact &= bench.exact(seeded)
        show(rooms, results[rooms])  # as each run ends: a long run's first half survives an interrupted second
        if rooms == args.rooms and args.rerun:  # a rerun of the month changes nothing
            before = bench.fingerprint(seeded)
            again = bench.month_end(seeded)
            rerun_same = bench.fingerprint(seeded) == before
            results[rooms]["rerun_transactions"] = again["transactions"]
    n, n2 = results[args.rooms], results[2 * args.rooms]
    ratio = n["replay_seconds"] / n["seconds"]
    ratio2 = n2["replay_seconds"] / n2["seconds"]
    scaling = n2["seconds"] / n["seconds"]
    print(f"{2 * args.rooms}-room run / {args.rooms}-room run: {scaling:.2f}x  (target <= 2.2)")
    if args.rerun:
        print(f"rerun of the month: {n.get('rerun_transactions')} transactions, nothing changed: {rerun_same}")
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish({"bench": "month_end", "rooms": args.rooms, "ratio": round(ratio, 3),
                   "ratio_2x": round(ratio2, 3), "scaling_2x": round(scaling, 3),
                   "seconds": round(n["seconds"], 2), "seconds_2x": round(n2["seconds"], 2),
                   "replay_seconds": round(n["replay_seconds"], 2), "raw_seconds": round(n["raw_seconds"], 2),
                   "ratio_2item": round(n["raw_seconds"] / n["seconds"], 3), "transactions": n["transactions"],
                   "requests_per_room": round(n["requests"] / args.rooms, 2),
                   "phases": {k: round(v, 2) for k, v in n["phases"].items()},
                   "exact": exact, "rerun_changes_nothing": rerun_same},
                  {"ratio": (">= 0.7", ratio >= 0.7), "scaling_2x": ("<= 2.2", scaling <= 2.2),
                   "exact": ("true", exact),
                   **({"rerun_changes_nothing": ("true", rerun_same)} if args.rerun else {})})


if __name__ == "__main__":
    sys.exit(main())
