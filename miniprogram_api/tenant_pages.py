"""The official-account H5 pages (/h5/...): the tenant's self-service in a phone's browser
(WeChat's in-app browser in production), Simplified Chinese, mobile-first.

The pages are static shells: their scripts (static/h5/) call only the tenant JSON API
(/api/v1) with a bearer token, like the mini-program. The server's part is the WeChat web
authorization (OAuth2) round trip: /h5/login sends the browser to WeChat's authorize page
with a random `state` kept in a short-lived cookie, and /h5/oauth/callback checks it before
its script posts the code to POST /api/v1/login/oauth. No console session, no CSRF token:
the blueprint is exempt from admin_auth (nothing here writes; the API authenticates by
bearer token). docs/h5.md.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from core.settings import get_settings

bp = Blueprint("h5", __name__, url_prefix="/h5")

STATE_COOKIE = "feikong_h5_oauth"
STATE_SECONDS = 600  # WeChat's authorize screen may stay open a while; the code itself lives 5 minutes

# page name -> (template, title); every page is a shell its script fills from the API
PAGES = {
    "home": ("h5/home.html", "我的账户"),
    "bind": ("h5/bind.html", "绑定账户"),
    "recharge": ("h5/recharge.html", "充值"),
    "usage": ("h5/usage.html", "用量"),
    "statement": ("h5/statement.html", "账单明细"),
    "orders": ("h5/orders.html", "充值订单"),
    "alarms": ("h5/alarms.html", "提醒设置"),
    "members": ("h5/members.html", "室友"),
}


def _safe_next(value: str | None) -> str:
    """Only a path of these pages: never another site (an open redirect)."""
    if value and value.startswith("/h5/") and not value.startswith("//") and "\\" not in value:
        return value
    return url_for("h5.home")


def _render(name: str, **context):
    template, title = PAGES[name]
    resp = make_response(render_template(template, page=name, title=title,
                                         jsbridge_url=get_settings().wechatpay_jsbridge_url or None, **context))
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "same-origin"  # the callback's URL carries the OAuth code
    return resp


@bp.get("/")
def home():
    return _render("home")


@bp.get("/<any(bind, recharge, usage, statement, orders, alarms, members):name>")
def page(name: str):
    return _render(name)


@bp.get("/login")
def login():
    """To WeChat's web authorization; it comes back to /h5/oauth/callback with a code."""
    from core.services.auth import oauth_authorize_url

    state = secrets.token_urlsafe(16)
    target = _safe_next(request.args.get("next"))
    resp = redirect(oauth_authorize_url(url_for("h5.oauth_callback", _external=True), state))
    resp.set_cookie(STATE_COOKIE, f"{state}|{target}", max_age=STATE_SECONDS, httponly=True, samesite="Lax",
                    secure=request.is_secure, path=url_for("h5.home"))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/oauth/callback")
def oauth_callback():
    """WeChat's redirect after the user agreed: the state must be the one this browser was
    given (else a page offering to log in again); the page's script exchanges the code."""
    saved, _, target = (request.cookies.get(STATE_COOKIE) or "").partition("|")
    code, state = request.args.get("code", ""), request.args.get("state", "")
    ok = bool(code) and bool(saved) and hmac.compare_digest(saved.encode(), state.encode())
    template = "h5/callback.html" if ok else "h5/login_failed.html"
    resp = make_response(render_template(template, page="callback", title="登录", jsbridge_url=None,
                                         code=code, state=state, next=_safe_next(target)), 200 if ok else 400)
    resp.delete_cookie(STATE_COOKIE, path=url_for("h5.home"))
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@bp.get("/signed-out")
def signed_out():
    resp = make_response(render_template("h5/signed_out.html", page="signed-out", title="已退出", jsbridge_url=None))
    resp.headers["Cache-Control"] = "no-store"
    return resp
