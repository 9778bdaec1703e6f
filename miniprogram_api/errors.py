"""JSON errors and request-body checks for every route of the app.

Every error a client sees is `{"error": {"code", "message"}}`: FeikongError from the
services, HTTP errors (404, 405 with `Allow`, 413...), a dead backend (503) and bugs (500).
A request body, on any route, is checked once before any view or service sees it.
"""

from __future__ import annotations

import json

from flask import Flask, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from core.domain.errors import FeikongError, ValidationError

MAX_BODY_BYTES = 64 * 1024  # the API's bodies are a few hundred bytes
MAX_JSON_DEPTH = 32
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

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


def check_body() -> None:
    """A request body must be UTF-8 JSON of bounded size and depth (or a form: the
    console's); it is parsed once here (into g.json_body), before any view or service
    sees the request."""
    g.json_body = None
    if request.mimetype in FORM_TYPES:  # console forms: werkzeug parses them (size capped above)
        return
    raw = request.get_data(cache=True)
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


def json_object() -> dict:
    """The request's body, which this route needs to be a JSON object."""
    data = g.json_body
    if not isinstance(data, dict):
        raise ValidationError("请求体必须是 JSON 对象", code="body_invalid")
    return data


API_PREFIXES = ("/api/", "/admin/api", "/wechatpay/")


def _for_a_person() -> bool:
    """A console page opened in a browser (not the APIs, not an htmx swap, not JSON): the
    error is a page in Chinese rather than a JSON body."""
    return (not request.path.startswith(API_PREFIXES) and request.headers.get("HX-Request") != "true"
            and request.accept_mimetypes.best in ("text/html", "application/xhtml+xml"))


def _error_page(status: int, code: str, message: str):
    from flask import render_template

    return render_template("console/error.html", status=status, code=code, message=message), status


def feikong_error(e: FeikongError):
    if _for_a_person():
        body = e.to_body()["error"]
        return _error_page(e.status, body["code"], body["message"])
    return jsonify(e.to_body()), e.status


def http_error(e: HTTPException):
    """Every HTTP error (404, 405, 413, ...) in the JSON error format, headers kept (Allow);
    a page in Chinese for a person's browser."""
    code, message = HTTP_ERRORS.get(e.code or 500, ("http_error", "请求无法处理"))
    if _for_a_person() and (e.code or 500) != 405:
        return _error_page(e.code or 500, code, message)
    response = e.get_response()
    response.set_data(json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False))
    response.content_type = "application/json"
    return response


def unexpected(e: Exception):
    if isinstance(e, HTTPException):
        return http_error(e)
    from core.services import health

    if health.is_backend_down(e):
        current_app.logger.error("backend unreachable: %s", e)
        body = {"error": {"code": "backend_unavailable", "message": "服务暂时不可用，请稍后重试"}}
        return jsonify(body), 503
    current_app.logger.exception("unhandled error")
    return jsonify({"error": {"code": "internal_error", "message": "系统错误，请稍后重试"}}), 500


def init_app(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.register_error_handler(FeikongError, feikong_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
    app.before_request(check_body)
