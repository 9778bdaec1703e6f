"""The tenant API's typed contract: request and response models (pydantic) checked by
spectree, and the OpenAPI 3.1 document generated from them (docs/tenant-api.md).

How a view of /api/v1 uses it (any tenant blueprint, e.g. tenant.py, tenant_usage.py):

    from pydantic import BaseModel, ConfigDict, Field
    from spectree import Response
    from miniprogram_api.tenant import tenant_required
    from miniprogram_api.tenant_spec import ErrorBody, spec

    class StatementQuery(BaseModel):
        cursor: str | None = None
        limit: int = Field(20, ge=1, le=100)

    @bp.get("/accounts/<account_id>/statement")
    @tenant_required                      # 1. the bearer token (401) ...
    @spec.validate(query=StatementQuery,  # 2. ... then the query/body (400), then the view
                   resp=Response(HTTP_200=Statement, HTTP_404=ErrorBody), tags=["账单"])
    def statement(account_id: str):
        q: StatementQuery = request.context.query      # the validated query model
        ...
        return Statement(...)             # a model instance (or a dict), optionally (model, 201)

- Order: the route decorator, then `@tenant_required` (if the route needs a login), then
  `@spec.validate(...)` right above the function. `tenant_required` marks the route, so
  the document gives it the bearer security scheme and a 401 response; a route without it
  (login, token refresh) is documented as public. Only routes carrying `@spec.validate`
  are in the document.
- Validated input: `request.context.query` (query string model), `request.context.json`
  (JSON body model, from the body errors.py already parsed once; a body that is not a
  JSON object is a 400 `body_invalid`). Use `json=` for POST/PUT/PATCH bodies only.
- A request that does not fit its model is a 400
  `{"error": {"code": "invalid_request", "message": "请求参数无效：<field>"}}` (the
  field's dotted path; `details.field` carries it too). A request model may name a
  specific code and message per field with a ClassVar
  `error_codes = {"amount": ("amount_not_integer", "充值金额必须是以分为单位的整数")}`.
- Responses: return a response model instance, a dict / jsonify(...) of the same shape,
  or a (body, status) tuple; the body is checked against the model of its status (a
  mismatch is a 500 — a bug, caught by the schemathesis test). Errors are raised as
  core.domain.errors (NotFound, ...), never returned; list every status a route may
  answer in Response(...) with ErrorBody. 400 (and 401 for `tenant_required`, 404 for
  routes with path parameters) are added to the document automatically.
- Money: integer `*_fen` fields plus a yuan string for display (core.domain.money.yuan).
- Derive models from `ApiModel` (this module) rather than BaseModel: it defers building
  the validator to its first use, which keeps the app's cold import short.
- Model names are component names in the document: two different models may not share a
  class name (the import fails, naming both).
- A route that answers something other than JSON (e.g. text/event-stream) may use
  `@spec.validate(resp=Response(HTTP_200=None), skip_validation=True)` to be documented.

GET /api/v1/openapi.json serves the document and GET /api/v1/docs a Swagger UI page
using the copy of swagger-ui-dist in static/vendor (Makefile `vendor`): no CDN.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask, g
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from spectree import SpecTree
from spectree.plugins.base import Context
from spectree.plugins.flask_plugin import FlaskPlugin
from spectree.utils import get_model_key, get_multidict_items

from core.domain.errors import ValidationError

API_PREFIX = "/api/v1"
TENANT_AUTH_ATTR = "__tenant_auth__"  # set by tenant.tenant_required on the views it guards
BEARER = "bearer"
INVALID_REQUEST = "invalid_request"
EXTENSION_KEY = "feikong_tenant_openapi"


class ApiModel(BaseModel):
    """A base for the API's models: pydantic builds a model's validator on its first use,
    not when the module is imported (a cold start imports every blueprint)."""

    model_config = ConfigDict(defer_build=True)


class ErrorDetail(ApiModel):
    code: str = Field(description="machine-readable error code (English)")
    message: str = Field(description="错误说明（简体中文）")
    details: dict[str, Any] | None = Field(None, description="optional details, e.g. the field at fault")


class ErrorBody(ApiModel):
    """Every error of the API: {"error": {"code", "message"}}."""

    error: ErrorDetail


def field_path(loc: tuple | list) -> str:
    """A pydantic error location as a dotted field path: ("items", 0, "amount") -> "items.0.amount"."""
    return ".".join(str(part) for part in loc) or "body"


def request_error(model: type, err: PydanticValidationError) -> ValidationError:
    """The 400 error for input that does not fit `model` (see the module docstring)."""
    fields: list[str] = []
    for e in err.errors(include_context=False):
        path = field_path(e.get("loc") or ())
        if path not in fields:
            fields.append(path)
    first = fields[0] if fields else "body"
    specific = (getattr(model, "error_codes", None) or {}).get(first.split(".")[0])
    if specific:
        code, message = specific
        return ValidationError(message, code=code, field=first)
    return ValidationError(f"请求参数无效：{'、'.join(fields[:5])}", code=INVALID_REQUEST, field=first)


class TenantFlaskPlugin(FlaskPlugin):
    """spectree's Flask plugin, with our rules: the JSON body is the one errors.py parsed
    (g.json_body: size and depth checked), input errors are our 400 JSON error, and no
    documentation routes are added by spectree (its pages load a CDN: we serve our own)."""

    def register_route(self, app: Any) -> None:  # noqa: ARG002 - routes are ours (tenant.py)
        return None

    def request_validation(self, request, query, json, form, headers, cookies):
        def check(model, value):
            try:
                return self.model_adapter.validate_obj(model, value)
            except PydanticValidationError as err:
                raise request_error(model, err) from None

        body = None
        if json is not None and request.method not in ("GET", "DELETE", "HEAD"):
            data = getattr(g, "json_body", None)
            if not isinstance(data, dict):
                raise ValidationError("请求体必须是 JSON 对象", code="body_invalid")
            body = check(json, data)
        request.context = Context(
            check(query, get_multidict_items(request.args, query)) if query is not None else None,
            body,
            check(form, self.fill_form(request)) if form is not None else None,
            check(headers, dict(iter(request.headers))) if headers is not None else None,
            check(cookies, get_multidict_items(request.cookies)) if cookies is not None else None,
        )


class LazySpecTree(SpecTree):
    """SpecTree that writes the models' JSON schemas when a document is built, not when a
    view is decorated (at import: a cold start would pay for every schema), and writes
    them afresh for every document (spectree lifts nested `$defs` out of its stored
    schemas in place, so a second document would lose them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._registered: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _add_model(self, model: Any, mode: Any = "validation") -> str:
        key = self.naming_strategy(model)
        self._registered[key] = (model, mode)
        return key

    def _generate_spec(self) -> dict[str, Any]:
        with self._lock:
            self.models = {}
            for model, mode in list(self._registered.values()):
                SpecTree._add_model(self, model, mode)
            return super()._generate_spec()


_model_names: dict[str, str] = {}


def model_name(model: Any) -> str:
    """A model's component name: its class name, unique across the API."""
    name = getattr(model, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        return get_model_key(model)
    where = f"{getattr(model, '__module__', '')}.{getattr(model, '__qualname__', name)}"
    taken = _model_names.setdefault(name, where)
    if taken != where:
        raise RuntimeError(f"two tenant API models are named {name}: {taken} and {where}; rename one")
    return name


spec = LazySpecTree(
    "flask",
    backend=TenantFlaskPlugin,
    title="费控 租户 API",
    description="租户（住户）小程序与公众号 H5 页面调用的接口。金额以分为单位（*_fen 整数），另附元字符串便于显示。"
                "错误统一为 {\"error\": {\"code\", \"message\"}}，message 为中文。",
    version="1",
    openapi_version="3.1.0",
    mode="strict",
    path="api/v1/_spectree",  # spectree skips routes under it; it serves nothing (register_route)
    filename="openapi.json",
    page_templates={},
    annotations=False,
    validation_error_status=400,
    validation_error_model=ErrorBody,
    naming_strategy=model_name,
    security_schemes=[{"name": BEARER, "data": {"type": "http", "scheme": "bearer", "bearer_format": "JWT",
                                                 "description": "POST /api/v1/login 返回的 token"}}],
)


def _error_response(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model_name(ErrorBody)}"}}}}


def _view_of(app: Flask, endpoint: str):
    return app.view_functions.get(endpoint)


def _needs_login(view: Any) -> bool:
    seen = 0
    while view is not None and seen < 10:
        if getattr(view, TENANT_AUTH_ATTR, False):
            return True
        view = getattr(view, "__wrapped__", None)
        seen += 1
    return False


def build_document(app: Flask) -> dict:
    """The OpenAPI 3.1 document of the app's /api/v1 routes that carry @spec.validate
    (call inside an app context)."""
    document = spec._generate_spec()  # noqa: SLF001 - spectree's generator, without its cache
    rules = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX):
            path, _ = spec.backend.parse_path(rule, None)
            rules[path] = rule
    for path, operations in document["paths"].items():
        rule = rules.get(path)
        for op in operations.values():
            responses = op.setdefault("responses", {})
            secured = rule is not None and _needs_login(_view_of(app, rule.endpoint))
            op["security"] = [{BEARER: []}] if secured else []
            if secured:
                responses.setdefault("401", _error_response("未登录或登录已失效"))
            responses.setdefault("400", _error_response("请求参数无效"))
            if "{" in path:
                responses.setdefault("404", _error_response("不存在（或不属于当前用户）"))
            if not op.get("description"):
                op.pop("description", None)
    document["security"] = []
    return document


def document(app: Flask) -> dict:
    """The app's document, built once per app."""
    cached = app.extensions.get(EXTENSION_KEY)
    if cached is None:
        cached = app.extensions[EXTENSION_KEY] = build_document(app)
    return cached


DOCS_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>费控 租户 API 文档</title>
<link rel="stylesheet" href="{static}/vendor/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{static}/vendor/swagger-ui-bundle.js"></script>
<script src="{static}/tenant-api-docs.js" data-spec-url="{spec_url}"></script>
</body>
</html>
"""


def docs_page(static_url: str, spec_url: str) -> str:
    """The Swagger UI page of the document (served assets only)."""
    return DOCS_PAGE.format(static=static_url.rstrip("/"), spec_url=spec_url)


__all__ = ["ApiModel", "ErrorBody", "ErrorDetail", "TENANT_AUTH_ATTR", "docs_page", "document", "spec"]
