"""Room actions (docs/console.md, "Room actions"): the forms of the room's action panel
(templates/console/actions_panel.html, htmx) and the same actions as JSON under
/admin/api/properties/<property_id>/..., all calling core/services/room_actions.py.

Forms post to /p/<property_id>/rooms/<building_id>/<room_id>/actions/<action> and get
the panel back (htmx swaps it): 200 with a note after a success, 422 with the message at
the form after bad input (nothing changed). JSON: 200 / 201, or the error format of
errors.py (400 bad input, 409 refused). Permissions: "operate" (accounts, meters,
tariffs, settings, keep-supply, trip / close, binding codes), "money" (counter cash,
refunds), both to close an account; a property not granted is 404.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, jsonify, render_template, request, url_for

from core.domain.errors import Conflict, ValidationError
from miniprogram_api import services
from miniprogram_api.admin_auth import Forbidden, admin_required, client_ip, console_gate, current_admin
from miniprogram_api.errors import json_object
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_actions", __name__)
bp.before_request(console_gate)

API = "/admin/api/properties/<property_id>"
PAGE = "/p/<property_id>/rooms/<building_id>/<room_id>/actions"
TAGS = ("room-actions",)
SERVICE_KEY = "feikong.room_actions"


def actions():
    """The RoomActions service of this app, on the app's Payments (a test may place its
    own, with a clock, in app.extensions)."""

    found = services.current_app.extensions.get(SERVICE_KEY)
    if found is not None:
        return found
    payments = services.payments()  # outside _service's lock (not reentrant)

    def make():
        from core.services.room_actions import RoomActions

        return RoomActions(payments)

    return services._service(SERVICE_KEY, make)


def deposits():
    """The Deposits service (押金, docs/billing.md) on the same Control as the room actions."""
    control, clock = actions().control, actions().clock

    def make():
        from core.services.deposits import Deposits

        return Deposits(control, clock)

    return services._service("feikong.deposits", make)


def _who():
    from core.services.room_actions import Who

    return Who(current_admin(), client_ip())


def _need(permission: str) -> None:
    if not current_admin().can(permission):
        raise Forbidden("没有权限执行此操作")


# --- the panel ---------------------------------------------------------------------------------


def panel_context(property_id: str, building_id: str, room_id: str, account_id: str | None = None) -> dict:
    """What templates/console/actions_panel.html needs; the room detail page may call it
    (it is also a template global: `room_actions_context(property_id, building_id, room_id)`)."""
    from core.domain import room_actions as rules
    from core.domain.directory import MeterKind

    who = current_admin()
    data = actions().panel(property_id, building_id, room_id, account_id)
    now = actions().clock()
    if data.get("account") is not None:  # the deposit held (押金, docs/billing.md)
        from core.services.deposits import of_account

        data["deposit"] = of_account(data["account"].account_id)
    return {
        **data, "property_id": property_id,
        "can_operate": who.can("operate"), "can_money": who.can("money"),
        "new_receipt_no": rules.new_receipt_no(now), "new_refund_receipt_no": rules.new_receipt_no(now),
        "meter_kinds": [(k.value, {"electric_1p": "单相电表", "electric_3p": "三相电表", "water": "水表"}[k.value])
                        for k in MeterKind],
        "base": url_for("console_actions.panel", property_id=property_id, building_id=building_id, room_id=room_id),
    }


@bp.app_context_processor
def _template_globals():
    return {"room_actions_context": panel_context}


def _render_panel(property_id: str, building_id: str, room_id: str, account_id: str | None = None, *,
                  done: str = "", form: str = "", error: str = "", values: dict | None = None, extra: dict | None = None,
                  status: int = 200):
    ctx = panel_context(property_id, building_id, room_id, account_id)
    ctx.update(done=done, form=form, error=error, values=values or {}, **(extra or {}))
    template = "console/actions_panel.html" if request.headers.get("HX-Request") == "true" \
        else "console/actions_page.html"
    return render_template(template, actions_panel=ctx, nav_active="rooms", property_id=property_id,
                           building_id=building_id, room_id=room_id), status


@bp.get(PAGE)
@admin_required("view")
def panel(property_id: str, building_id: str, room_id: str):
    """The panel alone as a page (and, for htmx, as the fragment): ?account= picks one of
    the room's accounts."""
    return _render_panel(property_id, building_id, room_id, request.args.get("account") or None)


