"""The Flask app: tenant API (/api/v1), tenant H5 pages and the admin console (/admin).

Handlers only translate HTTP to service calls and back; rules live in core/.
"""

from __future__ import annotations

import json
import os

from flask import Flask, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from core.domain.errors import FeikongError, NotFound, ValidationError
from core.domain.money import yuan
from core.services import auth, directory, health
from core.services.payments import Payments

MAX_BODY_BYTES = 64 * 1024  # the API's bodies are a few hundred bytes
MAX_JSON_DEPTH = 32

HTTP_ERRORS = {
    400: ("bad_request", "请求格式错误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限"),
    404: ("not_found", "页面不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("body_too_large", f"请求体不能超过 {MAX_BODY_BYTES // 1024} KB"),
    415: ("unsupported_media_type", "不支持的请求格式"),
}


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text, counted without parsing
    it (json.loads recurses once per level: ~1,000 levels is a RecursionError, a 500)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def create_app() -> Flask:
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.jinja_env.filters["yuan"] = yuan

    def console_open() -> bool:
        # The console has no admin login yet: it is served only where it is switched on
        # (local demo, tests). Production leaves FEIKONG_CONSOLE_OPEN unset.
        return os.environ.get("FEIKONG_CONSOLE_OPEN") == "1"

    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    @app.errorhandler(FeikongError)
    def _feikong_error(e: FeikongError):
        return jsonify(e.to_body()), e.status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        """Every HTTP error (404, 405, 413, ...) in the JSON error format, headers kept (Allow)."""
        code, message = HTTP_ERRORS.get(e.code or 500, ("http_error", "请求无法处理"))
        response = e.get_response()
        response.set_data(json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False))
        response.content_type = "application/json"
        return response

    @app.before_request
    def _check_body():
        """A request body, on any route, must be UTF-8 JSON of bounded size and depth; it is
        parsed once here, before any handler or service sees the request."""
        raw = request.get_data(cache=True)
        g.json_body = None
        if not raw:
            return
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationError("请求体必须是 UTF-8 编码的 JSON", code="body_not_utf8") from None
        if json_depth(text) > MAX_JSON_DEPTH:
            raise ValidationError(f"请求体 JSON 嵌套超过 {MAX_JSON_DEPTH} 层", code="body_too_deep")
        try:
            g.json_body = json.loads(text)
        except ValueError:
            raise ValidationError("请求体不是有效的 JSON", code="body_invalid") from None

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        if isinstance(e, HTTPException):
            return _http_error(e)
        if health.is_backend_down(e):
            app.logger.error("backend unreachable: %s", e)
            body = {"error": {"code": "backend_unavailable", "message": "服务暂时不可用，请稍后重试"}}
            return jsonify(body), 503
        app.logger.exception("unhandled error")
        return jsonify({"error": {"code": "internal_error", "message": "系统错误，请稍后重试"}}), 500

    @app.get("/health")
    def health_check():
        result = health.check()
        return jsonify(result), 200 if result["status"] == "ok" else 503

    @app.get("/")
    def index():
        if not console_open():
            return jsonify({"service": "feikong", "health": "/health"})
        property_id = request.args.get("property") or os.environ.get("FEIKONG_DEFAULT_PROPERTY", "")
        if not property_id:
            raise NotFound("请指定物业 (?property=...)", code="property_required")
        view = directory.property_overview(property_id)
        return render_template("rooms.html", **view)

    payments = Payments()

    def body() -> dict:
        data = g.json_body
        if not isinstance(data, dict):
            raise ValidationError("请求体必须是 JSON 对象", code="body_invalid")
        return data

    @app.post("/api/v1/login")
    def login():
        return jsonify(auth.login(body().get("code")))

    @app.get("/api/v1/accounts")
    def my_accounts():
        openid = auth.openid_from(request.headers.get("Authorization"))
        return jsonify({"accounts": [
            {"account_id": a.account_id, "name": a.name, "balance_fen": a.balance, "balance": yuan(a.balance),
             "supply": a.cut_state} for a in auth.tenant_accounts(openid)]})

    @app.post("/api/v1/recharges")
    def create_recharge():
        openid = auth.openid_from(request.headers.get("Authorization"))
        data = body()
        return jsonify(payments.create_recharge(openid, data.get("account_id"), data.get("amount"))), 201

    @app.get("/api/v1/recharges/<out_trade_no>")
    def recharge_status(out_trade_no: str):
        openid = auth.openid_from(request.headers.get("Authorization"))
        o = payments.order_for_tenant(openid, out_trade_no)
        return jsonify({"out_trade_no": o.out_trade_no, "status": o.status, "amount": o.amount,
                        "account_id": o.account_id, "paid_at": o.paid_at})

    @app.get("/admin/api/properties/<property_id>/buildings/<building_id>/rooms")
    def rooms(property_id: str, building_id: str):
        if not console_open():
            raise NotFound("页面不存在")
        rows = directory.rooms_with_balances(property_id, building_id)
        return jsonify(
            {
                "rooms": [
                    {
                        "room_id": r["room"].room_id,
                        "name": r["room"].name,
                        "area_m2": r["room"].area_m2,
                        "balance_fen": r["balance"],
                        "balance": yuan(r["balance"]),
                        "accounts": [
                            {"account_id": a.account_id, "name": a.name, "balance_fen": a.balance,
                             "supply": a.cut_state}
                            for a in r["accounts"]
                        ],
                    }
                    for r in rows
                ]
            }
        )

    return app


app = create_app()
