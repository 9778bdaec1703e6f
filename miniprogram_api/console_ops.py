"""Sites and bridges (站点网关), the audit log (审计日志) and the admin API's OpenAPI
document (docs/console.md: "Sites", "Audit log", "Admin API").

Pages under /p/<property_id>/sites and /p/<property_id>/audit, the same as JSON under
/admin/api/properties/<property_id>/..., and GET /admin/api/openapi.json. Every route
passes the console gate (login; a property not granted is 404); site registration and
key rotation need the "admin" permission (owner), the company's records (logins) too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from miniprogram_api.admin_auth import Forbidden, admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc, build_document

bp = Blueprint("console_ops", __name__)
bp.before_request(console_gate)

ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"}
SITE_SCHEMA = {
    "type": "object",
    "properties": {
        "site_id": {"type": "string"}, "name": {"type": "string"}, "online": {"type": "boolean"},
        "rotating": {"type": "boolean", "description": "密钥轮换进行中"},
        "last_heartbeat": {"type": ["object", "null"]}, "meters": {"type": "integer"},
        "buses": {"type": "array", "items": {"type": "object"}},
        "commands_in_flight": {"type": "array", "items": {"type": "object"}},
    },
}
KEYS_SCHEMA = {
    "type": "object",
    "properties": {"site_id": {"type": "string"}, "rotating": {"type": "boolean"},
                   "secret": {"type": "string", "description": "新密钥（只显示这一次）"},
                   "previous_secret": {"type": "string", "description": "旧密钥（轮换结束前仍有效）"}},
}
AUDIT_PARAMS = {
    "since": {"type": "string", "description": "开始：YYYY-MM-DD（物业时区）或带时区的时间；默认 7 天前"},
    "until": {"type": "string", "description": "结束：YYYY-MM-DD（含当天）或带时区的时间（不含）；默认今天"},
    "actor": {"type": "string", "description": "操作人登录名"},
    "action": {"type": "string", "description": "操作代码，如 login、site_secret_rotated"},
    "target": {"type": "string", "description": "对象包含的文字"},
    "scope": {"type": "string", "enum": ["property", "company"],
              "description": "property：本物业；company：公司账号（登录等，需所有者）"},
}
RECORD_SCHEMA = {
    "type": "object",
    "properties": {k: {"type": t} for k, t in (
        ("at", "string"), ("actor_id", "string"), ("actor_name", "string"), ("role", "string"), ("action", "string"),
        ("action_name", "string"), ("target", "string"), ("before", ["object", "null"]),
        ("after", ["object", "null"]), ("ip", "string"), ("record_id", "string"))},
}
EXPORTS = {"xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
           "csv": ("text/csv; charset=utf-8", "csv")}


def _now() -> datetime:
    return datetime.now(UTC)


def _local(tz: ZoneInfo):
    """Templates: `local(t)`, a datetime or ISO-8601 text, as the property's local time."""

    def fmt(value, seconds: bool = True) -> str:
        if not value:
            return ""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M")

    return fmt


# --- the OpenAPI document (docs/console.md "Admin API") -------------------------------------


@bp.get("/admin/api/openapi.json")
@api_doc("管理后台 API 的 OpenAPI 3.1 文档", tags=("api",),
         responses={200: {"description": "OpenAPI 3.1 文档", "schema": {"type": "object"}}})
@admin_required("view")
def openapi_json():
    return jsonify(build_document(current_app, server_url=request.host_url.rstrip("/")))


# --- sites and bridges (站点网关) ----------------------------------------------------------


def _property(property_id: str):
    from core.services import action_export

    return action_export.property_of(property_id)


def _tz(prop) -> ZoneInfo:
    return ZoneInfo(prop.timezone or "Asia/Shanghai")


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


def _site_json(o) -> dict:
    hb = o.heartbeat
    return {
        "site_id": o.site.site_id, "name": o.site.name, "online": o.online, "rotating": o.rotating,
        "last_heartbeat": None if hb is None else {"received_at": _iso(hb.received_at), "sent_at": _iso(hb.sent_at),
                                                   **hb.figures()},
        "meters": o.meter_count,
        "buses": [{"name": b.name, "meters": list(b.meter_ids),
                   "polls": b.health.polls if b.health else None,
                   "failures": b.health.failures if b.health else None} for b in o.buses],
        "commands_in_flight": [{"command_id": c.command_id, "meter_id": c.meter_id, "op": c.op, "state": c.state,
                                "issued_at": c.issued_at, "expires_at": c.expires_at, "actor": c.actor}
                               for c in o.commands],
    }


