"""Tenant login and sessions (docs/tenant-auth.md).

A wx.login() code (mini-program) or a web authorization code (the official account's H5
pages, OAuth2) becomes a session: a 15-minute access token (HS256 JWT naming the openid
and the session) and a rotating refresh token, of which the store keeps only the hash.
Every request's access token is checked against its session with one consistent read
(its own GetItem, or carried in a read's BatchGet: `defer`), so logout, a detected
refresh-token theft or a rebinding stops it at once.

The session's openid is the WeChat user's key everywhere (memberships, orders): a person
has one openid in the mini-program and another in the official account, and each is
bound to accounts separately. Logins are rate limited per client address and per openid
(core/services/limits.py).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

from aws_lambda_powertools import Logger

from core.domain import memberships as membership_rules
from core.domain.clock import Clock, utcnow
from core.domain.errors import FeikongError, Unauthorized, ValidationError
from core.domain.ledger import format_time
from core.domain.naming import id_problem, require_id
from core.domain.sessions import (
    Refresh,
    TenantSession,
    access_expiry,
    hash_token,
    judge_refresh,
    open_session,
    parse_refresh_token,
    refresh_token,
    rotated,
)
from core.integrations import secrets as secrets_store
from core.integrations import wechat
from core.services import tenancy
from core.services.limits import Limiter
from core.services.tenancy import PendingSession
from core.store import memberships as mstore
from core.store import sessions as sstore

ISSUER = "feikong"
OAUTH_SCOPE = "snsapi_userinfo"  # the nickname shows roommates who is who; snsapi_base would be silent
_STATE = re.compile(r"[A-Za-z0-9_-]{0,128}")  # WeChat: a-zA-Z0-9, at most 128 bytes
log = Logger(service="feikong", child=True)


@dataclass(frozen=True)
class Caller:
    """Who a request's access token speaks for."""

    openid: str
    session_id: str


def _secret() -> str:
    """The tokens' HS256 key: the `jwt` secret in Secrets Manager (FEIKONG_JWT_SECRET_ID)."""
    secret = secrets_store.named("jwt")
    if len(secret) < 32:
        raise RuntimeError("the JWT secret must be 32+ characters")
    return secret


def _seconds(until: datetime, now: datetime) -> int:
    return max(0, int((until - now).total_seconds()))


