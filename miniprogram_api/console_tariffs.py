"""Tariff plans (电价方案) and the anomaly review queue (异常审核) of the console
(docs/console.md: "Tariffs", "Anomalies").

Pages under /p/<property_id>/tariffs and /p/<property_id>/anomalies; the same actions as
JSON under /admin/api/properties/<property_id>/tariffs... and .../anomalies.... Views only
translate HTTP: the rules are in core.domain.tariff_edit (forms, the revision rule),
core.services.tariffs (plans, preview through production rating) and
core.services.anomalies (the queue, approve / reject through Ingest). Seeing needs
"view"; every change needs "operate" and is recorded in the action log.
"""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc
from miniprogram_api.services import _service

bp = Blueprint("console_tariffs", __name__)
bp.before_request(console_gate)

INGEST_KEY = "feikong.ingest"  # app.extensions: a test may put its Ingest (with a clock) there
API = "/admin/api/properties/<property_id>"
PLAN_BODY = {"type": "object", "description": "电价方案 JSON 文档（docs/tariffs.md）",
             "required": ["plan_id", "name", "utility", "versions"]}
VERSION_BODY = {"type": "object", "description": "一个版本（docs/tariffs.md 的 versions[] 元素），可另带 name 修改方案名称",
                "required": ["effective_from", "prices"]}
PREVIEW_BODY = {"type": "object", "required": ["start_at", "end_at"], "properties": {
    "start_at": {"type": "string", "description": "开始时间（ISO 8601 带时区，或方案时区的本地时间）"},
    "end_at": {"type": "string"},
    "mode": {"type": "string", "enum": ["totals", "periods"]},
    "start_total": {"type": "string"}, "end_total": {"type": "string"},
    "by_period": {"type": "object", "description": "各时段用量，如 {\"peak\": \"10\"}"},
    "rated_kw": {"type": "string", "description": "表计额定功率（跳变判断），默认 10"}}}
REJECT_BODY = {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}


def _ingest():
    def make():
        from core.services.ingest import Ingest

        return Ingest()

    return _service(INGEST_KEY, make)


def _tariffs():
    from core.services import tariffs  # the store loads with the first console page (docs/cold-start.md)

    return tariffs


def _anomalies():
    from core.services import anomalies

    return anomalies


def _edit():
    from core.domain import tariff_edit

    return tariff_edit


def _page(template: str, property_id: str, status: int = 200, **context):
    who = current_admin()
    ctx = dict(property_id=property_id, property=_tariffs().property_of(property_id),
               can_operate=bool(who and who.can("operate", property_id)), **context)
    return render_template(template, **ctx), status


def _labels() -> dict:
    from core.domain.tariff import PERIOD_NAMES

    return {"periods": PERIOD_NAMES, "utilities": {"electricity": "电", "water": "水"},
            "states": {"current": ("执行中", "success"), "future": ("待生效", "info"), "past": ("已过期", "muted")},
            "cycles": {"month": "按月", "year": "按年"},
            "day_types": {"workday": "工作日", "weekend": "周末", "holiday": "节假日"}}


# --- tariffs: pages ----------------------------------------------------------------------


@bp.get("/p/<property_id>/tariffs")
@admin_required("view")
def tariffs_page(property_id: str):
    return _list_page(property_id)


def _list_page(property_id: str, status: int = 200, import_error: str = ""):
    plans = _tariffs().list_plans(property_id)
    return _page("console/tariffs_list.html", property_id, status, nav_active="tariffs", plans=plans,
                 labels=_labels(), import_error=import_error)


def _form_page(property_id: str, *, mode: str, plan: dict | None, fields: dict, errors: dict | None = None,
               error: str = "", status: int = 200, index: int | None = None, locked: bool = False):
    return _page("console/tariffs_form.html", property_id, status, nav_active="tariffs", mode=mode, plan=plan,
                 f=fields, errors=errors or {}, error=error, index=index, labels=_labels(), edit=_edit(),
                 locked=locked)


