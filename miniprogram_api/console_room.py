"""Room detail (房间详情, docs/console.md "Room detail"): the page, its statement partial
(htmx paging) and their JSON under /admin/api. Read only: the actions on a room live in
console_actions.py and render into the page's actions panel
(templates/console/actions_panel.html, included if present).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from miniprogram_api.admin_auth import admin_required, console_gate, current_admin
from miniprogram_api.openapi import api_doc

bp = Blueprint("console_room", __name__)
bp.before_request(console_gate)

_ROOM = "/p/<property_id>/rooms/<building_id>/<room_id>"
_API_ROOM = "/admin/api/properties/<property_id>/rooms/<building_id>/<room_id>"
_CURSOR = {"type": "string", "description": "上一页返回的 next_cursor；省略为第一页（最新）"}
DELIVERIES_SHOWN = 20  # the room detail's notification log per account
_LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "description": "每页条数，默认 20"}


def _paging() -> tuple[str | None, int]:
    from core.domain import room_detail as rules

    return request.args.get("cursor") or None, rules.page_size(request.args.get("limit"))


def _now():
    """The time the page is drawn at ("today" of the usage figures): tests inject a clock
    as app.extensions["feikong.clock"]."""
    clock = current_app.extensions.get("feikong.clock")
    return clock() if clock else None


def _urls(property_id: str, building_id: str, room_id: str) -> dict:
    return {
        "rooms": url_for("console.rooms_page", property_id=property_id),
        "page": url_for("console_room.room_page", property_id=property_id, building_id=building_id,
                        room_id=room_id),
    }


@bp.get(_ROOM)
@admin_required("view")
def room_page(property_id: str, building_id: str, room_id: str):
    from core.services import room_detail

    cursor, limit = _paging()
    detail = room_detail.room_detail(property_id, building_id, room_id, cursor=cursor,
                                     cursor_account=request.args.get("account"), limit=limit, now=_now())
    return render_template(
        "console/room_detail.html", detail=detail, property_id=property_id, property=detail.property,
        nav_active="rooms", admin=current_admin(), urls=_urls(property_id, building_id, room_id),
        charts={a.account.account_id: _chart(a.usage) for a in detail.accounts},
        deliveries=_deliveries(detail),
    )


def _deliveries(detail) -> dict:
    """Each account's recent notification deliveries (core/services/notify_log.py)."""
    from core.services import notify_log

    return {a.account.account_id: notify_log.account_log(a.account.account_id, DELIVERIES_SHOWN)
            for a in detail.accounts}


@bp.get(_ROOM + "/statement/<account_id>")
@admin_required("view")
def statement_partial(property_id: str, building_id: str, room_id: str, account_id: str):
    """One statement page of an account of the room (the page's htmx paging)."""
    from core.services import room_detail

    cursor, limit = _paging()
    s = room_detail.statement(property_id, account_id, cursor, limit)
    return render_template("console/room_statement.html", statement=s,
                           urls=_urls(property_id, building_id, room_id), property_id=property_id,
                           building_id=building_id, room_id=room_id)


@bp.get(_API_ROOM)
@api_doc("房间详情：账户、租户、电表、今日用量、用量图数据、账单第一页、命令、事件、各账户最近的通知记录（deliveries）",
         tags=("rooms",),
         params={"account": {"type": "string", "description": "cursor 所属账户"}, "cursor": _CURSOR,
                 "limit": _LIMIT},
         responses={200: {"description": "房间详情", "schema": {"type": "object"}}})
@admin_required("view")
def room_json(property_id: str, building_id: str, room_id: str):
    from core.services import room_detail

    cursor, limit = _paging()
    detail = room_detail.room_detail(property_id, building_id, room_id, cursor=cursor,
                                     cursor_account=request.args.get("account"), limit=limit, now=_now())
    out = room_detail.to_json(detail)
    out["deliveries"] = {aid: [r.to_json() for r in rows] for aid, rows in _deliveries(detail).items()}
    return jsonify(out)


@bp.get("/admin/api/properties/<property_id>/accounts/<account_id>/entries")
@api_doc("账户账单流水（按时间倒序分页，每条附原因说明）", tags=("rooms",),
         params={"cursor": _CURSOR, "limit": _LIMIT},
         responses={200: {"description": "一页流水与下一页的 next_cursor（最后一页为 null）",
                          "schema": {"type": "object"}}})
@admin_required("view")
def entries_json(property_id: str, account_id: str):
    from core.services import room_detail

    cursor, limit = _paging()
    return jsonify(room_detail.statement_json(room_detail.statement(property_id, account_id, cursor, limit)))


def _chart(usage) -> dict:
    """The usage charts' data (kWh as numbers for ECharts)."""
    return {
        "hours": [f"{h:02d}:00" for h in range(24)],
        "hourly": [float(q) for q in usage.hours],
        "days": [d[5:] for d, _ in usage.days],
        "daily": [float(q) for _, q in usage.days],
        "has": usage.has_readings,
    }