class TenantAuth:
    """Login, refresh, logout and the per-request check. `sessions` is the session store
    (core/store/sessions.py); `clock` is injected so tests expire tokens without sleeping."""

    def __init__(self, clock: Clock = utcnow, sessions: ModuleType = sstore, limiter: Limiter | None = None) -> None:
        self.clock = clock
        self.sessions = sessions
        self.limiter = limiter or Limiter(clock)

    # --- issuing ----------------------------------------------------------------------

    def _tokens(self, s: TenantSession, refresh: str, now: datetime) -> dict:
        import jwt  # PyJWT (with cryptography) loads with the first token, not the app (docs/cold-start.md)

        exp = access_expiry(s, now)
        access = jwt.encode({"sub": s.openid, "sid": s.session_id, "iss": ISSUER, "iat": int(now.timestamp()),
                             "exp": int(exp.timestamp())}, _secret(), algorithm="HS256")
        return {"token": access, "token_type": "Bearer", "expires_in": _seconds(exp, now),
                "refresh_token": refresh, "refresh_expires_in": _seconds(s.expires_at, now)}

    def login(self, code: object) -> dict:
        """A mini-program login: the wx.login() code through code2session."""
        _require_code(code)
        self.limiter.login_ip()
        try:
            session = wechat.code_to_session(code)
        except wechat.LoginRefused:
            raise Unauthorized("微信登录失败，请重试", code="login_refused") from None
        openid = require_id(session["openid"], "openid")
        self.limiter.login_openid(openid)
        return self._open(openid)

    def login_oauth(self, code: object, state: object = None) -> dict:
        """An official-account login (H5 pages): the web authorization code WeChat gave
        the page's redirect_uri, exchanged at /sns/oauth2/access_token; with scope
        snsapi_userinfo the user's nickname is kept for their roommates to see. `state`
        is the page's own (it checks it against what it sent); here only its form."""
        _require_code(code)
        if state is not None and (not isinstance(state, str) or not _STATE.fullmatch(state)):
            raise ValidationError("state 参数无效", code="state_invalid", field="state")
        self.limiter.login_ip()
        try:
            grant, client = wechat.oauth_exchange(code)
        except wechat.LoginRefused:
            raise Unauthorized("微信授权登录失败，请重新进入页面", code="login_refused") from None
        except wechat.WeChatUnavailable:
            raise WeChatDown() from None
        openid = require_id(grant.get("openid"), "openid")
        self.limiter.login_openid(openid)
        nickname = None
        if OAUTH_SCOPE in str(grant.get("scope", "")).split(","):
            nickname = membership_rules.clean_nickname(wechat.oauth_nickname(client))
        return self._open(openid, nickname)

    def _open(self, openid: str, nickname: str | None = None) -> dict:
        now = self.clock()
        sid = secrets.token_hex(16)
        refresh = refresh_token(openid, sid, secrets.token_urlsafe(32))
        s = open_session(openid, sid, hash_token(refresh), now)
        if not self.sessions.create(s):  # 128 random bits taken: never expected
            raise RuntimeError("session id collision")
        found, known = mstore.of_openid(openid)
        if nickname and nickname != known:
            mstore.set_nickname(openid, nickname, format_time(now))
        return {**self._tokens(s, refresh, now),
                "bound": bool(found), "properties": sorted({m.property_id for m in found})}

    def refresh(self, token: object) -> dict:
        """Spend a refresh token for a new access and refresh token. A spent token
        presented again revokes its session (the thief or the tenant will have to log in)."""
        if not isinstance(token, str) or not token:
            raise ValidationError("缺少刷新凭证 refresh_token", code="refresh_token_required", field="refresh_token")
        key = parse_refresh_token(token)
        if key is None:
            raise Unauthorized("登录凭证无效，请重新登录", code="refresh_invalid")
        now = self.clock()
        s = self.sessions.get(*key)
        token_hash = hash_token(token)
        verdict = judge_refresh(s, token_hash, now)
        if verdict is Refresh.ROTATE:
            new = refresh_token(s.openid, s.session_id, secrets.token_urlsafe(32))
            after = rotated(s, hash_token(new), now)
            if self.sessions.rotate(s, after):
                return self._tokens(after, new, now)
            verdict = Refresh.REUSED  # the same token was spent a moment ago by another request
        if verdict is Refresh.REUSED:
            self.sessions.revoke(s.openid, s.session_id, now, "refresh_reused")
            log.warning("spent refresh token presented again: session revoked", extra={"session_id": s.session_id})
            raise Unauthorized("登录凭证已被使用过，为保护账户安全已退出登录，请重新登录", code="refresh_reused")
        if verdict is Refresh.EXPIRED:
            raise Unauthorized("登录已过期，请重新登录", code="refresh_expired")
        if verdict is Refresh.REVOKED:
            raise Unauthorized("登录已失效，请重新登录", code="session_revoked")
        raise Unauthorized("登录凭证无效，请重新登录", code="refresh_invalid")

    # --- checking and ending ----------------------------------------------------------

    def authenticate(self, authorization: str | None) -> Caller:
        """The caller of a request with `Authorization: Bearer <access token>`, whose
        session must be live now (one consistent read); otherwise Unauthorized."""
        pending = self.defer(authorization)
        self.settle(pending)
        return Caller(pending.openid, pending.session_id)

    def defer(self, authorization: str | None) -> PendingSession:
        """The access token's checks that need no I/O (signature, issuer, claims, expiry on
        the injected clock); the session's liveness is left pending: a read carries it in
        its own BatchGet (tenancy.deferring), or `settle` checks it. Unauthorized otherwise."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("请先登录", code="unauthorized")
        import jwt

        try:
            claims = jwt.decode(authorization[7:], _secret(), algorithms=["HS256"], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss", "sid"], "verify_exp": False,
                                         "verify_iat": False})  # time is judged below, on the injected clock
        except jwt.PyJWTError:
            raise Unauthorized("登录凭证无效，请重新登录", code="token_invalid") from None
        openid, sid, exp = claims["sub"], claims["sid"], claims["exp"]
        if not isinstance(sid, str) or not isinstance(exp, int) or id_problem(openid):
            raise Unauthorized("登录凭证无效，请重新登录", code="token_invalid")
        now = self.clock()
        if now.timestamp() >= exp:  # checked against the injected clock, not PyJWT's
            raise Unauthorized("登录已过期，请刷新或重新登录", code="token_expired")
        return PendingSession(openid, sid, now)

    def settle(self, pending: PendingSession) -> None:
        """Check a pending session unless a read has judged it already: one consistent
        GetItem; Unauthorized (`session_revoked`) unless it exists, is not revoked and has
        not ended."""
        if pending.refused:
            raise tenancy.session_revoked()
        if not pending.verified:
            pending.settle(self.sessions.get(pending.openid, pending.session_id))

    @staticmethod
    def deferring(pending: PendingSession):
        """A block in which the first access check of pending.openid also checks the
        session, in the same request (core/services/tenancy.py)."""
        return tenancy.deferring(pending)

    def logout(self, caller: Caller) -> None:
        self.sessions.revoke(caller.openid, caller.session_id, self.clock(), "logout")


class WeChatDown(FeikongError):
    status = 503
    code = "wechat_unavailable"

    def __init__(self) -> None:
        super().__init__("微信服务暂时不可用，请稍后重试")


def _require_code(code: object) -> None:
    if not isinstance(code, str) or not code or len(code) > 128:
        raise ValidationError("缺少登录凭证 code", code="code_required", field="code")


def oauth_authorize_url(redirect_uri: str, state: str) -> str:
    """Where the official account's H5 page sends the browser to log in: WeChat's web
    authorization page (scope snsapi_userinfo), which comes back to
    `redirect_uri?code=...&state=...`; the page then posts the code to /api/v1/login/oauth."""
    if not isinstance(redirect_uri, str) or not re.fullmatch(r"https?://[^\s#]{1,1000}", redirect_uri):
        raise ValidationError("redirect_uri 无效", code="redirect_uri_invalid", field="redirect_uri")
    if not isinstance(state, str) or not _STATE.fullmatch(state):
        raise ValidationError("state 参数无效", code="state_invalid", field="state")
    return wechat.oauth_authorize_url(redirect_uri, state, OAUTH_SCOPE)


def revoke_openid(openid: str, reason: str, clock: Clock = utcnow, sessions: ModuleType = sstore) -> int:
    """Revoke every live session of a WeChat user (rebinding); the number revoked."""
    now = clock()
    return sum(
        1 for s in sessions.of_openid(openid) if s.revoked_at is None and sessions.revoke(openid, s.session_id, now, reason)
    )


def tenant_accounts(openid: str) -> list:
    """The WeChat user's accounts (core/services/tenancy.py accounts_of)."""
    return tenancy.accounts_of(openid)
