"""Persistence of memberships (docs/tenant-auth.md, "Bindings"): table `memberships`,
keyed (openid, `account#<account_id>`), with the sparse index `by_account` (an account's
WeChat users) and one `profile` item per WeChat user (its nickname)."""

from __future__ import annotations

from collections.abc import Iterable

from core.domain.memberships import Membership
from core.store.models import MembershipItem
from core.store.tx import connection, retrying, save, save_if

PROFILE_SK = "profile"


def _sk(account_id: str) -> str:
    return f"account#{account_id}"


def _membership(i: MembershipItem) -> Membership:
    return Membership(i.openid, i.account_id, i.property_id or "", i.tenant_id or "", i.bound_at or "", i.via or "")


def add(m: Membership) -> bool:
    """Put a membership unless the user already has one for that account (its first
    bound_at is kept); True if this call made it."""
    item = MembershipItem(m.openid, _sk(m.account_id), account_id=m.account_id, property_id=m.property_id,
                          tenant_id=m.tenant_id, bound_at=m.bound_at, via=m.via)
    return save_if(item, MembershipItem.openid.does_not_exist())


def remove(openid: str, account_id: str) -> bool:
    """Delete a membership; True if there was one (one DeleteItem, ALL_OLD)."""
    kwargs = {"TableName": MembershipItem.Meta.table_name,
              "Key": {"openid": {"S": openid}, "sk": {"S": _sk(account_id)}}, "ReturnValues": "ALL_OLD"}
    response = retrying(lambda: connection().dispatch("DeleteItem", dict(kwargs)))
    return bool(response.get("Attributes"))


def raw_key(openid: str, account_id: str) -> dict:
    """A membership item's key as DynamoDB's API spells it (core/store/tenant_batch.py)."""
    return {"openid": {"S": openid}, "sk": {"S": _sk(account_id)}}


def from_raw(item: dict) -> Membership:
    """A membership from a raw item of a BatchGetItem answer."""
    return _membership(MembershipItem.from_raw_data(item))


def get(openid: str, account_id: str) -> Membership | None:
    """One consistent GetItem."""
    try:
        return _membership(MembershipItem.get(openid, _sk(account_id), consistent_read=True))
    except MembershipItem.DoesNotExist:
        return None


def of_openid(openid: str) -> tuple[list[Membership], str | None]:
    """A user's memberships and nickname: one consistent Query of the user's partition
    (a membership made a moment ago is seen)."""
    out, nickname = [], None
    for i in MembershipItem.query(openid, consistent_read=True):
        if i.sk == PROFILE_SK:
            nickname = i.nickname
        elif i.account_id:
            out.append(_membership(i))
    return out, nickname


def of_account(account_id: str) -> list[Membership]:
    """An account's WeChat users: one Query of `by_account` (eventually consistent: a user
    bound a moment ago may be missing for a moment)."""
    return [Membership(i.openid, account_id, i.property_id or "", "", i.bound_at or "", i.via or "")
            for i in MembershipItem.by_account.query(account_id)]


def nicknames(openids: Iterable[str]) -> dict[str, str]:
    """openid -> nickname of the users that have one: one BatchGet of their profile items
    (per 100)."""
    keys = [(o, PROFILE_SK) for o in dict.fromkeys(openids)]
    out: dict[str, str] = {}
    for start in range(0, len(keys), 100):
        for i in MembershipItem.batch_get(keys[start:start + 100]):
            if i.nickname:
                out[i.openid] = i.nickname
    return out


def set_nickname(openid: str, nickname: str, at: str) -> None:
    save(MembershipItem(openid, PROFILE_SK, nickname=nickname, updated_at=at))
