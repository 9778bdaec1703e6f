"""Persistence of the action log (docs/console.md): the `action_log` table, partition = a
property id or `company:<id>`, sort key `<at>#<record id>`. A record is put once (a
record id given twice keeps the first); a page is one query, newest first."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from core.domain.action_log import ActionRecord
from core.domain.errors import ValidationError
from core.domain.ledger import format_time, parse_time
from core.store.models import ActionLogItem
from core.store.tx import save_if


def _sk(r: ActionRecord) -> str:
    return f"{format_time(r.at)}#{r.record_id}"


def _json(value: dict | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def put(r: ActionRecord) -> bool:
    """Append a record; False if one with the same time and id is there already."""
    item = ActionLogItem(
        r.partition, _sk(r), at=format_time(r.at), actor_id=r.actor_id, actor_name=r.actor_name, role=r.role,
        action=r.action, target=r.target or None, before=_json(r.before), after=_json(r.after), ip=r.ip or None,
        property_id=r.property_id or None,
    )
    return save_if(item, ActionLogItem.sk.does_not_exist())


def _record(i: ActionLogItem) -> ActionRecord:
    return ActionRecord(
        at=parse_time(i.at, "at"), actor_id=i.actor_id, actor_name=i.actor_name, role=i.role, partition=i.partition,
        action=i.action, target=i.target or "", before=json.loads(i.before) if i.before else None,
        after=json.loads(i.after) if i.after else None, ip=i.ip or "", record_id=i.sk.split("#", 1)[1],
        property_id=i.property_id or "",
    )


def _cursor(key: dict | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _key(cursor: str, partition: str) -> dict:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        ok = key["partition"] == {"S": partition} and isinstance(key["sk"]["S"], str) and len(key) == 2
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValidationError("分页游标无效", code="cursor_invalid", field="cursor")
    return key


def query(partition: str, since: datetime, until: datetime, actor: str | None = None, action: str | None = None,
          cursor: str | None = None, limit: int = 50, target: str | None = None) -> tuple[list[ActionRecord], str | None]:
    """Records of a partition with since <= at < until, newest first, at most `limit`;
    and the cursor of the next page (None at the end)."""
    cond = None
    if actor:
        cond = ActionLogItem.actor_id == actor
    if action:
        cond = (ActionLogItem.action == action) if cond is None else cond & (ActionLogItem.action == action)
    if target:  # a part of the target (console audit page: "101", "site:")
        cond = ActionLogItem.target.contains(target) if cond is None else cond & ActionLogItem.target.contains(target)
    results = ActionLogItem.query(
        partition,
        ActionLogItem.sk.between(format_time(since), format_time(until)),
        filter_condition=cond,
        scan_index_forward=False,
        consistent_read=True,
        limit=limit,
        last_evaluated_key=_key(cursor, partition) if cursor else None,
    )
    records = [_record(i) for i in results]  # the sort key range keeps since <= at < until
    return records, _cursor(results.last_evaluated_key) if len(records) >= limit else None