def _sites_page(property_id: str, status: int = 200, error: str = "", form: dict | None = None,
                field: str = ""):
    from core.domain import sites as rules
    from core.services import site_status

    prop = _property(property_id)
    who = current_admin()
    return render_template(
        "console/sites_list.html", property_id=property_id, property=prop, nav_active="sites",
        sites=site_status.overview(property_id), local=_local(_tz(prop)), now=_now(), can_admin=who.can("admin"),
        error=error,
        form=form or {}, error_field=field, online_minutes=int(rules.ONLINE_WINDOW.total_seconds() // 60),
        op_names=rules.OP_NAMES, state_names=rules.COMMAND_STATE_NAMES,
    ), status


def _keys_page(property_id: str, site_id: str, registered: bool, secret: str, previous: str) -> Response:
    """A site's key, shown once: never cached, never in the session."""
    response = Response(render_template(
        "console/sites_keys.html", property_id=property_id, property=_property(property_id), nav_active="sites",
        site_id=site_id, registered=registered, secret=secret, previous_secret=previous))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/p/<property_id>/sites")
@admin_required("view")
def sites_page(property_id: str):
    return _sites_page(property_id)


@bp.post("/p/<property_id>/sites")
@admin_required("admin")
def sites_register(property_id: str):
    from core.services import site_status

    form = {"site_id": request.form.get("site_id", "").strip(), "name": request.form.get("name", "").strip()}
    try:
        s = site_status.register(current_admin(), property_id, form["site_id"], form["name"], client_ip())
    except FeikongError as e:
        status = 422 if isinstance(e, ValidationError) else e.status
        return _sites_page(property_id, status, e.message, form, str(e.details.get("field", "")))
    return _keys_page(property_id, s.site_id, True, s.secret, ""), 201


@bp.post("/p/<property_id>/sites/<site_id>/rotate")
@admin_required("admin")
def sites_rotate(property_id: str, site_id: str):
    from core.services import site_status

    try:
        keys = site_status.rotate(current_admin(), property_id, site_id, client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _sites_page(property_id, e.status, e.message)
    return _keys_page(property_id, site_id, False, keys.current, keys.previous)


@bp.post("/p/<property_id>/sites/<site_id>/finish")
@admin_required("admin")
def sites_finish(property_id: str, site_id: str):
    from core.services import site_status

    try:
        site_status.finish(current_admin(), property_id, site_id, client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _sites_page(property_id, e.status, e.message)
    flash(f"站点 {site_id} 的密钥轮换已结束，旧密钥已失效。请从网关配置中删除 previous_secret。", "success")
    return redirect(url_for("console_ops.sites_page", property_id=property_id))


@bp.get("/admin/api/properties/<property_id>/sites")
@api_doc("站点网关列表：在线状态、最近心跳、各总线电表、在途指令、密钥轮换状态", tags=("sites",),
         responses={200: {"description": "站点列表", "schema": {
             "type": "object", "properties": {"sites": {"type": "array", "items": SITE_SCHEMA}}}}})
@admin_required("view")
def sites_json(property_id: str):
    from core.services import site_status

    _property(property_id)
    return jsonify({"sites": [_site_json(o) for o in site_status.overview(property_id)]})


@bp.post("/admin/api/properties/<property_id>/sites")
@api_doc("注册站点网关（返回网关密钥，只显示这一次）", tags=("sites",),
         body={"type": "object", "required": ["site_id", "name"], "additionalProperties": False,
               "properties": {"site_id": ID_SCHEMA, "name": {"type": "string", "minLength": 1, "maxLength": 64}}},
         responses={201: {"description": "已注册", "schema": KEYS_SCHEMA}, 409: "站点已存在"})
@admin_required("admin")
def sites_register_json(property_id: str):
    from core.services import site_status

    body = json_object()
    unknown = set(body) - {"site_id", "name"}
    if unknown:
        raise ValidationError(f"未知字段：{', '.join(sorted(unknown))}", code="field_unknown", field=sorted(unknown)[0])
    s = site_status.register(current_admin(), property_id, body.get("site_id"), body.get("name"), client_ip())
    return jsonify({"site_id": s.site_id, "name": s.name, "secret": s.secret}), 201, {"Cache-Control": "no-store"}


@bp.post("/admin/api/properties/<property_id>/sites/<site_id>/rotate")
@api_doc("开始轮换网关密钥：返回新旧两个密钥，写入网关配置后重启网关", tags=("sites",),
         responses={200: {"description": "新密钥", "schema": KEYS_SCHEMA}, 409: "上一次轮换尚未结束"})
@admin_required("admin")
def sites_rotate_json(property_id: str, site_id: str):
    from core.services import site_status

    keys = site_status.rotate(current_admin(), property_id, site_id, client_ip())
    return (jsonify({"site_id": site_id, "rotating": True, "secret": keys.current, "previous_secret": keys.previous}),
            200, {"Cache-Control": "no-store"})


@bp.post("/admin/api/properties/<property_id>/sites/<site_id>/finish")
@api_doc("结束网关密钥轮换：旧密钥从此失效", tags=("sites",),
         responses={200: {"description": "已结束", "schema": KEYS_SCHEMA}, 409: "没有进行中的轮换"})
@admin_required("admin")
def sites_finish_json(property_id: str, site_id: str):
    from core.services import site_status

    site_status.finish(current_admin(), property_id, site_id, client_ip())
    return jsonify({"site_id": site_id, "rotating": False})


# --- the audit log (审计日志) ---------------------------------------------------------------


def _filter(prop):
    from core.domain import action_export as rules

    f = rules.parse_filter(request.args, _now(), _tz(prop))
    if f.scope == "company" and not current_admin().can("admin"):
        raise Forbidden("只有所有者可以查看公司账号的登录记录")
    return f


def _record_json(r) -> dict:
    return {"at": _iso(r.at), "actor_id": r.actor_id, "actor_name": r.actor_name, "role": r.role,
            "action": r.action, "action_name": r.action_name, "target": r.target, "before": r.before,
            "after": r.after, "ip": r.ip, "record_id": r.record_id}


@bp.get("/p/<property_id>/audit")
@admin_required("view")
def audit_page(property_id: str):
    from core.domain import action_export as rules
    from core.domain.action_log import ACTION_NAMES
    from core.services import action_export

    prop = _property(property_id)
    who = current_admin()
    error, f, result = "", None, None
    try:
        f = _filter(prop)
        result = action_export.page(who, property_id, f, request.args.get("cursor"))
    except (ValidationError, Forbidden) as e:
        error = e.message
    status = 200 if not error else (403 if f is None and request.args.get("scope") == "company"
                                     and not who.can("admin") else 422)
    args = f.query_args() if f else {k: v for k, v in request.args.items() if k != "cursor"}
    return render_template(
        "console/audit_list.html", property_id=property_id, property=prop, nav_active="audit", local=_local(_tz(prop)),
        f=f, args=args, error=error, records=result.records if result else [],
        next_cursor=result.next_cursor if result else None, paged=bool(request.args.get("cursor")),
        action_names=ACTION_NAMES, role_names=rules.ROLE_NAMES, amount_fen=rules.amount_fen,
        can_admin=who.can("admin"),
    ), status


def _export(property_id: str):
    from core.services import action_export

    fmt = request.args.get("format", "xlsx")
    if fmt not in EXPORTS:
        raise ValidationError("导出格式只能是 xlsx 或 csv", code="format_invalid", field="format")
    prop = _property(property_id)
    records = action_export.all_records(current_admin(), property_id, _filter(prop))
    data = action_export.to_xlsx(records, _tz(prop)) if fmt == "xlsx" else action_export.to_csv(records, _tz(prop))
    mime, ext = EXPORTS[fmt]
    stamp = _now().astimezone(_tz(prop)).strftime("%Y%m%d-%H%M")
    response = Response(data, mimetype=mime.split(";")[0])
    response.headers["Content-Type"] = mime
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{property_id}-{stamp}.{ext}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/p/<property_id>/audit/export")
@admin_required("view")
def audit_export_page(property_id: str):
    return _export(property_id)


@bp.get("/admin/api/properties/<property_id>/audit")
@api_doc("审计日志（按时间倒序分页）", tags=("audit",),
         params={**AUDIT_PARAMS, "cursor": {"type": "string", "description": "下一页游标（上一页的 next_cursor）"},
                 "limit": {"type": "integer", "minimum": 1, "maximum": 200, "description": "每页条数，默认 50"}},
         responses={200: {"description": "一页记录", "schema": {
             "type": "object", "properties": {"records": {"type": "array", "items": RECORD_SCHEMA},
                                              "next_cursor": {"type": ["string", "null"]}}}}})
@admin_required("view")
def audit_json(property_id: str):
    from core.services import action_export

    prop = _property(property_id)
    limit_text = request.args.get("limit", str(action_export.PAGE))
    if not limit_text.isdigit():
        raise ValidationError("limit 必须是 1 到 200 的整数", code="limit_invalid", field="limit")
    page = action_export.page(current_admin(), property_id, _filter(prop), request.args.get("cursor"),
                              limit=int(limit_text))
    return jsonify({"records": [_record_json(r) for r in page.records], "next_cursor": page.next_cursor})


@bp.get("/admin/api/properties/<property_id>/audit/export")
@api_doc("导出审计日志（Excel 或 CSV）", tags=("audit",),
         params={**AUDIT_PARAMS, "format": {"type": "string", "enum": ["xlsx", "csv"], "description": "默认 xlsx"}},
         responses={200: {"description": "Excel（xlsx）或 CSV（UTF-8 带 BOM）文件",
                          "media_type": "application/octet-stream"}})
@admin_required("view")
def audit_export_json(property_id: str):
    return _export(property_id)
