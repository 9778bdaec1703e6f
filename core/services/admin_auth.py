"""Console admins: companies, logins, sessions, lockout, TOTP, passwords (docs/console.md).

Passwords are argon2id hashes (argon2-cffi `PasswordHasher`, its default parameters,
re-hashed on login when they change). A login that succeeds opens a server-side session:
the cookie holds a random token, the admin's record the token's hash and when it ends,
so a logout or a password change ends it at once (one consistent read per request).
Five bad passwords or codes in a row lock the login for 15 minutes; while locked even
the right password is refused, and every failure gets the same answer. Each login,
failed or not, is written to the action log.

The clock is injected (tests move it instead of sleeping).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from types import ModuleType

from aws_lambda_powertools import Logger

from core.domain import admins as rules
from core.domain.admins import (
    OWNER,
    AdminPrincipal,
    AdminUser,
    Company,
    normalize_login,
    principal,
    require_admin_name,
    require_company_id,
    require_password,
    require_role,
    session_key,
)
from core.domain.clock import Clock, utcnow
from core.domain.errors import Conflict, FeikongError, NotFound, ValidationError
from core.domain.naming import require_id
from core.services import action_log
from core.store import admins as astore

log = Logger(service="feikong", child=True)

ATTEMPTS = 5  # optimistic writes of one admin record before giving up
TOTP_ISSUER = "费控"


class LoginFailed(FeikongError):
    """Every failed login, whatever failed: the same status, code and message."""

    status = 401
    code = "login_failed"

    def __init__(self) -> None:
        super().__init__(rules.LOGIN_FAILED_MESSAGE)


class NotConfigured(FeikongError):
    status = 503
    code = "not_configured"


@dataclass(frozen=True)
class Login:
    principal: AdminPrincipal
    token: str  # the session token (goes in the session cookie; only its hash is stored)


_hasher = None
_dummy_hash = ""


def hasher():
    """The argon2 hasher, made on first use (argon2-cffi loads with the first login)."""
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()
    return _hasher


def hash_password(password: str) -> str:
    return hasher().hash(password)


def _verify(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _verify_nobody(password: str) -> None:
    """Spend the time of a real check on a login nobody has (no timing difference)."""
    global _dummy_hash
    if not _dummy_hash:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    _verify(_dummy_hash, password)


def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def totp_uri(secret: str, login: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: object, now: datetime, after_step: int = 0) -> int | None:
    """The time step a 6-digit code belongs to (now, or one step either side for clock
    drift), if later than `after_step` (a code works once); None if it is not valid."""
    import pyotp

    if not isinstance(code, str) or not secret:
        return None
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(now)
    for step in (now_step - 1, now_step, now_step + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class AdminAuth:
    """`store`: core/store/admins.py (or a stand-in); `log`: core/services/action_log.py."""

    def __init__(self, clock: Clock = utcnow, store: ModuleType = astore, log: ModuleType = action_log) -> None:
        self.clock = clock
        self.store = store
        self.log = log

    # -- companies and admins (the CLI; later the owner's user pages) -------------------

    def ensure_company(self, company_id: str, name: str = "") -> Company:
        require_company_id(company_id)
        found = self.store.get_company(company_id)
        if found:
            return found
        c = Company(company_id, name or company_id, ())
        if not self.store.save_company(c, 0):
            return self.store.get_company(company_id)
        return c

    def add_property(self, company_id: str, property_id: str, actor: AdminPrincipal | None = None,
                     ip: str = "") -> Company:
        """The company holds the property (which must exist; no other company may hold it)."""
        from core.store import directory as dstore

        require_id(property_id, "property_id")
        if dstore.get_property(property_id) is None:
            raise NotFound("物业不存在", code="property_not_found", property_id=property_id)
        self.ensure_company(company_id)
        holder = self.store.claim_property(property_id, company_id)
        if holder != company_id:
            raise Conflict("该物业已属于其他公司", code="property_taken", property_id=property_id)
        for _ in range(ATTEMPTS):
            c = self.store.get_company(company_id)
            if property_id in c.property_ids:
                return c
            after = replace(c, property_ids=(*c.property_ids, property_id))
            if self.store.save_company(after, self.store.company_version(company_id)):
                self.log.record(actor or _system(company_id), "property_added", target=property_id,
                                after={"property_id": property_id}, ip=ip, clock=self.clock)
                return after
        raise Conflict("公司信息正被修改，请重试", code="contention")

    def create_admin(self, company_id: str, login: str, name: str, role: str, password: str,
                     property_ids: tuple[str, ...] = (), actor: AdminPrincipal | None = None,
                     ip: str = "") -> AdminUser:
        company = self.store.get_company(require_company_id(company_id))
        if company is None:
            raise NotFound("公司不存在", code="company_not_found", company_id=company_id)
        login = normalize_login(login)
        role = require_role(role)
        require_password(password, login)
        props = tuple(dict.fromkeys(property_ids))
        foreign = [p for p in props if p not in company.property_ids]
        if foreign:
            raise NotFound("物业不存在", code="property_not_found", property_id=foreign[0])
        now = self.clock()
        u = AdminUser(admin_id=login, company_id=company_id, name=require_admin_name(name), role=role,
                      password_hash=hash_password(password), property_ids=() if role == OWNER else props,
                      created_at=now, password_changed_at=now)
        if not self.store.create_user(u):
            raise Conflict("该登录名已存在", code="already_exists")
        self.log.record(actor or _system(company_id), "admin_created", target=login,
                        after={"role": role, "name": u.name, "property_ids": list(u.property_ids)}, ip=ip,
                        clock=self.clock)
        return replace(u, version=1)

    def grant(self, login: str, property_ids: tuple[str, ...], actor: AdminPrincipal | None = None,
              ip: str = "") -> AdminUser:
        """Grant properties of the admin's company to a non-owner admin."""
        login = normalize_login(login)
        for _ in range(ATTEMPTS):
            u = self.store.get_user(login)
            if u is None:
                raise NotFound("管理员不存在", code="admin_not_found")
            company = self.store.get_company(u.company_id)
            foreign = [p for p in property_ids if p not in (company.property_ids if company else ())]
            if foreign:
                raise NotFound("物业不存在", code="property_not_found", property_id=foreign[0])
            if u.role == OWNER:
                return u  # an owner sees all of the company's properties already
            after = replace(u, property_ids=tuple(dict.fromkeys((*u.property_ids, *property_ids))))
            if self.store.save_user(u, after):
                self.log.record(actor or _system(u.company_id), "admin_granted", target=login,
                                before={"property_ids": list(u.property_ids)},
                                after={"property_ids": list(after.property_ids)}, ip=ip, clock=self.clock)
                return replace(after, version=u.version + 1)
        raise Conflict("管理员信息正被修改，请重试", code="contention")

    def reset_password(self, login: str, password: str) -> None:
        """A new password set from the command line (a forgotten one): ends every session
        and lifts a lock."""
        login = normalize_login(login)
        require_password(password, login)
        password_hash = hash_password(password)
        self._change(login, lambda u: replace(u, password_hash=password_hash, sessions={}, failures=0,
                                              locked_until=None, password_changed_at=self.clock()))
        self.log.record(_system(self.store.get_user(login).company_id), "password_changed", target=login,
                        after={"by": "cli"}, clock=self.clock)

    # -- login, per-request check, logout -------------------------------------------------

    def login(self, login: object, password: object, code: object = "", ip: str = "") -> Login:
        """A session for a right login name, password (and TOTP code, if the admin has TOTP
        on); LoginFailed otherwise, the same for every cause."""
        now = self.clock()
        try:
            name = normalize_login(login)
        except ValidationError:
            name = ""
        if not isinstance(password, str) or not password or len(password) > rules.PASSWORD_MAX:
            password = ""
        u = self.store.get_user(name) if name else None
        if u is None or u.disabled:
            _verify_nobody(password or "x")
            self._failure_record(None, name or str(login)[:64], "login_failed", ip, {"reason": "unknown_login"})
            raise LoginFailed
        if u.locked(now):
            _verify_nobody(password or "x")
            self._failure_record(u, name, "login_locked", ip, {"locked_until": u.locked_until.isoformat()})
            raise LoginFailed
        password_ok = ok = bool(password) and _verify(u.password_hash, password)
        step = 0
        if ok and u.totp_secret:
            step = totp_step(u.totp_secret, code, now, u.totp_last_step) or 0
            ok = step > 0
        if not ok:
            after = self._change(name, lambda cur: rules.failed_login(cur, now))
            detail = {"reason": "bad_code" if password_ok else "bad_password", "failures": after.failures}
            if after.locked(now):
                detail["locked_until"] = after.locked_until.isoformat()
            self._failure_record(u, name, "login_failed", ip, detail)
            raise LoginFailed
        token = secrets.token_urlsafe(32)
        rehash = hasher().check_needs_rehash(u.password_hash)
        new_hash = hash_password(password) if rehash else None
        after = self._change(name, lambda cur: rules.logged_in(
            replace(cur, password_hash=new_hash or cur.password_hash), session_key(token), now, step))
        who = principal(after, self.store.get_company(after.company_id))
        self.log.record(who, "login", target=name, after={"totp": bool(u.totp_secret)}, ip=ip, clock=self.clock)
        return Login(who, token)

    def authenticate(self, admin_id: str, token: str) -> AdminPrincipal | None:
        """The admin a session cookie speaks for, if that session is live."""
        if not admin_id or not token:
            return None
        u = self.store.get_user(admin_id)
        if u is None or not rules.session_live(u, session_key(token), self.clock()):
            return None
        return principal(u, self.store.get_company(u.company_id))

    def logout(self, who: AdminPrincipal, token: str, ip: str = "") -> None:
        key = session_key(token)
        self._change(who.admin_id, lambda u: rules.logged_out(u, key))
        self.log.record(who, "logout", target=who.admin_id, ip=ip, clock=self.clock)

    # -- the admin's own account ----------------------------------------------------------

    def change_password(self, who: AdminPrincipal, token: str, old: object, new: object, ip: str = "") -> None:
        """Needs the current password; ends the admin's other sessions (this one stays)."""
        u = self._user(who)
        if not isinstance(old, str) or not _verify(u.password_hash, old):
            raise ValidationError("原密码不正确", code="password_wrong", field="old_password")
        require_password(new, u.admin_id)
        if new == old:
            raise ValidationError("新密码不能与原密码相同", code="password_same", field="password")
        key, now, password_hash = session_key(token), self.clock(), hash_password(new)
        self._change(u.admin_id, lambda cur: replace(
            cur, password_hash=password_hash, password_changed_at=now,
            sessions={k: v for k, v in cur.sessions.items() if k == key}))
        self.log.record(who, "password_changed", target=u.admin_id, ip=ip, clock=self.clock)

    def totp_enabled(self, who: AdminPrincipal) -> bool:
        return bool(self._user(who).totp_secret)

    def enable_totp(self, who: AdminPrincipal, secret: str, password: object, code: object, ip: str = "") -> None:
        """Turn TOTP on with a secret the admin's app now holds: the password and a code
        from the app prove both."""
        u = self._user(who)
        if u.totp_secret:
            raise Conflict("两步验证已开启", code="totp_on")
        if not isinstance(password, str) or not _verify(u.password_hash, password):
            raise ValidationError("密码不正确", code="password_wrong", field="password")
        step = totp_step(secret, code, self.clock())
        if step is None:
            raise ValidationError("动态验证码不正确，请核对手机时间后重试", code="totp_wrong", field="code")
        self._change(u.admin_id, lambda cur: replace(cur, totp_secret=secret, totp_last_step=step))
        self.log.record(who, "totp_enabled", target=u.admin_id, ip=ip, clock=self.clock)

    def disable_totp(self, who: AdminPrincipal, password: object, code: object, ip: str = "") -> None:
        u = self._user(who)
        if not u.totp_secret:
            raise Conflict("两步验证未开启", code="totp_off")
        if not isinstance(password, str) or not _verify(u.password_hash, password):
            raise ValidationError("密码不正确", code="password_wrong", field="password")
        if totp_step(u.totp_secret, code, self.clock(), u.totp_last_step) is None:
            raise ValidationError("动态验证码不正确", code="totp_wrong", field="code")
        self._change(u.admin_id, lambda cur: replace(cur, totp_secret="", totp_last_step=0))
        self.log.record(who, "totp_disabled", target=u.admin_id, ip=ip, clock=self.clock)

    # -- the owner's user page (用户管理, miniprogram_api/console_admin.py) -------------------
    # The caller has checked the "admin" permission; an admin of another company is "not
    # found". Every change is recorded in the company's action log, before and after.

    def company_users(self, who: AdminPrincipal) -> list[AdminUser]:
        return self.store.company_users(who.company_id)

    def company_properties(self, who: AdminPrincipal) -> list[tuple[str, str]]:
        """The company's properties as (id, name), for granting them."""
        from core.store import directory as dstore

        company = self.store.get_company(who.company_id)
        out = []
        for pid in company.property_ids if company else ():
            p = dstore.get_property(pid)
            out.append((pid, p.name if p else pid))
        return out

    def company_user(self, who: AdminPrincipal, login: object) -> AdminUser:
        try:
            login = normalize_login(login)
        except ValidationError:
            raise NotFound("管理员不存在", code="admin_not_found") from None
        u = self.store.get_user(login)
        if u is None or u.company_id != who.company_id:
            raise NotFound("管理员不存在", code="admin_not_found")
        return u

    def create_company_user(self, who: AdminPrincipal, login: object, name: object, role: object,
                            property_ids: object = (), password: object = None, ip: str = "") -> tuple[AdminUser, str]:
        """A new admin of the owner's company; returns it and the password made for it
        when none was given (shown once), else ""."""
        login = normalize_login(login)
        require_admin_name(name)
        role = require_role(role)
        grants = rules.require_grants(property_ids, self.store.get_company(who.company_id))
        made = ""
        if password is None or password == "":
            made = password = new_password(login)
        u = self.create_admin(who.company_id, login, name, role, password, grants, actor=who, ip=ip)
        return u, made

    def update_company_user(self, who: AdminPrincipal, login: object, *, name: object = None, role: object = None,
                            property_ids: object = None, ip: str = "") -> AdminUser:
        """Change an admin's name, role and granted properties (an owner is granted all of
        the company's). None: unchanged."""

        def plan(u: AdminUser, company: Company | None) -> AdminUser:
            new_role = require_role(role) if role is not None else u.role
            if new_role == OWNER:
                grants: tuple[str, ...] = ()
            elif property_ids is not None:
                grants = rules.require_grants(property_ids, company)
            else:
                grants = u.property_ids
            new_name = require_admin_name(name) if name is not None else u.name
            return replace(u, name=new_name, role=new_role, property_ids=grants)

        return self._company_change(who, login, plan, "admin_updated", ip)

    def set_company_user_disabled(self, who: AdminPrincipal, login: object, disabled: bool,
                                  ip: str = "") -> AdminUser:
        """Disable (cannot log in; every session ends at once) or enable an admin."""

        def plan(u: AdminUser, company: Company | None) -> AdminUser:
            return replace(u, disabled=True, sessions={}) if disabled else replace(u, disabled=False)

        return self._company_change(who, login, plan, "admin_disabled" if disabled else "admin_enabled", ip)

    def reset_company_user_password(self, who: AdminPrincipal, login: object, password: object = None,
                                    ip: str = "") -> str:
        """A new password for another admin of the company (given, or made and returned
        to be shown once): ends their sessions and lifts a lock."""
        u = self.company_user(who, login)
        if u.admin_id == who.admin_id:
            raise ValidationError("请在“修改密码”页面修改自己的密码", code="own_password", field="password")
        made = ""
        if password is None or password == "":
            made = password = new_password(u.admin_id)
        require_password(password, u.admin_id)
        password_hash, now = hash_password(password), self.clock()
        before = {"locked": u.locked(now), "sessions": len(u.sessions)}
        self._change(u.admin_id, lambda cur: replace(cur, password_hash=password_hash, sessions={}, failures=0,
                                                     locked_until=None, password_changed_at=now))
        self.log.record(who, "password_reset", target=u.admin_id, before=before,
                        after={"locked": False, "sessions": 0, "generated": bool(made)}, ip=ip, clock=self.clock)
        return made

    def _company_change(self, who: AdminPrincipal, login: object, plan, action: str, ip: str) -> AdminUser:
        """Apply `plan(user, company)`, refused if it would leave the company without an
        owner who can log in; the write is conditioned on the admin's and the company's
        versions (two owners demoting each other at once cannot both succeed)."""
        for _ in range(ATTEMPTS):
            u = self.company_user(who, login)
            company_version = self.store.company_version(u.company_id)
            company = self.store.get_company(u.company_id)
            after = plan(u, company)
            if after == u:
                return u  # nothing to change, nothing recorded
            if rules.active_owner(u) and not rules.active_owner(after):
                rules.require_owner_remains(self.store.company_users(u.company_id), u, after)
            if self.store.save_user_in_company(u, after, company_version):
                self.log.record(who, action, target=u.admin_id, before=_shown(u), after=_shown(after), ip=ip,
                                clock=self.clock)
                return replace(after, version=u.version + 1)
        raise Conflict("管理员信息正被修改，请重试", code="contention")

    # -- helpers ---------------------------------------------------------------------------

    def _user(self, who: AdminPrincipal) -> AdminUser:
        u = self.store.get_user(who.admin_id)
        if u is None:
            raise NotFound("管理员不存在", code="admin_not_found")
        return u

    def _change(self, admin_id: str, change) -> AdminUser:
        """Apply `change` to the admin's current record, re-read and re-applied if another
        write got there first."""
        for _ in range(ATTEMPTS):
            u = self.store.get_user(admin_id)
            if u is None:
                raise NotFound("管理员不存在", code="admin_not_found")
            after = change(u)
            if after == u or self.store.save_user(u, after):
                return replace(after, version=u.version + (after != u))
        raise Conflict("管理员信息正被修改，请重试", code="contention")

    def _failure_record(self, u: AdminUser | None, name: str, action: str, ip: str, detail: dict) -> None:
        who = AdminPrincipal(name, u.name if u else "", u.company_id if u else "", u.role if u else "", ())
        log.info("console login refused", extra={"login": name, "reason": detail.get("reason", action), "ip": ip})
        self.log.record(who, action, target=name, after=detail, ip=ip, clock=self.clock)


def new_password(login: str = "") -> str:
    """A random initial password (16 characters) that the password rules accept."""
    while True:
        password = secrets.token_urlsafe(12)
        if rules.password_problem(password, login) is None:
            return password


def _shown(u: AdminUser) -> dict:
    """What the action log keeps of an admin (never a hash, a secret or a session)."""
    return {"name": u.name, "role": u.role, "property_ids": list(u.property_ids), "disabled": u.disabled}


def _system(company_id: str) -> AdminPrincipal:
    """The actor of what the command line does (cli/admins.py)."""
    return AdminPrincipal("cli", "命令行", company_id, "system", ())


def console_key() -> str:
    """The Flask app's session-signing key: the `console` secret in Secrets Manager
    (FEIKONG_CONSOLE_SECRET_ID), 32+ characters."""
    from core.integrations import secrets as secrets_store

    try:
        key = secrets_store.named("console")
    except secrets_store.SecretMissing as e:
        log.error("console secret: %s", e)
        raise NotConfigured("服务暂不可用：部署配置不完整") from None
    if len(key) < 32:
        log.error("the console secret must be 32+ characters")
        raise NotConfigured("服务暂不可用：部署配置不完整")
    return key
