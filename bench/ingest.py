"""Ingest throughput: readings rated and posted per second through the uplink consumer
(the Lambda handler, fed SQS events of signed readings batches) next to the same
DynamoDB requests issued raw with boto3 — one TransactWriteItems per reading (ledger
entry put + account update + meter update) — against the same emulator, in one run, and
DynamoDB requests per reading as the emulator counted them. Rounds alternate.

    .venv/bin/python bench/ingest.py [--rounds 5] [--per-round 300] [--meters 20]

Targets: ratio >= 0.7 of the raw rate; <= 1.2 DynamoDB requests per reading; every
balance equals the sum of its entries; a warm consumer whose account and meter memories
are full (FEIKONG_STATE_CACHE_SIZE each, default 10,000) holds them in < 128 MB. The last line is one JSON object
(bench/report.py); the exit code is 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish  # noqa: E402
from infra.local.stack import dynamodb_request_counts, emulator_for_script  # noqa: E402

PLAN = {"plan_id": "bench-flat", "name": "压测平价", "utility": "electricity",
        "versions": [{"effective_from": "2020-01-01T00:00:00+08:00", "prices": {"flat": "0.8000"}}]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--meters", type=int, default=20)
    args = parser.parse_args()
    with emulator_for_script():
        return run(args)


def total(counts: dict) -> int:
    return sum(counts.values())


def run(args) -> int:
    import boto3

    from core.domain.ledger import format_time
    from core.domain.rating import MeterReading
    from core.protocol import messages
    from core.services.ingest import Ingest
    from core.services.ledger import LedgerService
    from core.store.models import AccountItem, LedgerEntryItem, MeterItem
    from functions import uplink_consumer
    from infra.fakes.sitesim import LambdaContext
    from testkit.builders import Metered

    w = Metered(plan=PLAN)
    meters = []
    for _ in range(args.meters):
        a = w.account(opening=10**9)
        meters.append((a, w.meter(a, rated_kw="1000")))
    raw_accounts = [w.account(opening=10**9) for _ in range(args.meters)]
    raw_meters = [w.meter(a, rated_kw="1000") for a in raw_accounts]
    t0 = datetime(2026, 11, 24, 2, tzinfo=UTC)
    seqs = {m: 0 for _, m in meters}
    uplink_consumer.ingest = Ingest()  # a warm Lambda: one instance across invocations

    def events(n: int):
        """SQS events of 10 records, each a signed message with one reading per meter."""
        made, records = 0, []
        while made < n:
            batch = []
            for _, m in meters:
                if made == n:
                    break
                seqs[m] += 1
                batch.append(MeterReading(m, seqs[m], t0 + timedelta(minutes=seqs[m]), Decimal(seqs[m]) / 10))
                made += 1
            msg = messages.sign(messages.envelope("readings", w.site.site_id, f"b-{made}-{seqs[meters[0][1]]}",
                                                  t0, readings=[messages.reading_to_wire(r) for r in batch]),
                                w.site.secret)
            records.append({"messageId": f"r{len(records)}", "receiptHandle": "x", "body": json.dumps(msg),
                            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:cn-north-1:123456789012:uplink", "awsRegion": "cn-north-1"})
        return [{"Records": records[i:i + 10]} for i in range(0, len(records), 10)]

    def consumer_round() -> tuple[float, int]:
        evs = events(args.per_round)
        before = total(dynamodb_request_counts())
        t = time.perf_counter()
        for e in evs:
            result = uplink_consumer.handler(e, LambdaContext())
            assert not result.get("batchItemFailures"), result
        elapsed = time.perf_counter() - t
        return elapsed, total(dynamodb_request_counts()) - before

    client = boto3.client("dynamodb")
    tables = (LedgerEntryItem.Meta.table_name, AccountItem.Meta.table_name, MeterItem.Meta.table_name)
    raw = {m: {"balance": 10**9, "version": 1, "seq": 0} for m in raw_meters}
    acct_of = dict(zip(raw_meters, raw_accounts, strict=True))

    def raw_round() -> float:
        t = time.perf_counter()
        for i in range(args.per_round):
            m = raw_meters[i % len(raw_meters)]
            s = raw[m]
            seq, now = s["seq"] + 1, format_time(datetime.now(UTC))
            read_at = (t0 + timedelta(minutes=seq)).isoformat()
            cond_seq = {"ConditionExpression": "attribute_exists(meter_id) AND rated_seq = :s AND retired <> :t",
                        "ExpressionAttributeValues": {":s": {"N": str(s["seq"])}, ":t": {"BOOL": True}}}
            meter_update = {"Update": {
                "TableName": tables[2], "Key": {"meter_id": {"S": m}},
                "UpdateExpression": "SET last_seen = :ls, #o = :on, online_key = :ok, last_reading = :lr, "
                                    "rated_seq = :ns, rated_at = :ra, rated_total = :rt, rated_registers = :rr, "
                                    "carry_fen = :cf, #c = :cy, cycle_usage = :cu",
                "ExpressionAttributeNames": {"#c": "cycle", "#o": "online"},
                "ExpressionAttributeValues": {
                    ":ls": {"S": now}, ":on": {"BOOL": True}, ":ok": {"S": "ON"},
                    ":lr": {"M": {"read_at": {"S": read_at}, "total": {"S": "1.0"}, "seq": {"N": str(seq)},
                                  "registers": {"M": {}}}},
                    ":ns": {"N": str(seq)}, ":ra": {"S": read_at}, ":rt": {"S": "1.0"}, ":rr": {"M": {}},
                    ":cf": {"S": "0"}, ":cy": {"S": ""}, ":cu": {"S": "0"},
                    **cond_seq["ExpressionAttributeValues"]},
                "ConditionExpression": cond_seq["ConditionExpression"],
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}
            if s["seq"] == 0:  # first reading: a baseline, no posting (as the consumer does)
                meter_update["Update"]["ConditionExpression"] = "attribute_exists(meter_id) AND " \
                    "attribute_not_exists(rated_seq) AND retired <> :t"
                del meter_update["Update"]["ExpressionAttributeValues"][":s"]
                client.transact_write_items(TransactItems=[meter_update])
                s["seq"] = seq
                continue
            b = s["balance"] - 8
            client.transact_write_items(TransactItems=[
                {"Put": {"TableName": tables[0], "Item": {
                    "account_id": {"S": acct_of[m]}, "entry_id": {"S": f"use:{m}:{seq}"},
                    "seq": {"N": str(s["version"] + 1)}, "kind": {"S": "energy"}, "amount": {"N": "-8"},
                    "balance_after": {"N": str(b)}, "cause": {"S": f"reading:{m}:{seq}"}, "actor": {"S": "rating"},
                    "posted_at": {"S": now}, "occurred_at": {"S": now}, "memo": {"S": "0.1 kWh"},
                    "property_id": {"S": w.property_id}},
                    "ConditionExpression": "attribute_not_exists(entry_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                {"Update": {"TableName": tables[1], "Key": {"account_id": {"S": acct_of[m]}},
                            "UpdateExpression": "SET balance = :b, version = :n, last_posted_at = :t",
                            "ConditionExpression": "version = :v AND settings_rev = :r",
                            "ExpressionAttributeValues": {":b": {"N": str(b)}, ":n": {"N": str(s["version"] + 1)},
                                                          ":t": {"S": now}, ":v": {"N": str(s["version"])},
                                                          ":r": {"N": "0"}},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                meter_update,
            ])
            s.update(balance=b, version=s["version"] + 1, seq=seq)
        return time.perf_counter() - t

    consumer_round()  # warm-up: baselines, caches of meters, accounts, plan and site
    raw_round()
    c_time = r_time = 0.0
    requests = 0
    for _ in range(args.rounds):
        elapsed, reqs = consumer_round()
        c_time += elapsed
        requests += reqs
        r_time += raw_round()
    n = args.rounds * args.per_round
    c_rate, r_rate = n / c_time, n / r_time
    ratio = c_rate / r_rate
    per_reading = requests / n
    exact = all(LedgerService().verify(a)["ok"] for a, _ in meters)
    held, bound = full_cache_memory(*meters[0])
    held_mb = held / 2**20
    print(f"readings per round: {args.per_round}, rounds: {args.rounds}, meters: {args.meters}")
    print(f"uplink consumer:           {c_rate:8.1f} readings/s ({c_time / n * 1000:.2f} ms each)")
    print(f"raw boto3 TransactWrite:   {r_rate:8.1f} readings/s ({r_time / n * 1000:.2f} ms each)")
    print(f"ratio consumer/raw:        {ratio:.3f}  (target >= 0.7)")
    print(f"DynamoDB requests/reading: {per_reading:.3f}  (target <= 1.2)")
    print(f"balances == sum(entries):  {exact}")
    print(f"full state memories:       {held_mb:.1f} MB for {bound} accounts + {bound} meters  (target < 128 MB)")
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish({"bench": "ingest", "ratio": round(ratio, 3), "requests_per_reading": round(per_reading, 3),
                   "consumer_per_second": round(c_rate, 1), "raw_per_second": round(r_rate, 1), "readings": n,
                   "balances_exact": exact, "state_cache_bound": bound, "state_cache_mb": round(held_mb, 1)},
                  {"ratio": (">= 0.7", ratio >= 0.7), "requests_per_reading": ("<= 1.2", per_reading <= 1.2),
                   "balances_exact": ("true", exact), "state_cache_mb": ("< 128", held_mb < 128)})


def full_cache_memory(account_id: str, meter_id: str) -> tuple[int, int]:
    """Bytes a warm Ingest holds once its account and meter memories are full, and the
    bound. They are filled past the bound (the oldest are dropped) with states made from
    the real items of one bench account and meter as they stand after the rounds, each
    under its own id and through the store's item -> state path that a load takes."""
    import gc
    import tracemalloc

    import boto3

    from core.services.cache import state_cache_size
    from core.services.ingest import Ingest
    from core.store.ledger import state_from_item
    from core.store.meters import state_from_raw as meter_from_raw
    from core.store.models import AccountItem, MeterItem

    client = boto3.client("dynamodb")
    account = json.dumps(client.get_item(TableName=AccountItem.Meta.table_name, ConsistentRead=True,
                                         Key={"account_id": {"S": account_id}})["Item"])
    meter = json.dumps(client.get_item(TableName=MeterItem.Meta.table_name, ConsistentRead=True,
                                       Key={"meter_id": {"S": meter_id}})["Item"])
    bound = state_cache_size()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    warm = Ingest()
    for i in range(bound + bound // 10):
        a, m = f"{account_id}-{i:06d}", f"{meter_id}-{i:06d}"
        warm.ledger._store_state(state_from_item(AccountItem.from_raw_data(json.loads(account.replace(account_id, a)))))
        warm._remember(meter_from_raw(json.loads(meter.replace(meter_id, m).replace(account_id, a))))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(warm.ledger._states) == bound and len(warm._meters) == bound, "a memory outgrew its bound"
    return held, bound


if __name__ == "__main__":
    sys.exit(main())