def _form_action(property_id: str, building_id: str, room_id: str, form: str, run, done: str):
    """Run one form's action: the panel with a note, or 422 with the message at the form."""
    f = request.form
    account_id = f.get("account_id") or None
    try:
        extra = run(f, account_id) or {}
    except (ValidationError, Conflict) as e:  # bad input or a refusal: the form again, nothing changed
        return _render_panel(property_id, building_id, room_id, account_id, form=form, error=e.message,
                             values=f.to_dict(), status=422)
    body, status = _render_panel(property_id, building_id, room_id, extra.pop("account_id", account_id), done=done,
                                 form=form, extra=extra)
    return body, status, {"HX-Trigger": "room-changed"}  # the room detail page may refresh its other parts


# --- form values --------------------------------------------------------------------------------


def _yuan(value, label: str, field: str, **kw) -> int:
    from core.domain.room_actions import yuan_to_fen

    return yuan_to_fen(value, label, field, **kw)


def _optional_yuan(value, label: str, field: str, **kw) -> int | None:
    if value is None or not str(value).strip():
        return None
    return _yuan(value, label, field, positive=False, **kw)


def _account(f) -> str:
    account_id = f.get("account_id") or ""
    if not account_id:
        raise ValidationError("请先选择账户", code="account_required", field="account_id")
    return account_id


def _levels_from_form(f) -> list[int] | None:
    levels = [_yuan(f.get(f"alarm{i}"), f"第 {i} 级告警金额", f"alarm{i}", positive=False, allow_negative=True)
              for i in (1, 2, 3) if (f.get(f"alarm{i}") or "").strip()]
    return levels or None


# --- forms -------------------------------------------------------------------------------------


def _page_route(action: str, permission: str, done: str):
    """Register POST PAGE/<action> needing `permission`, running run(form, account_id)."""

    def register(run):
        @admin_required(permission)
        def view(property_id: str, building_id: str, room_id: str):
            if action == "close":
                _need("money")
            return _form_action(property_id, building_id, room_id, action,
                                lambda f, a: run(property_id, building_id, room_id, f, a), done)

        view.__name__ = f"form_{action.replace('-', '_')}"
        bp.add_url_rule(f"{PAGE}/{action}", view.__name__, view, methods=["POST"])
        return run

    return register


@_page_route("open-account", "operate", "已开户")
def _open_account(pid, b, r, f, _a):
    account = actions().open_account(_who(), pid, b, r, phone=f.get("phone", ""), tenant_name=f.get("tenant_name", ""),
                                     name=f.get("name", ""),
                                     overdraft_limit=_optional_yuan(f.get("overdraft_limit"), "透支额度",
                                                                    "overdraft_limit") or 0)
    return {"account_id": account.account_id}


@_page_route("add-meter", "operate", "表计已添加")
def _add_meter(pid, b, r, f, a):
    address = f.get("address", "")
    actions().add_meter(_who(), pid, _account(f), meter_id=f.get("meter_id", "").strip(), site_id=f.get("site_id", ""),
                        kind=f.get("kind", ""), model=f.get("model", "").strip(), bus=f.get("bus", "").strip(),
                        address=int(address) if address.strip().isdigit() else address,
                        billing_mode=f.get("billing_mode") or "cloud", plan_id=f.get("plan_id", ""))


@_page_route("binding-code", "operate", "绑定码已生成")
def _binding_code(pid, b, r, f, a):
    from core.domain.room_actions import show_binding_code
    from core.services import bindings

    code = actions().issue_binding_code(_who(), pid, _account(f))
    return {"binding": {"code": show_binding_code(code.code), "expires_at": code.expires_at,
                        "qr_svg": bindings.qr_svg(code.code)}}


@_page_route("tariff", "operate", "电价方案已设置")
def _tariff(pid, b, r, f, a):
    actions().assign_tariff(_who(), pid, f.get("meter_id", ""), f.get("plan_id", ""))


@_page_route("recharge", "money", "已收款")
def _recharge(pid, b, r, f, a):
    account_id = _account(f)
    entry = actions().counter_recharge(_who(), pid, account_id, _yuan(f.get("amount"), "充值金额", "amount"),
                                       f.get("receipt_no", ""))
    no = entry.entry_id.split(":", 1)[1]
    return {"receipt": {"receipt_no": no, "amount": entry.amount, "balance_after": entry.balance_after,
                        "url": url_for("console_actions.receipt_page", property_id=pid, receipt_no=no)}}


