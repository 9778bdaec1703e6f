"""Cost per meter-month: the AWS bill of one meter per month at list prices, for 1,000 and
100,000 meters read every 1, 5 and 15 minutes, from what this run measures against the
local emulator and the prices in bench/prices/us-east-1.yaml (its date, sources, USD->CNY
rate and usage assumptions are printed).

    bash infra/local/with_stack.sh .venv/bin/python bench/cost.py [--bus-meters 32] [--rounds 5]

Target: under ¥1 per meter-month at 15-minute readings, for both fleet sizes. The last line
is one JSON object (bench/report.py); the exit code is 3 when the target is missed.

MEASURED in this run (the handlers called in process, as Lambda calls them, against the
emulator; the WeChat Pay emulator signs the payments):
- DynamoDB: every request the product makes goes through the one botocore session
  (core/aws.py); hooks on it see each request and its answer. The emulator's consumed
  capacity is a constant, so request units are worked out from the items themselves, by
  DynamoDB's published rules: each item is fetched before and after a write with a separate
  client (not counted, and its time taken out of the handler's), sized as DynamoDB sizes
  items (attribute names + values), and a write costs ceil(larger of before/after / 1 KB)
  WRU, x2 inside a transaction; a failed conditional write still costs its item. Every
  secondary index (GSI and LSI) whose entry appears, changes or disappears costs its own
  writes (a changed index key: a delete and a put), at the transactional rate inside a
  transaction (conservative). A ConditionCheck counts as a transactional write of its item
  (conservative). Reads: GetItem and BatchGetItem ceil(item / 4 KB) per item, Query and Scan
  ceil(sum of the items read / 4 KB) (index entries as the index projects them; filtered-out
  items are not seen: none of the measured paths filters), x0.5 when eventually consistent,
  x2 in TransactGetItems; a read that finds nothing costs the minimum. The hook's request
  count is checked against the emulator's own count.
- SQS requests the cloud sends (64 KB chunks), Secrets Manager reads.
- Lambda: handler wall time in process (median), per invocation of each kind; memory from
  serverless.yml (provider memorySize unless a function sets its own). Emulator round
  trips stand in for AWS's: the run prints their mean.
- CloudWatch Logs: the bytes and lines the handlers write to stdout (powertools' JSON logs
  and metrics) at POWERTOOLS_LOG_LEVEL=INFO as deployed, plus the Lambda platform's
  START/END/REPORT lines and 26 bytes per event (assumptions in the prices file).
- Per kind of work: a readings message from a bridge (one message carrying the readings of
  --bus-meters meters: bridge/runtime.py BusWorker.run sends one `readings` message per bus
  per poll cycle with every meter that was due, so a bus of meters on one poll interval is
  one message; 32 is an RS485 bus at its limit, bench/bus.py) through
  functions/uplink_consumer, "warm" (the consumer's meter and account memories hold the
  meters; the site and secret caches, 60 s and 300 s, have expired, as between 5- and
  15-minute cycles) and "cold" (a fresh Ingest as well: a consumer instance that has not
  seen these meters; used when the fleet exceeds one instance's memories,
  FEIKONG_STATE_CACHE_SIZE); a bridge heartbeat; a control tick and a payments sweep with
  nothing due (fixed costs); a recharge order (the tenant API's service call, in process)
  and its payment notification (functions/wechatpay_notify); a command (issued by
  core.services.control, executed by a simulated site, its result through the consumer);
  the ledger audit's worker on this run's accounts twice (every entry new, then none: a
  night per account and the reads of each further entry; the nightly run's Scan of the
  accounts is priced from an account item's size); the daily reconciliation (per order).
  The site and secret caches are expired before each readings message and heartbeat, so
  each pays for its site lookup and secret read (an upper bound at 1-minute readings).
- The ledger entry's stored size (with its LSI entry and DynamoDB's 100-byte overheads).

COMPUTED per meter-month (readings per meter-month = 30*24*60 / interval):
- readings messages = readings / bus-meters; each: the bridge's SendMessageBatch (1 request
  per 64 KB of the measured body, conservatively one message per request) + the event
  source mapping's receive and delete + one consumer invocation.
- per site (spread over meters_per_site): a heartbeat a minute (message, invocation), the
  bridge's long poll on its FIFO down queue (3 requests a minute), the site's secret.
- per meter: recharges (order + notifications + reconciliation) and commands (the cloud's
  SQS send and DynamoDB, the bridge's receive, delete and result, the result's invocation),
  at the rates in the prices file; the nightly audit of each account's new entries (a day of
  readings and recharges; its fan-out: one queued batch and one worker invocation per 100
  accounts).
- per deployment (spread over the fleet): controlTick and paymentsSweep every minute,
  reconcile and ledgerAudit daily, the event source mappings' idle long polls, alarms (as
  many as serverless.yml declares, at least alarms_default), custom metrics, a dashboard,
  the fixed secrets.
- DynamoDB storage and PITR of the ledger entries after ledger_history_months; CloudWatch
  Logs storage over serverless.yml's logRetentionInDays (uncompressed: an upper bound);
  X-Ray: every invocation traced (an upper bound).
- API Gateway: the notification route (HTTP API) per notification, the recharge order
  (zappa's REST API) per recharge.
Not included: the tenant mini-program's other API traffic (logins, balance views), data
transfer, the deployment bucket, KMS (SQS-managed queue encryption is assumed: no charge),
Lambda cold starts (their INIT phase is billed; bench/cold_import.py measures it, and a
function invoked every minute or busier rarely starts cold), the bridge's own hardware and
network, free tiers (not deducted: the figures are upper bounds there).
Prices are us-east-1's converted to CNY (the China pages were not readable from here; the
one China price seen, DynamoDB's write request unit, is applied in a printed what-if).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import finish, with_pay_stack  # noqa: E402

PRICES = ROOT / "bench" / "prices" / "us-east-1.yaml"
FLEETS = (1_000, 100_000)
INTERVALS = (1, 5, 15)  # minutes between readings
MINUTES_PER_MONTH = 30 * 24 * 60
TARGET_CNY = 1.0  # per meter-month at 15-minute readings
PLAN = {"plan_id": "bench-cost", "name": "成本压测", "utility": "electricity",
        "versions": [{"effective_from": "2020-01-01T00:00:00+08:00", "prices": {"flat": "0.8000"}}]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bus-meters", type=int, default=32, help="meters whose readings one bridge message carries")
    parser.add_argument("--rounds", type=int, default=5, help="readings messages measured, warm and cold each")
    parser.add_argument("--payments", type=int, default=5)
    parser.add_argument("--commands", type=int, default=4)
    parser.add_argument("--ticks", type=int, default=5, help="control ticks and payment sweeps measured")
    parser.add_argument("--prices", type=Path, default=PRICES)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")  # as serverless.yml deploys it
    return with_pay_stack(run, parser.parse_args())


# -- DynamoDB item sizes and request units (DynamoDB's published rules) -----------------------

def value_size(v: dict) -> int:
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "B":
        return len(x)
    if kind == "N":
        digits = x.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in x)
    if kind == "NS":
        return sum(value_size({"N": n}) for n in x)
    if kind == "BS":
        return sum(len(b) for b in x)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in x.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: dict | None) -> int:
    return sum(len(k.encode()) + value_size(v) for k, v in (item or {}).items())


def units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


class Tables:
    """Key schemas and secondary indexes of every table, as the emulator describes them."""

    def __init__(self, client) -> None:
        self.keys: dict[str, tuple[str, ...]] = {}
        self.indexes: dict[str, list[tuple[str, tuple[str, ...], str, tuple[str, ...]]]] = {}
        for page in client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                t = client.describe_table(TableName=name)["Table"]
                self.keys[name] = tuple(k["AttributeName"] for k in t["KeySchema"])
                self.indexes[name] = [
                    (i["IndexName"], tuple(k["AttributeName"] for k in i["KeySchema"]),
                     i["Projection"]["ProjectionType"], tuple(i["Projection"].get("NonKeyAttributes", ())))
                    for i in t.get("GlobalSecondaryIndexes", []) + t.get("LocalSecondaryIndexes", [])]

    def key_of(self, table: str, item: dict) -> dict:
        return {k: item[k] for k in self.keys[table]}

    def entry(self, table: str, index: tuple, item: dict | None) -> dict | None:
        """The index entry of an item (None: the item is not in this sparse index)."""
        _, keys, projection, extra = index
        if item is None or any(k not in item for k in keys):
            return None
        if projection == "ALL":
            return dict(item)
        wanted = set(self.keys[table]) | set(keys) | (set(extra) if projection == "INCLUDE" else set())
        return {k: v for k, v in item.items() if k in wanted}

    def index(self, table: str, name: str) -> tuple:
        return next(i for i in self.indexes[table] if i[0] == name)


class Recorder:
    """Counts what the product asks of AWS through the shared botocore session, and what it
    writes to its logs. Usage accumulates in `totals`; `sample()` diffs two snapshots."""

    def __init__(self, tables: Tables, raw) -> None:
        self.tables, self.raw = tables, raw
        self.totals: Counter = Counter()
        self.overhead = 0.0  # seconds spent fetching items for the sizes, taken out of handler times
        self.fetches = 0  # the sizing client's GetItems
        self.raw_requests = 0  # every request of the sizing client (the emulator counts them too)
        raw.meta.events.register("before-call.dynamodb", self._raw_request)
        self.fetch_seconds = 0.0
        self._emitters: dict[int, object] = {}

    # -- hooks ---------------------------------------------------------------------------
    def attach(self) -> None:
        """Register the hooks on the shared session and on every client already made from it
        (a client copies the session's events when it is made)."""
        from core import aws
        from core.store import connections

        emitters = [aws.session().get_component("event_emitter")]
        emitters += [c.meta.events for c in list(aws._clients.values())]
        emitters += [c._client.meta.events for c in list(connections._by_retries.values()) if c._client is not None]
        for events in emitters:
            if id(events) in self._emitters:
                continue
            # ids of this counter's own: a client made later copies the session's hooks, and registering
            # again is a no-op; a fixed id would make a second counter in one process count nothing
            events.register("before-parameter-build.dynamodb", self._ddb_before, unique_id=f"cost-ddb-before-{id(self)}")
            events.register("after-call.dynamodb", self._ddb_after, unique_id=f"cost-ddb-after-{id(self)}")
            events.register("before-parameter-build.sqs", self._sqs, unique_id=f"cost-sqs-{id(self)}")
            events.register("before-parameter-build.secrets-manager", self._secrets, unique_id=f"cost-secrets-{id(self)}")
            self._emitters[id(events)] = events  # kept: an id stays unique while its object lives

    def _get(self, table: str, key: dict) -> dict | None:
        t = time.perf_counter()
        item = self.raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        self.fetches += 1
        self.fetch_seconds += time.perf_counter() - t
        return item

    def _raw_request(self, **_):
        self.raw_requests += 1

    def _writes(self, op: str, params: dict) -> list[tuple[str, dict, int, bool]]:
        """(table, key, rate, is_condition_check) for each item a write request touches."""
        out = []
        if op == "PutItem":
            out.append((params["TableName"], self.tables.key_of(params["TableName"], params["Item"]), 1, False))
        elif op in ("UpdateItem", "DeleteItem"):
            out.append((params["TableName"], params["Key"], 1, False))
        elif op == "TransactWriteItems":
            for ti in params["TransactItems"]:
                (kind, body), = ti.items()
                key = self.tables.key_of(body["TableName"], body["Item"]) if kind == "Put" else body["Key"]
                out.append((body["TableName"], key, 2, kind == "ConditionCheck"))
        elif op == "BatchWriteItem":
            for table, reqs in params["RequestItems"].items():
                for r in reqs:
                    key = self.tables.key_of(table, r["PutRequest"]["Item"]) if "PutRequest" in r \
                        else r["DeleteRequest"]["Key"]
                    out.append((table, key, 1, False))
        return out

    def _ddb_before(self, params, model, context, **_):
        t = time.perf_counter()
        op = model.name
        self.totals["ddb_requests"] += 1
        self.totals[f"ddb:{op}"] += 1
        if "TableName" in params:
            self.totals[f"table:{op}:{params['TableName'].rsplit('-', 1)[-1]}"] += 1
        writes = self._writes(op, params)
        context["feikong_cost"] = (op, params, [(w, self._get(w[0], w[1])) for w in writes])
        self.overhead += time.perf_counter() - t

    def _ddb_after(self, parsed, model, context, **_):
        t = time.perf_counter()
        op, params, before = context.pop("feikong_cost", (model.name, {}, []))
        for (table, key, rate, check), old in before:
            new = self._get(table, key)
            short = table.rsplit("-", 1)[-1]
            if check:
                self._wru(short, rate * units(item_size(old), 1024))
                continue
            self._wru(short, rate * units(max(item_size(old), item_size(new)), 1024))
            for index in self.tables.indexes[table]:
                a, b = self.tables.entry(table, index, old), self.tables.entry(table, index, new)
                if a == b:
                    continue
                same_key = a is not None and b is not None and all(a[k] == b[k] for k in index[1])
                if same_key:
                    cost = units(max(item_size(a), item_size(b)), 1024)
                else:  # the entry moves: deleted under its old key, put under the new one
                    cost = (units(item_size(a), 1024) if a else 0) + (units(item_size(b), 1024) if b else 0)
                self._wru(f"{short}/{index[0]}", rate * cost)
        self.totals["rru"] += self._reads(op, params, parsed)
        self.overhead += time.perf_counter() - t

    def _wru(self, where: str, n: float) -> None:
        self.totals["wru"] += n
        self.totals[f"wru:{where}"] += n

    def _reads(self, op: str, params: dict, parsed: dict) -> float:
        if op == "GetItem":
            return units(item_size(parsed.get("Item")), 4096) * (1 if params.get("ConsistentRead") else 0.5)
        if op == "BatchGetItem":
            rru = 0.0
            for table, req in params["RequestItems"].items():
                found = {json.dumps(self.tables.key_of(table, i), sort_keys=True): i
                         for i in parsed.get("Responses", {}).get(table, [])}
                for key in req["Keys"]:
                    item = found.get(json.dumps(key, sort_keys=True))
                    if item is not None and "ProjectionExpression" in req:
                        item = self._get(table, key)
                    rru += units(item_size(item), 4096) * (1 if req.get("ConsistentRead") else 0.5)
            return rru
        if op in ("Query", "Scan"):
            table, index = params["TableName"], params.get("IndexName")
            size = 0
            for item in parsed.get("Items", []):
                full = self._get(table, self.tables.key_of(table, item))
                size += item_size(self.tables.entry(table, self.tables.index(table, index), full) if index else full)
            return units(size, 4096) * (1 if params.get("ConsistentRead") else 0.5)
        if op == "TransactGetItems":
            rru = 0.0
            for ti in params["TransactItems"]:
                body = ti["Get"]
                rru += 2 * units(item_size(self._get(body["TableName"], body["Key"])), 4096)
            return rru
        return 0.0

    def _sqs(self, params, model, **_):
        op = model.name
        url = params.get("QueueUrl", "")
        if op == "SendMessage":
            payload = len(params["MessageBody"].encode())
        elif op == "SendMessageBatch":
            payload = sum(len(e["MessageBody"].encode()) for e in params["Entries"])
        else:
            payload = 0
        billed = max(1, math.ceil(payload / 65536))
        self.totals["sqs_fifo" if url.endswith(".fifo") else "sqs_standard"] += billed
        self.totals[f"sqs:{op}"] += 1

    def _secrets(self, model, **_):
        self.totals[f"secrets:{model.name}"] += 1
        self.totals["secrets_calls"] += 1

    # -- samples -------------------------------------------------------------------------
    def snapshot(self) -> tuple[Counter, float]:
        return Counter(self.totals), self.overhead

    def since(self, snap: tuple[Counter, float]) -> dict:
        before, _ = snap
        out = {k: self.totals[k] - before.get(k, 0) for k in self.totals}
        return {k: v for k, v in out.items() if v}


class LogCounter(io.TextIOBase):
    """Where the handlers' stdout goes during the run: counted, not shown."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, s: str) -> int:
        self.bytes += len(s.encode())
        self.lines += s.count("\n")
        return len(s)

    def writable(self) -> bool:
        return True


class Bench:
    def __init__(self, recorder: Recorder, logs: LogCounter) -> None:
        self.rec, self.logs = recorder, logs
        self.samples: dict[str, list[dict]] = {}

    def measure(self, kind: str, call, *args) -> object:
        """Run one unit of work (a handler invocation, or a service call inside one) and keep
        its usage, its wall time less the sizing client's, and its log output."""
        self.rec.attach()
        snap = self.rec.snapshot()
        log_bytes, log_lines = self.logs.bytes, self.logs.lines
        t = time.perf_counter()
        result = call(*args)
        elapsed = time.perf_counter() - t
        sample = self.rec.since(snap)
        sample["ms"] = max(0.0, (elapsed - (self.rec.overhead - snap[1])) * 1000)
        sample["log_bytes"] = self.logs.bytes - log_bytes
        sample["log_events"] = self.logs.lines - log_lines
        self.samples.setdefault(kind, []).append(sample)
        return result

    def mean(self, kind: str, skip: int = 0) -> dict:
        """Per unit: usage means, and the median wall time (ms)."""
        rows = self.samples[kind][skip:]
        keys = {k for r in rows for k in r}
        out = {k: sum(r.get(k, 0) for r in rows) / len(rows) for k in keys}
        out["ms"] = statistics.median(r["ms"] for r in rows)
        out["n"] = len(rows)
        return out


def redirect_log_handlers(stream) -> None:
    """Point the logging handlers that write to the real stdout (powertools' Logger, made at
    import) at `stream`, so their bytes are counted as CloudWatch Logs would receive them."""
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)]
    for lg in loggers:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.__stdout__):
                h.setStream(stream)


