"""Console admins: roles, permissions, companies and the login rules (docs/console.md).

Pure rules, no I/O: who may do what, which properties an admin sees, when a run of bad
passwords locks a login, when a console session is over. The service
(core/services/admin_auth.py) hashes passwords and checks TOTP codes; the store keeps
`AdminUser` and `Company` records.

- Roles: owner, operator, finance, viewer. Permissions: "view" (all roles), "operate"
  (owner, operator: switching, accounts, meters, tariffs, settings, anomalies, bindings),
  "money" (owner, finance: counter cash, refunds), "admin" (owner: users, site keys).
- A company holds properties; an admin belongs to one company and sees the properties
  granted to them (an owner: all of the company's). A property belongs to one company.
- Login: 5 bad passwords (or TOTP codes) in a row lock the login for 15 minutes; while
  locked even the right password is refused; every failure says the same thing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from core.domain.errors import NotFound, ValidationError
from core.domain.naming import require_id

OWNER, OPERATOR, FINANCE, VIEWER = "owner", "operator", "finance", "viewer"
ROLES = (OWNER, OPERATOR, FINANCE, VIEWER)
ROLE_NAMES = {OWNER: "所有者", OPERATOR: "运营", FINANCE: "财务", VIEWER: "只读"}

PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),
    "operate": frozenset({OWNER, OPERATOR}),
    "money": frozenset({OWNER, FINANCE}),
    "admin": frozenset({OWNER}),
}
PERMISSION_NAMES = {"view": "查看", "operate": "操作", "money": "收退款", "admin": "用户与密钥管理"}

MAX_FAILURES = 5  # bad passwords in a row before the login locks
LOCK_FOR = timedelta(minutes=15)
SESSION_FOR = timedelta(hours=12)  # a console session ends this long after its login
MAX_SESSIONS = 10  # live sessions kept per admin; a new login past this ends the oldest
PASSWORD_MIN, PASSWORD_MAX = 10, 128
NAME_MAX = 40

LOGIN_FAILED_MESSAGE = "用户名或密码错误"  # the one answer to every failed login

_LOGIN_RE = re.compile(r"[a-z0-9][a-z0-9_.:@-]*")


def can(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return role in PERMISSIONS[permission]


def require_role(role: object) -> str:
    if role not in ROLES:
        raise ValidationError("角色必须是 owner、operator、finance 或 viewer 之一", code="role_invalid", field="role")
    return role  # type: ignore[return-value]


def normalize_login(value: object) -> str:
    """A login name (usually an e-mail address) as stored: trimmed, lower case, within the
    id rule (letters, digits and _ . : @ -). Case and spaces around it do not matter."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if not text or len(text) > 64 or not _LOGIN_RE.fullmatch(text):
        raise ValidationError("登录名只能包含字母、数字和 _ . : @ -，且不超过 64 个字符", code="login_invalid",
                              field="email")
    return text


def require_admin_name(value: object) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > NAME_MAX or any(ord(c) < 32 for c in text):
        raise ValidationError(f"姓名不能为空且不超过 {NAME_MAX} 个字符", code="name_invalid", field="name")
    return text


def password_problem(password: object, login: str = "") -> str | None:
    """Why a new password is refused (Chinese, for the form), or None."""
    if not isinstance(password, str) or len(password) < PASSWORD_MIN:
        return f"新密码至少 {PASSWORD_MIN} 个字符"
    if len(password) > PASSWORD_MAX:
        return f"新密码不能超过 {PASSWORD_MAX} 个字符"
    if len(set(password)) < 4:
        return "新密码过于简单"
    if login and login.split("@")[0] and login.split("@")[0] in password.lower():
        return "新密码不能包含登录名"
    return None


def require_password(password: object, login: str = "") -> str:
    problem = password_problem(password, login)
    if problem:
        raise ValidationError(problem, code="password_weak", field="password")
    return password  # type: ignore[return-value]