@_page_route("refund", "money", "已退款")
def _refund(pid, b, r, f, a):
    result = actions().refund(_who(), pid, _account(f), f.get("method", ""),
                              _yuan(f.get("amount"), "退款金额", "amount"), reason=f.get("reason", ""),
                              out_trade_no=f.get("out_trade_no", ""), receipt_no=f.get("receipt_no", ""))
    if result["method"] == "cash":
        result["url"] = url_for("console_actions.receipt_page", property_id=pid, receipt_no=result["receipt_no"])
    return {"refund": result}


@_page_route("settings", "operate", "账户设置已保存")
def _settings(pid, b, r, f, a):
    actions().settings(_who(), pid, _account(f),
                       overdraft_limit=_optional_yuan(f.get("overdraft_limit"), "透支额度", "overdraft_limit"),
                       restore_line=_optional_yuan(f.get("restore_line"), "复电线", "restore_line",
                                                   allow_negative=True),
                       alarm_levels=_levels_from_form(f))


@_page_route("keep-supply", "operate", "保电设置已保存")
def _keep_supply(pid, b, r, f, a):
    keep = f.get("keep_supply") == "on"
    if f.get("meter_id"):
        actions().meter_keep_supply(_who(), pid, f["meter_id"], keep)
    else:
        actions().settings(_who(), pid, _account(f), keep_supply=keep)


@_page_route("deposit-take", "money", "已收取押金")
def _deposit_take(pid, b, r, f, a):
    deposits().take(current_admin(), pid, _account(f), _yuan(f.get("amount"), "押金金额", "amount"),
                    f.get("method", ""), f.get("receipt_no", ""), f.get("memo", ""), client_ip())


@_page_route("deposit-refund", "money", "已退还押金")
def _deposit_refund(pid, b, r, f, a):
    deposits().refund(current_admin(), pid, _account(f), _yuan(f.get("amount"), "退还金额", "amount"),
                      f.get("method", ""), f.get("receipt_no", ""), f.get("memo", ""), client_ip())


@_page_route("payment-mode", "operate", "付费方式已保存")
def _payment_mode(pid, b, r, f, a):
    actions().settings(_who(), pid, _account(f), payment_mode=f.get("payment_mode", ""))


@_page_route("relay", "operate", "命令已下发")
def _relay(pid, b, r, f, a):
    op = f.get("op", "")
    if op not in ("TRIP", "CLOSE"):
        raise ValidationError("操作必须是分闸或合闸", code="op_invalid", field="op")
    command = actions().manual_relay(_who(), pid, f.get("meter_id", ""), op, f.get("reason", ""))
    return {"command": {"command_id": command.command_id, "op": op}}


@_page_route("replace-meter", "operate", "换表完成")
def _replace_meter(pid, b, r, f, a):
    result = actions().replace_meter(_who(), pid, f.get("meter_id", ""), f.get("new_meter_id", "").strip(),
                                     _reading(f.get("final_total"), "旧表止码", "final_total"),
                                     _reading(f.get("initial_total"), "新表起码", "initial_total"))
    return {"replaced": result}


@_page_route("close", "operate", "销户已办理")
def _close(pid, b, r, f, a):
    result = actions().close_account(_who(), pid, _account(f), f.get("method", ""), f.get("receipt_no", ""))
    out = {"closed": result}
    if result["closed"]:
        out["account_id"] = None
    return out


