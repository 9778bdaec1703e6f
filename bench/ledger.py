"""Ledger throughput: postings per second through LedgerService next to the same
DynamoDB TransactWriteItems issued raw with boto3, against the same emulator, in one
run. Rounds alternate (service, raw, service, raw, ...) so that machine noise hits both.
Also the client's CPU time per posting (time.process_time of this process: our code,
botocore and the HTTP client; the emulator runs in its own process), service and raw.

    .venv/bin/python bench/ledger.py [--rounds 6] [--per-round 300]

Targets: ratio = service rate / raw rate >= 0.8 (our overhead per posting under 25%);
every balance equals the sum of its entries. The last line is one JSON object
(bench/report.py); the exit code is 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish  # noqa: E402
from infra.local.stack import emulator_for_script  # noqa: E402

TARGET_RATIO = 0.8


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=20)
    args = parser.parse_args()

    with emulator_for_script():
        return run(args)


def run(args) -> int:
    import boto3

    from core.domain.clock import utcnow
    from core.domain.ledger import format_time
    from core.services.ledger import LedgerService
    from core.store.models import AccountItem, LedgerEntryItem
    from testkit.builders import World

    world = World()
    opening = 10**9
    svc_accounts = [world.account(opening=opening) for _ in range(args.accounts)]
    raw_accounts = [world.account(opening=opening) for _ in range(args.accounts)]
    ledger = LedgerService()
    client = boto3.client("dynamodb")
    ledger_table, accounts_table = LedgerEntryItem.Meta.table_name, AccountItem.Meta.table_name
    raw_state = {a: [opening, 1] for a in raw_accounts}  # balance, version

    cpu = {"service": 0.0, "raw": 0.0}

    def service_round(r: int) -> float:
        t, c = time.perf_counter(), time.process_time()
        for i in range(args.per_round):
            ledger.post(account_id=svc_accounts[i % len(svc_accounts)], entry_id=f"use:bench:{r}:{i}",
                        kind="energy", amount=37, cause=f"bench:{r}:{i}", actor="bench")
        cpu["service"] += time.process_time() - c
        return time.perf_counter() - t

    def raw_round(r: int) -> float:
        t, c = time.perf_counter(), time.process_time()
        for i in range(args.per_round):
            a = raw_accounts[i % len(raw_accounts)]
            balance, version = raw_state[a]
            now = format_time(utcnow())
            client.transact_write_items(TransactItems=[
                {"Put": {
                    "TableName": ledger_table,
                    "Item": {
                        "account_id": {"S": a}, "entry_id": {"S": f"use:raw:{r}:{i}"}, "seq": {"N": str(version + 1)},
                        "kind": {"S": "energy"}, "amount": {"N": "-37"}, "balance_after": {"N": str(balance - 37)},
                        "cause": {"S": f"bench:{r}:{i}"}, "actor": {"S": "bench"}, "posted_at": {"S": now},
                        "memo": {"S": ""}, "property_id": {"S": world.property_id},
                    },
                    "ConditionExpression": "attribute_not_exists(entry_id)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }},
                {"Update": {
                    "TableName": accounts_table,
                    "Key": {"account_id": {"S": a}},
                    "UpdateExpression": "SET balance = :b, version = :n, last_posted_at = :t",
                    "ConditionExpression": "version = :v AND overdraft_limit = :o AND #s = :s",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {
                        ":b": {"N": str(balance - 37)}, ":n": {"N": str(version + 1)}, ":t": {"S": now},
                        ":v": {"N": str(version)}, ":o": {"N": "0"}, ":s": {"S": "OPEN"},
                    },
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }},
            ])
            raw_state[a] = [balance - 37, version + 1]
        cpu["raw"] += time.process_time() - c
        return time.perf_counter() - t

    # warm up both paths (connections, account memory)
    service_round(-1)
    raw_round(-1)
    cpu.update(service=0.0, raw=0.0)
    svc_time = raw_time = 0.0
    for r in range(args.rounds):
        svc_time += service_round(r)
        raw_time += raw_round(r)
    n = args.rounds * args.per_round
    svc_rate, raw_rate = n / svc_time, n / raw_time
    ratio = svc_rate / raw_rate
    exact = all(ledger.verify(a)["ok"] for a in svc_accounts)
    print(f"postings per round: {args.per_round}, rounds: {args.rounds}, accounts: {args.accounts}")
    print(f"ledger service:            {svc_rate:8.1f} postings/s  ({svc_time / n * 1000:.2f} ms each)")
    print(f"raw boto3 TransactWrite:   {raw_rate:8.1f} postings/s  ({raw_time / n * 1000:.2f} ms each)")
    cpu_svc, cpu_raw = cpu["service"] / n * 1000, cpu["raw"] / n * 1000
    print(f"client CPU per posting:    service {cpu_svc:.2f} ms, raw {cpu_raw:.2f} ms "
          f"(+{cpu_svc - cpu_raw:.2f} ms ours)")
    print(f"ratio service/raw:         {ratio:.3f}  (target >= {TARGET_RATIO})")
    print(f"balances == sum(entries):  {exact}")
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish({
        "bench": "ledger", "ratio": round(ratio, 3), "service_per_second": round(svc_rate, 1),
        "raw_per_second": round(raw_rate, 1), "cpu_ms_per_posting": {"service": round(cpu_svc, 3),
                                                                     "raw": round(cpu_raw, 3)},
        "postings": n, "balances_exact": exact,
    }, {"ratio": (f">= {TARGET_RATIO}", ratio >= TARGET_RATIO), "balances_exact": ("true", exact)})


if __name__ == "__main__":
    sys.exit(main())
