"""Finance (财务, docs/finance.md): the property's order list (订单流水: every money movement,
filtered, with totals, paged, exported as CSV) and the daily WeChat trade-bill
reconciliation (对账) with an admin's review of each mismatch.

Pages under /p/<property_id>/finance/... (view: every granted admin; marking a row reviewed:
"money"), JSON under /admin/api/properties/<property_id>/finance/...
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from core.domain.money import yuan
from miniprogram_api import services
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_finance", __name__)
bp.before_request(console_gate)

PAGE = "/p/<property_id>/finance"
API = "/admin/api/properties/<property_id>/finance"
TAGS = ("finance",)
FILTER_PARAMS = {
    "from": {"type": "string", "format": "date", "description": "开始日期（物业当地日期，含）"},
    "to": {"type": "string", "format": "date", "description": "结束日期（含；区间最长 92 天）"},
    "type": {"type": "string", "description": "类型：wechat_recharge | counter_recharge | refund | deduction | "
                                               "bill_payment | adjustment"},
    "status": {"type": "string", "description": "状态：pending | paid | part_refunded | refunded | closed | "
                                                 "processing | succeeded | failed | posted"},
    "building": {"type": "string"}, "room": {"type": "string"}, "tenant": {"type": "string",
                                                                          "description": "租户姓名（包含）或编号"},
    "page": {"type": "integer", "minimum": 1},
}
REVIEW_BODY = {"type": "object", "required": ["note"],
               "properties": {"note": {"type": "string", "maxLength": 200, "description": "核查说明"}}}


def _finance():
    def make():
        from core.services.finance import Finance

        return Finance()

    return services._service("feikong.finance", make)


def _rules():
    from core.domain import finance

    return finance


def _property(property_id: str):
    from core.services import tariffs

    return tariffs.property_of(property_id)


def _can_money(property_id: str) -> bool:
    who = current_admin()
    return bool(who and who.can("money", property_id))


def _args() -> dict:
    return {k: v for k, v in request.args.items()}


def row_json(r, tz: str) -> dict:
    F = _rules()
    return {"at": r.at, "local_time": F.local_time(r.at, tz), "type": r.type, "type_name": F.TYPE_NAMES[r.type],
            "channel": r.channel, "channel_name": F.channel_name(r), "status": r.status,
            "status_name": F.STATUS_NAMES.get(r.status, r.status), "amount_fen": r.amount, "amount": yuan(r.amount),
            "signed_fen": r.signed, "counted": r.effective, "account_id": r.account_id,
            "building_id": r.building_id, "room_id": r.room_id, "tenant_id": r.tenant_id,
            "tenant_name": r.tenant_name, "account_name": r.account_name, "ref": r.ref, "ref_no": r.ref_no,
            "memo": r.memo, "actor": r.actor}


def totals_json(t) -> dict:
    return {"count": t.count, "received_fen": t.received, "paid_out_fen": t.paid_out, "net_fen": t.net,
            "deducted_fen": t.deducted, "adjusted_fen": t.adjusted,
            "by_type": {k: {"count": v["count"], "amount_fen": v["amount"]} for k, v in t.by_type.items()}}


def recon_json(r) -> dict:
    F = _rules()
    return {"date": r.day, "out_trade_no": r.out_trade_no, "kind": r.kind, "kind_name": F.KIND_NAMES[r.kind],
            "our_fen": r.our_amount, "their_fen": r.their_amount, "transaction_id": r.transaction_id,
            "account_id": r.account_id, "action": r.action, "action_name": F.ACTION_NAMES.get(r.action, r.action),
            "note": r.note, "needs_review": r.needs_review, "reviewed_at": r.reviewed_at or None,
            "reviewed_by": r.reviewed_by or None, "review_note": r.review_note or None}


# --- order list (订单流水) -------------------------------------------------------------------------


@bp.get(PAGE)
@admin_required("view")
def finance_home(property_id: str):
    return redirect(url_for("console_finance.orders_page", property_id=property_id))


@bp.get(f"{PAGE}/orders")
@admin_required("view")
def orders_page(property_id: str):
    service, prop = _finance(), _property(property_id)
    error, listing = "", None
    try:
        listing = service.listing(property_id, _args())
    except ValidationError as e:
        error = e.message
    return render_template("console/finance_orders.html", property_id=property_id, property=prop,
                           nav_active="finance", F=_rules(), listing=listing, error=error, args=_args(),
                           buildings=service.buildings(property_id)), 400 if error else 200


@bp.get(f"{PAGE}/orders.csv")
@admin_required("view")
def orders_csv(property_id: str):
    name, text = _finance().export_csv(property_id, _args())  # bad filters: 400 with the message
    return Response(text.encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.get(f"{API}/orders")
@admin_required("view")
@api_doc("订单流水：筛选、合计、分页（每页 50 条）", params=FILTER_PARAMS, tags=TAGS,
         responses={200: {"description": "rows, totals, page, pages, filters"},
                    400: {"description": "筛选条件无效（date_invalid, date_range_invalid, date_range_too_long, "
                                         "type_invalid, status_invalid, building_not_found, page_invalid, ...）"}})
def orders_api(property_id: str):
    listing = _finance().listing(property_id, _args())
    f = listing.filters
    return jsonify({"property_id": property_id, "filters": f.query(), "page": f.page, "pages": listing.pages,
                    "rows": [row_json(r, listing.timezone) for r in listing.rows],
                    "totals": totals_json(listing.totals)})


# --- reconciliation (对账) -------------------------------------------------------------------------


def _reconcile_page(property_id: str, day: str | None, status: int = 200, error: str = "",
                    form: dict | None = None):
    service, prop = _finance(), _property(property_id)
    days = service.days(property_id)
    day = day or (days[0][0] if days else "")
    rows, summary = [], None
    if day:
        try:
            rows = service.day(property_id, day)
        except ValidationError as e:
            error, status, day = e.message, 400, ""
        summary = next((s for d, s, _ in days if d == day), None)
    return render_template("console/finance_reconcile.html", property_id=property_id, property=prop,
                           nav_active="finance", F=_rules(), days=days, day=day, rows=rows, summary=summary,
                           error=error, form=form or {}, can_money=_can_money(property_id)), status


@bp.get(f"{PAGE}/reconcile")
@admin_required("view")
def reconcile_page(property_id: str):
    return _reconcile_page(property_id, request.args.get("date") or None)


@bp.post(f"{PAGE}/reconcile/<day>/<out_trade_no>/review")
@admin_required("money")
def review(property_id: str, day: str, out_trade_no: str):
    note = request.form.get("note", "")
    try:
        _finance().mark_reviewed(property_id, day, out_trade_no, note, current_admin(), client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _reconcile_page(property_id, day, 422 if e.status == 400 else e.status, e.message,
                               {"out_trade_no": out_trade_no, "note": note})
    flash(f"已标记为已核查：{out_trade_no}", "success")
    return redirect(url_for("console_finance.reconcile_page", property_id=property_id, date=day))


@bp.get(f"{API}/reconcile")
@admin_required("view")
@api_doc("对账：某日微信账单与平台订单的比对结果（不带 date：已对账的日期列表）",
         params={"date": {"type": "string", "format": "date"}}, tags=TAGS,
         responses={200: {"description": "days 或 rows"}, 400: {"description": "date_invalid"}})
def reconcile_api(property_id: str):
    service = _finance()
    day = request.args.get("date")
    days = [{"date": d, "summary": s, "run_at": at} for d, s, at in service.days(property_id)]
    if not day:
        return jsonify({"property_id": property_id, "days": days})
    return jsonify({"property_id": property_id, "date": day, "rows": [recon_json(r) for r in service.day(property_id, day)],
                    "summary": next((d["summary"] for d in days if d["date"] == day), None)})


@bp.post(f"{API}/reconcile/<day>/<out_trade_no>/review")
@admin_required("money")
@api_doc("标记对账差异为已核查（记入审计日志）", body=REVIEW_BODY, tags=TAGS,
         responses={200: {"description": "the row"}, 400: {"description": "note_required, note_too_long"},
                    404: {"description": "reconcile_row_not_found"}, 409: {"description": "already_reviewed"}})
def review_api(property_id: str, day: str, out_trade_no: str):
    body = json_object()
    row = _finance().mark_reviewed(property_id, day, out_trade_no, body.get("note"), current_admin(), client_ip())
    return jsonify(recon_json(row))
