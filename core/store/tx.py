"""Every DynamoDB write the store makes, and the one retry policy they share.

- `Tx`: a write transaction whose items keep the order they were added in, so a
  cancellation reason can be traced back to the item (and the caller) that caused it.
- `save` / `update_item`: single-item writes (a failed condition raises); `save_if` /
  `update_if`: True if written, False if the condition did not hold (an answer, never
  retried).
- `retrying`: the policy. DynamoDB refusals that say "not now" are retried with full
  jitter exponential backoff, a bounded number of times: TransactWriteItems cancelled
  only for TransactionConflict / ThrottlingError / ProvisionedThroughputExceeded (any
  ConditionalCheckFailed reason makes the cancellation an answer), TransactionConflict-
  Exception, throttling codes, and 5xx / network failures. The last two may hide a write
  that was applied; retrying is still safe because every write we make is conditioned
  or idempotent (a posting's entry id must be absent), and `Tx.ambiguous` tells the
  caller that a ConditionalCheckFailed may be its own earlier attempt.

Writes go through one pynamodb connection whose botocore retries are off, so this module
is the only layer that retries a write (no nested botocore x store attempts). Reads keep
the models' connection (one for all models, core/store/connections.py) and botocore's
standard retry mode, which covers throttling, 5xx and network errors for them (a read
never meets TransactionConflict).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from core.store import connections

T = TypeVar("T")

MAX_ATTEMPTS = 10  # as botocore's legacy mode for DynamoDB; at most ~4.6 s asleep in all, ~2.3 s on average
BASE_DELAY = 0.025  # seconds; doubles per attempt
MAX_DELAY = 1.0

# Refused before anything was written: safe to send again as it is.
BUSY_CODES = frozenset({
    "TransactionConflictException",
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
})
# Cancellation reasons that are "not now", not "no".
BUSY_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# Server-side failures: the write may or may not have been applied.
UNKNOWN_CODES = frozenset({"InternalServerError", "InternalFailure", "ServiceUnavailable"})

BUSY, UNKNOWN = "busy", "unknown"

_rng = random.Random()
_stats_lock = threading.Lock()
retries: dict[str, int] = {}  # retries made in this process, by error code (logs, tests)


def connection() -> Connection:
    """The one pynamodb connection for writes (its botocore client is thread-safe), on the
    process's shared botocore session (core/store/connections.py). botocore's own retries
    are off: `retrying` is the write policy."""
    return connections.connection(max_retry_attempts=0)


def _chain(e: BaseException):
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop(0)
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        yield x
        todo += [getattr(x, "cause", None), x.__cause__, x.__context__]


def classify(e: BaseException) -> tuple[str | None, str]:
    """(BUSY | UNKNOWN | None, error code) for a failed write; None: do not retry."""
    for x in _chain(e):
        if isinstance(x, (BotoConnectionError, HTTPClientError)):
            return UNKNOWN, type(x).__name__
        if isinstance(x, ClientError) and "ResponseMetadata" in x.response:  # botocore's own, whole
            code = x.response.get("Error", {}).get("Code", "")
            if code == "TransactionCanceledException":
                reasons = {r.get("Code") for r in x.response.get("CancellationReasons", [])} - {"None", None}
                if reasons and reasons <= BUSY_REASONS:
                    return BUSY, "+".join(sorted(reasons))
                return None, code
            if code in BUSY_CODES:
                return BUSY, code
            status = x.response["ResponseMetadata"].get("HTTPStatusCode", 0)
            if code in UNKNOWN_CODES or status >= 500:
                return UNKNOWN, code or str(status)
            return None, code
    return None, type(e).__name__


def retrying(call: Callable[[], T], on_retry: Callable[[str], None] | None = None) -> T:
    """Run one write under the store's retry policy; the last error is raised when the
    attempts run out or the error is an answer (a failed condition) or a bug."""
    attempt = 1
    while True:
        try:
            return call()
        except Exception as e:
            kind, code = classify(e)
            if kind is None or attempt >= MAX_ATTEMPTS:
                raise
            with _stats_lock:
                retries[code] = retries.get(code, 0) + 1
            if on_retry:
                on_retry(kind)
            time.sleep(_rng.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** (attempt - 1))))
            attempt += 1


def _response(e: BaseException) -> dict:
    for x in _chain(e):
        if isinstance(x, ClientError) and "ResponseMetadata" in x.response:
            return x.response
    return {}


def _single(operation: str, kwargs: dict, strict: bool) -> bool:
    kwargs = dict(kwargs, ReturnValuesOnConditionCheckFailure="ALL_OLD") if "ConditionExpression" in kwargs else kwargs
    ambiguous = []
    try:
        retrying(lambda: connection().dispatch(operation, dict(kwargs)), ambiguous.append)
        return True
    except ClientError as e:
        response = _response(e)
        if response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        if UNKNOWN in ambiguous and operation == "PutItem" and response.get("Item") == kwargs["Item"]:
            return True  # our own earlier attempt went in and its answer was lost
        if strict:
            raise
        return False


def save(item: Model, condition: Condition | None = None) -> None:
    """PutItem; a failed condition raises (a bug or a race the caller does not expect)."""
    _single("PutItem", item.get_save_kwargs_from_instance(condition=condition), strict=True)


def save_if(item: Model, condition: Condition) -> bool:
    """PutItem: True if written, False if the condition did not hold."""
    return _single("PutItem", item.get_save_kwargs_from_instance(condition=condition), strict=False)


def _update_kwargs(item: Model, actions: list, condition: Condition | None) -> dict:
    return item.get_update_kwargs_from_instance(actions=actions, condition=condition, add_version_condition=False)


def update_item(item: Model, actions: list, condition: Condition | None = None) -> None:
    """UpdateItem on item's key; a failed condition raises."""
    _single("UpdateItem", _update_kwargs(item, actions, condition), strict=True)


