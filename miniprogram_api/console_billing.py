"""Charge items (费用项), running a billing period (生成本期费用) and bills (账单) in the
console (docs/console.md "Billing", docs/billing.md).

Pages (view: everyone granted; changes: "money"):
- /p/<property_id>/bills: the property's bills, filtered by status, period and building;
- /p/<property_id>/bills/<bill_id>: one bill: lines with formulas, payments; confirm, issue,
  record a counter payment (现金 / 转账 with a receipt number);
- /p/<property_id>/bills/items: charge items (create; each opens its versions and the form
  of a new version), the late fee rule (滞纳金);
- /p/<property_id>/bills/run?period=YYYY-MM: the period's charges room by room (preview),
  then 确认生成 applies them (deducted or billed; running twice changes nothing).
The same as JSON under /admin/api/properties/<property_id>/ (charge-items, billing, bills).
Every change is in the action log.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from core.domain.money import yuan
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_billing", __name__)
bp.before_request(console_gate)

PAGE = "/p/<property_id>/bills"
API = "/admin/api/properties/<property_id>"
TAGS = ("billing",)
ITEM_FIELDS = ("item_id", "name", "category", "basis", "price", "quantity", "cycle", "start", "end", "mode",
               "due_days", "scope", "scope_ids", "effective_from")
ITEM_BODY = {"type": "object", "required": ["name", "category", "basis", "price", "cycle", "start"], "properties": {
    "item_id": {"type": "string", "description": "费用项编号（新建时可选）"},
    "name": {"type": "string"}, "category": {"enum": ["rent", "property_fee", "service_fee", "parking", "garbage", "other"]},
    "basis": {"enum": ["fixed", "area", "quantity"]},
    "price": {"description": "金额或单价：整数为分，字符串为元（如 \"2.35\"）"},
    "quantity": {"type": "string"}, "cycle": {"enum": ["once", "month", "quarter", "year"]},
    "start": {"type": "string", "format": "date"}, "end": {"type": ["string", "null"], "format": "date"},
    "mode": {"enum": ["deduct", "bill"]}, "due_days": {"type": "integer"},
    "scope": {"enum": ["property", "building", "room"]},
    "scope_ids": {"description": "楼栋编号，或 楼栋编号/房间编号，逗号分隔或数组"},
    "effective_from": {"type": "string", "format": "date", "description": "新版本的生效日期"}}}
PAY_BODY = {"type": "object", "required": ["payment_id", "amount_fen", "method"], "properties": {
    "payment_id": {"type": "string", "description": "收据编号（幂等）"}, "amount_fen": {"type": "integer"},
    "method": {"enum": ["cash", "transfer"]}, "memo": {"type": "string"}}}
RUN_BODY = {"type": "object", "required": ["period"], "properties": {"period": {"type": "string", "pattern": "^\\d{4}-\\d{2}$"}}}
LATE_BODY = {"type": "object", "properties": {"enabled": {"type": "boolean"}, "kind": {"enum": ["rate", "fixed"]},
                                              "per_mille": {"type": "string"}, "fixed": {}, "cap": {}}}


def _bills():
    from core.services import bills

    return bills


def _items():
    from core.services import charge_items

    return charge_items


def _rules():
    from core.domain import bills, charge_items

    return bills, charge_items


def _property(property_id: str):
    from core.services import tariffs

    return tariffs.property_of(property_id)


def _actor() -> str:
    who = current_admin()
    return who.admin_id if who else "console"


def _log(action: str, property_id: str, target: str, after: dict | None = None, before: dict | None = None) -> None:
    from core.services import action_log

    action_log.record(current_admin(), action, property_id=property_id, target=target, before=before, after=after,
                      ip=client_ip())


def _today_period() -> str:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    return f"{now.year:04d}-{now.month:02d}"


def _can_money(property_id: str) -> bool:
    who = current_admin()
    return bool(who and who.can("money", property_id))


def _render(template: str, property_id: str, http_status: int = 200, **kw):
    bills_rules, item_rules = _rules()
    return render_template(template, property_id=property_id, property=_property(property_id), nav_active="bills",
                           can_money=_can_money(property_id), B=bills_rules, CI=item_rules,
                           today=_bills().default().today(), **kw), http_status


# --- JSON shapes ----------------------------------------------------------------------------------


def bill_json(b, today) -> dict:
    bills_rules, _ = _rules()
    status = b.status(today)
    return {"bill_id": b.bill_id, "account_id": b.account_id, "period": b.period, "building_id": b.building_id,
            "room_id": b.room_id, "name": b.name, "state": b.state, "status": status,
            "status_name": bills_rules.STATUS_NAMES[status], "total_fen": b.total, "total": yuan(b.total),
            "paid_fen": b.paid, "outstanding_fen": b.outstanding, "late_fee_fen": b.late_fee_total,
            "due_date": b.due_date.isoformat() if b.due_date else None,
            "lines": [{"line_id": ln.charge_id, "name": ln.name, "source": ln.source, "amount_fen": ln.amount,
                       "formula": ln.formula, "inputs": ln.inputs, "note": ln.note} for ln in b.lines],
            "payments": [{"payment_id": p.payment_id, "amount_fen": p.amount, "method": p.method, "actor": p.actor,
                          "paid_at": p.paid_at} for p in b.payments]}


def version_json(v) -> dict:
    return {"item_id": v.item_id, "version": v.version, "effective_from": v.effective_from.isoformat(), "name": v.name,
            "category": v.category, "basis": v.basis, "price_fen": v.price, "quantity": v.quantity, "cycle": v.cycle,
            "start": v.start.isoformat(), "end": v.end.isoformat() if v.end else None, "mode": v.mode,
            "due_days": v.due_days, "scope": v.scope, "scope_ids": list(v.scope_ids), "created_by": v.created_by}


def preview_json(p) -> dict:
    return {"period": p.period, "total_fen": p.total,
            "rooms": [{"building_id": r.building_id, "room_id": r.room_id, "room": r.room_name,
                       "account_id": r.account_id, "problem": r.problem or None, "total_fen": r.total,
                       "charges": [{"charge_id": c.charge_id, "name": c.name, "amount_fen": c.amount, "mode": c.mode,
                                    "formula": c.formula} for c in r.charges]} for r in p.rooms]}


def _form(source) -> dict:
    return {k: (source.get(k) or "").strip() if isinstance(source.get(k), str) or source.get(k) is None
            else source.get(k) for k in ITEM_FIELDS}


# --- bills: pages --------------------------------------------------------------------------------


@bp.get(PAGE)
@admin_required("view")
def bills_page(property_id: str):
    status = request.args.get("status", "")
    period = request.args.get("period", "")
    building = request.args.get("building", "")
    error = ""
    try:
        rows = _bills().default().bills_of_property(property_id, status, period, building)
    except ValidationError as e:
        rows, error = [], e.message
    buildings = _items().buildings(property_id)
    return _render("console/billing_bills.html", property_id, 422 if error else 200, rows=rows, status=status,
                   period=period, building=building, buildings=buildings, error=error,
                   totals=(sum(b.total for b in rows), sum(b.paid for b in rows)))


@bp.get(f"{PAGE}/<bill_id>")
@admin_required("view")
def bill_page(property_id: str, bill_id: str, status: int = 200, error: str = "", form: dict | None = None):
    b = _bills().default().bill(bill_id, property_id)
    return _render("console/billing_bill.html", property_id, status, bill=b, error=error, form=form or {})


@bp.post(f"{PAGE}/<bill_id>/<action>")
@admin_required("money")
def bill_action(property_id: str, bill_id: str, action: str):
    service = _bills().default()
    if action in ("confirm", "issue"):
        try:
            b = service.transition(property_id, bill_id, action, _actor())
        except FeikongError as e:
            if e.status == 404:
                raise
            return bill_page(property_id, bill_id, 409, e.message)
        _log("确认账单" if action == "confirm" else "出账", property_id, b.bill_id, {"state": b.state})
        flash("账单已确认" if action == "confirm" else "账单已出账，租户可在小程序中查看并缴费", "success")
    elif action == "pay":
        form = {k: request.form.get(k, "").strip() for k in ("payment_id", "amount", "method", "memo")}
        try:
            from core.domain.money import parse_yuan

            amount = parse_yuan(form["amount"] or "x", "amount")
            r = service.record_payment(bill_id, form["payment_id"], amount, form["method"], _actor(),
                                       property_id=property_id, memo=form["memo"])
        except FeikongError as e:
            if e.status == 404:
                raise
            return bill_page(property_id, bill_id, 422 if isinstance(e, ValidationError) else e.status, e.message, form)
        if r.duplicate:
            flash(f"收据 {r.payment.payment_id} 已登记过，未重复记账", "info")
        else:
            _log("登记账单缴费", property_id, bill_id, {"payment_id": r.payment.payment_id, "amount": r.payment.amount,
                                                  "method": r.payment.method})
            flash(f"已登记缴费 {yuan(r.payment.amount)} 元", "success")
    else:
        raise ValidationError("未知的账单操作", code="bill_action_invalid")
    return redirect(url_for("console_billing.bill_page", property_id=property_id, bill_id=bill_id))


# --- charge items: pages ---------------------------------------------------------------------------


def _items_page(property_id: str, status: int = 200, error: str = "", form: dict | None = None,
                late_error: str = "", late_form: dict | None = None):
    items = _items()
    return _render("console/billing_items.html", property_id, status, items=items.items(property_id),
                   rule=items.late_fee_rule(property_id), error=error, form=form or {"cycle": "month", "mode": "bill",
                                                                                      "due_days": "15",
                                                                                      "scope": "property"},
                   late_error=late_error, late_form=late_form)


@bp.get(f"{PAGE}/items")
@admin_required("view")
def items_page(property_id: str):
    return _items_page(property_id)


@bp.post(f"{PAGE}/items")
@admin_required("money")
def create_item(property_id: str):
    form = _form(request.form)
    try:
        v = _items().create(property_id, form, _actor())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _items_page(property_id, 422 if isinstance(e, ValidationError) else e.status, e.message, form)
    _log("新建费用项", property_id, v.item_id, version_json(v))
    flash(f"已新建费用项「{v.name}」", "success")
    return redirect(url_for("console_billing.items_page", property_id=property_id))


@bp.post(f"{PAGE}/items/late-fee")
@admin_required("money")
def set_late_fee(property_id: str):
    form = {k: request.form.get(k, "") for k in ("enabled", "kind", "per_mille", "fixed", "cap")}
    try:
        rule = _items().set_late_fee_rule(property_id, form, _actor())
    except ValidationError as e:
        return _items_page(property_id, 422, late_error=e.message, late_form=form)
    _log("设置滞纳金规则", property_id, "late_fee", rule.to_json())
    flash(f"滞纳金规则已保存：{rule.text}", "success")
    return redirect(url_for("console_billing.items_page", property_id=property_id))


def _item_page(property_id: str, item_id: str, status: int = 200, error: str = "", form: dict | None = None):
    item = _items().item(property_id, item_id)
    if form is None:
        v = item.current
        form = {**version_json(v), "price": yuan(v.price), "scope_ids": ", ".join(v.scope_ids), "end": v.end or "",
                "effective_from": ""}
    return _render("console/billing_item.html", property_id, status, item=item, error=error, form=form)


@bp.get(f"{PAGE}/items/<item_id>")
@admin_required("view")
def item_page(property_id: str, item_id: str):
    return _item_page(property_id, item_id)


@bp.post(f"{PAGE}/items/<item_id>")
@admin_required("money")
def change_item(property_id: str, item_id: str):
    form = _form(request.form)
    try:
        v = _items().change(property_id, item_id, form, _actor())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _item_page(property_id, item_id, 422 if isinstance(e, ValidationError) else e.status, e.message, form)
    _log("修改费用项", property_id, item_id, version_json(v))
    flash(f"已保存第 {v.version} 版，自 {v.effective_from.isoformat()} 起生效", "success")
    return redirect(url_for("console_billing.item_page", property_id=property_id, item_id=item_id))


# --- running a period ---------------------------------------------------------------------------------


@bp.get(f"{PAGE}/run")
@admin_required("view")
def run_page(property_id: str):
    period = request.args.get("period") or _today_period()
    try:
        preview = _items().preview(property_id, period)
        error = ""
    except ValidationError as e:
        preview, error = None, e.message
    return _render("console/billing_run.html", property_id, 422 if error else 200, period=period, preview=preview,
                   error=error)


@bp.post(f"{PAGE}/run")
@admin_required("money")
def run_period(property_id: str):
    period = request.form.get("period", "")
    try:
        preview, results = _items().run(property_id, period, _actor())
    except ValidationError as e:
        return _render("console/billing_run.html", property_id, 422, period=period, preview=None, error=e.message)
    counts = {s: sum(1 for r in results if r.status == s) for s in ("deducted", "billed", "split", "duplicate",
                                                                     "conflict")}
    _log("生成本期费用", property_id, period, {"period": period, **counts,
                                             "charges": len(results), "total": preview.total})
    flash(f"{period} 费用已生成：扣费 {counts['deducted'] + counts['split']} 笔，入账单 "
          f"{counts['billed'] + counts['split']} 笔，此前已生成 {counts['duplicate']} 笔"
          + (f"，{counts['conflict']} 笔金额与已生成的不符未处理" if counts["conflict"] else ""), "success")
    return redirect(url_for("console_billing.bills_page", property_id=property_id, period=period))


# --- JSON ------------------------------------------------------------------------------------------


@bp.get(f"{API}/charge-items")
@api_doc("费用项：每项的当前版本与全部版本", tags=TAGS)
@admin_required("view")
def items_json(property_id: str):
    return jsonify({"items": [{"item_id": i.item_id, "current": version_json(i.current),
                               "versions": [version_json(v) for v in i.versions]}
                              for i in _items().items(property_id)]})


@bp.post(f"{API}/charge-items")
@api_doc("新建费用项（第 1 版）", body=ITEM_BODY, tags=TAGS, responses={201: "费用项版本"})
@admin_required("money")
def create_item_json(property_id: str):
    v = _items().create(property_id, json_object(), _actor())
    _log("新建费用项", property_id, v.item_id, version_json(v))
    return jsonify(version_json(v)), 201


@bp.get(f"{API}/charge-items/<item_id>")
@api_doc("一个费用项的全部版本", tags=TAGS)
@admin_required("view")
def item_json(property_id: str, item_id: str):
    i = _items().item(property_id, item_id)
    return jsonify({"item_id": i.item_id, "current": version_json(i.current),
                    "versions": [version_json(v) for v in i.versions]})


@bp.post(f"{API}/charge-items/<item_id>/versions")
@api_doc("修改费用项：新版本自 effective_from 起生效（须晚于已有版本）", body=ITEM_BODY, tags=TAGS,
         responses={201: "费用项版本"})
@admin_required("money")
def change_item_json(property_id: str, item_id: str):
    v = _items().change(property_id, item_id, json_object(), _actor())
    _log("修改费用项", property_id, item_id, version_json(v))
    return jsonify(version_json(v)), 201


@bp.get(f"{API}/billing/preview")
@api_doc("本期费用预览：每个房间的费用（不写入）", tags=TAGS)
@admin_required("view")
def preview_json_view(property_id: str):
    return jsonify(preview_json(_items().preview(property_id, request.args.get("period", ""))))


@bp.post(f"{API}/billing/run")
@api_doc("生成本期费用：按预览扣费或入账单（重复执行不重复收费）", body=RUN_BODY, tags=TAGS)
@admin_required("money")
def run_json(property_id: str):
    period = json_object().get("period")
    preview, results = _items().run(property_id, period, _actor())
    _log("生成本期费用", property_id, str(period), {"period": period, "charges": len(results), "total": preview.total})
    return jsonify({"period": preview.period, "results": [r.__dict__ for r in results]})


@bp.get(f"{API}/bills")
@api_doc("账单列表（status、period、building 筛选）", tags=TAGS)
@admin_required("view")
def bills_json(property_id: str):
    service = _bills().default()
    rows = service.bills_of_property(property_id, request.args.get("status", ""), request.args.get("period", ""),
                                     request.args.get("building", ""))
    today = service.today()
    return jsonify({"bills": [{k: v for k, v in bill_json(b, today).items() if k not in ("lines", "payments")}
                              for b in rows]})


@bp.get(f"{API}/bills/<bill_id>")
@api_doc("账单详情：明细（含公式）与缴费记录", tags=TAGS)
@admin_required("view")
def bill_json_view(property_id: str, bill_id: str):
    service = _bills().default()
    return jsonify(bill_json(service.bill(bill_id, property_id), service.today()))


@bp.post(f"{API}/bills/<bill_id>/confirm")
@api_doc("确认账单（草稿 → 已确认）", tags=TAGS)
@admin_required("money")
def confirm_json(property_id: str, bill_id: str):
    service = _bills().default()
    b = service.transition(property_id, bill_id, "confirm", _actor())
    _log("确认账单", property_id, b.bill_id, {"state": b.state})
    return jsonify(bill_json(b, service.today()))


@bp.post(f"{API}/bills/<bill_id>/issue")
@api_doc("出账（已确认 → 待缴费；租户可见）", tags=TAGS)
@admin_required("money")
def issue_json(property_id: str, bill_id: str):
    service = _bills().default()
    b = service.transition(property_id, bill_id, "issue", _actor())
    _log("出账", property_id, b.bill_id, {"state": b.state})
    return jsonify(bill_json(b, service.today()))


@bp.post(f"{API}/bills/<bill_id>/payments")
@api_doc("柜台缴费（现金 / 转账，收据编号幂等；超额缴费拒绝）", body=PAY_BODY, tags=TAGS, responses={201: "账单"})
@admin_required("money")
def pay_json(property_id: str, bill_id: str):
    body = json_object()
    method = body.get("method")
    if method not in ("cash", "transfer"):
        raise ValidationError("柜台缴费方式只能是 现金 或 转账", code="method_invalid", field="method")
    service = _bills().default()
    r = service.record_payment(bill_id, body.get("payment_id"), body.get("amount_fen"), method, _actor(),
                               property_id=property_id, memo=str(body.get("memo") or ""))
    if not r.duplicate:
        _log("登记账单缴费", property_id, bill_id, {"payment_id": r.payment.payment_id, "amount": r.payment.amount,
                                              "method": r.payment.method})
    return jsonify({**bill_json(r.bill, service.today()), "duplicate": r.duplicate}), (200 if r.duplicate else 201)


@bp.get(f"{API}/late-fee-rule")
@api_doc("滞纳金规则", tags=TAGS)
@admin_required("view")
def late_fee_json(property_id: str):
    return jsonify(_items().late_fee_rule(property_id).to_json())


@bp.put(f"{API}/late-fee-rule")
@api_doc("设置滞纳金规则（按日费率‰或每日固定金额，自逾期次日起，每张账单累计封顶）", body=LATE_BODY, tags=TAGS)
@admin_required("money")
def set_late_fee_json(property_id: str):
    rule = _items().set_late_fee_rule(property_id, json_object(), _actor())
    _log("设置滞纳金规则", property_id, "late_fee", rule.to_json())
    return jsonify(rule.to_json())

