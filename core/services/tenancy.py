"""What a WeChat user (openid) may see: the one access check of every tenant endpoint.

Every /api/v1 view that takes an account, meter or order id resolves it through these
functions, so a tenant never sees another tenant's data: an id that is not theirs is
answered exactly like an id that does not exist (404, the same message).

Access comes from memberships (docs/tenant-auth.md, "Bindings"): items keyed by the
WeChat user's openid, one per account they are bound to, read consistently, so a binding
or an unbinding counts from the next request on.

A read may also carry the request's session check (docs/tenant-auth.md, "The per-request
check"): a view guarded by `tenant_required(deferred=True)` runs inside `deferring(pending)`,
and the first access check here for that WeChat user reads the session item in the same
consistent BatchGetItem as the membership or the accounts (core/store/tenant_batch.py),
then refuses a session that is not live (401 `session_revoked`) before anything else:
before a 404, and before any data is handed back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from core.domain.directory import Account, Meter
from core.domain.errors import NotFound, Unauthorized
from core.domain.memberships import Membership
from core.domain.naming import id_problem
from core.domain.sessions import TenantSession
from core.store import directory as dstore
from core.store import memberships as mstore
from core.store import tenant_batch

ACCOUNT_NOT_FOUND = "账户不存在"
METER_NOT_FOUND = "表计不存在"
SESSION_REVOKED = "登录已失效，请重新登录"


def session_revoked() -> Unauthorized:
    """The 401 of a session that is gone, revoked or past its end."""
    return Unauthorized(SESSION_REVOKED, code="session_revoked")


@dataclass
class PendingSession:
    """A request's session whose liveness is still to be checked (the access token is
    verified already): the WeChat user, the session, and the request's time by the auth
    service's clock. `settle` applies the one rule (TenantSession.live) and marks it checked."""

    openid: str
    session_id: str
    now: datetime
    verified: bool = False  # judged live
    refused: bool = False  # judged not live (judging again would read again for the same 401)

    def settle(self, session: TenantSession | None) -> None:
        if session is None or session.openid != self.openid or not session.live(self.now):
            self.refused = True
            raise session_revoked()
        self.verified = True


_PENDING: ContextVar[PendingSession | None] = ContextVar("feikong_pending_session", default=None)


@contextmanager
def deferring(pending: PendingSession) -> Iterator[PendingSession]:
    """Within this block, the first access check for pending.openid checks the session too."""
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def _pending(openid: str) -> PendingSession | None:
    """The request's session check if it is still to be made and this read is its user's."""
    p = _PENDING.get()
    return p if p is not None and not p.verified and p.openid == openid else None


def memberships_of(openid: str) -> list[Membership]:
    """The WeChat user's memberships, first bound first: one consistent Query."""
    found, _ = mstore.of_openid(openid)
    return sorted(found, key=lambda m: (m.bound_at, m.account_id))


def accounts_of(openid: str) -> list[Account]:
    """The accounts the WeChat user is bound to, at every property, first bound first (open
    and closed): one Query of the user's memberships and one BatchGet of the accounts (with
    the session item when the request's session check is pending)."""
    found = memberships_of(openid)
    pending = _pending(openid)
    if pending is not None:  # the accounts and the session in one BatchGet (only the session if none)
        got = tenant_batch.read(pending.openid, pending.session_id, account_ids=[m.account_id for m in found])
        pending.settle(got.session)
        loaded = got.accounts
    elif not found:
        return []
    else:
        loaded = dstore.accounts(m.account_id for m in found)
    by_id = {a.account_id: a for a in loaded}
    return [by_id[m.account_id] for m in found if m.account_id in by_id]


def _checked(pending: PendingSession, account_id: object, with_account: bool) -> tuple[Membership, Account | None]:
    """The membership (and the account if asked) of a pending session's read: one BatchGet
    of session, membership (and account). The session is judged first, so a dead session
    is a 401 even for an id that is not the user's or not an id at all."""
    if not isinstance(account_id, str) or id_problem(account_id):
        pending.settle(tenant_batch.read(pending.openid, pending.session_id).session)
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    got = tenant_batch.read(pending.openid, pending.session_id, membership_of=account_id,
                            account_ids=[account_id] if with_account else [])
    pending.settle(got.session)
    if got.membership is None:
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    return got.membership, (got.accounts[0] if got.accounts else None)


def membership(openid: str, account_id: object) -> Membership:
    """The WeChat user's membership of the account (one consistent GetItem, or one BatchGet
    with the session item when the request's session check is pending); otherwise NotFound (404)."""
    pending = _pending(openid)
    if pending is not None:
        return _checked(pending, account_id, with_account=False)[0]
    if not isinstance(account_id, str) or id_problem(account_id) or id_problem(openid):
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    m = mstore.get(openid, account_id)
    if m is None:
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    return m


def account_of(openid: str, account_id: object) -> Account:
    """The account if the WeChat user is bound to it; otherwise NotFound (404). Two
    GetItems: the membership, then the account; or, when the request's session check is
    pending, one BatchGet of session, membership and account (the account is read before
    the membership is known, and handed back only if there is one)."""
    pending = _pending(openid)
    if pending is not None:
        a = _checked(pending, account_id, with_account=True)[1]
    else:
        a = dstore.get_account(membership(openid, account_id).account_id)
    if a is None:
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    return a


def meter_of(openid: str, meter_id: object) -> tuple[Account, Meter]:
    """The meter and its account if the WeChat user is bound to that account; otherwise
    NotFound (404)."""
    if not isinstance(meter_id, str) or id_problem(meter_id):
        raise NotFound(METER_NOT_FOUND, code="meter_not_found")
    m = dstore.get_meter(meter_id)
    if m is None or not m.account_id:
        raise NotFound(METER_NOT_FOUND, code="meter_not_found")
    try:
        return account_of(openid, m.account_id), m
    except NotFound:
        raise NotFound(METER_NOT_FOUND, code="meter_not_found") from None


def require_member(openid: str, account_id: object) -> str:
    """The account id if the WeChat user is bound to it (the cheapest check, for views
    that need only the account's id: statement, usage): one GetItem (one BatchGet with the
    session item when the request's session check is pending); otherwise NotFound (404)."""
    return membership(openid, account_id).account_id
