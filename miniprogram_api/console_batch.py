"""Batch operations (批量操作) in the console (docs/batch.md): core/services/batch.py.

Pages (view: every granted admin; a task's changes need its operation's permission, the one
the single-room action needs: "operate" for tariffs, trip / close, settings, account opening;
"money" for recharges and deductions):
- /p/<property_id>/batch: the property's tasks;
- /p/<property_id>/batch/new: pick an operation and its parameters, select rooms (buildings,
  floors, rooms) or upload an Excel sheet (template per operation: .../batch/template/<op>.xlsx);
  POST makes a draft task and shows it;
- /p/<property_id>/batch/<task_id>: the dry run of a draft (before -> after per item) with
  确认执行 (now or at a time), or the progress (htmx polls .../progress) and per-item results
  of a task that runs; 重试失败项, 取消.
The same as JSON under /admin/api/properties/<property_id>/batch-tasks.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from miniprogram_api import services
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_batch", __name__)
bp.before_request(console_gate)

PAGE = "/p/<property_id>/batch"
API = "/admin/api/properties/<property_id>/batch-tasks"
TAGS = ("batch",)
SERVICE_KEY = "feikong.batch"
CREATE_BODY = {"type": "object", "required": ["op"], "properties": {
    "op": {"enum": ["tariff", "trip", "close", "settings", "recharge", "deduct", "open_account"]},
    "params": {"type": "object", "description": "plan_id | reason | alarm_levels, overdraft_limit, keep_supply | "
                                                "amount（分）, memo | overdraft_limit"},
    "selection": {"type": "object", "description": "buildings, floors（楼栋/楼层）, rooms（楼栋/房间）, meters, accounts"},
    "rows": {"type": "array", "description": "逐行：building_id, room_id, meter_id, account_id, amount（分）, phone, "
                                             "tenant_name, name"},
    "title": {"type": "string"}}}
CONFIRM_BODY = {"type": "object", "properties": {"run_at": {"type": "string", "description": "定时执行（留空立即执行）"}}}


def batch():
    """The Batch service on the room actions' Payments and Control (a test may place its own)."""
    from miniprogram_api.console_actions import actions

    found = services.current_app.extensions.get(SERVICE_KEY)
    if found is not None:
        return found
    ra = actions()

    def make():
        from core.services.batch import Batch

        return Batch(ra)

    return services._service(SERVICE_KEY, make)


def _rules():
    from core.domain import batch

    return batch


def _render(template: str, property_id: str, status: int = 200, **kw):
    from core.services import tariffs

    who = current_admin()
    r = _rules()
    return render_template(template, property_id=property_id, property=tariffs.property_of(property_id),
                           nav_active="batch", R=r,
                           can={op: who.can(perm, property_id) for op, (_, _, perm) in r.OPERATIONS.items()},
                           **kw), status


