"""Property settings (物业设置) and the company's users (用户管理) (docs/console.md:
"Property settings", "Users").

- /p/<property_id>/settings: the protected windows of supply and the grace delay before a
  cut ("view" sees, "operate" changes); JSON GET / PUT
  /admin/api/properties/<property_id>/settings/protection.
- /company/users: the company's admins, their roles, properties, TOTP, lock and last
  login; create, edit role / properties, reset a password, disable / enable (owners:
  "admin"); JSON under /admin/api/company/users. An admin of another company is 404.

Views only translate HTTP: the rules are in core/domain/property_settings.py and
core/domain/admins.py, the changes in core/services/property_settings.py and
core/services/admin_auth.py (each recorded in the action log).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from miniprogram_api.admin_auth import admin_auth, admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_admin", __name__)
bp.before_request(console_gate)

TIME_SCHEMA = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
PROTECTION_SCHEMA = {
    "type": "object",
    "required": ["night", "weekends", "holidays", "grace_minutes"],
    "additionalProperties": False,
    "properties": {
        "night": {"description": "夜间保护时段 [开始, 结束]（结束早于开始即跨零点），null 为不设夜间保护",
                  "oneOf": [{"type": "null"}, {"type": "array", "items": TIME_SCHEMA, "minItems": 2, "maxItems": 2}]},
        "weekends": {"type": "boolean", "description": "周末不断电"},
        "holidays": {"type": "boolean", "description": "法定节假日不断电"},
        "grace_minutes": {"type": "integer", "minimum": 0, "maximum": 1440, "description": "欠费后延迟断电（分钟）"},
    },
}
PROTECTION_OUT = {
    "type": "object",
    "properties": {
        **PROTECTION_SCHEMA["properties"],
        "property_id": {"type": "string"}, "timezone": {"type": "string"},
        "protected_now": {"type": "boolean", "description": "此刻处于保护时段"},
        "next_allowed_at": {"type": ["string", "null"], "description": "下一次允许断电的时间（UTC）"},
        "cache_seconds": {"type": "integer", "description": "其他进程在此秒数内生效"},
        "changed": {"type": "boolean"},
    },
}
LOGIN_SCHEMA = {"type": "string", "maxLength": 64, "description": "登录名（通常为邮箱）"}
USER_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string"}, "name": {"type": "string"},
        "role": {"type": "string", "enum": ["owner", "operator", "finance", "viewer"]},
        "role_name": {"type": "string"},
        "property_ids": {"type": "array", "items": {"type": "string"}, "description": "可见物业（所有者：公司全部物业）"},
        "totp": {"type": "boolean"}, "locked": {"type": "boolean"}, "locked_until": {"type": ["string", "null"]},
        "disabled": {"type": "boolean"}, "last_login_at": {"type": ["string", "null"]},
        "created_at": {"type": ["string", "null"]},
    },
}
CREATE_SCHEMA = {
    "type": "object", "required": ["email", "name", "role"], "additionalProperties": False,
    "properties": {"email": LOGIN_SCHEMA, "name": {"type": "string", "minLength": 1, "maxLength": 40},
                   "role": USER_SCHEMA["properties"]["role"],
                   "property_ids": {"type": "array", "items": {"type": "string"}},
                   "password": {"type": "string", "minLength": 10, "maxLength": 128,
                                "description": "初始密码；省略则随机生成并在响应中返回（只返回这一次）"}},
}
UPDATE_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {"name": CREATE_SCHEMA["properties"]["name"], "role": USER_SCHEMA["properties"]["role"],
                   "property_ids": {"type": "array", "items": {"type": "string"}}},
}
NO_STORE = {"Cache-Control": "no-store"}


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


def _refuse_unknown(body: dict, allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationError(f"未知字段：{', '.join(unknown)}", code="field_unknown", field=unknown[0])


# --- property settings (物业设置) ------------------------------------------------------------


def _settings_service():
    from core.services import property_settings  # the store loads with the first page (docs/cold-start.md)

    return property_settings


def _settings_page(property_id: str, status: int = 200, form: dict | None = None, error: str = "",
                   field: str = ""):
    svc = _settings_service()
    v = svc.view(property_id, _now())
    s = v.settings
    shown = form if form is not None else {
        "night_enabled": s.night is not None,
        "night_start": s.night[0].strftime("%H:%M") if s.night else "22:00",
        "night_end": s.night[1].strftime("%H:%M") if s.night else "08:00",
        "weekends": s.weekends, "holidays": s.holidays,
        "grace_minutes": str(int(s.grace.total_seconds() // 60)),
    }
    tz = ZoneInfo(svc.timezone_of(v.property))
    return render_template(
        "console/settings_protection.html", property_id=property_id, property=v.property, nav_active="settings",
        view=v, f=shown, error=error, error_field=field, can_operate=current_admin().can("operate"),
        next_allowed=v.next_allowed.astimezone(tz).strftime("%Y-%m-%d %H:%M") if v.next_allowed else "",
        cache_seconds=svc.CACHE_SECONDS,
    ), status


@bp.get("/p/<property_id>/settings")
@admin_required("view")
def settings_page(property_id: str):
    return _settings_page(property_id)


@bp.post("/p/<property_id>/settings")
@admin_required("operate")
def settings_save(property_id: str):
    from core.domain import property_settings as rules

    svc = _settings_service()
    form = request.form
    try:
        new = rules.from_form(form, svc.timezone_of(svc.property_of(property_id)))
        _, changed = svc.update_protection(current_admin(), property_id, new, client_ip())
    except ValidationError as e:
        shown = {k: form.get(k, "") for k in ("night_start", "night_end", "grace_minutes")}
        shown.update({k: form.get(k, "") in rules.TRUE_VALUES for k in ("night_enabled", "weekends", "holidays")})
        return _settings_page(property_id, 422, shown, e.message, str(e.details.get("field", "")))
    flash("断电保护设置已保存" if changed else "设置没有变化", "success" if changed else "info")
    return redirect(url_for("console_admin.settings_page", property_id=property_id))


def _protection_json(property_id: str, changed: bool | None = None) -> dict:
    svc = _settings_service()
    v = svc.view(property_id, _now())
    out = {"property_id": property_id, **v.settings.to_dict(), "protected_now": v.protected_now,
           "next_allowed_at": _iso(v.next_allowed), "cache_seconds": svc.CACHE_SECONDS}
    if changed is not None:
        out["changed"] = changed
    return out


@bp.get("/admin/api/properties/<property_id>/settings/protection")
@api_doc("断电保护设置：夜间、周末、节假日不断电，欠费后延迟断电的分钟数", tags=("settings",),
         responses={200: {"description": "当前设置", "schema": PROTECTION_OUT}})
@admin_required("view")
def protection_json(property_id: str):
    return jsonify(_protection_json(property_id))


@bp.put("/admin/api/properties/<property_id>/settings/protection")
@api_doc("修改断电保护设置（整体替换；本进程立即生效，其他进程 60 秒内生效）", tags=("settings",),
         body=PROTECTION_SCHEMA, responses={200: {"description": "已保存的设置", "schema": PROTECTION_OUT}})
@admin_required("operate")
def protection_put_json(property_id: str):
    from core.domain import property_settings as rules

    svc = _settings_service()
    body = json_object()
    new = rules.from_json(body, svc.timezone_of(svc.property_of(property_id)))
    _, changed = svc.update_protection(current_admin(), property_id, new, client_ip())
    return jsonify(_protection_json(property_id, changed))


# --- users (用户管理) ---------------------------------------------------------------------------


def _roles():
    from core.domain.admins import ROLE_NAMES, ROLES

    return [(r, ROLE_NAMES[r]) for r in ROLES]


def _company_properties() -> list[dict]:
    """The company's properties (id and name), for the grants."""
    return [{"property_id": pid, "name": name} for pid, name in admin_auth().company_properties(current_admin())]


