"""Sites and bridges (站点网关) and the audit log (审计日志) in a real browser, at a laptop's
and a tablet's size: an owner sees a site online with its heartbeat figures, meters per
bus and a command in flight, rotates its key through the page (the new key shown once),
finds the rotation in the audit log with a filter and downloads the Excel export.
Screenshots: .local/screenshots/sites-*.png, sites-keys-*.png, audit-*.png."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from core.domain.admins import AdminPrincipal
from core.protocol import messages
from core.services import action_log
from core.services.control import Control
from core.services.ingest import Ingest
from testkit import admins
from testkit.builders import Metered, uid
from tests.browser.conftest import SIZES, sign_in


@pytest.fixture
def site_world(aws):
    w = Metered()
    accounts = [w.account(opening=50_000) for _ in range(3)]
    w.meter_ids = [w.meter(a) for a in accounts]
    now = datetime.now(UTC)
    figures = {"outbox_depth": 3, "outbox_dropped": 0, "meters": 3, "meters_online": 3, "send_error": "",
               "buses": {"bus1": {"polls": 1520, "failures": 12, "cycles": 507, "last_cycle_seconds": 0.84}}}
    msg = messages.sign(messages.envelope("heartbeat", w.site.site_id, uid("hb"), now, **figures), w.site.secret)
    assert Ingest().handle(json.dumps(msg)) == {"heartbeat": "recorded"}
    Control().issue(w.meter_ids[1], "READ_NOW", "console:read", actor="admin@example.com")
    cashier = AdminPrincipal("cashier@example.com", "收银员小李", "co", "finance", (w.property_id,))
    for i, amount in enumerate((20_000, 5_050)):
        action_log.record(cashier, "counter_cash", property_id=w.property_id, target=f"account:{accounts[i]}",
                          before={"balance": 50_000}, after={"amount": amount, "balance": 50_000 + amount},
                          ip="192.168.1.20", at=now - timedelta(hours=2 - i))
    return w


@pytest.mark.parametrize("width,height", SIZES)
def test_sites_rotation_and_audit_log(live_app, page_at, screenshot, site_world, width, height):
    w = site_world
    who = admins.make_admin(w.property_id)
    page = page_at(width, height)
    sign_in(page, live_app, who)

    assert page.goto(live_app(f"/p/{w.property_id}/sites")).status == 200
    card = page.locator(f"#site-{w.site.site_id}")
    assert card.locator(".badge-success").inner_text() == "在线"
    assert "1520" in card.inner_text() and "0.8%" in card.inner_text()  # 12 of 1,520 polls failed
    assert card.locator("text=立即抄表").count() == 1  # the command in flight
    assert page.locator("nav a.active").get_attribute("title") == "站点网关"
    screenshot(page, "sites")

    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        card.locator("button:has-text('轮换密钥')").click()
    assert "密钥只显示这一次" in page.inner_text("main")
    assert "previous_secret:" in page.inner_text("#site-keys")
    screenshot(page, "sites-keys")

    page.goto(live_app(f"/p/{w.property_id}/sites"))
    assert page.locator(f"#site-{w.site.site_id} .badge-warning").inner_text() == "密钥轮换中"

    page.goto(live_app(f"/p/{w.property_id}/audit"))
    rows = page.locator("#audit-table tbody tr")
    assert rows.count() == 3  # the rotation and the two counter payments (logins are the company's)
    assert "开始轮换网关密钥" in rows.nth(0).inner_text() and who.name in rows.nth(0).inner_text()
    assert "200.00" in page.inner_text("#audit-table")  # 20,000 fen
    screenshot(page, "audit")

    page.select_option("select[name=action]", "site_secret_rotated")
    with page.expect_navigation():
        page.click(".audit-filters button[type=submit]")
    assert page.locator("#audit-table tbody tr").count() == 1

    with page.expect_download() as download:
        page.click("#export-xlsx")
    ws = load_workbook(io.BytesIO(download.value.path().read_bytes())).active
    assert ws["A1"].value == "时间" and ws.max_row == 2 and ws["F2"].value == "site_secret_rotated"