def _reading(value, label: str, field: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        d = Decimal("NaN")
    if not d.is_finite() or d < 0:
        raise ValidationError(f"{label}必须是不小于 0 的读数", code="reading_invalid", field=field)
    return str(d)


# --- the receipt -----------------------------------------------------------------------------


@bp.get("/p/<property_id>/receipts/<receipt_no>")
@admin_required("view")
def receipt_page(property_id: str, receipt_no: str):
    """A counter receipt to print (收据): its number, account, tenant, amount, balance after."""
    data = actions().receipt(property_id, receipt_no)
    return render_template("console/actions_receipt.html", property_id=property_id, nav_active="rooms", **data)


# --- JSON ------------------------------------------------------------------------------------


def _int(body: dict, key: str, required: bool = True):
    value = body.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{key} 必须是整数（金额以分为单位）", code="field_invalid", field=key)
    return value


def _entry(e) -> dict:
    return {"entry_id": e.entry_id, "seq": e.seq, "kind": str(e.kind), "amount": e.amount,
            "balance_after": e.balance_after, "posted_at": e.posted_at, "duplicate": e.duplicate}


def _meter_json(m) -> dict:
    return {"meter_id": m.meter_id, "account_id": m.account_id, "site_id": m.site_id, "kind": str(m.kind),
            "model": m.model, "bus": m.bus, "address": m.address, "billing_mode": str(m.billing_mode),
            "plan_id": m.plan_id, "keep_supply": m.keep_supply, "relay_state": str(m.relay_state),
            "retired": m.retired}


AMOUNT = {"type": "integer", "minimum": 1, "description": "金额（分）"}
REASON = {"type": "string", "maxLength": 100, "description": "操作原因"}
RECEIPT = {"type": "string", "pattern": "^[A-Za-z0-9_\\-*]{6,32}$", "description": "收据号（同一物业内唯一）"}


def _obj(required: list[str], **props) -> dict:
    return {"type": "object", "required": required, "properties": props}


@bp.post(f"{API}/rooms/<building_id>/<room_id>/accounts")
@api_doc("开户：为房间开立账户（按手机号找到已登记的租户，或同时登记新租户）", tags=TAGS,
         body=_obj(["phone"], phone={"type": "string"}, tenant_name={"type": "string"}, name={"type": "string"},
                   overdraft_limit={"type": "integer", "minimum": 0, "description": "透支额度（分）"}),
         responses={201: "新账户"})
@admin_required("operate")
def api_open_account(property_id: str, building_id: str, room_id: str):
    body = json_object()
    a = actions().open_account(_who(), property_id, building_id, room_id, phone=body.get("phone"),
                               tenant_name=body.get("tenant_name", ""), name=body.get("name", ""),
                               overdraft_limit=_int(body, "overdraft_limit", False) or 0)
    return jsonify({"account_id": a.account_id, "tenant_id": a.tenant_id, "name": a.name, "balance": a.balance,
                    "building_id": a.building_id, "room_id": a.room_id}), 201


@bp.post(f"{API}/accounts/<account_id>/meters")
@api_doc("为账户添加表计（一个账户可有多块表）", tags=TAGS,
         body=_obj(["meter_id", "site_id", "kind", "model", "bus", "address"], meter_id={"type": "string"},
                   site_id={"type": "string"}, kind={"enum": ["electric_1p", "electric_3p", "water"]},
                   model={"type": "string"}, bus={"type": "string"},
                   address={"type": "integer", "minimum": 1, "maximum": 247},
                   billing_mode={"enum": ["cloud", "meter"]}, plan_id={"type": "string"}),
         responses={201: "新表计"})
@admin_required("operate")
def api_add_meter(property_id: str, account_id: str):
    b = json_object()
    m = actions().add_meter(_who(), property_id, account_id, meter_id=b.get("meter_id"), site_id=b.get("site_id"),
                            kind=b.get("kind"), model=b.get("model"), bus=b.get("bus"), address=b.get("address"),
                            billing_mode=b.get("billing_mode") or "cloud", plan_id=b.get("plan_id") or "")
    return jsonify(_meter_json(m)), 201


@bp.post(f"{API}/accounts/<account_id>/binding-codes")
@api_doc("发放绑定码：租户在小程序中输入或扫码绑定（一次有效，24 小时过期）", tags=TAGS,
         responses={201: {"description": "绑定码、过期时间与二维码（SVG）", "schema": _obj(
             ["code", "expires_at"], code={"type": "string"}, expires_at={"type": "string"},
             qr_svg={"type": "string"})}})
@admin_required("operate")
def api_binding_code(property_id: str, account_id: str):
    from core.domain.room_actions import show_binding_code
    from core.services import bindings

    c = actions().issue_binding_code(_who(), property_id, account_id)
    return jsonify({"code": show_binding_code(c.code), "expires_at": c.expires_at, "tenant_id": c.tenant_id,
                    "qr_svg": bindings.qr_svg(c.code)}), 201


@bp.put(f"{API}/meters/<meter_id>/tariff")
@api_doc("设置表计的电价方案", tags=TAGS, body=_obj(["plan_id"], plan_id={"type": "string"}), responses={200: "表计"})
@admin_required("operate")
def api_tariff(property_id: str, meter_id: str):
    return jsonify(_meter_json(actions().assign_tariff(_who(), property_id, meter_id, json_object().get("plan_id"))))


def _movement_json(m) -> dict:
    return {"movement_id": m.movement_id, "kind": m.kind, "amount": m.amount, "method": m.method, "ref": m.ref,
            "at": m.at, "duplicate": m.duplicate}


@bp.get(f"{API}/accounts/<account_id>/deposit")
@api_doc("账户押金：当前余额与收退记录", tags=TAGS, responses={200: "押金（分）与记录"})
@admin_required("view")
def api_deposit(property_id: str, account_id: str):
    return jsonify(deposits().view(property_id, account_id))


@bp.post(f"{API}/accounts/<account_id>/deposit/<kind>")
@api_doc("押金：收取（take）、退还（refund，现金或转账，不超过押金余额）或抵扣入余额（apply）；按收据号 / ref 幂等",
         tags=TAGS, body={"type": "object", "properties": {
             "amount": AMOUNT, "method": {"enum": ["cash", "bank"]}, "receipt_no": RECEIPT,
             "ref": {"type": "string", "description": "apply：抵扣的事由编号（如 close）"}, "memo": {"type": "string"}}},
         responses={201: "押金记录"})
@admin_required("money")
def api_deposit_move(property_id: str, account_id: str, kind: str):
    body = json_object()
    d = deposits()
    if kind == "apply":
        m, entry = d.apply(current_admin(), property_id, account_id, body.get("ref") or "", _int(body, "amount", False),
                           ip=client_ip())
        return jsonify({"movement": _movement_json(m) if m else None, "entry": _entry(entry) if entry else None,
                        "held": d.view(property_id, account_id)["held"]}), 201
    if kind not in ("take", "refund"):
        raise ValidationError("押金操作只能是 take、refund 或 apply", code="deposit_kind_invalid", field="kind")
    move = d.take if kind == "take" else d.refund
    m = move(current_admin(), property_id, account_id, _int(body, "amount"), body.get("method"), body.get("receipt_no"),
             body.get("memo") or "", client_ip())
    return jsonify({"movement": _movement_json(m), "held": d.view(property_id, account_id)["held"]}), 201


@bp.post(f"{API}/accounts/<account_id>/counter-recharges")
@api_doc("柜台现金充值（按收据号幂等；余额回到复电线以上时立即合闸）", tags=TAGS,
         body=_obj(["amount"], amount=AMOUNT, receipt_no=RECEIPT), responses={201: "入账分录与收据"})
@admin_required("money")
def api_recharge(property_id: str, account_id: str):
    from core.domain.room_actions import new_receipt_no

    body = json_object()
    no = body.get("receipt_no") or new_receipt_no(actions().clock())
    e = actions().counter_recharge(_who(), property_id, account_id, _int(body, "amount"), no)
    return jsonify({"receipt_no": no, "entry": _entry(e),
                    "receipt_url": url_for("console_actions.receipt_page", property_id=property_id,
                                           receipt_no=no)}), 201


@bp.post(f"{API}/accounts/<account_id>/refunds")
@api_doc("退款：微信原路退回（指定已支付订单）或现金（收据）", tags=TAGS,
         body=_obj(["method", "amount", "reason"], method={"enum": ["wechat", "cash"]}, amount=AMOUNT, reason=REASON,
                   out_trade_no={"type": "string"}, receipt_no=RECEIPT),
         responses={201: "退款结果"})
@admin_required("money")
def api_refund(property_id: str, account_id: str):
    from core.domain.room_actions import new_receipt_no

    body = json_object()
    no = body.get("receipt_no") or (new_receipt_no(actions().clock()) if body.get("method") == "cash" else "")
    result = actions().refund(_who(), property_id, account_id, body.get("method"), _int(body, "amount"),
                              reason=body.get("reason", ""), out_trade_no=body.get("out_trade_no", ""), receipt_no=no)
    return jsonify(result), 201


@bp.get(f"{API}/accounts/<account_id>/refundable-orders")
@api_doc("账户可原路退回的微信充值订单", tags=TAGS, responses={200: "订单与可退金额（分）"})
@admin_required("view")
def api_refundable(property_id: str, account_id: str):
    rows = actions().refundable_orders(property_id, account_id)
    return jsonify({"orders": [{"out_trade_no": o.out_trade_no, "amount": o.amount, "refundable": n,
                                "paid_at": o.paid_at} for o, n in rows]})


@bp.patch(f"{API}/accounts/<account_id>/settings")
@api_doc("账户设置：告警金额、透支额度、复电线、保电（立即重新判断供电）", tags=TAGS,
         body={"type": "object", "properties": {
             "overdraft_limit": {"type": "integer", "minimum": 0}, "restore_line": {"type": "integer"},
             "alarm_levels": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
             "keep_supply": {"type": "boolean"}, "payment_mode": {"type": "string", "enum": ["prepaid", "postpaid"]}}},
         responses={200: "设置后的账户"})
@admin_required("operate")
def api_settings(property_id: str, account_id: str):
    b = json_object()
    unknown = set(b) - {"overdraft_limit", "restore_line", "alarm_levels", "keep_supply", "payment_mode"}
    if unknown:
        raise ValidationError(f"未知的设置项：{', '.join(sorted(unknown))}", code="field_unknown")
    return jsonify(actions().settings(_who(), property_id, account_id, overdraft_limit=b.get("overdraft_limit"),
                                      restore_line=b.get("restore_line"), alarm_levels=b.get("alarm_levels"),
                                      keep_supply=b.get("keep_supply"), payment_mode=b.get("payment_mode")))


@bp.put(f"{API}/meters/<meter_id>/keep-supply")
@api_doc("表计保电（开启后欠费也不断电）", tags=TAGS, body=_obj(["keep_supply"], keep_supply={"type": "boolean"}),
         responses={200: "表计"})
@admin_required("operate")
def api_meter_keep_supply(property_id: str, meter_id: str):
    keep = json_object().get("keep_supply")
    if not isinstance(keep, bool):
        raise ValidationError("keep_supply 必须是 true 或 false", code="keep_supply_invalid", field="keep_supply")
    return jsonify(_meter_json(actions().meter_keep_supply(_who(), property_id, meter_id, keep)))


@bp.post(f"{API}/meters/<meter_id>/relay")
@api_doc("手动分闸 / 合闸（必须填写原因；分闸保持到手动合闸为止）", tags=TAGS,
         body=_obj(["op", "reason"], op={"enum": ["TRIP", "CLOSE"]}, reason=REASON), responses={201: "下发的命令"})
@admin_required("operate")
def api_relay(property_id: str, meter_id: str):
    b = json_object()
    if b.get("op") not in ("TRIP", "CLOSE"):
        raise ValidationError("op 必须是 TRIP（分闸）或 CLOSE（合闸）", code="op_invalid", field="op")
    c = actions().manual_relay(_who(), property_id, meter_id, b["op"], b.get("reason"))
    return jsonify({"command_id": c.command_id, "op": c.op, "meter_id": c.meter_id, "state": c.state,
                    "issued_at": c.issued_at, "expires_at": c.expires_at}), 201


@bp.post(f"{API}/meters/<meter_id>/replace")
@api_doc("换表：旧表按止码结算后停用，新表按起码接续（同账户、同总线地址）", tags=TAGS,
         body=_obj(["new_meter_id", "final_total", "initial_total"], new_meter_id={"type": "string"},
                   final_total={"type": "string", "description": "旧表止码"},
                   initial_total={"type": "string", "description": "新表起码"},
                   read_at={"type": "string", "format": "date-time"}),
         responses={201: "换表结果"})
@admin_required("operate")
def api_replace(property_id: str, meter_id: str):
    b = json_object()
    read_at = None
    if b.get("read_at") is not None:
        try:
            read_at = datetime.fromisoformat(str(b["read_at"]))
        except ValueError:
            read_at = None
        if read_at is None or read_at.tzinfo is None:
            raise ValidationError("read_at 必须是带时区的 ISO 时间", code="time_invalid", field="read_at")
    result = actions().replace_meter(_who(), property_id, meter_id, b.get("new_meter_id"),
                                     _reading(b.get("final_total"), "旧表止码", "final_total"),
                                     _reading(b.get("initial_total"), "新表起码", "initial_total"), read_at)
    return jsonify(result), 201


@bp.post(f"{API}/accounts/<account_id>/close")
@api_doc("销户：所有表分闸，余额现金退还或微信原路退回，余额为零且无处理中退款时关闭账户（需运营与财务权限）",
         tags=TAGS, body=_obj(["method"], method={"enum": ["cash", "wechat"]}, receipt_no=RECEIPT),
         responses={200: "结算结果（closed=false 表示微信退款处理中，稍后再次销户）"})
@admin_required("operate")
def api_close(property_id: str, account_id: str):
    from core.domain.room_actions import new_receipt_no

    _need("money")
    b = json_object()
    no = b.get("receipt_no") or new_receipt_no(actions().clock())
    return jsonify(actions().close_account(_who(), property_id, account_id, b.get("method"), no))


# --- move-out settlement, transfer, move-in (退租结算、过户、新装; docs/billing.md) ---------------------


def _settle_inputs(src) -> dict:
    """The settlement's inputs from a form or a query string (or a JSON body)."""
    from core.services.move_out import Transfer

    get = src.get
    readings = get("readings") if isinstance(get("readings"), dict) else {
        k[2:]: v for k, v in src.items() if k.startswith("r_") and str(v).strip()}
    transfer = None
    if get("transfer") in (True, "1", "on", "true") or isinstance(get("transfer"), dict):
        t = get("transfer") if isinstance(get("transfer"), dict) else src
        deposit = t.get("deposit") or 0
        if not isinstance(deposit, int) or isinstance(deposit, bool):
            deposit = _yuan(deposit, "新租户押金", "deposit") if str(deposit).strip() not in ("", "0") else 0
        transfer = Transfer(t.get("phone") or "", t.get("tenant_name") or "", deposit, t.get("deposit_receipt") or "",
                            t.get("deposit_method") or "cash")
    return {"day": get("day") or "", "method": get("method") or "", "receipt_no": get("receipt_no") or "",
            "readings": readings, "transfer": transfer}


def _settlement_page(property_id: str, building_id: str, room_id: str, *, error: str = "", status: int = 200):
    from core.domain.room_actions import new_receipt_no

    account_id = request.values.get("account") or request.values.get("account_id") or None
    data = actions().panel(property_id, building_id, room_id, account_id)
    account = data.get("account")
    mo = actions().move_out
    preview, pending = None, None
    values = request.values.to_dict()
    if account is not None:
        pending = mo.pending(property_id, account.account_id)
        if values.get("day") and not error:
            try:
                kw = _settle_inputs(request.values)
                if kw["method"] != "cash":
                    kw["receipt_no"] = "PREVIEW0"
                preview = mo.preview(property_id, account.account_id, **kw)
            except (ValidationError, Conflict) as e:
                error, status = e.message, 422
    now = actions().clock()
    return render_template(
        "console/settlement.html", property_id=property_id, building_id=building_id, room_id=room_id,
        nav_active="rooms", room=data["room"], account=account, state=data.get("state"), meters=data.get("meters", []),
        orders=data.get("orders", []), tenant=data.get("tenant"), preview=preview, pending=pending, values=values,
        error=error, today=mo.today().isoformat(), receipt_no=values.get("receipt_no") or new_receipt_no(now),
        can_settle=current_admin().can("operate") and current_admin().can("money"),
        deposit=(deposits().of_account(account.account_id) if account is not None else None)), status


@bp.get(f"{PAGE}/settlement")
@admin_required("operate")
def settlement_page(property_id: str, building_id: str, room_id: str):
    """退租结算 / 过户: the form; with ?day=... the settlement as it would come out (预览)."""
    return _settlement_page(property_id, building_id, room_id)


@bp.post(f"{PAGE}/settlement/read-now")
@admin_required("operate")
def settlement_read_now(property_id: str, building_id: str, room_id: str):
    from flask import redirect

    account_id = _account(request.form)
    actions().move_out.read_now(_who(), property_id, account_id)
    return redirect(url_for("console_actions.settlement_page", property_id=property_id, building_id=building_id,
                            room_id=room_id, account=account_id, read="1"), 303)


@bp.post(f"{PAGE}/settlement")
@admin_required("operate")
def settlement_confirm(property_id: str, building_id: str, room_id: str):
    """确认结算: settle (or transfer), then the statement (结算单)."""
    from flask import redirect

    _need("money")
    account_id = _account(request.form)
    try:
        actions().settle(_who(), property_id, account_id, **_settle_inputs(request.form))
    except (ValidationError, Conflict) as e:
        return _settlement_page(property_id, building_id, room_id, error=e.message, status=422)
    return redirect(url_for("console_actions.settlement_statement", property_id=property_id, account_id=account_id),
                    303)


@bp.get("/p/<property_id>/settlements/<account_id>")
@admin_required("view")
def settlement_statement(property_id: str, account_id: str):
    """The settlement statement (结算单), printable."""
    from core.services.move_out import statement

    return render_template("console/settlement_statement.html", property_id=property_id, nav_active="rooms",
                           s=statement(property_id, account_id))


SETTLE_BODY = {"type": "object", "required": ["day", "method"], "properties": {
    "day": {"type": "string", "format": "date", "description": "退租日期（租户最后一天，含）"},
    "method": {"enum": ["cash", "wechat"], "description": "余额退款方式"}, "receipt_no": RECEIPT,
    "readings": {"type": "object", "additionalProperties": {"type": "string"},
                 "description": "离线表计的人工止码：表计编号 -> 读数（不填则以最近一次抄表为止码）"},
    "transfer": {"type": "object", "description": "过户：新租户（手机号、姓名，可同时收取押金，分）",
                 "properties": {"phone": {"type": "string"}, "tenant_name": {"type": "string"},
                                "deposit": {"type": "integer", "minimum": 0},
                                "deposit_receipt": {"type": "string"},
                                "deposit_method": {"enum": ["cash", "bank"]}}}}}


@bp.post(f"{API}/accounts/<account_id>/settlement/preview")
@api_doc("退租结算预览：止码计费、费用项按天折算、押金抵扣、退款或欠费（不写入任何数据）", tags=TAGS, body=SETTLE_BODY,
         responses={200: "结算单（预览）"})
@admin_required("operate")
def api_settlement_preview(property_id: str, account_id: str):
    kw = _settle_inputs(json_object())
    if kw["method"] != "cash":
        kw["receipt_no"] = "PREVIEW0"
    return jsonify(actions().move_out.preview(property_id, account_id, **kw))


@bp.post(f"{API}/accounts/<account_id>/settlement")
@api_doc("退租结算 / 过户（需运营与财务权限）：每一步幂等，中断后再次提交即完成同一结算", tags=TAGS, body=SETTLE_BODY,
         responses={200: "结算单"})
@admin_required("operate")
def api_settlement(property_id: str, account_id: str):
    _need("money")
    return jsonify(actions().settle(_who(), property_id, account_id, **_settle_inputs(json_object())))


@bp.get(f"{API}/accounts/<account_id>/settlement")
@api_doc("账户的结算单", tags=TAGS, responses={200: "结算单", 404: "没有结算单"})
@admin_required("view")
def api_settlement_get(property_id: str, account_id: str):
    from core.services.move_out import statement

    return jsonify(statement(property_id, account_id))


@bp.post(f"{API}/accounts/<account_id>/settlement/read-now")
@api_doc("立即抄表：向账户的每块表下发 READ_NOW（读数经网关回传后按常规计费）", tags=TAGS, responses={201: "命令编号"})
@admin_required("operate")
def api_settlement_read_now(property_id: str, account_id: str):
    return jsonify({"commands": actions().move_out.read_now(_who(), property_id, account_id)}), 201


@bp.post(f"{API}/rooms/<building_id>/<room_id>/move-in")
@api_doc("新装（入住）：开户、收取押金、费用项自入住日按天折算起收", tags=TAGS,
         body=_obj(["phone"], phone={"type": "string"}, tenant_name={"type": "string"},
                   day={"type": "string", "format": "date"}, deposit={"type": "integer", "minimum": 0},
                   deposit_method={"enum": ["cash", "bank"]}, deposit_receipt={"type": "string"}),
         responses={201: "新账户与已应用的费用"})
@admin_required("operate")
def api_move_in(property_id: str, building_id: str, room_id: str):
    b = json_object()
    deposit = _int(b, "deposit", False) or 0
    if deposit:
        _need("money")
    return jsonify(actions().move_out.move_in(_who(), property_id, building_id, room_id, phone=b.get("phone"),
                                              tenant_name=b.get("tenant_name") or "", day=b.get("day"),
                                              deposit=deposit, deposit_method=b.get("deposit_method") or "cash",
                                              deposit_receipt=b.get("deposit_receipt") or "")), 201
