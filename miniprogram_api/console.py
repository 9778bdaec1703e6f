"""The property admin's console: the rooms page (/) and its JSON API (/admin/api).

It has no admin login yet, so it is registered only where switched on
(FEIKONG_CONSOLE_OPEN=1: the local demo, tests); production does not serve it. The one
`before_request` gate below is where the admin login will go; until then it re-checks the
switch on every request.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from core.domain.errors import NotFound
from core.settings import get_settings
from miniprogram_api import serializers

bp = Blueprint("console", __name__)


def enabled() -> bool:
    return get_settings().console_open


@bp.before_request
def gate():
    if not enabled():
        raise NotFound("页面不存在")


@bp.get("/")
def index():
    property_id = request.args.get("property") or get_settings().default_property
    if not property_id:
        raise NotFound("请指定物业 (?property=...)", code="property_required")
    from core.services import directory  # the store loads with the first page (docs/cold-start.md)

    return render_template("console/rooms.html", **directory.property_overview(property_id))


@bp.get("/admin/api/properties/<property_id>/buildings/<building_id>/rooms")
def rooms(property_id: str, building_id: str):
    from core.services import directory

    rows = directory.rooms_with_balances(property_id, building_id)
    return jsonify({"rooms": [serializers.room_with_balances(r) for r in rows]})
