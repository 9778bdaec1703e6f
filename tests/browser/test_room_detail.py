"""Room detail (房间详情) in Chromium: from the room monitor's tile to the page; every
section drawn (account, supply, meter with registers and the TRIP in flight, both usage
charts drawn by ECharts, statement paged by htmx, commands, events), nothing wider than
the screen, at the laptop and the tablet size. Screenshots: room-detail-<w>x<h>.png.

The room (worked by hand, plan 1 yuan/kWh, page drawn at 2026-11-20 12:00 Shanghai):
counter cash +100.00, readings 09:00 (baseline), 10:00 +40 kWh (-40.00 -> 60.00),
11:00 +75 kWh (-75.00 -> -15.00: cut, TRIP sent) -> balance -15.00, today 115 kWh.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from core.protocol.messages import MeterReading
from core.services.ingest import Ingest
from core.services.payments import Payments
from testkit import admins
from testkit.builders import Clock, Metered
from tests.browser.conftest import SIZES, sign_in

SH = ZoneInfo("Asia/Shanghai")


def at(hour: int) -> datetime:
    return datetime(2026, 11, 20, hour, tzinfo=SH)


@pytest.fixture(scope="module")
def room(live_app):
    w = Metered()
    account = w.account(opening=0)
    meter = w.meter(account, rated_kw="100")
    Payments().counter_recharge(w.property_id, account, 10000, "RC2026112000001", "cash", "前台小李")
    clock = Clock(at(9))
    ingest = Ingest(clock=clock)
    for seq, hour, total, peak, valley in ((1, 9, "1000", "600", "400"), (2, 10, "1040", "630", "410"),
                                           (3, 11, "1115", "690", "425")):
        clock.now = at(hour)
        assert ingest.reading(w.site.site_id, MeterReading(
            meter_id=meter, seq=seq, read_at=at(hour), total=Decimal(total),
            registers={"peak": Decimal(peak), "valley": Decimal(valley)}, relay_state="closed")) != "refused"
    live_app.app.extensions["feikong.clock"] = lambda: at(12)
    yield {"w": w, "account": account, "meter": meter, "owner": admins.make_admin(w.property_id)}
    live_app.app.extensions.pop("feikong.clock", None)


@pytest.mark.parametrize("width, height", SIZES)
def test_room_detail_page(room, live_app, page_at, screenshot, width, height):
    page = page_at(width, height)
    sign_in(page, live_app, room["owner"])
    page.goto(live_app(f"/p/{room['w'].property_id}/rooms"))
    with page.expect_navigation():
        page.click('a.tile[data-room="R001"]')
    assert page.url.endswith(f"/p/{room['w'].property_id}/rooms/B1/R001")

    assert page.locator('[data-stat="balance"] .value').inner_text() == "¥-15.00"
    assert page.locator('[data-stat="supply"] .value').inner_text() == "已断电"
    assert page.locator('[data-stat="today"] .value').inner_text() == "115 kWh"
    meter = page.locator(f'div.meter[data-meter="{room["meter"]}"]')
    assert "峰 690" in meter.inner_text() and "谷 425" in meter.inner_text()
    assert meter.locator("[data-inflight]").is_visible()
    assert page.locator('.commands-table tr[data-state="sent"]').count() == 1
    # both charts drawn by ECharts (a canvas each), none empty
    page.wait_for_function("document.querySelectorAll('.chart canvas').length === 2")
    assert page.locator(".chart-empty").count() == 0
    rows = page.locator(".statement-table tbody tr")
    assert rows.count() == 4
    assert "柜台现金充值（收据 RC2026112000001）" in rows.nth(2).inner_text()
    assert "前台小李" in rows.nth(2).inner_text()
    assert page.locator('#room-events tr[data-type="low_balance"]').count() >= 1
    # nothing wider than the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    screenshot(page, "room-detail")


def test_statement_pages_with_htmx(room, live_app, page_at):
    page = page_at(1366, 900)
    sign_in(page, live_app, room["owner"])
    page.goto(live_app(f"/p/{room['w'].property_id}/rooms/B1/R001?limit=2"))
    kinds = lambda: page.locator(".statement-table tbody tr").evaluate_all(  # noqa: E731
        "rows => rows.map(r => r.dataset.kind)")
    assert kinds() == ["energy", "energy"]
    url = page.url
    page.click("text=更早的流水")
    page.wait_for_function("document.querySelector('.statement-table tbody tr').dataset.kind !== 'energy'")
    assert kinds() == ["recharge", "opening"] and page.url == url  # swapped in place, no reload
    assert page.locator("text=已是最早的流水").is_visible()
    page.click("text=回到最新")
    page.wait_for_function("document.querySelector('.statement-table tbody tr').dataset.kind === 'energy'")
    assert kinds() == ["energy", "energy", "recharge", "opening"]
