"""Common-area apportionment (公摊, docs/billing.md "Common-area apportionment"): a
property's groups (a master meter and the rooms under it), a period's preview with every
room's share and formula, approval (posts the shares), and the loss ratio per period.

Pages under /p/<property_id>/apportion (view: everyone granted; create, edit, preview and
approve: "money"); the same as JSON under /admin/api/properties/<property_id>/apportion-groups.
Creating, changing a group and approving a period are in the action log.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_apportion", __name__)
bp.before_request(console_gate)

PAGE = "/p/<property_id>/apportion"
API = "/admin/api/properties/<property_id>/apportion-groups"
TAGS = ("apportion",)
MEMBER = {"type": "object", "required": ["building_id", "room_id"], "properties": {
    "building_id": {"type": "string"}, "room_id": {"type": "string"},
    "ratio": {"type": "string", "description": "固定比例（method=ratio 时必填）"},
    "area_m2": {"type": "string", "description": "分摊面积，缺省取房间面积"},
    "sub_meters": {"type": "array", "items": {"type": "string"}, "description": "该房间的分表"}}}
GROUP_BODY = {"type": "object", "required": ["name", "master_meter", "method", "members"], "properties": {
    "name": {"type": "string", "maxLength": 60}, "master_meter": {"type": "string"},
    "usage_mode": {"type": "string", "enum": ["master", "master_minus_subs"]},
    "method": {"type": "string", "enum": ["ratio", "area", "usage"]},
    "vacant_share": {"type": "boolean"}, "loss_threshold_pct": {"type": "string"},
    "mode": {"type": "string", "enum": ["bill", "deduct"]},
    "version": {"type": "integer", "description": "修改时：所修改的版本"},
    "members": {"type": "array", "items": MEMBER}}}
APPROVE_BODY = {"type": "object", "required": ["rev"],
                "properties": {"rev": {"type": "integer", "description": "所审批的试算版本"}}}


def _service():
    from core.services import apportion

    return apportion


def _rules():
    from core.domain import apportion

    return apportion


def _property(property_id: str):
    from core.services import tariffs

    return tariffs.property_of(property_id)


def _can_money(property_id: str) -> bool:
    who = current_admin()
    return bool(who and who.can("money", property_id))


def _common(property_id: str) -> dict:
    r = _rules()
    return {"property_id": property_id, "property": _property(property_id), "nav_active": "apportion",
            "can_money": _can_money(property_id), "R": r}


# --- JSON shapes -----------------------------------------------------------------------------------


def _group_json(g) -> dict:
    return {"group_id": g.group_id, "version": g.version, **g.to_doc()}


def _run_json(run) -> dict:
    return {"run_id": run.run_id, "group_id": run.group_id, "period": run.period, "status": run.status,
            "status_text": run.status_text, "rev": run.rev, "computed_at": run.computed_at,
            "computed_by": run.computed_by, "approved_at": run.approved_at or None,
            "approved_by": run.approved_by or None, "posted_at": run.posted_at or None,
            "posted_total_fen": run.result.posted_total, "owner_total_fen": run.result.owner_total,
            **run.result.to_dict()}


# --- form -> document --------------------------------------------------------------------------------


def _doc_from_form(form) -> dict:
    """The group's settings from the page's form: the rooms ticked, each with its ratio, area
    override and sub-meters (comma or space separated)."""
    members = []
    for key in form.getlist("member"):
        building_id, _, room_id = key.partition("/")
        m: dict = {"building_id": building_id, "room_id": room_id}
        for name, field in (("ratio", "ratio"), ("area", "area_m2")):
            value = form.get(f"{name}:{key}", "").strip()
            if value:
                m[field] = value
        subs = form.get(f"subs:{key}", "").replace("，", ",").replace(",", " ").split()
        if subs:
            m["sub_meters"] = subs
        members.append(m)
    return {"name": form.get("name", ""), "master_meter": form.get("master_meter", ""),
            "usage_mode": form.get("usage_mode", ""), "method": form.get("method", ""),
            "vacant_share": form.get("vacant_share") == "on", "loss_threshold_pct": form.get("loss_threshold_pct", ""),
            "mode": form.get("mode", ""), "members": members}


def _form_page(property_id: str, group=None, doc: dict | None = None, version: int = 0, error: str = "",
               status: int = 200):
    choices = _service().choices(property_id)
    if doc is None:
        doc = group.to_doc() if group is not None else {
            "name": "", "master_meter": "", "usage_mode": "master", "method": "area", "vacant_share": False,
            "loss_threshold_pct": "5", "mode": "bill", "members": []}
    members = {f"{m.get('building_id')}/{m.get('room_id')}": m for m in doc.get("members") or []
               if isinstance(m, dict)}
    return render_template("console/apportion_form.html", group=group, doc=doc, members=members, version=version,
                           choices=choices, error=error, **_common(property_id)), status


# --- pages ---------------------------------------------------------------------------------------------


@bp.get(PAGE)
@admin_required("view")
def groups_page(property_id: str):
    return render_template("console/apportion.html", views=_service().groups(property_id), **_common(property_id))


@bp.get(f"{PAGE}/new")
@admin_required("money")
def new_page(property_id: str):
    return _form_page(property_id)


@bp.post(f"{PAGE}/new")
@admin_required("money")
def create(property_id: str):
    doc = _doc_from_form(request.form)
    try:
        g = _service().save_group(current_admin(), property_id, doc, ip=client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _form_page(property_id, doc=doc, error=e.message, status=422 if isinstance(e, ValidationError) else e.status)
    flash(f"已创建公摊组「{g.name}」", "success")
    return redirect(url_for("console_apportion.group_page", property_id=property_id, group_id=g.group_id))


@bp.get(f"{PAGE}/<group_id>")
@admin_required("view")
def group_page(property_id: str, group_id: str):
    service = _service()
    g = service.group(property_id, group_id)
    return render_template("console/apportion_group.html", group=g, runs=service.runs(property_id, group_id),
                           error="", period=request.args.get("period", ""), **_common(property_id))


@bp.get(f"{PAGE}/<group_id>/edit")
@admin_required("money")
def edit_page(property_id: str, group_id: str):
    g = _service().group(property_id, group_id)
    return _form_page(property_id, group=g, version=g.version)


@bp.post(f"{PAGE}/<group_id>/edit")
@admin_required("money")
def edit(property_id: str, group_id: str):
    service = _service()
    g = service.group(property_id, group_id)
    doc = _doc_from_form(request.form)
    version = request.form.get("version", "")
    try:
        service.save_group(current_admin(), property_id, doc, group_id=group_id,
                           expected_version=int(version) if version.isdigit() else -1, ip=client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _form_page(property_id, group=g, doc=doc, version=g.version, error=e.message,
                          status=422 if isinstance(e, ValidationError) else e.status)
    flash("已保存公摊组设置；已试算的账期请重新试算", "success")
    return redirect(url_for("console_apportion.group_page", property_id=property_id, group_id=group_id))


@bp.post(f"{PAGE}/<group_id>/preview")
@admin_required("money")
def preview(property_id: str, group_id: str):
    service = _service()
    period = request.form.get("period", "")
    try:
        run = service.preview(current_admin(), property_id, group_id, period)
    except FeikongError as e:
        if e.status == 404:
            raise
        g = service.group(property_id, group_id)
        return render_template("console/apportion_group.html", group=g, runs=service.runs(property_id, group_id),
                               error=e.message, period=period, **_common(property_id)), \
            422 if isinstance(e, ValidationError) else e.status
    return redirect(url_for("console_apportion.run_page", property_id=property_id, group_id=group_id,
                            period=run.period))


def _run_page(property_id: str, group_id: str, period: str, error: str = "", status: int = 200):
    service = _service()
    g = service.group(property_id, group_id)
    return render_template("console/apportion_run.html", group=g, run=service.run(property_id, group_id, period),
                           error=error, **_common(property_id)), status


@bp.get(f"{PAGE}/<group_id>/runs/<period>")
@admin_required("view")
def run_page(property_id: str, group_id: str, period: str):
    return _run_page(property_id, group_id, period)


@bp.post(f"{PAGE}/<group_id>/runs/<period>/approve")
@admin_required("money")
def approve(property_id: str, group_id: str, period: str):
    rev = request.form.get("rev", "")
    try:
        run = _service().approve(current_admin(), property_id, group_id, period, int(rev) if rev.isdigit() else None,
                                 ip=client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _run_page(property_id, group_id, period, e.message, 422 if isinstance(e, ValidationError) else e.status)
    flash(f"账期 {run.period} 已审批入账：{len([s for s in run.result.shares if s.posted])} 户，"
          f"合计 {run.result.posted_total / 100:.2f} 元", "success")
    return redirect(url_for("console_apportion.run_page", property_id=property_id, group_id=group_id, period=period))


# --- JSON ------------------------------------------------------------------------------------------


@bp.get(API)
@api_doc("公摊组列表（含最近一期的试算或入账状态）", tags=TAGS)
@admin_required("view")
def groups_json(property_id: str):
    return jsonify({"groups": [{**_group_json(v.group), "utility": v.master_kind,
                                "last_run": _run_json(v.last_run) if v.last_run else None}
                               for v in _service().groups(property_id)]})


@bp.post(API)
@api_doc("新建公摊组（一个房间在同一总表下只能属于一个公摊组）", body=GROUP_BODY, tags=TAGS, responses={201: "公摊组"})
@admin_required("money")
def create_json(property_id: str):
    g = _service().save_group(current_admin(), property_id, json_object(), ip=client_ip())
    return jsonify(_group_json(g)), 201


@bp.get(f"{API}/<group_id>")
@api_doc("公摊组及其各账期（损耗率、是否超过阈值、状态）", tags=TAGS)
@admin_required("view")
def group_json(property_id: str, group_id: str):
    service = _service()
    g = service.group(property_id, group_id)
    return jsonify({**_group_json(g), "runs": [_run_json(r) for r in service.runs(property_id, group_id)]})


@bp.put(f"{API}/<group_id>")
@api_doc("修改公摊组（version：所修改的版本，已被他人修改返回 409）", body=GROUP_BODY, tags=TAGS,
         responses={200: "公摊组"})
@admin_required("money")
def update_json(property_id: str, group_id: str):
    body = json_object()
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValidationError("version 必须是整数（所修改的版本）", code="version_required", field="version")
    g = _service().save_group(current_admin(), property_id, body, group_id=group_id, expected_version=version,
                              ip=client_ip())
    return jsonify(_group_json(g))


@bp.post(f"{API}/<group_id>/runs/<period>/preview")
@api_doc("试算一个账期（YYYY-MM）：每户分摊额与计算式；已审批的账期返回 409", tags=TAGS, responses={200: "账期"})
@admin_required("money")
def preview_json(property_id: str, group_id: str, period: str):
    return jsonify(_run_json(_service().preview(current_admin(), property_id, group_id, period)))


@bp.get(f"{API}/<group_id>/runs/<period>")
@api_doc("一个账期的试算或入账结果", tags=TAGS)
@admin_required("view")
def run_json(property_id: str, group_id: str, period: str):
    return jsonify(_run_json(_service().run(property_id, group_id, period)))


@bp.post(f"{API}/<group_id>/runs/<period>/approve")
@api_doc("审批并入账（rev：所审批的试算版本；账期须已结束；重复审批不重复入账）", body=APPROVE_BODY, tags=TAGS,
         responses={200: "账期"})
@admin_required("money")
def approve_json(property_id: str, group_id: str, period: str):
    run = _service().approve(current_admin(), property_id, group_id, period, json_object().get("rev"), ip=client_ip())
    return jsonify(_run_json(run))
