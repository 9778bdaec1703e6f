"""Tenant login: a wx.login() code becomes a short-lived bearer token for the API."""

from __future__ import annotations

import os
from datetime import timedelta

import jwt

from core.domain.errors import FeikongError, ValidationError
from core.integrations import wechat
from core.services.ledger import Clock, utcnow
from core.store import directory as dstore

TOKEN_TTL = timedelta(hours=2)
ISSUER = "feikong"


class Unauthorized(FeikongError):
    status = 401
    code = "unauthorized"


def _secret() -> str:
    secret = os.environ.get("FEIKONG_JWT_SECRET", "")
    if len(secret) < 32:
        raise RuntimeError("FEIKONG_JWT_SECRET must be set (32+ characters)")
    return secret


def login(code: object, clock: Clock = utcnow) -> dict:
    if not isinstance(code, str) or not code or len(code) > 128:
        raise ValidationError("缺少登录凭证 code", code="code_required", field="code")
    try:
        session = wechat.code_to_session(code)
    except wechat.LoginRefused:
        raise Unauthorized("微信登录失败，请重试", code="login_refused") from None
    openid = session["openid"]
    now = clock()
    token = jwt.encode({"sub": openid, "iss": ISSUER, "iat": int(now.timestamp()),
                        "exp": int((now + TOKEN_TTL).timestamp())}, _secret(), algorithm="HS256")
    tenants = dstore.tenants_by_openid(openid)
    return {"token": token, "expires_in": int(TOKEN_TTL.total_seconds()),
            "bound": bool(tenants), "properties": sorted({t.property_id for t in tenants})}


def openid_from(authorization: str | None) -> str:
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthorized("请先登录", code="unauthorized")
    try:
        claims = jwt.decode(authorization[7:], _secret(), algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "sub", "iss"]})
    except jwt.PyJWTError:
        raise Unauthorized("登录已失效，请重新登录", code="token_invalid") from None
    return claims["sub"]


def tenant_accounts(openid: str) -> list:
    out = []
    for t in dstore.tenants_by_openid(openid):
        out.extend(dstore.accounts_of_tenant(t.tenant_id))
    return out
