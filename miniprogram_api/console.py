"""The property admin's console: pages under /p/<property_id>/... and their JSON API
under /admin/api/properties/<property_id>/... (docs/console.md).

Every route needs an admin login: the one `before_request` gate below sends a visitor to
/login (401 JSON for the API) and answers 404 for a property in the URL that the admin
is not granted; views that act add `@admin_required("operate" | "money" | "admin")`
(miniprogram_api/admin_auth.py).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from core.domain.errors import NotFound
from core.settings import get_settings
from miniprogram_api import serializers
from miniprogram_api.admin_auth import admin_required, console_gate, current_admin

bp = Blueprint("console", __name__)


@bp.before_request
def gate():
    return console_gate()


@bp.get("/")
def index():
    """To the room monitor of the admin's first property (?property=: that one, if granted)."""
    who = current_admin()
    granted = who.property_ids if who else ()
    wanted = request.args.get("property") or get_settings().default_property
    property_id = wanted if wanted in granted else (granted[0] if granted else None)
    if not property_id:
        raise NotFound("您还没有可管理的物业", code="property_required")
    return redirect(url_for("console.rooms_page", property_id=property_id))


@bp.get("/admin/api/properties/<property_id>/buildings/<building_id>/rooms")
def rooms(property_id: str, building_id: str):
    from core.services import directory

    rows = directory.rooms_with_balances(property_id, building_id)
    return jsonify({"rooms": [serializers.room_with_balances(r) for r in rows]})


# --- room monitor (房间监控, docs/console.md) -----------------------------------------------


def _monitor(property_id: str):
    from core.services import monitor  # the store loads with the first page (docs/cold-start.md)

    filters, query = monitor.parse_request(request.args.getlist("filter"), request.args.get("q"))
    return monitor.room_monitor(property_id, filters, query)


def _monitor_page(template: str, property_id: str, oob: bool = False) -> str:
    from core.domain import monitor as rules

    view = _monitor(property_id)
    return render_template(
        template, view=view, property_id=property_id, property=view.property, nav_active="rooms",
        q=request.args.get("q", "").strip(), oob=oob,
        filter_labels=rules.FILTER_LABELS, state_labels=rules.STATE_LABELS, relay_labels=rules.RELAY_LABELS,
        page_url=url_for("console.rooms_page", property_id=property_id),
        tiles_url=url_for("console.rooms_tiles", property_id=property_id),
    )


@bp.get("/p/<property_id>/rooms")
@admin_required("view")
def rooms_page(property_id: str):
    return _monitor_page("console/rooms.html", property_id)


@bp.get("/p/<property_id>/rooms/tiles")
@admin_required("view")
def rooms_tiles(property_id: str):
    """The tiles alone: the page's htmx refresh (every 5 s, and on a filter change)."""
    return _monitor_page("console/_tiles.html", property_id, oob=True)


@bp.get("/admin/api/properties/<property_id>/rooms")
@admin_required("view")
def rooms_json(property_id: str):
    """The monitor as JSON, with the page's filters (?filter=arrears&filter=cut) and search (?q=)."""
    from core.services import monitor

    return jsonify(monitor.to_json(_monitor(property_id)))