@bp.app_template_filter("batch_time")
def batch_time(value: str) -> str:
    """A stored UTC time as Beijing time, to the minute."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Shanghai")).strftime(
            "%Y-%m-%d %H:%M")
    except (ValueError, AttributeError):
        return value or ""


# --- JSON shapes ------------------------------------------------------------------------------


def task_json(t) -> dict:
    return {"task_id": t.task_id, "op": t.op, "label": t.label, "params": t.params, "state": t.state,
            "state_name": _rules().TASK_STATE_NAMES[t.state], "total": t.total, "attempt": t.attempt,
            "created_at": t.created_at, "created_by": t.created_by_name, "run_at": t.run_at or None,
            "started_at": t.started_at or None, "finished_at": t.finished_at or None, "title": t.title}


def item_json(i) -> dict:
    return {"item_id": i.item_id, "target": i.target.to_dict(), "values": i.values, "state": i.state,
            "state_name": _rules().ITEM_STATE_NAMES[i.state], "reason": i.reason, "result": i.result,
            "attempt": i.attempt}


# --- pages --------------------------------------------------------------------------------------


@bp.get(PAGE)
@admin_required("view")
def list_page(property_id: str):
    return _render("console/batch_list.html", property_id, tasks=batch().tasks(property_id))


def _new_page(property_id: str, status: int = 200, error: str = "", values: dict | None = None):
    svc = batch()
    values = values or {}
    op = values.get("op") or request.args.get("op") or "trip"
    return _render("console/batch_new.html", property_id, status, tree=svc.selection_tree(property_id),
                   plans=svc.plans(property_id), op=op, error=error, values=values,
                   picked={k: set(values.get(k) or []) for k in ("buildings", "floors", "rooms")})


@bp.get(f"{PAGE}/new")
@admin_required("view")
def new_page(property_id: str):
    return _new_page(property_id)


@bp.get(f"{PAGE}/template/<op>.xlsx")
@admin_required("view")
def template(property_id: str, op: str):
    from core.services.batch import template as make

    data = make(op)
    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=batch-{op}.xlsx"})


def _form_values() -> dict:
    f = request.form
    out = {k: f.get(k, "").strip() for k in ("op", "title", "plan_id", "reason", "alarm_levels", "overdraft_limit",
                                              "keep_supply", "amount", "memo", "source")}
    for k in ("buildings", "floors", "rooms"):
        out[k] = [x for x in f.getlist(k) if x]
    return out


@bp.post(PAGE)
@admin_required("view")
def create(property_id: str):
    """A draft task from the form (selection or an uploaded sheet): its dry run page, or the
    form again (422) with the message, nothing written."""
    from core.services.batch import read_sheet

    v = _form_values()
    params = {k: v[k] for k in ("plan_id", "reason", "alarm_levels", "overdraft_limit", "keep_supply", "amount",
                                "memo") if v[k]}
    try:
        rows = None
        if v["source"] == "sheet":
            upload = request.files.get("file")
            rows = read_sheet(upload.read() if upload else b"", v["op"])
        task = batch().create(current_admin(), property_id, v["op"], params, rows=rows, title=v["title"],
                              selection={k: v[k] for k in ("buildings", "floors", "rooms")}, ip=client_ip())
    except ValidationError as e:
        return _new_page(property_id, 422, e.message, v)
    return redirect(url_for("console_batch.task_page", property_id=property_id, task_id=task.task_id))


def _page_args() -> tuple[str | None, str]:
    after = request.args.get("after") or None
    state = request.args.get("state") or ""
    if after is not None and not (after.isdigit() and len(after) == 5):
        raise ValidationError("分页参数无效", code="cursor_invalid", field="after")
    return after, state


def _task_context(property_id: str, task_id: str) -> dict:
    svc = batch()
    after, state = _page_args()
    prog = svc.progress(property_id, task_id)
    t = prog["task"]
    r = _rules()
    if t.state == r.DRAFT:
        rows = svc.preview(property_id, task_id, after)
        items = [x["item"] for x in rows]
    else:
        rows = None
        items = svc.items(property_id, task_id, after, state=state or None)
    return {"task": t, "prog": prog, "preview": rows, "items": items, "after": after, "state": state,
            "next_after": items[-1].item_id if len(items) >= r.PAGE and not state else None}


@bp.get(f"{PAGE}/<task_id>")
@admin_required("view")
def task_page(property_id: str, task_id: str):
    return _render("console/batch_task.html", property_id, **_task_context(property_id, task_id))


@bp.get(f"{PAGE}/<task_id>/progress")
@admin_required("view")
def progress_fragment(property_id: str, task_id: str):
    """The progress bar and the page of items (htmx polls it while the task runs)."""
    return _render("console/batch_progress.html", property_id, **_task_context(property_id, task_id))


def _task_action(property_id: str, task_id: str, run) -> object:
    try:
        message = run()
        flash(message, "success")
    except FeikongError as e:
        if e.status in (403, 404):
            raise
        flash(e.message, "error")
    return redirect(url_for("console_batch.task_page", property_id=property_id, task_id=task_id))


@bp.post(f"{PAGE}/<task_id>/confirm")
@admin_required("view")
def confirm(property_id: str, task_id: str):
    run_at = request.form.get("run_at", "").strip() if request.form.get("when") == "later" else ""
    if request.form.get("when") == "later" and not run_at:
        flash("请选择定时执行的时间", "error")
        return redirect(url_for("console_batch.task_page", property_id=property_id, task_id=task_id))

    def run() -> str:
        t = batch().confirm(current_admin(), property_id, task_id, run_at or None, ip=client_ip())
        return f"已排期，将于 {run_at.replace('T', ' ')} 执行" if t.run_at else "已开始执行"

    return _task_action(property_id, task_id, run)


@bp.post(f"{PAGE}/<task_id>/retry")
@admin_required("view")
def retry(property_id: str, task_id: str):
    return _task_action(property_id, task_id, lambda: "已重新执行 {items} 项（第 {attempt} 次）".format(
        **batch().retry(current_admin(), property_id, task_id, ip=client_ip())))


@bp.post(f"{PAGE}/<task_id>/cancel")
@admin_required("view")
def cancel(property_id: str, task_id: str):
    return _task_action(property_id, task_id, lambda: (
        batch().cancel(current_admin(), property_id, task_id, ip=client_ip()), "已取消未开始的项目")[1])


# --- JSON ---------------------------------------------------------------------------------------


@bp.get(API)
@admin_required("view")
@api_doc("批量任务列表（最新在前）", tags=TAGS)
def api_list(property_id: str):
    return jsonify({"tasks": [task_json(t) for t in batch().tasks(property_id)]})


@bp.post(API)
@admin_required("view")
@api_doc("新建批量任务（草稿：先预演，确认后执行）", body=CREATE_BODY, tags=TAGS, responses={201: "任务与预演"})
def api_create(property_id: str):
    body = json_object()
    rows = body.get("rows")
    if rows is not None and (not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows)):
        raise ValidationError("rows 必须是对象数组", code="rows_invalid", field="rows")
    if rows is not None:
        rows = [dict(r, row=n) for n, r in enumerate(rows, start=1)]
    selection = body.get("selection")
    if selection is not None and not isinstance(selection, dict):
        raise ValidationError("selection 必须是对象", code="selection_invalid", field="selection")
    title = body.get("title") if isinstance(body.get("title"), str) else ""
    t = batch().create(current_admin(), property_id, body.get("op"), body.get("params") or {}, rows=rows,
                       selection=selection, title=title, ip=client_ip())
    preview = batch().preview(property_id, t.task_id)
    return jsonify({"task": task_json(t), "preview": [
        {**item_json(x["item"]), "before": x["before"], "after": x["after"], "note": x["note"]} for x in preview]}), 201


@bp.get(f"{API}/<task_id>")
@admin_required("view")
@api_doc("批量任务：进度与逐项结果（每页 100 项，after=上一页最后一项）", tags=TAGS)
def api_task(property_id: str, task_id: str):
    ctx = _task_context(property_id, task_id)
    return jsonify({"task": task_json(ctx["task"]), "counts": ctx["prog"]["counts"], "percent": ctx["prog"]["percent"],
                    "items": [item_json(i) for i in ctx["items"]], "next_after": ctx["next_after"]})


@bp.post(f"{API}/<task_id>/confirm")
@admin_required("view")
@api_doc("确认执行（run_at 留空立即执行）", body=CONFIRM_BODY, tags=TAGS)
def api_confirm(property_id: str, task_id: str):
    body = json_object() if request.get_data() else {}
    t = batch().confirm(current_admin(), property_id, task_id, body.get("run_at"), ip=client_ip())
    return jsonify({"task": task_json(t)})


@bp.post(f"{API}/<task_id>/retry")
@admin_required("view")
@api_doc("重试失败的项目", tags=TAGS)
def api_retry(property_id: str, task_id: str):
    return jsonify(batch().retry(current_admin(), property_id, task_id, ip=client_ip()))


@bp.post(f"{API}/<task_id>/cancel")
@admin_required("view")
@api_doc("取消未开始的项目", tags=TAGS)
def api_cancel(property_id: str, task_id: str):
    return jsonify({"task": task_json(batch().cancel(current_admin(), property_id, task_id, ip=client_ip()))})
