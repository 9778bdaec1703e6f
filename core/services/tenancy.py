"""What a WeChat user (openid) may see: the one access check of every tenant endpoint.

Every /api/v1 view that takes an account, meter or order id resolves it through these
functions, so a tenant never sees another tenant's data: an id that is not theirs is
answered exactly like an id that does not exist (404, the same message).

Access comes from memberships (docs/tenant-auth.md, "Bindings"): items keyed by the
WeChat user's openid, one per account they are bound to, read consistently, so a binding
or an unbinding counts from the next request on.
"""

from __future__ import annotations

from core.domain.directory import Account, Meter
from core.domain.errors import NotFound
from core.domain.memberships import Membership
from core.domain.naming import id_problem
from core.store import directory as dstore
from core.store import memberships as mstore

ACCOUNT_NOT_FOUND = "账户不存在"
METER_NOT_FOUND = "表计不存在"


def memberships_of(openid: str) -> list[Membership]:
    """The WeChat user's memberships, first bound first: one consistent Query."""
    found, _ = mstore.of_openid(openid)
    return sorted(found, key=lambda m: (m.bound_at, m.account_id))


def accounts_of(openid: str) -> list[Account]:
    """The accounts the WeChat user is bound to, at every property, first bound first (open
    and closed): one Query of the user's memberships and one BatchGet of the accounts."""
    found = memberships_of(openid)
    if not found:
        return []
    by_id = {a.account_id: a for a in dstore.accounts(m.account_id for m in found)}
    return [by_id[m.account_id] for m in found if m.account_id in by_id]


def membership(openid: str, account_id: object) -> Membership:
    """The WeChat user's membership of the account (one consistent GetItem); otherwise NotFound (404)."""
    if not isinstance(account_id, str) or id_problem(account_id) or id_problem(openid):
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    m = mstore.get(openid, account_id)
    if m is None:
        raise NotFound(ACCOUNT_NOT_FOUND, code="account_not_found")
    return m


def account_of(openid: str, account_id: object) -> Account:
    """The account if the WeChat user is bound to it; otherwise NotFound (404). Two
    GetItems: the membership, then the account."""
    m = membership(openid, account_id)
    a = dstore.get_account(m.account_id)
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
    that need only the account's id: statement, usage): one GetItem; otherwise NotFound (404)."""
    return membership(openid, account_id).account_id
