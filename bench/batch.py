"""Batch operations (docs/batch.md): items per second of an N-meter relay batch (批量分闸)
through the queue and the worker, as deployed (confirm puts the items on the batch queue in
messages of 25; the worker Lambda handler drains it, each item a Control.manual_relay: the
meter's intended state, the command record, the signed message on the site's queue),
against the raw rate of the same commands issued directly: the same Control.manual_relay
per meter in a loop, same process, same emulator, on N other meters in the same state.

    .venv/bin/python bench/batch.py [--items 5000]

Seeding is not timed: raw BatchWriteItem (pynamodb batch_write, 25 items a request) of rooms,
accounts and meters in the store's own shapes, on a real registered site (its FIFO down
queue and signing key). Making the task (the dry run's step) is timed apart.
Targets: ratio (batch items/s / raw items/s) >= 0.7; every item done, every batch meter held
open with exactly one TRIP command (sampled). The last line is one JSON object
(bench/report.py); the exit code is 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish  # noqa: E402
from infra.local.stack import dynamodb_request_counts, emulator_for_script  # noqa: E402

REASON = "压测检修"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=100, help="meters checked for exactness afterwards")
    args = parser.parse_args()
    if not 1 <= args.items <= 5_000:
        parser.error("--items must be 1..5000 (a task's limit)")
    with emulator_for_script():
        return run(args)


def seed(n: int) -> tuple[str, str, dict[str, list[str]]]:
    """A property with two buildings (RAW, BATCH) of n rooms, each room an account and a meter
    on one registered site. Returns (property id, site id, building -> meter ids)."""
    from core.domain.directory import Account
    from core.domain.ledger import format_time
    from core.services import directory
    from core.store.directory import account_item
    from core.store.models import AccountItem, DirectoryItem, MeterItem
    from testkit.builders import uid

    pid = uid("p")
    directory.create_property(pid, "批量压测物业")
    site = directory.register_site(pid, uid("s"), "压测网关")
    now = format_time(datetime.now(UTC))
    meters: dict[str, list[str]] = {}
    for b in ("RAW", "BATCH"):
        directory.add_building(pid, b, f"{b} 栋")
        directory.add_floor(pid, b, "F1", "1 层", 1)
        meters[b] = []
        with DirectoryItem.batch_write() as rooms, AccountItem.batch_write() as accounts, \
                MeterItem.batch_write() as ms:
            for i in range(n):
                room, a, m = f"{b}{i:05d}", f"a-{pid}-{b}-{i}", f"m-{pid}-{b}-{i}"
                rooms.save(DirectoryItem(pid, f"ROOM#{b}#{room}", kind="room", name=room, building_id=b,
                                         floor_id="F1", room_id=room, area_m2="30.00"))
                accounts.save(account_item(Account(a, pid, b, room, "t-bench", room, 10_000, 0, opened_at=now), now))
                ms.save(MeterItem(m, property_id=pid, account_id=a, site_id=site.site_id, kind="electric_1p",
                                  model="acrel-ddsy1352", bus=f"bus-{b}-{i // 200}", address=i % 200 + 1,
                                  billing_mode="cloud", rated_kw="10", relay_state="closed", online=True))
                meters[b].append(m)
    return pid, site.site_id, meters


def drain(handler) -> int:
    """The batch queue to the worker handler, as the event source mapping hands it over."""
    from core.integrations.queues import batch_url
    from infra.fakes.sitesim import drain_uplink

    total = 0
    while n := drain_uplink(batch_url(), handler, max_batches=1000):
        total += n
    return total


def run(args) -> int:
    from core.domain import batch as rules
    from core.domain import control as policy
    from core.domain.admins import AdminPrincipal
    from core.services import batch as batch_service
    from core.services.batch import Batch
    from core.store import commands as cstore
    from core.store import meters as mstore
    from functions import batch as batch_fn

    n = args.items
    t0 = time.monotonic()
    pid, site_id, meters = seed(n)
    seeded = time.monotonic() - t0
    svc = Batch()
    batch_service._default = svc  # the worker handler's service: the same Control as the raw loop's
    control = svc.control
    admin = AdminPrincipal("bench", "压测管理员", "bench", "owner", (pid,))

    # raw: the same control-service call per meter, in a loop
    c0 = dynamodb_request_counts()
    t = time.monotonic()
    for m in meters["RAW"]:
        control.manual_relay(pid, m, policy.TRIP, REASON, "admin:bench")
    raw_s = time.monotonic() - t
    c1 = dynamodb_request_counts()

    # batch: made (the dry run's step), then confirmed: fan-out and the worker, timed together
    t = time.monotonic()
    task = svc.create(admin, pid, "trip", {"reason": REASON}, selection={"buildings": ["BATCH"]})
    create_s = time.monotonic() - t
    c2 = dynamodb_request_counts()
    t = time.monotonic()
    svc.confirm(admin, pid, task.task_id)
    delivered = drain(batch_fn.worker)
    prog = svc.progress(pid, task.task_id)
    batch_s = time.monotonic() - t
    c3 = dynamodb_request_counts()

    raw_rate, batch_rate = n / raw_s, n / batch_s
    ratio = batch_rate / raw_rate
    done = prog["counts"][rules.DONE] == n and prog["task"].state == rules.FINISHED
    sample = random.Random(1).sample(meters["BATCH"], min(args.sample, n))
    exact = all(mstore.load_meter(m).manual_open and [c.op for c in cstore.commands_of_meter(m)] == [policy.TRIP]
                for m in sample)
    requests = {"raw_per_item": round((sum(c1.values()) - sum(c0.values())) / n, 2),
                "batch_per_item": round((sum(c3.values()) - sum(c2.values())) / n, 2)}
    print(f"{n} meters: raw {raw_rate:.1f}/s ({raw_s:.1f}s), batch {batch_rate:.1f}/s ({batch_s:.1f}s, "
          f"{delivered} messages), ratio {ratio:.2f}; making the task {create_s:.1f}s; seeding {seeded:.1f}s; "
          f"DynamoDB requests per item {requests}")
    result = {"bench": "batch", "items": n, "raw_items_per_s": round(raw_rate, 1),
              "batch_items_per_s": round(batch_rate, 1), "ratio": round(ratio, 3), "create_s": round(create_s, 2),
              "messages": delivered, "dynamodb_requests": requests, "every_item_done": done,
              "held_open_with_one_trip": exact, "site_id": site_id}
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish(result, {
        "ratio": ("batch items/s >= 0.7 x raw items/s", ratio >= 0.7),
        "every_item_done": ("every item done, the task finished", done),
        "held_open_with_one_trip": ("each batch meter held open with exactly one TRIP (sampled)", exact),
    })


if __name__ == "__main__":
    sys.exit(main())
