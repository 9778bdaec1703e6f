"""The tenant API (/api/v1): WeChat login and sessions, the tenant's accounts, meters,
statement and orders, recharges; and the API's own OpenAPI document and docs page.

Every view is typed with spectree (miniprogram_api/tenant_spec.py: how to write one);
its request and response models are in serializers.py. Ids in paths are resolved through
core.services.tenancy, so another tenant's id is a 404 exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, current_app, g, jsonify, request, url_for
from spectree import Response

from miniprogram_api import serializers as s
from miniprogram_api.services import payments, tenant_auth
from miniprogram_api.tenant_spec import TENANT_AUTH_ATTR, ErrorBody, docs_page, document, spec

bp = Blueprint("tenant", __name__, url_prefix="/api/v1")


def tenant_required(view: Callable | None = None, *, deferred: bool = False) -> Callable:
    """The request must carry a live session's access token (from /api/v1/login or
    /api/v1/token/refresh); the view finds the tenant's WeChat openid in g.openid and the
    caller in g.caller. Otherwise a 401 JSON error (docs/tenant-auth.md). Put it between
    the route decorator and @spec.validate (tenant_spec.py).

    `@tenant_required(deferred=True)`, for reads without side effects only: the token is
    verified before the view, and the session's liveness is checked by the view's first
    access check (core.services.tenancy) in the same BatchGet as the membership or the
    accounts (g.caller is then the pending session). Safety net: if the view returned or
    failed without that check, one GetItem checks the session afterwards and a dead session
    turns the answer, whatever it was, into the 401."""
    if view is None:
        return lambda v: tenant_required(v, deferred=deferred)

    @wraps(view)
    def checked(*args, **kwargs):
        auth = tenant_auth()
        if not deferred:
            g.caller = auth.authenticate(request.headers.get("Authorization"))
            g.openid = g.caller.openid
            return view(*args, **kwargs)
        pending = auth.defer(request.headers.get("Authorization"))
        g.caller, g.openid = pending, pending.openid
        with auth.deferring(pending):
            try:
                answer = view(*args, **kwargs)
            except Exception:
                auth.settle(pending)  # a dead session's 401 wins over the view's error (a 404, a 400)
                raise
        auth.settle(pending)  # a no-op when the view's read checked it
        return answer

    setattr(checked, TENANT_AUTH_ATTR, True)
    return checked


# --- the document --------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document():
    return jsonify(document(current_app._get_current_object()))


@bp.get("/docs")
def openapi_docs():
    page = docs_page(url_for("static", filename=""), url_for("tenant.openapi_document"))
    return page, 200, {"Content-Type": "text/html; charset=utf-8"}


# --- sessions ------------------------------------------------------------------------------


@bp.post("/login")
@spec.validate(json=s.LoginRequest, resp=Response(HTTP_200=s.LoginResult, HTTP_401=ErrorBody, HTTP_429=ErrorBody),
               tags=["登录"])
def login():
    """Log in with a mini-program wx.login code."""
    return s.LoginResult.model_validate(tenant_auth().login(request.context.json.code))


@bp.post("/token/refresh")
@spec.validate(json=s.RefreshRequest, resp=Response(HTTP_200=s.TokenPair, HTTP_401=ErrorBody), tags=["登录"])
def refresh_token():
    """Spend a refresh token for a new access token and refresh token."""
    return s.TokenPair.model_validate(tenant_auth().refresh(request.context.json.refresh_token))


@bp.post("/logout")
@tenant_required
@spec.validate(resp=Response(HTTP_204=None), tags=["登录"])
def logout():
    """End this session (its refresh token stops working)."""
    tenant_auth().logout(g.caller)
    return "", 204


# --- recharges -----------------------------------------------------------------------------


@bp.post("/recharges")
@tenant_required
@spec.validate(json=s.RechargeRequest,
               resp=Response(HTTP_201=s.RechargeCreated, HTTP_404=ErrorBody, HTTP_409=ErrorBody,
                             HTTP_429=ErrorBody), tags=["充值"])
def create_recharge():
    """Create a recharge order: the parameters wx.requestPayment needs."""
    data = request.context.json
    return s.RechargeCreated.model_validate(payments().create_recharge(g.openid, data.account_id, data.amount)), 201


@bp.get("/recharges/<out_trade_no>")
@tenant_required
@spec.validate(resp=Response(HTTP_200=s.RechargeStatus, HTTP_404=ErrorBody), tags=["充值"])
def recharge_status(out_trade_no: str):
    """A recharge order's state."""
    return s.recharge_status(payments().order_for_tenant(g.openid, out_trade_no))


# --- reads (core/services/tenant_reads.py: loaded with the first read, not with the app) -------------


def _reads():
    from core.services import tenant_reads

    return tenant_reads


@bp.get("/accounts")
@tenant_required(deferred=True)
@spec.validate(resp=Response(HTTP_200=s.AccountList), tags=["账户"])
def my_accounts():
    """My accounts, at every property: balance, supply, alarm level, forecast."""
    return s.AccountList(accounts=[s.tenant_account(v) for v in _reads().my_accounts(g.openid)])


@bp.get("/accounts/<account_id>")
@tenant_required(deferred=True)
@spec.validate(resp=Response(HTTP_200=s.Account, HTTP_404=ErrorBody), tags=["账户"])
def one_account(account_id: str):
    """One of my accounts."""
    return s.tenant_account(_reads().account(g.openid, account_id))


@bp.get("/accounts/<account_id>/meters")
@tenant_required(deferred=True)
@spec.validate(resp=Response(HTTP_200=s.MeterList, HTTP_404=ErrorBody), tags=["账户"])
def account_meters(account_id: str):
    """The account's meters: online, last reading, relay state as read back."""
    return s.MeterList(meters=[s.tenant_meter(m) for m in _reads().meters(g.openid, account_id)])


@bp.get("/accounts/<account_id>/statement")
@tenant_required(deferred=True)
@spec.validate(query=s.PageQuery, resp=Response(HTTP_200=s.Statement, HTTP_404=ErrorBody), tags=["账单"])
def account_statement(account_id: str):
    """The account's ledger, newest first, with the cause of every entry (cursor paging)."""
    q = request.context.query
    return s.statement(_reads().statement(g.openid, account_id, q.cursor, q.limit))


@bp.get("/accounts/<account_id>/orders")
@tenant_required(deferred=True)
@spec.validate(query=s.PageQuery, resp=Response(HTTP_200=s.OrderList, HTTP_404=ErrorBody), tags=["充值"])
def account_orders(account_id: str):
    """The account's recharge orders, newest first, with who paid (cursor paging)."""
    q = request.context.query
    return s.orders(_reads().orders(g.openid, account_id, q.cursor, q.limit))


@bp.get("/orders/<out_trade_no>")
@tenant_required(deferred=True)
@spec.validate(resp=Response(HTTP_200=s.Receipt, HTTP_404=ErrorBody), tags=["充值"])
def order_receipt(out_trade_no: str):
    """A receipt: the order, who paid, the account and the balance after the credit."""
    return s.receipt(_reads().receipt(g.openid, out_trade_no))
