"""The tenant API (/api/v1): WeChat login and sessions, the tenant's accounts, recharges."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Blueprint, g, jsonify, request

from miniprogram_api import serializers
from miniprogram_api.errors import json_object
from miniprogram_api.services import payments, tenant_auth

bp = Blueprint("tenant", __name__, url_prefix="/api/v1")


def tenant_required(view: Callable) -> Callable:
    """The request must carry a live session's access token (from /api/v1/login or
    /api/v1/token/refresh); the view finds the tenant's WeChat openid in g.openid and the
    caller in g.caller. Otherwise a 401 JSON error (docs/tenant-auth.md)."""

    @wraps(view)
    def checked(*args, **kwargs):
        g.caller = tenant_auth().authenticate(request.headers.get("Authorization"))
        g.openid = g.caller.openid
        return view(*args, **kwargs)

    return checked


@bp.post("/login")
def login():
    return jsonify(tenant_auth().login(json_object().get("code")))


@bp.post("/token/refresh")
def refresh_token():
    return jsonify(tenant_auth().refresh(json_object().get("refresh_token")))


@bp.post("/logout")
@tenant_required
def logout():
    tenant_auth().logout(g.caller)
    return "", 204


@bp.get("/accounts")
@tenant_required
def my_accounts():
    from core.services.auth import tenant_accounts

    return jsonify({"accounts": [serializers.tenant_account(a) for a in tenant_accounts(g.openid)]})


@bp.post("/recharges")
@tenant_required
def create_recharge():
    data = json_object()
    return jsonify(payments().create_recharge(g.openid, data.get("account_id"), data.get("amount"))), 201


@bp.get("/recharges/<out_trade_no>")
@tenant_required
def recharge_status(out_trade_no: str):
    return jsonify(serializers.recharge_status(payments().order_for_tenant(g.openid, out_trade_no)))
