"""The admin API's OpenAPI 3.1 document (docs/console.md, "Admin API").

Each /admin/api view carries its description with `@api_doc(...)`; `build_document(app)`
walks the app's url_map and writes one operation per rule and method under /admin/api:
path parameters from the rule, the summary, query parameters, the JSON body's schema,
the responses, and the security every console request needs (the session cookie; for a
write also the CSRF header). GET /admin/api/openapi.json serves it (console_ops.py).

Usage (the decorator may sit above or below `@admin_required`: functools.wraps keeps it):

    @bp.post("/admin/api/properties/<property_id>/sites/<site_id>/rotate")
    @api_doc("开始轮换站点密钥", body={"type": "object", ...}, responses={200: "新密钥版本"},
             tags=("sites",))
    @admin_required("admin")
    def rotate(property_id, site_id): ...

`params`: query (or header) parameters, name -> JSON schema; a schema may carry
"in" ("query" default, "header", "path"), "required" and "description" besides the
schema keywords. A path parameter named in the rule is always documented (a string
unless the rule's converter says int / float / uuid); `params` may describe it further.
`responses`: status -> description (str) or {"description", "schema"}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask

API_PREFIX = "/admin/api"
ATTR = "__api_doc__"
OPENAPI_VERSION = "3.1.0"
TITLE = "费控 物业管理后台 API"
CSRF_HEADER = "X-CSRFToken"
SESSION_COOKIE = "feikong_console"
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_RULE_VAR = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>.*?)\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_CONVERTER_SCHEMAS = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
    "path": {"type": "string"},
    "string": {"type": "string"},
    "default": {"type": "string"},
    "any": {"type": "string"},
}
_PARAM_KEYS = ("in", "required", "description")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "machine-readable error code"},
                "message": {"type": "string", "description": "错误说明（中文）"},
            },
        }
    },
}
DEFAULT_ERRORS = {
    "400": "请求无效（含缺少 CSRF 令牌）",
    "401": "未登录",
    "403": "角色无此权限",
    "404": "不存在（或该物业未授权给当前账号）",
}


def api_doc(summary: str, *, params: dict | None = None, body: dict | None = None,
            responses: dict | None = None, tags: tuple = ()) -> Callable:
    """Attach the OpenAPI description of an /admin/api view (see the module docstring)."""
    doc = {"summary": summary, "params": dict(params or {}), "body": body,
           "responses": dict(responses or {}), "tags": tuple(tags)}

    def attach(view: Callable) -> Callable:
        setattr(view, ATTR, doc)
        return view

    return attach


def doc_of(view: Callable | None) -> dict | None:
    """The api_doc of a view (looking through decorators that set __wrapped__)."""
    seen = 0
    while view is not None and seen < 10:
        found = getattr(view, ATTR, None)
        if found is not None:
            return found
        view = getattr(view, "__wrapped__", None)
        seen += 1
    return None


def openapi_path(rule: str) -> tuple[str, list[tuple[str, dict]]]:
    """A werkzeug rule as an OpenAPI path, with its variables and their schemas:
    "/a/<int:n>/<x>" -> ("/a/{n}/{x}", [("n", {"type": "integer"}), ("x", {"type": "string"})])."""
    variables: list[tuple[str, dict]] = []

    def sub(match: re.Match) -> str:
        name = match.group("name")
        variables.append((name, dict(_CONVERTER_SCHEMAS.get(match.group("conv") or "default", {"type": "string"}))))
        return "{" + name + "}"

    return _RULE_VAR.sub(sub, rule), variables


def _param(name: str, spec: dict, where: str) -> dict:
    schema = {k: v for k, v in spec.items() if k not in _PARAM_KEYS}
    out: dict[str, Any] = {"name": name, "in": where, "schema": schema or {"type": "string"}}
    if where == "path" or spec.get("required"):
        out["required"] = True
    if spec.get("description"):
        out["description"] = spec["description"]
    return out


def _responses(declared: dict, method: str) -> dict:
    out: dict[str, Any] = {}
    for status, spec in declared.items():
        if isinstance(spec, str):
            spec = {"description": spec}
        entry: dict[str, Any] = {"description": spec.get("description") or "OK"}
        if spec.get("schema") is not None:
            entry["content"] = {spec.get("media_type", "application/json"): {"schema": spec["schema"]}}
        elif spec.get("media_type"):
            entry["content"] = {spec["media_type"]: {"schema": {"type": "string"}}}
        out[str(status)] = entry
    if not any(s.startswith("2") or s.startswith("3") for s in out):
        out["200"] = {"description": "成功", "content": {"application/json": {"schema": {"type": "object"}}}}
    for status, text in DEFAULT_ERRORS.items():
        if status == "400" and method not in WRITE_METHODS and status not in out:
            text = "请求参数无效"
        out.setdefault(status, {"description": text,
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    return out


def _operation_id(endpoint: str, method: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{endpoint}_{method.lower()}")


def build_document(app: Flask, server_url: str | None = None) -> dict:
    """The OpenAPI 3.1 document of every rule under /admin/api of `app`."""
    cookie = app.config.get("SESSION_COOKIE_NAME") or SESSION_COOKIE
    paths: dict[str, dict] = {}
    tags_seen: list[str] = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not (rule.rule == API_PREFIX or rule.rule.startswith(API_PREFIX + "/")):
            continue
        path, variables = openapi_path(rule.rule)
        view = app.view_functions.get(rule.endpoint)
        doc = doc_of(view) or {}
        permission = getattr(view, "permission", None)
        declared = doc.get("params") or {}
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            parameters = []
            for name, schema in variables:
                extra = declared.get(name) or {}
                parameters.append(_param(name, {**schema, **extra}, "path"))
            for name, spec in declared.items():
                if name in {n for n, _ in variables}:
                    continue
                parameters.append(_param(name, spec, spec.get("in", "query")))
            summary = doc.get("summary") or (view.__doc__ or rule.endpoint).strip().splitlines()[0]
            op: dict[str, Any] = {
                "operationId": _operation_id(rule.endpoint, method),
                "summary": summary,
                "parameters": parameters,
                "responses": _responses(doc.get("responses") or {}, method),
                "security": [{"sessionCookie": [], "csrfHeader": []}] if method in WRITE_METHODS
                else [{"sessionCookie": []}],
            }
            if permission:
                op["description"] = f"所需权限：{permission}"
            if doc.get("tags"):
                op["tags"] = list(doc["tags"])
                tags_seen.extend(t for t in doc["tags"] if t not in tags_seen)
            if doc.get("body") is not None and method in WRITE_METHODS:
                op["requestBody"] = {"required": True,
                                     "content": {"application/json": {"schema": doc["body"]}}}
            paths.setdefault(path, {})[method.lower()] = op
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": "1",
                 "description": "物业管理后台的 JSON 接口：与控制台页面调用相同的服务。"
                                "需登录会话 Cookie；写操作另需 X-CSRFToken 请求头。"},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": cookie,
                                  "description": "登录 /login 后获得的会话 Cookie"},
                "csrfHeader": {"type": "apiKey", "in": "header", "name": CSRF_HEADER,
                               "description": "控制台页面 <meta name=\"csrf-token\"> 中的令牌"},
            },
        },
    }
    if tags_seen:
        document["tags"] = [{"name": t} for t in tags_seen]
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document
