"""One consistent BatchGetItem across tables for the tenant API's reads (docs/tenant-auth.md,
"The per-request check"): the caller's session item together with what the read needs (a
membership, accounts), so that a read checks its session without a request of its own.

The request itself (raw, across tables, unprocessed keys re-sent) is core/store/batch_read.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.domain.directory import Account
from core.domain.memberships import Membership
from core.domain.sessions import TenantSession
from core.store import memberships as mstore
from core.store import sessions as sstore
from core.store.batch_read import batch_get
from core.store.directory import _account
from core.store.models import AccountItem, MembershipItem, TenantSessionItem


@dataclass(frozen=True)
class WithSession:
    """What one read found: the session (None if its item is gone), the membership asked
    for (None if absent or not asked), the accounts asked for that exist (any order)."""

    session: TenantSession | None
    membership: Membership | None = None
    accounts: list[Account] = field(default_factory=list)


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
    for table, item in batch_get(keys):
        if table == sessions:
            session = sstore.from_raw(item)
        elif table == memberships:
            membership = mstore.from_raw(item)
        else:
            found.append(_account(AccountItem.from_raw_data(item)))
    return WithSession(session, membership, found)