def _user_row(u, now: datetime) -> dict:
    from core.domain.admins import ROLE_NAMES

    return {"email": u.admin_id, "name": u.name, "role": u.role, "role_name": ROLE_NAMES.get(u.role, u.role),
            "property_ids": list(u.property_ids), "totp": bool(u.totp_secret), "locked": u.locked(now),
            "locked_until": _iso(u.locked_until) if u.locked(now) else None, "disabled": u.disabled,
            "last_login_at": _iso(u.last_login()), "created_at": _iso(u.created_at)}


def _local(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Shanghai")) \
        .strftime("%Y-%m-%d %H:%M")


def _users_context() -> dict:
    """The layout's nav: the admin's first property (the users page has none of its own)."""
    who = current_admin()
    return {"property_id": who.property_ids[0] if who.property_ids else None, "nav_active": "users"}


def _users_page(status: int = 200, error: str = ""):
    who, now = current_admin(), _now()
    props = _company_properties()
    users = [_user_row(u, now) for u in admin_auth().company_users(who)]
    return render_template("console/users_list.html", users=users, prop_names={p["property_id"]: p["name"]
                                                                                for p in props},
                           properties=props, me=who.admin_id, local=_local, error=error,
                           **_users_context()), status


def _form_page(mode: str, f: dict, status: int = 200, error: str = "", field: str = "", user: dict | None = None):
    return render_template("console/users_form.html", mode=mode, f=f, error=error, error_field=field, user=user,
                           roles=_roles(), company_properties=_company_properties(), me=current_admin().admin_id,
                           **_users_context()), status


def _password_page(email: str, password: str, created: bool) -> Response:
    """A password made for an admin, shown once: not cached, not in the session."""
    response = Response(render_template("console/users_password.html", email=email, password=password,
                                        created=created, **_users_context()))
    response.headers.update(NO_STORE)
    return response


def _form_fields(form) -> dict:
    return {"email": form.get("email", "").strip(), "name": form.get("name", "").strip(),
            "role": form.get("role", ""), "property_ids": form.getlist("property_ids"),
            "password_mode": form.get("password_mode", "random")}


@bp.get("/company/users")
@admin_required("admin")
def users_page():
    return _users_page()


@bp.route("/company/users/new", methods=["GET", "POST"])
@admin_required("admin")
def users_new():
    if request.method == "GET":
        return _form_page("new", {"email": "", "name": "", "role": "operator", "property_ids": [],
                                  "password_mode": "random"})
    f = _form_fields(request.form)
    password = request.form.get("password", "") if f["password_mode"] == "set" else None
    try:
        if f["password_mode"] == "set" and not password:
            raise ValidationError("请填写初始密码，或选择随机生成", code="password_weak", field="password")
        u, made = admin_auth().create_company_user(current_admin(), f["email"], f["name"], f["role"],
                                                   f["property_ids"], password, client_ip())
    except ValidationError as e:
        return _form_page("new", f, 422, e.message, str(e.details.get("field", "")))
    except FeikongError as e:
        if e.status == 404:
            raise
        return _form_page("new", f, e.status, e.message, "email")
    if made:
        return _password_page(u.admin_id, made, True)
    flash(f"已创建用户 {u.admin_id}", "success")
    return redirect(url_for("console_admin.users_page"))


@bp.route("/company/users/<login>/edit", methods=["GET", "POST"])
@admin_required("admin")
def users_edit(login: str):
    service, who = admin_auth(), current_admin()
    row = _user_row(service.company_user(who, login), _now())
    if request.method == "GET":
        return _form_page("edit", {**row, "password_mode": "random"}, user=row)
    f = {**_form_fields(request.form), "email": row["email"]}
    try:
        service.update_company_user(who, row["email"], name=f["name"], role=f["role"], property_ids=f["property_ids"],
                                    ip=client_ip())
    except ValidationError as e:
        return _form_page("edit", f, 422, e.message, str(e.details.get("field", "")), user=row)
    flash(f"已保存用户 {row['email']}", "success")
    return redirect(url_for("console_admin.users_page"))


@bp.post("/company/users/<login>/password")
@admin_required("admin")
def users_password(login: str):
    service, who = admin_auth(), current_admin()
    u = service.company_user(who, login)
    password = request.form.get("password", "")
    try:
        made = service.reset_company_user_password(who, u.admin_id, password or None, client_ip())
    except ValidationError as e:
        return _users_page(422, f"{u.admin_id}：{e.message}")
    if made:
        return _password_page(u.admin_id, made, False)
    flash(f"已重置 {u.admin_id} 的密码，其所有登录已退出", "success")
    return redirect(url_for("console_admin.users_page"))


def _set_disabled(login: str, disabled: bool):
    service, who = admin_auth(), current_admin()
    u = service.company_user(who, login)
    try:
        service.set_company_user_disabled(who, u.admin_id, disabled, client_ip())
    except ValidationError as e:
        return _users_page(422, e.message)
    flash(f"已停用 {u.admin_id}，其所有登录已退出" if disabled else f"已启用 {u.admin_id}", "success")
    return redirect(url_for("console_admin.users_page"))


@bp.post("/company/users/<login>/disable")
@admin_required("admin")
def users_disable(login: str):
    return _set_disabled(login, True)


@bp.post("/company/users/<login>/enable")
@admin_required("admin")
def users_enable(login: str):
    return _set_disabled(login, False)


# --- users: JSON ------------------------------------------------------------------------------


@bp.get("/admin/api/company/users")
@api_doc("本公司的管理员：角色、授权物业、两步验证、锁定、停用、最近登录", tags=("users",),
         responses={200: {"description": "管理员列表", "schema": {
             "type": "object", "properties": {"users": {"type": "array", "items": USER_SCHEMA}}}}})
@admin_required("admin")
def users_json():
    now = _now()
    return jsonify({"users": [_user_row(u, now) for u in admin_auth().company_users(current_admin())]})


@bp.post("/admin/api/company/users")
@api_doc("创建管理员（未给密码时随机生成，只在本响应中返回一次）", tags=("users",), body=CREATE_SCHEMA,
         responses={201: {"description": "已创建", "schema": {"type": "object", "properties": {
             "user": USER_SCHEMA, "password": {"type": "string", "description": "随机生成的初始密码（只返回这一次）"}}}},
             409: "登录名已存在"})
@admin_required("admin")
def users_create_json():
    body = json_object()
    _refuse_unknown(body, set(CREATE_SCHEMA["properties"]))
    if "property_ids" in body and not isinstance(body["property_ids"], list):
        raise ValidationError("property_ids 必须是物业编号的列表", code="property_ids_invalid", field="property_ids")
    u, made = admin_auth().create_company_user(current_admin(), body.get("email"), body.get("name"), body.get("role"),
                                               body.get("property_ids") or [], body.get("password"), client_ip())
    out = {"user": _user_row(u, _now())}
    if made:
        out["password"] = made
    return jsonify(out), 201, NO_STORE


@bp.get("/admin/api/company/users/<login>")
@api_doc("一位管理员", tags=("users",), params={"login": {"in": "path", **LOGIN_SCHEMA}},
         responses={200: {"description": "管理员", "schema": USER_SCHEMA}})
@admin_required("admin")
def user_json(login: str):
    return jsonify(_user_row(admin_auth().company_user(current_admin(), login), _now()))


@bp.put("/admin/api/company/users/<login>")
@api_doc("修改管理员的姓名、角色和授权物业（省略的字段不变；所有者自动可见公司全部物业）", tags=("users",),
         params={"login": {"in": "path", **LOGIN_SCHEMA}}, body=UPDATE_SCHEMA,
         responses={200: {"description": "修改后的管理员", "schema": USER_SCHEMA}})
@admin_required("admin")
def user_update_json(login: str):
    body = json_object()
    _refuse_unknown(body, set(UPDATE_SCHEMA["properties"]))
    if "property_ids" in body and not isinstance(body["property_ids"], list):
        raise ValidationError("property_ids 必须是物业编号的列表", code="property_ids_invalid", field="property_ids")
    u = admin_auth().update_company_user(current_admin(), login, name=body.get("name"), role=body.get("role"),
                                         property_ids=body.get("property_ids"), ip=client_ip())
    return jsonify(_user_row(u, _now()))


@bp.post("/admin/api/company/users/<login>/password")
@api_doc("重置管理员密码：结束其所有登录并解除锁定（未给密码时随机生成并返回一次）", tags=("users",),
         params={"login": {"in": "path", **LOGIN_SCHEMA}},
         body={"type": "object", "additionalProperties": False,
               "properties": {"password": CREATE_SCHEMA["properties"]["password"]}},
         responses={200: {"description": "已重置", "schema": {"type": "object", "properties": {
             "email": {"type": "string"}, "password": {"type": "string"}}}}})
@admin_required("admin")
def user_password_json(login: str):
    from flask import g

    body = g.json_body if g.json_body is not None else {}
    if not isinstance(body, dict):
        raise ValidationError("请求体必须是 JSON 对象", code="body_invalid")
    _refuse_unknown(body, {"password"})
    service, who = admin_auth(), current_admin()
    u = service.company_user(who, login)
    made = service.reset_company_user_password(who, u.admin_id, body.get("password"), client_ip())
    out = {"email": u.admin_id}
    if made:
        out["password"] = made
    return jsonify(out), 200, NO_STORE


def _disabled_json(login: str, disabled: bool):
    u = admin_auth().set_company_user_disabled(current_admin(), login, disabled, client_ip())
    return jsonify(_user_row(u, _now()))


@bp.post("/admin/api/company/users/<login>/disable")
@api_doc("停用管理员：不能再登录，其所有登录立即退出", tags=("users",),
         params={"login": {"in": "path", **LOGIN_SCHEMA}},
         responses={200: {"description": "已停用", "schema": USER_SCHEMA}})
@admin_required("admin")
def user_disable_json(login: str):
    return _disabled_json(login, True)


@bp.post("/admin/api/company/users/<login>/enable")
@api_doc("启用管理员", tags=("users",), params={"login": {"in": "path", **LOGIN_SCHEMA}},
         responses={200: {"description": "已启用", "schema": USER_SCHEMA}})
@admin_required("admin")
def user_enable_json(login: str):
    return _disabled_json(login, False)

