"""Persistence of batch tasks (批量操作, docs/batch.md): the `batch_tasks` table, one partition
per task: sk `TASK` and `ITEM#<00001>`. A task's items are one Query (paged), a message's
items one BatchGetItem, their states one BatchWriteItem per 25; a property's tasks are the
sparse index `by_property`, scheduled tasks that are due the sparse index `by_due`.

Item writes are whole-item puts made by the worker that holds the item's message (a
redelivered message reads the items first and skips what is settled); task changes are
conditioned on the task's state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from core.domain import batch as rules
from core.domain.batch import Item, Target, Task
from core.store.models import BatchTaskItem
from core.store.tx import retrying, save_if, update_if

TASK_SK = "TASK"
ITEM_PREFIX = "ITEM#"
DUE = "DUE"
CHUNK = 25  # BatchWriteItem's limit


def _item_sk(item_id: str) -> str:
    return f"{ITEM_PREFIX}{item_id}"


def _dumps(value: dict) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def _task_model(t: Task) -> BatchTaskItem:
    return BatchTaskItem(
        t.task_id, TASK_SK, state=t.state, property_id=t.property_id, created_at=t.created_at, op=t.op,
        params=_dumps(t.params), total=t.total, created_by=t.created_by, created_by_name=t.created_by_name,
        title=t.title or None, run_at=t.run_at or None, attempt=t.attempt, started_at=t.started_at or None,
        finished_at=t.finished_at or None, schedule_name=t.schedule_name or None,
        due_key=DUE if t.state == rules.SCHEDULED else None, updated_at=t.created_at)


def _task(i: BatchTaskItem) -> Task:
    return Task(
        task_id=i.task_id, property_id=i.property_id or "", op=i.op or "", params=json.loads(i.params or "{}"),
        state=i.state, total=int(i.total or 0), created_at=i.created_at or "", created_by=i.created_by or "",
        created_by_name=i.created_by_name or "", run_at=i.run_at or "", attempt=int(i.attempt or 1),
        started_at=i.started_at or "", finished_at=i.finished_at or "", schedule_name=i.schedule_name or "",
        title=i.title or "")


def _item_model(it: Item) -> BatchTaskItem:
    return BatchTaskItem(
        it.task_id, _item_sk(it.item_id), state=it.state, target=_dumps(it.target.to_dict()),
        row_values=_dumps(it.values) if it.values else None, reason=it.reason or None,
        result=_dumps(it.result) if it.result else None, attempt=it.attempt, updated_at=it.updated_at or None)


def _item(i: BatchTaskItem) -> Item:
    return Item(
        task_id=i.task_id, item_id=i.sk[len(ITEM_PREFIX):], target=Target.from_dict(json.loads(i.target or "{}")),
        values=json.loads(i.row_values) if i.row_values else {}, state=i.state, reason=i.reason or "",
        result=json.loads(i.result) if i.result else {}, attempt=int(i.attempt or 1), updated_at=i.updated_at or "")


def put_items(items: Iterable[Item]) -> None:
    """Whole items, 25 a BatchWriteItem (each request retried by the store's policy)."""
    models = [_item_model(it) for it in items]
    for start in range(0, len(models), CHUNK):
        chunk = models[start:start + CHUNK]

        def write(chunk=chunk) -> None:
            with BatchTaskItem.batch_write() as b:
                for m in chunk:
                    b.save(m)

        retrying(write)


def create(task: Task, items: list[Item]) -> bool:
    """The items, then the task (a task is only seen once its items are all there); False if
    a task with this id exists."""
    put_items(items)
    return save_if(_task_model(task), BatchTaskItem.task_id.does_not_exist())


def get_task(task_id: str) -> Task | None:
    try:
        return _task(BatchTaskItem.get(task_id, TASK_SK, consistent_read=True))
    except BatchTaskItem.DoesNotExist:
        return None


def tasks_of_property(property_id: str, limit: int = 50) -> list[Task]:
    return [_task(i) for i in BatchTaskItem.by_property.query(property_id, scan_index_forward=False, limit=limit)]


def get_items(task_id: str, item_ids: Iterable[str]) -> list[Item]:
    """Items by id (consistent BatchGetItem, 100 a request), in the order asked."""
    keys = [(task_id, _item_sk(i)) for i in dict.fromkeys(item_ids)]
    found: dict[str, Item] = {}
    for start in range(0, len(keys), 100):
        for m in BatchTaskItem.batch_get(keys[start:start + 100], consistent_read=True):
            it = _item(m)
            found[it.item_id] = it
    return [found[k[1][len(ITEM_PREFIX):]] for k in keys if k[1][len(ITEM_PREFIX):] in found]


def items(task_id: str, after: str | None = None, limit: int | None = None) -> list[Item]:
    """The task's items in order, from after `after` (an item id), at most `limit`."""
    cond = BatchTaskItem.sk.startswith(ITEM_PREFIX) if after is None else BatchTaskItem.sk > _item_sk(after)
    q = BatchTaskItem.query(task_id, cond, consistent_read=True, limit=limit)
    out = []
    for m in q:
        if not m.sk.startswith(ITEM_PREFIX):
            break
        out.append(_item(m))
        if limit is not None and len(out) >= limit:
            break
    return out


def item_states(task_id: str) -> list[tuple[str, str, str]]:
    """(item id, state, updated_at) of every item: the progress (one page per ~1 MB read)."""
    out = []
    for m in BatchTaskItem.query(task_id, BatchTaskItem.sk.startswith(ITEM_PREFIX), consistent_read=True,
                                 attributes_to_get=["sk", "state", "updated_at"]):
        out.append((m.sk[len(ITEM_PREFIX):], m.state, m.updated_at or ""))
    return out


def move_task(task_id: str, to: str, expected: tuple[str, ...], at: str, **fields: object) -> bool:
    """The task's state to `to` if it is one of `expected` (and any fields with it)."""
    item = BatchTaskItem(task_id, TASK_SK)
    actions = [BatchTaskItem.state.set(to), BatchTaskItem.updated_at.set(at)]
    if to == rules.SCHEDULED:
        actions.append(BatchTaskItem.due_key.set(DUE))
    else:
        actions.append(BatchTaskItem.due_key.remove())
    for name, value in fields.items():
        attr = getattr(BatchTaskItem, name)
        actions.append(attr.remove() if value in (None, "") else attr.set(value))
    cond = BatchTaskItem.state.is_in(*expected)
    return update_if(item, actions, cond)


def due_tasks(now: str, limit: int = 100) -> list[str]:
    """Scheduled tasks whose start time has come."""
    return [i.task_id for i in BatchTaskItem.by_due.query(DUE, BatchTaskItem.run_at <= now, limit=limit)]
