"""The action log (审计日志, docs/console.md): every console action and every login,
with who, when, from which address, and the state before and after.

`record(...)` is called by every console action after it is done (and by the login for
each success and failure); `query(...)` pages a property's records (or a company's:
`company_partition(company_id)`), newest first.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from types import ModuleType

from core.domain.action_log import ActionRecord, check_value, company_partition
from core.domain.admins import AdminPrincipal
from core.domain.clock import Clock, utcnow
from core.domain.errors import ValidationError
from core.domain.naming import require_id
from core.store import action_log as store

MAX_PAGE = 200
UNKNOWN_COMPANY = "-"  # the partition suffix of failed logins that name no admin we know


def record(
    actor: AdminPrincipal,
    action: str,
    *,
    property_id: str | None = None,
    target: str = "",
    before: dict | None = None,
    after: dict | None = None,
    ip: str = "",
    record_id: str | None = None,
    at: datetime | None = None,
    clock: Clock = utcnow,
    repo: ModuleType = store,
) -> ActionRecord:
    """Append one record: to the property's log, or (no property) to the actor's company's.
    `record_id`: a deterministic id makes a retried action record once."""
    if not action or not isinstance(action, str):
        raise ValueError("an action is required")
    partition = property_id or company_partition(actor.company_id or UNKNOWN_COMPANY)
    r = ActionRecord(
        at=at or clock(),
        actor_id=actor.admin_id,
        actor_name=actor.name,
        role=actor.role,
        partition=partition,
        action=action,
        target=str(target or "")[:200],
        before=check_value(before, "before"),
        after=check_value(after, "after"),
        ip=(ip or "")[:64],
        record_id=record_id or secrets.token_hex(8),
        property_id=property_id or "",
    )
    repo.put(r)
    return r


def query(
    property_id: str,
    since: datetime,
    until: datetime,
    actor: str | None = None,
    action: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    repo: ModuleType = store,
    target: str | None = None,
) -> tuple[list[ActionRecord], str | None]:
    """Records of a property (or of `company_partition(id)`) with since <= at < until,
    newest first; and the cursor of the next page (None when there is none). The caller
    has checked that the admin may see the property."""
    if property_id.startswith("company:"):
        require_id(property_id.split(":", 1)[1], "company_id")
    else:
        require_id(property_id, "property_id")
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationError("时间必须带时区", code="time_invalid")
    if since >= until:
        raise ValidationError("开始时间必须早于结束时间", code="range_invalid")
    if until - since > timedelta(days=400):
        raise ValidationError("查询范围不能超过 400 天", code="range_invalid")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"每页条数必须在 1 到 {MAX_PAGE} 之间", code="limit_invalid")
    if target:  # a part of the target: the audit page's filter (console_ops.py)
        return repo.query(property_id, since, until, actor=actor or None, action=action or None,
                          cursor=cursor or None, limit=limit, target=target)
    return repo.query(property_id, since, until, actor=actor or None, action=action or None, cursor=cursor or None,
                      limit=limit)