# -- the run ----------------------------------------------------------------------------------

def run(args, stack) -> int:
    import boto3

    prices = yaml.safe_load(args.prices.read_text())
    raw = boto3.client("dynamodb")
    rec = Recorder(Tables(raw), raw)
    rec.attach()
    logs = LogCounter()
    redirect_log_handlers(logs)
    real_stdout, sys.stdout = sys.stdout, logs  # what the product prints is counted, not shown
    try:
        return measure_and_bill(args, stack, prices, raw, rec, logs, real_stdout)
    finally:
        sys.stdout = real_stdout


def measure_and_bill(args, stack, prices, raw, rec, logs, real_stdout) -> int:
    import boto3

    from core.domain.control import APPLIED
    from core.integrations import secrets
    from core.integrations.queues import uplink_url
    from core.protocol import messages
    from core.protocol.messages import MeterReading
    from core.services import control
    from core.services.control import Control
    from core.services.ingest import Ingest
    from core.services.ledger import LedgerService
    from core.services.payments import Payments
    from core.settings import get_settings
    from core.store import commands as cstore
    from core.store import payments as pstore
    from core.store.models import AccountItem, LedgerEntryItem
    from functions import control_tick, ledger_audit, payments_sweep, reconcile, uplink_consumer, wechatpay_notify
    from infra.fakes.sitesim import LambdaContext, SimMeter, SimSite, sqs_record
    from infra.local.stack import dynamodb_request_counts
    from testkit.builders import Metered

    bench = Bench(rec, logs)
    ctx = LambdaContext()
    emulator_before = sum(dynamodb_request_counts().values())
    raw_before = rec.raw_requests

    # the world: one bus of meters on their own accounts, one meter for commands
    w = Metered(plan=PLAN)
    meters = []
    for _ in range(args.bus_meters):
        a = w.account(opening=10**9)
        meters.append((a, w.meter(a, rated_kw="1000")))
    cmd_account = w.account(opening=10**9)
    cmd_meter = w.meter(cmd_account)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    rec.attach()

    # -- readings messages, as the bridge sends them --------------------------------------------
    interval = timedelta(minutes=15)
    steps = 1 + 2 * args.rounds
    t0 = datetime.now(UTC) - interval * (steps + 1)
    totals = {m: Decimal("1000.00") for _, m in meters}
    bodies: list[int] = []

    def readings_event(step: int) -> dict:
        at = t0 + interval * step
        batch = []
        for _, m in meters:
            totals[m] += Decimal("0.25")
            regs = {"sharp": Decimal(0), "peak": Decimal(0), "flat": totals[m], "valley": Decimal(0)}
            batch.append(MeterReading(m, step, at, totals[m], regs, relay_state="closed"))
        msg = messages.sign(messages.envelope("readings", w.site.site_id, uuid.uuid4().hex, at,
                                              readings=[messages.reading_to_wire(r) for r in batch]), w.site.secret)
        body = json.dumps(msg, ensure_ascii=False)
        bodies.append(len(body.encode()))
        return {"Records": [{"messageId": uuid.uuid4().hex, "receiptHandle": "x", "body": body, "attributes": {},
                             "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                             "eventSourceARN": "arn:aws:sqs:cn-north-1:123456789012:uplink",
                             "awsRegion": "cn-north-1"}]}

    def consume(event: dict) -> None:
        result = uplink_consumer.handler(event, ctx)
        assert not result.get("batchItemFailures"), result

    def expire_short_caches() -> None:
        control.forget_sites()  # 60 s: gone between 5- and 15-minute cycles
        secrets.clear_cache()  # 300 s: likewise

    uplink_consumer.ingest = Ingest()
    bench.measure("readings_baseline", consume, readings_event(1))  # first readings: baselines, no posting
    step = 1
    for _ in range(args.rounds):
        step += 1
        expire_short_caches()
        bench.measure("readings_warm", consume, readings_event(step))
    for _ in range(args.rounds):
        step += 1
        expire_short_caches()
        uplink_consumer.ingest = Ingest()  # an instance that has not seen these meters
        bench.measure("readings_cold", consume, readings_event(step))
    ledger = LedgerService()
    posted = 2 * args.rounds
    readings_exact = all(ledger.verify(a)["ok"] and ledger.verify(a)["entries"] == 1 + posted for a, _ in meters)

    # -- a bridge heartbeat ----------------------------------------------------------------------
    sim = SimSite(w.site.site_id, w.site.secret, w.site.down_queue, uplink_url())
    for _ in range(args.ticks):
        health = {"buses": {f"bus-{b}": {"polls": 1000, "failures": 2, "cycles": 500, "last_cycle_seconds": 3.2}
                            for b in "ABCD"}, "meters_online": 128, "meters": 128, "outbox_depth": 0,
                  "outbox_dropped": 0, "last_send": datetime.now(UTC).isoformat(), "send_error": ""}
        hb = sim.message("heartbeat", datetime.now(UTC), **health)
        expire_short_caches()  # a heartbeat a minute: the 60 s site cache has about expired
        bench.measure("heartbeat", consume, {"Records": [sqs_record(
            {"MessageId": uuid.uuid4().hex, "ReceiptHandle": "x", "Body": json.dumps(hb)}, uplink_url())]})

    # -- scheduled work with nothing due ---------------------------------------------------------
    control_tick.handler({}, ctx)  # the first tick may find this run's new meters never seen
    payments_sweep.handler({}, ctx)
    for _ in range(args.ticks):
        bench.measure("control_tick", control_tick.handler, {}, ctx)
        bench.measure("payments_sweep", payments_sweep.handler, {}, ctx)

    # -- payments: the recharge order (tenant API) and its notification ----------------------------
    payments = Payments()
    wechatpay_notify.payments = payments
    orders = []
    for i in range(args.payments):
        account = meters[i % len(meters)][0]
        no = bench.measure("recharge_order", payments.create_recharge, openid, account, 5000)["out_trade_no"]
        stack.pay.lose_notification(no)  # delivered here, to the handler
        headers, body = stack.pay.build_notification(stack.pay.pay(no))
        result = bench.measure("notification", wechatpay_notify.handler,
                               {"headers": headers, "body": body, "isBase64Encoded": False}, ctx)
        assert result["statusCode"] == 200, result
        orders.append((no, account))
    credited = all(pstore.get_order(no).status == "PAID" for no, _ in orders)

    # -- commands: issued by the cloud, run by a site, the result through the consumer -------------
    sim.add(SimMeter(cmd_meter))
    sqs = boto3.client("sqs")
    commands_applied = True
    ops = ("TRIP", "CLOSE")
    for i in range(args.commands):
        c = bench.measure("command_issue", Control().issue, cmd_meter, ops[i % 2], f"bench-cost-{i}")
        taken = sim.take_commands()
        got = sqs.receive_message(QueueUrl=uplink_url(), MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        mine = [m for m in got if c.command_id in m["Body"]]
        commands_applied &= [t["command_id"] for t in taken] == [c.command_id] and len(mine) == 1
        for m in mine:
            bench.measure("command_result", consume, {"Records": [sqs_record(m, uplink_url())]})
            sqs.delete_message(QueueUrl=uplink_url(), ReceiptHandle=m["ReceiptHandle"])
        done = cstore.get_command(c.command_id)
        commands_applied &= done is not None and done.state == APPLIED

    # -- the ledger audit's worker on this run's accounts (new entries, then none); reconciliation --
    ours = [a for a, _ in meters] + [cmd_account]
    new_entries = sum(ledger.verify(a)["entries"] for a in ours)  # none audited yet: all are new
    batch = {"Records": [sqs_record({"MessageId": uuid.uuid4().hex, "ReceiptHandle": "x",
                                     "Body": json.dumps({"account_ids": ours, "full": False})}, uplink_url())]}
    audit_new = bench.measure("audit_new", ledger_audit.worker, batch, ctx)
    audit_none = bench.measure("audit_none", ledger_audit.worker, batch, ctx)
    audit_ok = not audit_new.get("batchItemFailures") and not audit_none.get("batchItemFailures")
    account_item = raw.get_item(TableName=AccountItem.Meta.table_name, Key={"account_id": {"S": ours[0]}})["Item"]
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    rec_result = bench.measure("reconcile", reconcile.handler, {"bill_date": day}, ctx)
    # a shared emulator (the smoke test) holds other runs' paid orders: each is a mismatch here
    reconciled_orders = len(orders) + rec_result["mismatches"]

    # -- a ledger entry as stored -------------------------------------------------------------------
    table = LedgerEntryItem.Meta.table_name
    entry = raw.get_item(TableName=table, ConsistentRead=True,
                         Key={"account_id": {"S": meters[0][0]}, "entry_id": {"S": f"use:{meters[0][1]}:3"}}).get("Item")
    if entry is None:  # the id scheme is the store's; fall back to any energy entry of the account
        entry = next(i for i in raw.query(TableName=table, KeyConditionExpression="account_id = :a",
                                          ExpressionAttributeValues={":a": {"S": meters[0][0]}})["Items"]
                     if i.get("kind", {}).get("S") == "energy")
    entry_bytes = item_size(entry) + 100 + sum(item_size(rec.tables.entry(table, ix, entry)) + 100
                                               for ix in rec.tables.indexes[table])

    emulator_requests = sum(dynamodb_request_counts().values()) - emulator_before
    hooked = rec.totals["ddb_requests"]
    # the emulator served the product's requests (hooked) and the sizing client's, nothing else
    counted_ok = hooked > 0 and emulator_requests == hooked + rec.raw_requests - raw_before

    # -- the bill ---------------------------------------------------------------------------------------
    config = deployment_config()
    m = {k: bench.mean(k) for k in bench.samples}
    measured = {
        "readings_warm": m["readings_warm"], "readings_cold": m["readings_cold"], "heartbeat": m["heartbeat"],
        "control_tick": m["control_tick"], "payments_sweep": m["payments_sweep"],
        "recharge_order": m["recharge_order"], "notification": m["notification"],
        "command_issue": m["command_issue"], "command_result": m["command_result"],
        # a night of an account with new entries (its checkpoint moves), and each further entry's reads
        "audit_per_account": scale(m["audit_new"], 1 / len(ours)),
        "audit_entries_per_account": new_entries / len(ours),
        "audit_per_entry": {k: v for k, v in scale(sub(m["audit_new"], m["audit_none"]), 1 / max(1, new_entries)).items()
                            if k in ("rru", "ms")},
        # the nightly run's Scan of the accounts (eventually consistent), per account
        "audit_scan_per_account": {"rru": item_size(account_item) / 4096 * 0.5, "ms": 0.0},
        "reconcile_per_order": scale(m["reconcile"], 1 / max(1, reconciled_orders)),
        "message_bytes": statistics.mean(bodies), "ledger_entry_bytes": entry_bytes,
        "emulator_round_trip_ms": rec.fetch_seconds / max(1, rec.fetches) * 1000,
    }
    a = prices["assumptions"]
    rate = prices["usd_cny"]["rate"]
    cache = get_settings().state_cache_size
    table_rows = {}
    for fleet in FLEETS:
        for minutes in INTERVALS:
            lines = bill(measured, prices, config, fleet, minutes, args.bus_meters, cold=fleet > cache)
            table_rows[(fleet, minutes)] = lines
    china_wru = prices["china_seen"]["dynamodb_write_request_units_per_million_cny"]

    sys.stdout = real_stdout
    print_report(args, prices, config, measured, table_rows, cache, china_wru, rate)
    per_meter = {str(f): {str(i): round(table_rows[(f, i)]["total"], 4) for i in INTERVALS} for f in FLEETS}
    china = {str(f): round(table_rows[(f, 15)]["total"] + table_rows[(f, 15)]["wru_month"] / 1e6
                           * (china_wru - prices["prices"]["dynamodb"]["write_request_units_per_million"] * rate), 4)
             for f in FLEETS}
    targets = {f"cny_per_meter_month_15min_{f}": (f"< {TARGET_CNY:g}", table_rows[(f, 15)]["total"] < TARGET_CNY)
               for f in FLEETS}
    targets.update({
        "readings_posted_exactly": ("every reading posted once, balances == sum(entries)", readings_exact),
        "credited_exactly_once": ("true", credited),
        "commands_applied": ("true", commands_applied),
        "ledger_audit_clean": ("true", audit_ok),
        "requests_counted": ("hooked + sizing client's == the emulator's count", counted_ok),
    })
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish({
        "bench": "cost", "bus_meters": args.bus_meters, "rounds": args.rounds, "prices": str(args.prices.relative_to(ROOT))
        if args.prices.is_relative_to(ROOT) else str(args.prices), "prices_taken": prices["taken"],
        "usd_cny": rate, "per_meter_month_cny": per_meter,
        "per_meter_month_cny_15min_at_china_dynamodb_write_price": china,
        "breakdown_15min_cny": {str(f): {k: round(v, 4) for k, v in table_rows[(f, 15)].items()
                                         if k in COLUMNS} for f in FLEETS},
        "measured": {
            "wru_per_message": {"warm": round(measured["readings_warm"].get("wru", 0), 2),
                                "cold": round(measured["readings_cold"].get("wru", 0), 2)},
            "wru_per_reading_by_table": {k.removeprefix("wru:"): round(v / args.bus_meters, 2)
                                         for k, v in sorted(measured["readings_warm"].items()) if k.startswith("wru:")},
            "rru_per_message": {"warm": round(measured["readings_warm"].get("rru", 0), 2),
                                "cold": round(measured["readings_cold"].get("rru", 0), 2)},
            "ddb_requests_per_message": {
                kind: {k.removeprefix("ddb:"): round(v, 2) for k, v in measured[f"readings_{kind}"].items()
                       if k.startswith("ddb")} for kind in ("warm", "cold")},
            "consumer_ms_per_message": {"warm": round(measured["readings_warm"]["ms"], 1),
                                        "cold": round(measured["readings_cold"]["ms"], 1)},
            "message_bytes": round(measured["message_bytes"]),
            "notification": {k: round(measured["notification"].get(k, 0), 2) for k in ("wru", "rru", "ms")},
            "control_tick": {k: round(measured["control_tick"].get(k, 0), 2) for k in ("rru", "wru", "ms")},
            "ledger_entry_bytes": entry_bytes,
            "emulator_round_trip_ms": round(measured["emulator_round_trip_ms"], 2),
        },
        "assumptions": a,
        "readings_posted_exactly": readings_exact, "credited_exactly_once": credited,
        "commands_applied": commands_applied, "ledger_audit_clean": audit_ok,
        "reconciled_orders": reconciled_orders,
        "requests_counted": counted_ok,
    }, targets)


def scale(d: dict, k: float) -> dict:
    return {key: v * k for key, v in d.items() if key != "n"}


def sub(a: dict, b: dict) -> dict:
    return {k: max(0.0, a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b) if k != "n"}


def deployment_config() -> dict:
    """Memory per function, log retention and alarm count, from serverless.yml."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CloudFormation tags
    doc = yaml.load((ROOT / "serverless.yml").read_text(), Loader=Loader)
    provider = doc.get("provider", {})
    default = int(provider.get("memorySize", 1024))  # Lambda's default under serverless is 1024
    memory = {name: int(f.get("memorySize", default)) for name, f in doc.get("functions", {}).items()}
    text = (ROOT / "serverless.yml").read_text()
    for generated in ("resources.generated.yml", "operations.generated.yml"):  # tables/queues; alarms/dashboard
        path = ROOT / "infra" / "deploy" / generated
        text += path.read_text() if path.exists() else ""
    return {"memory_mb": memory, "log_retention_days": int(provider.get("logRetentionInDays", 180)),
            "alarms": text.count("AWS::CloudWatch::Alarm")}


COLUMNS = ("dynamodb", "sqs", "lambda", "logs", "api_gateway", "other")


def bill(ms: dict, prices: dict, config: dict, fleet: int, minutes: int, bus: int, cold: bool) -> dict:
    """CNY per meter-month, by service, and the usage behind it."""
    p, a = prices["prices"], prices["assumptions"]
    rate = prices["usd_cny"]["rate"]
    mem = config["memory_mb"]
    readings = MINUTES_PER_MONTH / minutes
    messages = readings / bus  # this meter's share of the bridge's messages
    site = 1 / a["meters_per_site"]
    heartbeats = MINUTES_PER_MONTH * a["heartbeats_per_site_minute"] * site
    recharges = a["recharges_per_account_month"] / a["meters_per_account"]
    notifications = recharges * a["notifications_per_recharge"]
    commands = a["commands_per_meter_month"]
    nights = 30
    per_fleet = 1 / fleet
    accounts = 1 / a["meters_per_account"]
    entries_per_night = (readings * a["meters_per_account"] + a["recharges_per_account_month"]) / nights  # an account's
    audit_batches = accounts * nights / 100  # the worker's batches of 100 accounts
    reading = ms["readings_cold" if cold else "readings_warm"]

    # (usage per meter-month, the measured unit, the function whose memory it runs at)
    work = [
        (messages, reading, "uplinkConsumer"),
        (heartbeats, ms["heartbeat"], "uplinkConsumer"),
        (recharges, ms["recharge_order"], "tenantApi"),
        (notifications, ms["notification"], "wechatpayNotify"),
        (recharges, ms["reconcile_per_order"], "reconcile"),
        (commands, ms["command_issue"], None),  # runs inside the issuing invocation
        (commands, ms["command_result"], "uplinkConsumer"),
        (accounts * nights, ms["audit_per_account"], "ledgerAuditWorker"),
        (accounts * nights, ms["audit_scan_per_account"], "ledgerAudit"),
        (max(0.0, entries_per_night - ms["audit_entries_per_account"]) * accounts * nights, ms["audit_per_entry"],
         "ledgerAuditWorker"),
        (MINUTES_PER_MONTH * per_fleet, ms["control_tick"], "controlTick"),
        (MINUTES_PER_MONTH * per_fleet, ms["payments_sweep"], "paymentsSweep"),
    ]
    invocations = {  # per meter-month
        "uplinkConsumer": messages / a["uplink_messages_per_invocation"] + heartbeats + commands,
        "tenantApi": recharges, "wechatpayNotify": notifications,
        "ledgerAuditWorker": audit_batches, "controlTick": MINUTES_PER_MONTH * per_fleet,
        "paymentsSweep": MINUTES_PER_MONTH * per_fleet, "reconcile": nights * per_fleet,
        "ledgerAudit": nights * per_fleet,
    }
    wru = sum(n * u.get("wru", 0) for n, u, _ in work)
    rru = sum(n * u.get("rru", 0) for n, u, _ in work)
    gb_s = sum(n * u["ms"] / 1000 * mem.get(fn, a["tenant_api_memory_mb"]) / 1024 for n, u, fn in work if fn)
    gb_s += sum(n * u["ms"] / 1000 * mem["uplinkConsumer"] / 1024 for n, u, fn in work if fn is None)
    log_bytes = sum(n * (u.get("log_bytes", 0) + u.get("log_events", 0) * a["log_event_overhead_bytes"])
                    for n, u, _ in work)
    n_invocations = sum(invocations.values())
    log_bytes += n_invocations * (a["lambda_platform_log_bytes"]
                                  + a["lambda_platform_log_events"] * a["log_event_overhead_bytes"])

    sqs_std = sum(n * u.get("sqs_standard", 0) for n, u, _ in work)
    sqs_fifo = sum(n * u.get("sqs_fifo", 0) for n, u, _ in work)
    chunks = max(1, math.ceil(ms["message_bytes"] / 65536))
    sqs_std += messages * (chunks + a["esm_requests_per_message"])  # bridge send; mapping receive + delete
    sqs_std += heartbeats * (1 + a["esm_requests_per_message"])
    sqs_std += commands * (1 + a["esm_requests_per_message"])  # the result's send, receive, delete
    sqs_fifo += commands * 2  # the bridge's receive that returns it, its delete
    sqs_fifo += MINUTES_PER_MONTH * a["bridge_receive_requests_per_minute"] * site
    sqs_std += audit_batches * (0.1 + a["esm_requests_per_message"])  # queued 10 per request
    sqs_std += MINUTES_PER_MONTH * 3 * a["esm_idle_pollers_per_queue"] * a["esm_queues"] * per_fleet

    secrets_calls = sum(n * u.get("secrets_calls", 0) for n, u, _ in work)
    history_gb = ms["ledger_entry_bytes"] * (readings + recharges) * a["ledger_history_months"] / 2**30
    logs_gb = log_bytes / 2**30
    retention_months = config["log_retention_days"] / 30

    usd = {
        "dynamodb": wru / 1e6 * p["dynamodb"]["write_request_units_per_million"]
        + rru / 1e6 * p["dynamodb"]["read_request_units_per_million"]
        + history_gb * (p["dynamodb"]["storage_gb_month"] + p["dynamodb"]["pitr_gb_month"]),
        "sqs": sqs_std / 1e6 * p["sqs"]["standard_requests_per_million"]
        + sqs_fifo / 1e6 * p["sqs"]["fifo_requests_per_million"],
        "lambda": n_invocations / 1e6 * p["lambda"]["requests_per_million"] + gb_s * p["lambda"]["gb_second"],
        "logs": logs_gb * (p["logs"]["ingestion_gb"] + retention_months * p["logs"]["storage_gb_month"]),
        "api_gateway": notifications / 1e6 * p["api_gateway"]["http_requests_per_million"]
        + recharges / 1e6 * p["api_gateway"]["rest_requests_per_million"],
        "other": n_invocations * a["xray_traced_share"] / 1e6 * p["xray"]["traces_recorded_per_million"]
        + site * p["secrets_manager"]["secret_month"]
        + secrets_calls / 1e4 * p["secrets_manager"]["api_calls_per_10k"]
        + per_fleet * (a["fixed_secrets"] * p["secrets_manager"]["secret_month"]
                       + max(config["alarms"], a["alarms_default"]) * p["cloudwatch"]["alarm_month"]
                       + a["custom_metrics"] * p["cloudwatch"]["custom_metric_month"]
                       + a["dashboards"] * p["cloudwatch"]["dashboard_month"]),
    }
    out = {k: v * rate for k, v in usd.items()}
    out["total"] = sum(out[k] for k in COLUMNS)
    out.update(wru_month=wru, rru_month=rru, gb_s_month=gb_s, invocations_month=n_invocations,
               sqs_requests_month=sqs_std + sqs_fifo, log_mb_month=log_bytes / 2**20, readings_month=readings)
    return out


def print_report(args, prices, config, ms, rows, cache, china_wru, rate) -> None:
    a = prices["assumptions"]
    p = prices["prices"]

    def unit(name: str, u: dict) -> str:
        return (f"  {name:<24} {u.get('ddb_requests', 0):6.1f} req {u.get('wru', 0):7.1f} WRU {u.get('rru', 0):6.1f} RRU"
                f" {u.get('sqs_standard', 0) + u.get('sqs_fifo', 0):4.1f} SQS {u['ms']:7.1f} ms"
                f" {u.get('log_bytes', 0):7.0f} B log")

    print(f"prices: {args.prices.name}, taken {prices['taken']} ({prices['region']}, {prices['currency']}); "
          f"USD->CNY {rate} ({prices['usd_cny']['date']}); free tiers not deducted")
    print(f"bridge message: {args.bus_meters} meters' readings, {ms['message_bytes']:.0f} bytes; "
          f"emulator round trip {ms['emulator_round_trip_ms']:.1f} ms mean")
    print(f"memory (serverless.yml): uplinkConsumer {config['memory_mb']['uplinkConsumer']} MB; "
          f"log retention {config['log_retention_days']} days; alarms declared {config['alarms']}")
    print("measured, per unit (DynamoDB requests, request units, SQS requests the cloud sends, median wall time, log):")
    for name in ("readings_warm", "readings_cold", "heartbeat", "control_tick", "payments_sweep", "recharge_order",
                 "notification", "command_issue", "command_result", "audit_per_account", "audit_per_entry",
                 "reconcile_per_order"):
        print(unit(name, ms[name]))
    print(f"  ledger entry stored: {ms['ledger_entry_bytes']} bytes (with its LSI entry and overheads)")
    warm = ms["readings_warm"]
    print("  WRU per reading (warm), by table/index: " + ", ".join(
        f"{k.removeprefix('wru:')} {v / args.bus_meters:.2f}" for k, v in sorted(warm.items()) if k.startswith("wru:")))
    print("assumptions: " + ", ".join(f"{k}={v}" for k, v in a.items()))
    print()
    print(f"{'meters':>8} {'every':>6} {'readings':>9} {'DynamoDB':>9} {'SQS':>7} {'Lambda':>7} {'Logs':>7} "
          f"{'API GW':>7} {'other':>7} {'¥/meter-month':>14} {'¥/month':>10}")
    for (fleet, minutes), r in rows.items():
        print(f"{fleet:>8,} {minutes:>4} m {r['readings_month']:>9,.0f} {r['dynamodb']:>9.4f} {r['sqs']:>7.4f} "
              f"{r['lambda']:>7.4f} {r['logs']:>7.4f} {r['api_gateway']:>7.4f} {r['other']:>7.4f} "
              f"{r['total']:>14.4f} {r['total'] * fleet:>10,.0f}")
    print(f"(readings per message: {args.bus_meters}; fleets above {cache:,} meters use the cold consumer figures)")
    usd_wru = p["dynamodb"]["write_request_units_per_million"] * rate
    for fleet in FLEETS:
        r = rows[(fleet, 15)]
        china = r["total"] + r["wru_month"] / 1e6 * (china_wru - usd_wru)
        print(f"at the China (Beijing) write price seen (¥{china_wru}/M WRU, vs ¥{usd_wru:.2f} here), "
              f"{fleet:,} meters at 15 min: ¥{china:.4f} per meter-month")
    print(f"target: under ¥{TARGET_CNY:g} per meter-month at 15-minute readings, both fleet sizes")


if __name__ == "__main__":
    sys.exit(main())