def _default_effective(tz: ZoneInfo) -> str:
    from core.domain.clock import utcnow

    tomorrow = (utcnow().astimezone(tz) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return tomorrow.strftime("%Y-%m-%dT%H:%M")


@bp.route("/p/<property_id>/tariffs/new", methods=["GET", "POST"])
@admin_required("operate")
def tariff_new(property_id: str):
    edit, tz = _edit(), ZoneInfo("Asia/Shanghai")
    if request.method == "GET":
        fields = edit.form_from_version(None, tz)
        fields.update(plan_id="", name="", utility="electricity", effective_from=_default_effective(tz))
        return _form_page(property_id, mode="new", plan=None, fields=fields)
    f = request.form
    fields = {**f.to_dict(), "editable": True}
    try:
        version = edit.version_from_form(f, tz)
        doc = {"plan_id": f.get("plan_id", "").strip(), "name": f.get("name", "").strip(),
               "utility": f.get("utility", ""), "timezone": "Asia/Shanghai", "versions": [version]}
        plan = _tariffs().save_plan(current_admin(), property_id, doc, action="tariff_create", ip=client_ip(),
                                    create=True)
    except edit.FormErrors as e:
        return _form_page(property_id, mode="new", plan=None, fields=fields, errors=e.errors, error=e.message,
                          status=422)
    except FeikongError as e:
        return _form_page(property_id, mode="new", plan=None, fields=fields, error=e.message,
                          status=422 if isinstance(e, ValidationError) else e.status)
    flash(f"已创建电价方案「{plan.name}」", "success")
    return redirect(url_for("console_tariffs.tariffs_page", property_id=property_id))


@bp.route("/p/<property_id>/tariffs/<plan_id>/versions/new", methods=["GET", "POST"])
@admin_required("operate")
def tariff_version_new(property_id: str, plan_id: str):
    return _version_form(property_id, plan_id, None)


@bp.route("/p/<property_id>/tariffs/<plan_id>/versions/<int:index>/edit", methods=["GET", "POST"])
@admin_required("operate")
def tariff_version_edit(property_id: str, plan_id: str, index: int):
    return _version_form(property_id, plan_id, index)


def _version_form(property_id: str, plan_id: str, index: int | None):
    from core.domain.errors import NotFound

    edit, service = _edit(), _tariffs()
    plan = service.plan_record(property_id, plan_id)
    tz = ZoneInfo(plan["timezone"])
    mode = "version" if index is None else "edit"
    if index is not None and not 0 <= index < len(plan["versions"]):
        raise NotFound("版本不存在", code="version_not_found")
    if request.method == "GET":
        if index is None:
            fields = edit.form_from_version(plan["versions"][-1]["document"], tz)
            fields["effective_from"] = _default_effective(tz)
        else:
            fields = edit.form_from_version(plan["versions"][index]["document"], tz)
        fields["name"] = plan["name"]
        error = "" if index is None or plan["versions"][index]["editable"] else \
            "该版本已生效（或即将生效），不能修改；请新增一个版本"
        return _form_page(property_id, mode=mode, plan=plan, fields=fields, index=index, error=error,
                          status=200 if not error else 409, locked=bool(error))
    f = request.form
    fields = {**f.to_dict(), "editable": True}
    try:
        version = edit.version_from_form(f, tz)
        name = f.get("name", "").strip()
        doc = service.with_version(plan["document"], version, index, name)
        service.save_plan(current_admin(), property_id, doc, action="tariff_version" if index is None
                          else "tariff_edit", ip=client_ip(), expected_at=f.get("updated_at") or plan["updated_at"])
    except edit.FormErrors as e:
        return _form_page(property_id, mode=mode, plan=plan, fields=fields, errors=e.errors, error=e.message,
                          status=422, index=index)
    except FeikongError as e:
        errors = {e.details["field"]: e.message} if e.details.get("field") == "effective_from" else {}
        return _form_page(property_id, mode=mode, plan=plan, fields=fields, errors=errors, error=e.message,
                          status=422 if isinstance(e, ValidationError) else e.status, index=index)
    flash("已新增版本" if index is None else "版本已保存", "success")
    return redirect(url_for("console_tariffs.tariffs_page", property_id=property_id) + f"#plan-{plan_id}")


@bp.route("/p/<property_id>/tariffs/<plan_id>/preview", methods=["GET", "POST"])
@admin_required("view")
def tariff_preview(property_id: str, plan_id: str):
    """电价试算: reading the result changes nothing, so "view" may use it (POST: a form)."""
    edit, service = _edit(), _tariffs()
    plan = service.plan_record(property_id, plan_id)
    tz = ZoneInfo(plan["timezone"])
    result, errors, error = None, {}, ""
    if request.method == "GET":
        day = _default_effective(tz)[:11]  # tomorrow, 08:00 to 12:00
        fields = {"mode": "totals", "start_at": day + "08:00", "end_at": day + "12:00", "start_total": "0",
                  "end_total": "10", "rated_kw": "10"}
    else:
        fields = request.form.to_dict()
        try:
            result = _preview(service, plan, edit.preview_request(request.form, tz))
        except edit.FormErrors as e:
            errors, error = e.errors, e.message
        except FeikongError as e:
            error = e.message
    return _page("console/tariffs_preview.html", property_id, 422 if error else 200, nav_active="tariffs",
                 plan=plan, f=fields, errors=errors, error=error, result=result, labels=_labels())


def _preview(service, plan: dict, req: dict) -> dict:
    return service.preview_usage(plan["document"], req["start"], req["end"], start_total=req["start_total"],
                                 end_total=req["end_total"], by_period=req["by_period"], rated_kw=req["rated_kw"])


@bp.get("/p/<property_id>/tariffs/<plan_id>/export")
@admin_required("view")
def tariff_export(property_id: str, plan_id: str):
    doc = _tariffs().export_plan(property_id, plan_id)
    body = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{plan_id}.json"'})


@bp.post("/p/<property_id>/tariffs/import")
@admin_required("operate")
def tariff_import(property_id: str):
    upload = request.files.get("file")
    raw = upload.read() if upload else b""
    try:
        if not raw:
            raise ValidationError("请选择要导入的 JSON 文件", code="file_required")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ValidationError("文件不是有效的 JSON（须为 UTF-8 编码的电价方案文档）", code="import_invalid") from None
        plan = _tariffs().save_plan(current_admin(), property_id, doc, action="tariff_import", ip=client_ip())
    except FeikongError as e:
        return _list_page(property_id, 400 if isinstance(e, ValidationError) else e.status, import_error=e.message)
    flash(f"已导入电价方案「{plan.name}」", "success")
    return redirect(url_for("console_tariffs.tariffs_page", property_id=property_id))


# --- tariffs: JSON -----------------------------------------------------------------------


def _plan_json(p: dict) -> dict:
    return {k: v for k, v in p.items() if k != "document"} | {
        "versions": [{k: v for k, v in x.items() if k != "document"} for x in p["versions"]]}


@bp.get(API + "/tariffs")
@api_doc("物业的电价方案及其版本", tags=("tariffs",))
@admin_required("view")
def tariffs_json(property_id: str):
    return jsonify({"plans": [_plan_json(p) for p in _tariffs().list_plans(property_id)]})


@bp.post(API + "/tariffs")
@api_doc("新建电价方案（方案文档）", body=PLAN_BODY, tags=("tariffs",), responses={201: "已创建"})
@admin_required("operate")
def tariff_create_json(property_id: str):
    plan = _tariffs().save_plan(current_admin(), property_id, json_object(), action="tariff_create", ip=client_ip(),
                                create=True)
    return jsonify(_plan_json(_tariffs().plan_record(property_id, plan.plan_id))), 201


@bp.get(API + "/tariffs/<plan_id>")
@api_doc("导出电价方案文档", tags=("tariffs",))
@admin_required("view")
def tariff_json(property_id: str, plan_id: str):
    return jsonify(_tariffs().export_plan(property_id, plan_id))


@bp.put(API + "/tariffs/<plan_id>")
@api_doc("导入（替换）电价方案文档：已生效版本不可改，新版本须晚于当前时间", body=PLAN_BODY, tags=("tariffs",))
@admin_required("operate")
def tariff_put_json(property_id: str, plan_id: str):
    doc = json_object()
    if doc.get("plan_id") != plan_id:
        raise ValidationError("文档的 plan_id 与地址不一致", code="plan_id_mismatch", field="plan_id")
    _tariffs().save_plan(current_admin(), property_id, doc, action="tariff_import", ip=client_ip(),
                         expected_at=request.headers.get("If-Match") or None)
    return jsonify(_plan_json(_tariffs().plan_record(property_id, plan_id)))


@bp.post(API + "/tariffs/<plan_id>/versions")
@api_doc("为电价方案新增版本（生效时间须晚于当前时间）", body=VERSION_BODY, tags=("tariffs",), responses={201: "已新增"})
@admin_required("operate")
def tariff_version_json(property_id: str, plan_id: str):
    service = _tariffs()
    body = dict(json_object())
    name = body.pop("name", None)
    if name is not None and not isinstance(name, str):
        raise ValidationError("name 必须是字符串", code="name_invalid", field="name")
    plan = service.plan_record(property_id, plan_id)
    doc = service.with_version(plan["document"], body, None, name)
    service.save_plan(current_admin(), property_id, doc, action="tariff_version", ip=client_ip(),
                      expected_at=plan["updated_at"])
    return jsonify(_plan_json(service.plan_record(property_id, plan_id))), 201


@bp.post(API + "/tariffs/<plan_id>/preview")
@api_doc("电价试算：按生产计费函数计算样例读数的费用（不写入任何数据）", body=PREVIEW_BODY, tags=("tariffs",))
@admin_required("view")
def tariff_preview_json(property_id: str, plan_id: str):
    edit, service = _edit(), _tariffs()
    plan = service.plan_record(property_id, plan_id)
    body = dict(json_object())
    by_period = body.pop("by_period", None)
    if by_period is not None:
        if not isinstance(by_period, dict):
            raise ValidationError("by_period 必须是对象", code="by_period_invalid", field="by_period")
        body["mode"] = "periods"
        body.update({f"kwh_{k}": v for k, v in by_period.items() if k in edit.FORM_PERIODS})
    try:
        req = edit.preview_request(body, ZoneInfo(plan["timezone"]))
    except edit.FormErrors as e:
        raise ValidationError(e.message, code="preview_invalid", fields=e.errors) from None
    return jsonify(_preview(service, plan, req))


# --- anomalies (异常审核) --------------------------------------------------------------------


@bp.get("/p/<property_id>/anomalies")
@admin_required("view")
def anomalies_page(property_id: str):
    return _anomalies_page(property_id)


def _anomalies_page(property_id: str, status: int = 200, errors: dict | None = None, reasons: dict | None = None):
    service = _anomalies()
    errors = errors or {}
    return _page("console/tariffs_anomalies.html", property_id, status, nav_active="anomalies",
                 queue=service.review_queue(property_id), decided=service.recently_decided(property_id),
                 errors=errors, error=next(iter(errors.values()), ""), reasons=reasons or {}, labels=_labels())


@bp.post("/p/<property_id>/anomalies/<meter_id>/<event_id>/approve")
@admin_required("operate")
def anomaly_approve(property_id: str, meter_id: str, event_id: str):
    try:
        done = _anomalies().approve(current_admin(), property_id, meter_id, event_id, ip=client_ip(), ingest=_ingest())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _anomalies_page(property_id, e.status, errors={event_id: e.message})
    flash(f"已审核通过，计费 {done['yuan']} 元", "success")
    return redirect(url_for("console_tariffs.anomalies_page", property_id=property_id))


@bp.post("/p/<property_id>/anomalies/<meter_id>/<event_id>/reject")
@admin_required("operate")
def anomaly_reject(property_id: str, meter_id: str, event_id: str):
    reason = request.form.get("reason", "")
    try:
        _anomalies().reject(current_admin(), property_id, meter_id, event_id, reason, ip=client_ip(),
                            ingest=_ingest())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _anomalies_page(property_id, 422 if isinstance(e, ValidationError) else e.status,
                               errors={event_id: e.message}, reasons={event_id: reason})
    flash("已驳回，该读数不计费", "success")
    return redirect(url_for("console_tariffs.anomalies_page", property_id=property_id))


@bp.get(API + "/anomalies")
@api_doc("异常审核队列（待审核）与最近处理的异常", tags=("anomalies",))
@admin_required("view")
def anomalies_json(property_id: str):
    service = _anomalies()
    return jsonify({"open": service.review_queue(property_id), "decided": service.recently_decided(property_id)})


@bp.post(API + "/anomalies/<meter_id>/<event_id>/approve")
@api_doc("审核通过：按审核时的计费状态计费（重复审核返回 409，不会重复计费）", tags=("anomalies",))
@admin_required("operate")
def anomaly_approve_json(property_id: str, meter_id: str, event_id: str):
    return jsonify(_anomalies().approve(current_admin(), property_id, meter_id, event_id, ip=client_ip(),
                                        ingest=_ingest()))


@bp.post(API + "/anomalies/<meter_id>/<event_id>/reject")
@api_doc("驳回：该读数不计费，须填写原因", body=REJECT_BODY, tags=("anomalies",))
@admin_required("operate")
def anomaly_reject_json(property_id: str, meter_id: str, event_id: str):
    body = json_object()
    return jsonify(_anomalies().reject(current_admin(), property_id, meter_id, event_id, body.get("reason"),
                                       ip=client_ip(), ingest=_ingest()))
