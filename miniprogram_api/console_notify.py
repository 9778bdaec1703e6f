"""Notifications in the console (docs/console.md "Notification recipients", "Notification log"):

- /p/<property_id>/settings/notify (物业设置 → 通知接收人): per admin event type, who is told
  and on which channel (公众号模板消息 openid, 短信 mobile number, 邮件 address); "view" sees
  the lists, "operate" adds and removes (each change in the action log);
- /p/<property_id>/settings/deliveries (物业设置 → 通知记录): the property's delivery log,
  filtered by status and type, paged;
- JSON under /admin/api/properties/<property_id>/: notify-recipients (GET, PUT per type),
  deliveries (GET, filtered and paged), accounts/<account_id>/deliveries (GET).

Views only translate HTTP: rules in core/domain/notify_recipients.py, changes in
core/services/notify_recipients.py, the log in core/services/notify_log.py.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import ValidationError
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_notify", __name__)
bp.before_request(console_gate)

PAGE = "/p/<property_id>/settings/notify"
LOG_PAGE = "/p/<property_id>/settings/deliveries"
API = "/admin/api/properties/<property_id>"
TAGS = ("notifications",)
ALL_TYPES = "all"

RECIPIENT = {"type": "object", "required": ["channel", "to"], "additionalProperties": False,
             "properties": {"channel": {"type": "string", "enum": ["template", "sms", "email"],
                                        "description": "template 公众号模板消息（openid）/ sms 短信 / email 邮件"},
                            "to": {"type": "string", "maxLength": 254,
                                   "description": "openid、手机号（+86 开头或 11 位）或邮箱"}}}
RECIPIENTS_OUT = {"type": "object", "properties": {
    "property_id": {"type": "string"},
    "recipients": {"type": "object", "description": "事件类型 -> 接收人列表",
                   "additionalProperties": {"type": "array", "items": RECIPIENT}},
    "event_names": {"type": "object", "additionalProperties": {"type": "string"}}}}
PUT_BODY = {"type": "object", "required": ["recipients"], "additionalProperties": False,
            "properties": {"recipients": {"type": "array", "items": RECIPIENT, "maxItems": 20}}}
DELIVERY = {"type": "object", "properties": {
    "delivery_id": {"type": "string"}, "account_id": {"type": ["string", "null"]}, "kind": {"type": "string"},
    "kind_name": {"type": "string"}, "channel": {"type": "string"}, "channel_name": {"type": "string"},
    "recipient": {"type": "string", "description": "已脱敏"}, "status": {"type": "string"},
    "status_name": {"type": "string"}, "attempts": {"type": "integer"}, "detail": {"type": "string"},
    "created_at": {"type": "string"}, "updated_at": {"type": ["string", "null"]},
    "audience": {"type": "string", "enum": ["tenant", "admin", ""]}}}
DELIVERIES_OUT = {"type": "object", "properties": {"deliveries": {"type": "array", "items": DELIVERY},
                                                   "next_cursor": {"type": ["string", "null"]}}}


def _recipients_service():
    from core.services import notify_recipients  # loaded with the first page (docs/cold-start.md)

    return notify_recipients


def _log():
    from core.services import notify_log

    return notify_log


def _property(property_id: str):
    from core.services import tariffs

    return tariffs.property_of(property_id)


def _page(property_id: str, status: int = 200, form: dict | None = None, error: str = "", field: str = ""):
    from core.domain import notify_recipients as rules

    lists = _recipients_service().of_property(property_id)
    return render_template(
        "console/notify_recipients.html", property_id=property_id, property=_property(property_id),
        nav_active="settings", lists=lists, event_names=rules.EVENT_NAMES, channel_names=rules.CHANNEL_NAMES,
        channels=rules.CHANNELS, f=form or {"event_type": ALL_TYPES, "channel": rules.TEMPLATE, "to": ""},
        error=error, error_field=field, can_operate=current_admin().can("operate"), all_types=ALL_TYPES,
        max_per_type=rules.MAX_PER_TYPE,
    ), status


@bp.get(PAGE)
@admin_required("view")
def recipients_page(property_id: str):
    return _page(property_id)


@bp.post(PAGE)
@admin_required("operate")
def recipients_add(property_id: str):
    from core.domain import notify_recipients as rules

    form = {k: request.form.get(k, "") for k in ("event_type", "channel", "to")}
    types = list(rules.EVENT_TYPES) if form["event_type"] == ALL_TYPES else [form["event_type"]]
    try:
        changed = _recipients_service().add(current_admin(), property_id, types, form["channel"], form["to"],
                                            client_ip())
    except ValidationError as e:
        return _page(property_id, 422, form, e.message, str(e.details.get("field", "")))
    flash(f"已添加接收人（{changed} 类事件）" if changed else "该接收人已在列表中", "success" if changed else "info")
    return redirect(url_for("console_notify.recipients_page", property_id=property_id))


@bp.post(PAGE + "/remove")
@admin_required("operate")
def recipients_remove(property_id: str):
    f = request.form
    try:
        changed = _recipients_service().remove(current_admin(), property_id, f.get("event_type", ""),
                                               f.get("channel", ""), f.get("to", ""), client_ip())
    except ValidationError as e:
        return _page(property_id, 422, None, e.message, str(e.details.get("field", "")))
    flash("已移除接收人" if changed else "该接收人已不在列表中", "success" if changed else "info")
    return redirect(url_for("console_notify.recipients_page", property_id=property_id))


@bp.get(LOG_PAGE)
@admin_required("view")
def deliveries_page(property_id: str):
    from core.domain import notifications as n

    log = _log()
    status, kind = request.args.get("status", ""), request.args.get("kind", "")
    rows, nxt = log.property_log(property_id, status=status, kind=kind, cursor=request.args.get("cursor"),
                                 limit=log.page_size(request.args.get("limit")))
    return render_template(
        "console/notify_deliveries.html", property_id=property_id, property=_property(property_id),
        nav_active="settings", rows=rows, next_cursor=nxt, status=status, kind=kind,
        statuses=[(s, name) for s, name in n.STATUS_NAMES.items()],
        kinds=[(k, v.title, v.audience) for k, v in n.KINDS.items()],
        first_page=not request.args.get("cursor"),
    )


# --- JSON ---------------------------------------------------------------------------------------


def _lists_json(property_id: str) -> dict:
    from core.domain import notify_recipients as rules

    lists = _recipients_service().of_property(property_id)
    return {"property_id": property_id,
            "recipients": {t: [{"channel": c, "to": to} for c, to in items] for t, items in lists.items()},
            "event_names": dict(rules.EVENT_NAMES)}


@bp.get(API + "/notify-recipients")
@api_doc("通知接收人：每类管理员事件通知谁、走哪个渠道", tags=TAGS,
         responses={200: {"description": "各事件类型的接收人", "schema": RECIPIENTS_OUT}})
@admin_required("view")
def recipients_json(property_id: str):
    _property(property_id)
    return jsonify(_lists_json(property_id))


@bp.put(API + "/notify-recipients/<event_type>")
@api_doc("替换一类事件的接收人列表（记入审计日志）", tags=TAGS, body=PUT_BODY,
         responses={200: {"description": "全部接收人，以及这次是否有变化", "schema": RECIPIENTS_OUT}})
@admin_required("operate")
def recipients_put_json(property_id: str, event_type: str):
    _property(property_id)
    body = json_object()
    unknown = sorted(set(body) - {"recipients"})
    if unknown:
        raise ValidationError(f"未知字段：{', '.join(unknown)}", code="field_unknown", field=unknown[0])
    if "recipients" not in body:
        raise ValidationError("缺少字段 recipients", code="field_missing", field="recipients")
    changed = _recipients_service().replace(current_admin(), property_id, event_type, body["recipients"],
                                            client_ip())
    return jsonify({**_lists_json(property_id), "changed": changed})


_LOG_PARAMS = {
    "status": {"type": "string", "description": "发送状态：sent / retrying / failed / no_consent / quiet_deferred / …"},
    "kind": {"type": "string", "description": "通知类型（目录键），如 low_balance、bridge_offline"},
    "cursor": {"type": "string", "description": "上一页返回的 next_cursor"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "每页条数，默认 50"},
}


@bp.get(API + "/deliveries")
@api_doc("通知记录：本物业的通知发送记录（租户与管理员），新的在前，可按状态、类型筛选并分页", tags=TAGS,
         params=_LOG_PARAMS, responses={200: {"description": "一页记录", "schema": DELIVERIES_OUT}})
@admin_required("view")
def deliveries_json(property_id: str):
    log = _log()
    rows, nxt = log.property_log(property_id, status=request.args.get("status", ""),
                                 kind=request.args.get("kind", ""), cursor=request.args.get("cursor"),
                                 limit=log.page_size(request.args.get("limit")))
    return jsonify({"deliveries": [r.to_json() for r in rows], "next_cursor": nxt})


@bp.get(API + "/accounts/<account_id>/deliveries")
@api_doc("一个账户最近的通知发送记录（房间详情所示），新的在前", tags=TAGS,
         params={"limit": {"type": "integer", "minimum": 1, "maximum": 100, "description": "条数，默认 20"}},
         responses={200: {"description": "记录", "schema": DELIVERIES_OUT}})
@admin_required("view")
def account_deliveries_json(property_id: str, account_id: str):
    log = _log()
    rows = log.account_log(account_id, log.page_size(request.args.get("limit"), 20), property_id=property_id)
    return jsonify({"deliveries": [r.to_json() for r in rows], "next_cursor": None})
