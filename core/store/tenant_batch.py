"""One consistent BatchGetItem across tables for the tenant API's reads (docs/tenant-auth.md,
"The per-request check"): the caller's session item together with what the read needs (a
membership, accounts), so that a read checks its session without a request of its own.

pynamodb's `Model.batch_get` reads one table; BatchGetItem itself takes keys of several
tables, each with its own ConsistentRead, in one request of at most 100 keys. This module
sends it raw on the models' shared read connection (core/store/connections.py: botocore's
standard retries cover throttling, 5xx and network errors) and re-sends what DynamoDB
leaves in UnprocessedKeys (an answer over 16 MB, or throughput), with full-jitter backoff.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from core.domain.directory import Account
from core.domain.memberships import Membership
from core.domain.sessions import TenantSession
from core.store import connections
from core.store import memberships as mstore
from core.store import sessions as sstore
from core.store.directory import _account
from core.store.models import AccountItem, MembershipItem, TenantSessionItem

BATCH_MAX = 100  # keys per BatchGetItem, across all its tables
MAX_ROUNDS = 10  # requests for one batch of keys, the first included, before giving up
BASE_DELAY = 0.025  # seconds before re-sending unprocessed keys; doubles per round
MAX_DELAY = 1.0

_rng = random.Random()


class UnprocessedKeysLeft(RuntimeError):
    """DynamoDB still left keys unprocessed after MAX_ROUNDS requests."""


@dataclass(frozen=True)
class WithSession:
    """What one read found: the session (None if its item is gone), the membership asked
    for (None if absent or not asked), the accounts asked for that exist (any order)."""

    session: TenantSession | None
    membership: Membership | None = None
    accounts: list[Account] = field(default_factory=list)


def _batch_get(keys: list[tuple[str, dict]], sleep=time.sleep) -> list[tuple[str, dict]]:
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


def read(openid: str, session_id: str, *, membership_of: str | None = None,
         account_ids: Iterable[str] = ()) -> WithSession:
    """The session (openid, session_id) and, in the same consistent BatchGetItem, the
    user's membership of account `membership_of` and the accounts `account_ids`: one request
    for up to 99 other keys (one more per 100 keys beyond, plus any re-sends of unprocessed
    keys)."""
    sessions, memberships, accounts = (TenantSessionItem.Meta.table_name, MembershipItem.Meta.table_name,
                                       AccountItem.Meta.table_name)
    keys = [(sessions, sstore.raw_key(openid, session_id))]
    if membership_of is not None:
        keys.append((memberships, mstore.raw_key(openid, membership_of)))
    keys += [(accounts, {"account_id": {"S": a}}) for a in dict.fromkeys(account_ids)]
    session, membership, found = None, None, []
    for table, item in _batch_get(keys):
        if table == sessions:
            session = sstore.from_raw(item)
        elif table == memberships:
            membership = mstore.from_raw(item)
        else:
            found.append(_account(AccountItem.from_raw_data(item)))
    return WithSession(session, membership, found)
