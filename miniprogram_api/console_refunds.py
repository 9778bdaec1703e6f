"""Refund requests (退款审批, docs/console.md "Refund requests"): tenants' requests to get
part of their balance back, approved (refunded through WeChat Pay against the account's
paid recharges, newest first) or rejected with a reason by the property's admins.

Page /p/<property_id>/refunds (view: everyone granted; the buttons and actions: "money");
the same as JSON under /admin/api/properties/<property_id>/refund-requests. Both decisions
are in the action log (同意退款申请 / 驳回退款申请) and in the tenant's list and notifications.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from core.domain.errors import FeikongError, ValidationError
from core.domain.money import yuan
from miniprogram_api import services
from miniprogram_api.admin_auth import admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_refunds", __name__)
bp.before_request(console_gate)

API = "/admin/api/properties/<property_id>/refund-requests"
PAGE = "/p/<property_id>/refunds"
TAGS = ("refund-requests",)
REJECT_BODY = {"type": "object", "required": ["reason"],
               "properties": {"reason": {"type": "string", "maxLength": 200, "description": "驳回原因"}}}


def _service():
    from core.services import refund_requests

    return refund_requests


def _property(property_id: str):
    from core.services import tariffs

    return tariffs.property_of(property_id)


def _row_json(row) -> dict:
    r = row.request
    return {"account_id": r.account_id, "request_id": r.request_id, "room": row.room, "tenant": row.tenant,
            "phone": row.phone, "balance_fen": row.balance, "amount_fen": r.amount, "amount": yuan(r.amount),
            "reason": r.reason, "status": r.status, "status_text": r.status_text, "created_at": r.created_at,
            "decided_at": r.decided_at or None, "decided_by": r.decided_by or None,
            "reject_reason": r.reject_reason or None, "refunded_fen": r.refunded, "refunds": list(r.refunds)}


def _local(iso: str, tz: str) -> str:
    """A stored UTC time as the property's local time (YYYY-MM-DD HH:MM)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    except (ValueError, KeyError):
        return iso or "—"


def _page(property_id: str, status: int = 200, errors: dict | None = None, reasons: dict | None = None):
    who = current_admin()
    service = _service()
    errors = errors or {}
    prop = _property(property_id)
    return render_template("console/refunds.html", property_id=property_id, property=prop,
                           local=lambda iso: _local(iso, prop.timezone or "Asia/Shanghai"),
                           nav_active="refunds", queue=service.queue(property_id), decided=service.recent(property_id),
                           can_money=bool(who and who.can("money", property_id)), errors=errors,
                           error=next(iter(errors.values()), ""), reasons=reasons or {}), status


@bp.get(PAGE)
@admin_required("view")
def refunds_page(property_id: str):
    return _page(property_id)


@bp.post(f"{PAGE}/<account_id>/<request_id>/approve")
@admin_required("money")
def approve(property_id: str, account_id: str, request_id: str):
    try:
        r = _service().approve(current_admin(), property_id, account_id, request_id, services.payments(),
                               ip=client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _page(property_id, 422 if isinstance(e, ValidationError) else e.status, errors={request_id: e.message})
    flash(f"已同意退款 {yuan(r.amount)} 元，款项将原路退回租户微信", "success")
    return redirect(url_for("console_refunds.refunds_page", property_id=property_id))


@bp.post(f"{PAGE}/<account_id>/<request_id>/reject")
@admin_required("money")
def reject(property_id: str, account_id: str, request_id: str):
    reason = request.form.get("reason", "")
    try:
        _service().reject(current_admin(), property_id, account_id, request_id, reason, ip=client_ip())
    except FeikongError as e:
        if e.status == 404:
            raise
        return _page(property_id, 422 if isinstance(e, ValidationError) else e.status,
                     errors={request_id: e.message}, reasons={request_id: reason})
    flash("已驳回该退款申请", "success")
    return redirect(url_for("console_refunds.refunds_page", property_id=property_id))


# --- JSON ------------------------------------------------------------------------------------


@bp.get(API)
@api_doc("退款申请：待处理（open）与最近处理（decided）", tags=TAGS)
@admin_required("view")
def refunds_json(property_id: str):
    service = _service()
    return jsonify({"open": [_row_json(r) for r in service.queue(property_id)],
                    "decided": [_row_json(r) for r in service.recent(property_id)]})


@bp.post(f"{API}/<account_id>/<request_id>/approve")
@api_doc("同意退款申请：按最近的微信充值依次原路退款（已处理返回 409）", tags=TAGS, responses={200: "退款申请"})
@admin_required("money")
def approve_json(property_id: str, account_id: str, request_id: str):
    r = _service().approve(current_admin(), property_id, account_id, request_id, services.payments(), ip=client_ip())
    return jsonify({"request_id": r.request_id, "status": r.status, "status_text": r.status_text,
                    "refunded_fen": r.refunded, "refunds": list(r.refunds)})


@bp.post(f"{API}/<account_id>/<request_id>/reject")
@api_doc("驳回退款申请（须填写原因）", body=REJECT_BODY, tags=TAGS, responses={200: "退款申请"})
@admin_required("money")
def reject_json(property_id: str, account_id: str, request_id: str):
    r = _service().reject(current_admin(), property_id, account_id, request_id, json_object().get("reason"),
                          ip=client_ip())
    return jsonify({"request_id": r.request_id, "status": r.status, "status_text": r.status_text,
                    "reject_reason": r.reject_reason})
