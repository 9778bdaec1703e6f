"""Persistence of console admins and companies (docs/console.md): the `admin_users` table,
keyed `user#<login>`, `company#<id>`, `property#<id>`. Reads are consistent (a lock, a
logout or a password change must hold at once); every change of a user or company is
conditioned on the version it was planned on."""

from __future__ import annotations

from datetime import datetime

from core.domain.admins import AdminUser, Company
from core.domain.ledger import format_time, parse_time
from core.store.models import AdminUserItem
from core.store.tx import Tx, save_if


def _time(value: str | None) -> datetime | None:
    return parse_time(value, "time") if value else None


def _user(i: AdminUserItem) -> AdminUser:
    sessions = i.sessions.as_dict() if i.sessions is not None else {}
    return AdminUser(
        admin_id=i.pk.split("#", 1)[1],
        company_id=i.company_id,
        name=i.name or "",
        role=i.role or "",
        password_hash=i.password_hash or "",
        property_ids=tuple(i.property_ids or ()),
        failures=int(i.failures or 0),
        locked_until=_time(i.locked_until),
        totp_secret=i.totp_secret or "",
        totp_last_step=int(i.totp_last_step or 0),
        sessions={k: parse_time(v, "session") for k, v in sessions.items()},
        created_at=_time(i.created_at),
        password_changed_at=_time(i.password_changed_at),
        disabled=bool(i.disabled),
        version=int(i.version or 0),
        last_login_at=_time(i.last_login_at),
    )


def _user_item(u: AdminUser, version: int) -> AdminUserItem:
    return AdminUserItem(
        f"user#{u.admin_id}",
        kind="user",
        company_id=u.company_id,
        name=u.name,
        role=u.role,
        password_hash=u.password_hash,
        property_ids=list(u.property_ids),
        failures=u.failures,
        locked_until=format_time(u.locked_until) if u.locked_until else None,
        totp_secret=u.totp_secret or None,
        totp_last_step=u.totp_last_step,
        sessions={k: format_time(v) for k, v in u.sessions.items()},
        created_at=format_time(u.created_at) if u.created_at else None,
        password_changed_at=format_time(u.password_changed_at) if u.password_changed_at else None,
        disabled=u.disabled,
        version=version,
        last_login_at=format_time(u.last_login_at) if u.last_login_at else None,
    )


def get_user(admin_id: str) -> AdminUser | None:
    try:
        i = AdminUserItem.get(f"user#{admin_id}", consistent_read=True)
    except AdminUserItem.DoesNotExist:
        return None
    return _user(i) if i.kind == "user" else None


def create_user(u: AdminUser) -> bool:
    """Put a new admin; False if the login is taken."""
    return save_if(_user_item(u, 1), AdminUserItem.pk.does_not_exist())


def save_user(before: AdminUser, after: AdminUser) -> bool:
    """Write `after` if the stored admin is still at `before.version`; False if it moved on
    (the caller reads again and re-plans)."""
    return save_if(_user_item(after, before.version + 1), AdminUserItem.version == before.version)


def _company(i: AdminUserItem) -> Company:
    return Company(i.company_id, i.name or "", tuple(i.property_ids or ()))


def get_company(company_id: str) -> Company | None:
    try:
        i = AdminUserItem.get(f"company#{company_id}", consistent_read=True)
    except AdminUserItem.DoesNotExist:
        return None
    return _company(i)


def company_version(company_id: str) -> int:
    try:
        return int(AdminUserItem.get(f"company#{company_id}", consistent_read=True).version or 0)
    except AdminUserItem.DoesNotExist:
        return 0


def save_company(c: Company, version: int) -> bool:
    """Create (version 0: absent) or replace the company at `version`."""
    item = AdminUserItem(f"company#{c.company_id}", kind="company", company_id=c.company_id, name=c.name,
                         property_ids=list(c.property_ids), version=version + 1)
    cond = AdminUserItem.pk.does_not_exist() if version == 0 else AdminUserItem.version == version
    return save_if(item, cond)


def claim_property(property_id: str, company_id: str) -> str:
    """Record that `company_id` holds the property, unless another company does; returns
    the company that holds it now."""
    item = AdminUserItem(f"property#{property_id}", kind="property", company_id=company_id, version=1)
    if save_if(item, AdminUserItem.pk.does_not_exist() | (AdminUserItem.company_id == company_id)):
        return company_id
    return AdminUserItem.get(f"property#{property_id}", consistent_read=True).company_id


# -- the owner's user page (用户管理) ---------------------------------------------------------


def company_users(company_id: str) -> list[AdminUser]:
    """Every admin of a company: the keys from the `by_company` index, the records read
    consistently (role, lock and sessions as they are now), in login order."""
    keys = [i.pk for i in AdminUserItem.by_company.query(company_id, AdminUserItem.kind == "user")]
    users = []
    for start in range(0, len(keys), 100):
        users.extend(_user(i) for i in AdminUserItem.batch_get(keys[start:start + 100], consistent_read=True)
                     if i.kind == "user" and i.company_id == company_id)
    return sorted(users, key=lambda u: u.admin_id)


def save_user_in_company(before: AdminUser, after: AdminUser, company_version: int) -> bool:
    """Write `after` if the admin is still at `before.version` and the company record
    still at `company_version` (which moves on): changes that may remove the company's
    last owner are thus made one at a time. False if either moved on."""
    tx = Tx()
    tx.put(_user_item(after, before.version + 1), AdminUserItem.version == before.version, tag="user")
    tx.update(AdminUserItem(f"company#{before.company_id}"), [AdminUserItem.version.set(company_version + 1)],
              AdminUserItem.version == company_version, tag="company")
    return tx.commit() is None