def update_if(item: Model, actions: list, condition: Condition) -> bool:
    """UpdateItem on item's key: True if written, False if the condition did not hold."""
    return _single("UpdateItem", _update_kwargs(item, actions, condition), strict=False)


@dataclass
class Failure:
    tag: str
    code: str
    item: dict | None  # the item as it was, when the condition failed


@dataclass
class Tx:
    _checks: list[tuple[str, dict]] = field(default_factory=list)
    _puts: list[tuple[str, dict]] = field(default_factory=list)
    _updates: list[tuple[str, dict]] = field(default_factory=list)
    # an attempt failed in a way that may have applied it (5xx, lost response): a
    # ConditionalCheckFailed after that may be this transaction's own earlier write
    ambiguous: bool = False

    def put(self, model: Model, condition: Condition | None = None, *, tag: str = "") -> None:
        kw = model.get_save_kwargs_from_instance(
            condition=condition, return_values_on_condition_failure="ALL_OLD"
        )
        self._puts.append((tag, kw))

    def update(self, model: Model, actions: list, condition: Condition | None = None, *, tag: str = "") -> None:
        kw = model.get_update_kwargs_from_instance(
            actions=actions,
            condition=condition,
            return_values_on_condition_failure="ALL_OLD",
            add_version_condition=False,
        )
        self._updates.append((tag, kw))

    def check(self, model_cls: type[Model], hash_key: Any, range_key: Any = None, *, condition: Condition, tag: str = "") -> None:
        kw = model_cls.get_operation_kwargs_from_class(hash_key, range_key=range_key, condition=condition)
        self._checks.append((tag, kw))

    def _tags(self) -> list[str]:
        # pynamodb sends condition checks, deletes, puts, then updates.
        return [t for t, _ in self._checks] + [t for t, _ in self._puts] + [t for t, _ in self._updates]

    def _note(self, kind: str) -> None:
        if kind == UNKNOWN:
            self.ambiguous = True

    def commit(self) -> list[Failure] | None:
        """Write everything or nothing. Returns None on success, else the failures (at
        least one of them ConditionalCheckFailed: conflicts and throttling are retried
        here and raised when the attempts run out)."""
        try:
            retrying(
                lambda: connection().transact_write_items(
                    condition_check_items=[kw for _, kw in self._checks],
                    delete_items=[],
                    put_items=[kw for _, kw in self._puts],
                    update_items=[kw for _, kw in self._updates],
                ),
                self._note,
            )
        except TransactWriteError as e:
            if e.cause_response_code != "TransactionCanceledException" or classify(e)[0] is not None:
                raise
            failures = []
            for tag, reason in zip(self._tags(), e.cancellation_reasons, strict=True):
                if reason is not None and reason.code != "None":
                    failures.append(Failure(tag, reason.code, reason.raw_item))
            if not any(f.code == "ConditionalCheckFailed" for f in failures):
                raise  # ValidationError and the like: a bug, not an answer
            return failures
        return None


def applied(write: Callable[[], object]) -> bool:
    """Run one conditional write given as a pynamodb call: True if applied, False if its
    condition did not hold. Prefer `save_if` / `update_if`: a model's own connection
    also has botocore's retries, so the attempts would multiply."""
    try:
        retrying(write)
        return True
    except (PutError, UpdateError) as e:
        if e.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
