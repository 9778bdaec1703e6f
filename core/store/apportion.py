"""Apportionment groups and runs (table `apportion`; rules: core/domain/apportion.py).

Key formats (known only here): partition = property_id; `sk` = `group#<group_id>` |
`run#<group_id>#<YYYY-MM>`. Every read names the property, so an admin's reads are scoped by
construction. Writes are conditioned: a group on its version (0: not there yet), a preview
on the run not being approved or posted and on the revision it was planned on, an approval
on the revision the admin saw, posted on approved.
"""

from __future__ import annotations

import json

from core.domain import apportion as rules
from core.domain.apportion import Group, Result, Run
from core.store.models import ApportionItem
from core.store.tx import save_if, update_if

GROUP, RUN = "group#", "run#"


def _group_sk(group_id: str) -> str:
    return f"{GROUP}{group_id}"


def _run_sk(group_id: str, period: str) -> str:
    return f"{RUN}{group_id}#{period}"


def _group(i: ApportionItem) -> Group:
    return rules.group_from_json(i.doc, i.property_id, i.sk[len(GROUP):], int(i.version or 0))


def _run(i: ApportionItem) -> Run:
    group_id, period = i.sk[len(RUN):].rsplit("#", 1)
    return Run(property_id=i.property_id, group_id=group_id, period=period, status=i.status or rules.PREVIEWED,
               rev=int(i.version or 0), result=Result.from_dict(json.loads(i.doc)), computed_at=i.updated_at or "",
               computed_by=i.updated_by or "", approved_at=i.approved_at or "", approved_by=i.approved_by or "",
               posted_at=i.posted_at or "")


# --- groups --------------------------------------------------------------------------------------


def groups(property_id: str) -> list[Group]:
    """A property's groups, by id: one consistent Query."""
    return [_group(i) for i in ApportionItem.query(property_id, ApportionItem.sk.startswith(GROUP),
                                                   consistent_read=True)]


def get_group(property_id: str, group_id: str) -> Group | None:
    try:
        return _group(ApportionItem.get(property_id, _group_sk(group_id), consistent_read=True))
    except ApportionItem.DoesNotExist:
        return None


def put_group(group: Group, expected_version: int, by: str, at: str) -> bool:
    """Write the group's settings if its stored version is still expected_version (0: none
    stored); it is stored as expected_version + 1. False if someone changed it meanwhile."""
    item = ApportionItem(group.property_id, _group_sk(group.group_id), doc=json.dumps(group.to_doc(), ensure_ascii=False),
                         version=expected_version + 1, updated_at=at, updated_by=by)
    cond = ApportionItem.sk.does_not_exist() if expected_version == 0 else ApportionItem.version == expected_version
    return save_if(item, cond)


# --- runs ----------------------------------------------------------------------------------------


def runs(property_id: str, group_id: str) -> list[Run]:
    """A group's runs, newest period first: one consistent Query."""
    items = ApportionItem.query(property_id, ApportionItem.sk.startswith(f"{RUN}{group_id}#"), consistent_read=True,
                                scan_index_forward=False)
    return [_run(i) for i in items]


def get_run(property_id: str, group_id: str, period: str) -> Run | None:
    try:
        return _run(ApportionItem.get(property_id, _run_sk(group_id, period), consistent_read=True))
    except ApportionItem.DoesNotExist:
        return None


def put_preview(property_id: str, group_id: str, result: Result, expected_rev: int, by: str, at: str) -> bool:
    """Store a preview as revision expected_rev + 1, if the run is absent (expected_rev 0)
    or still a preview at expected_rev. False otherwise (approved or posted meanwhile, or
    previewed again by someone else)."""
    item = ApportionItem(property_id, _run_sk(group_id, result.period), doc=json.dumps(result.to_dict(), ensure_ascii=False),
                         version=expected_rev + 1, status=rules.PREVIEWED, updated_at=at, updated_by=by)
    cond = (ApportionItem.sk.does_not_exist() if expected_rev == 0
            else (ApportionItem.status == rules.PREVIEWED) & (ApportionItem.version == expected_rev))
    return save_if(item, cond)


def approve(property_id: str, group_id: str, period: str, rev: int, by: str, at: str) -> bool:
    """previewed (at revision rev) -> approved. False if it is not that preview any more."""
    item = ApportionItem(property_id, _run_sk(group_id, period))
    return update_if(item, [ApportionItem.status.set(rules.APPROVED), ApportionItem.approved_by.set(by),
                            ApportionItem.approved_at.set(at)],
                     (ApportionItem.status == rules.PREVIEWED) & (ApportionItem.version == rev))


def mark_posted(property_id: str, group_id: str, period: str, at: str) -> bool:
    """approved -> posted (every charge applied). False if it was not approved."""
    item = ApportionItem(property_id, _run_sk(group_id, period))
    return update_if(item, [ApportionItem.status.set(rules.POSTED), ApportionItem.posted_at.set(at)],
                     ApportionItem.status == rules.APPROVED)
