"""A consistent BatchGetItem across tables, sent raw (docs/tenant-auth.md "The per-request
check"; month-end reads a building's usage and accounts with it).

pynamodb's `Model.batch_get` reads one table; BatchGetItem itself takes keys of several
tables, each with its own ConsistentRead, in one request of at most 100 keys. This module
sends it raw on the models' shared read connection (core/store/connections.py: botocore's
standard retries cover throttling, 5xx and network errors) and re-sends what DynamoDB
leaves in UnprocessedKeys (an answer over 16 MB, or throughput), with full-jitter backoff.
"""

from __future__ import annotations

import random
import time

from core.store import connections
from core.store.models import TenantSessionItem

BATCH_MAX = 100  # keys per BatchGetItem, across all its tables
MAX_ROUNDS = 10  # requests for one batch of keys, the first included, before giving up
BASE_DELAY = 0.025  # seconds before re-sending unprocessed keys; doubles per round
MAX_DELAY = 1.0

_rng = random.Random()


class UnprocessedKeysLeft(RuntimeError):
    """DynamoDB still left keys unprocessed after MAX_ROUNDS requests."""


def batch_get(keys: list[tuple[str, dict]], sleep=time.sleep) -> list[tuple[str, dict]]:
    """(table, raw item) of every key that exists: BATCH_MAX keys a request, in the order
    given (the first key rides in the first request), each table read consistently."""
    conn = connections.connection(TenantSessionItem.Meta.max_retry_attempts)  # the models' read connection
    found: list[tuple[str, dict]] = []
    for start in range(0, len(keys), BATCH_MAX):
        todo: dict[str, list[dict]] = {}
        for table, key in keys[start:start + BATCH_MAX]:
            todo.setdefault(table, []).append(key)
        rounds = 0
        while todo:
            rounds += 1
            answer = conn.dispatch("BatchGetItem", {"RequestItems": {
                t: {"Keys": k, "ConsistentRead": True} for t, k in todo.items()}})
            for table, items in (answer.get("Responses") or {}).items():
                found.extend((table, i) for i in items)
            todo = {t: r["Keys"] for t, r in (answer.get("UnprocessedKeys") or {}).items() if r.get("Keys")}
            if todo:
                if rounds >= MAX_ROUNDS:
                    raise UnprocessedKeysLeft(f"BatchGetItem left {sum(map(len, todo.values()))} keys unprocessed "
                                              f"after {rounds} requests")
                sleep(_rng.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (rounds - 1))))
    return found