def session_key(token: str) -> str:
    """What the store keeps of a session token: its SHA-256 (the cookie holds the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Company:
    company_id: str
    name: str
    property_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdminUser:
    """One console login. `admin_id` is the normalized login name. `sessions` maps a
    session key (session_key(token)) to when that session ends. `version` is the
    optimistic lock of every change."""

    admin_id: str
    company_id: str
    name: str
    role: str
    password_hash: str
    property_ids: tuple[str, ...] = ()  # granted (an owner sees all of the company's)
    failures: int = 0
    locked_until: datetime | None = None
    totp_secret: str = ""  # base32; empty: no TOTP
    totp_last_step: int = 0  # the last TOTP time step accepted (a code works once)
    sessions: dict[str, datetime] = field(default_factory=dict)
    created_at: datetime | None = None
    password_changed_at: datetime | None = None
    disabled: bool = False
    version: int = 0
    last_login_at: datetime | None = None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def last_login(self) -> datetime | None:
        """When this admin last logged in (records older than `last_login_at`: the start
        of the newest session still kept)."""
        if self.last_login_at is not None:
            return self.last_login_at
        return max(self.sessions.values()) - SESSION_FOR if self.sessions else None

    def properties(self, company: Company | None) -> tuple[str, ...]:
        """The properties this admin may see: an owner all of the company's, others those
        granted that the company still holds."""
        held = company.property_ids if company else ()
        if self.role == OWNER:
            return tuple(held)
        return tuple(p for p in self.property_ids if p in held)


def failed_login(user: AdminUser, now: datetime) -> AdminUser:
    """A bad password or code: one more failure; the fifth in a row locks for 15 minutes.
    A failure while locked changes nothing (the lock is not extended)."""
    if user.locked(now):
        return user
    failures = user.failures + 1
    if failures >= MAX_FAILURES:
        return replace(user, failures=0, locked_until=now + LOCK_FOR)
    return replace(user, failures=failures, locked_until=None)


def logged_in(user: AdminUser, key: str, now: datetime, totp_step: int = 0) -> AdminUser:
    """A successful login: failures forgotten, a session added (ended ones and, past
    MAX_SESSIONS, the oldest dropped)."""
    live = {k: until for k, until in user.sessions.items() if until > now}
    live[key] = now + SESSION_FOR
    while len(live) > MAX_SESSIONS:
        live.pop(min(live, key=live.__getitem__))
    return replace(user, failures=0, locked_until=None, sessions=live,
                   totp_last_step=max(user.totp_last_step, totp_step), last_login_at=now)


def session_live(user: AdminUser, key: str, now: datetime) -> bool:
    until = user.sessions.get(key)
    return not user.disabled and until is not None and now < until


def logged_out(user: AdminUser, key: str) -> AdminUser:
    return replace(user, sessions={k: v for k, v in user.sessions.items() if k != key})


@dataclass(frozen=True)
class AdminPrincipal:
    """Who a console request speaks for (miniprogram_api/admin_auth.py `current_admin()`)."""

    admin_id: str
    name: str
    company_id: str
    role: str
    property_ids: tuple[str, ...]

    @property
    def role_name(self) -> str:
        return ROLE_NAMES.get(self.role, self.role)

    def can(self, permission: str, property_id: str | None = None) -> bool:
        """The role has `permission` and (if given) the property is granted."""
        return can(self.role, permission) and (property_id is None or property_id in self.property_ids)

    def sees(self, property_id: str) -> bool:
        return property_id in self.property_ids


def principal(user: AdminUser, company: Company | None) -> AdminPrincipal:
    return AdminPrincipal(user.admin_id, user.name, user.company_id, user.role, user.properties(company))


def require_company_id(value: object) -> str:
    return require_id(value, "company_id")


# -- the owner's user page (用户管理, miniprogram_api/console_admin.py) ---------------------

LAST_OWNER_MESSAGE = "公司至少需要一位可登录的所有者：不能降级或停用最后一位所有者"


def active_owner(user: AdminUser) -> bool:
    return user.role == OWNER and not user.disabled


def require_owner_remains(users: list[AdminUser] | tuple[AdminUser, ...], before: AdminUser,
                          after: AdminUser) -> None:
    """A change of one admin (`before` -> `after`) must leave the company at least one
    owner who can log in (the last owner cannot demote or disable themselves)."""
    if not active_owner(before) or active_owner(after):
        return
    others = [u for u in users if u.admin_id != before.admin_id and active_owner(u)]
    if not others:
        raise ValidationError(LAST_OWNER_MESSAGE, code="last_owner", field="role")


def require_grants(property_ids: object, company: Company | None) -> tuple[str, ...]:
    """Properties to grant: a list of the company's property ids (duplicates dropped).
    An id the company does not hold is refused as not found (never revealed)."""
    if property_ids is None:
        return ()
    if not isinstance(property_ids, (list, tuple)) or not all(isinstance(p, str) for p in property_ids):
        raise ValidationError("物业必须是物业编号的列表", code="property_ids_invalid", field="property_ids")
    held = company.property_ids if company else ()
    out = tuple(dict.fromkeys(p.strip() for p in property_ids if p.strip()))
    foreign = [p for p in out if p not in held]
    if foreign:
        raise NotFound("物业不存在", code="property_not_found", property_id=foreign[0])
    return out
