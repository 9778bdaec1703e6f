"""A DynamoDB write transaction whose items keep the order they were added in, so a
cancellation reason can be traced back to the item (and the caller) that caused it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

_connection: Connection | None = None


def connection() -> Connection:
    """One shared pynamodb connection (its botocore client is thread-safe)."""
    global _connection
    if _connection is None:
        _connection = Connection(max_retry_attempts=3)
    return _connection


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

    def commit(self) -> list[Failure] | None:
        """Write everything or nothing. Returns None on success, else the failures."""
        try:
            connection().transact_write_items(
                condition_check_items=[kw for _, kw in self._checks],
                delete_items=[],
                put_items=[kw for _, kw in self._puts],
                update_items=[kw for _, kw in self._updates],
            )
        except TransactWriteError as e:
            if e.cause_response_code != "TransactionCanceledException":
                raise
            failures = []
            for tag, reason in zip(self._tags(), e.cancellation_reasons, strict=True):
                if reason is not None and reason.code != "None":
                    failures.append(Failure(tag, reason.code, reason.raw_item))
            return failures
        return None


def applied(write: Callable[[], object]) -> bool:
    """Run one conditional write: True if it was applied, False if its condition did not
    hold; any other failure is raised."""
    try:
        write()
        return True
    except (PutError, UpdateError) as e:
        if e.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
