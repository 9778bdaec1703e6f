"""Room actions in a real browser (docs/console.md, "Room actions"): a counter recharge from
the room's action panel (htmx, the CSRF header) changes the balance shown and links a
printable receipt; a binding code shows its QR image. Screenshots at both sizes:
.local/screenshots/actions-panel-*.png, actions-binding-*.png, actions-receipt-*.png, actions-room-detail-*.png."""

from __future__ import annotations

import pytest

from core.services.ledger import LedgerService
from tests.browser.conftest import SIZES


@pytest.mark.parametrize("width,height", SIZES)
def test_counter_recharge_from_the_panel_changes_the_balance(live_app, logged_in_page, world, screenshot, width,
                                                             height):
    account = world.account(opening=500)  # 5.00 yuan, in room R001
    page, _ = logged_in_page(width, height)
    panel = f"/p/{world.property_id}/rooms/B1/R001/actions"
    assert page.goto(live_app(panel)).status == 200
    assert page.locator("#room-actions-panel [data-balance]").inner_text() == "5.00"
    page.fill("#recharge-amount", "20")
    page.click("#form-recharge button[type=submit]")
    page.wait_for_selector("[data-done=recharge]")
    assert page.locator("#room-actions-panel [data-balance]").inner_text() == "25.00"  # 5.00 + 20.00
    assert LedgerService().balance(account) == 2500
    screenshot(page, "actions-panel")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen

    href = page.locator("[data-receipt-link]").get_attribute("href")
    page.click("text=生成绑定码")
    page.wait_for_selector("[data-binding] svg")
    assert len(page.locator("[data-binding-code]").inner_text()) == 9  # ABCD-EFGH
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar would sit mid-page in a full-page shot
    screenshot(page, "actions-binding")

    assert page.goto(live_app(href)).status == 200
    assert page.locator("[data-receipt-amount]").inner_text() == "¥ 20.00"
    screenshot(page, "actions-receipt")

    # the room detail page includes the same panel; a second recharge there changes its balance too
    assert page.goto(live_app(f"/p/{world.property_id}/rooms/B1/R001")).status == 200
    page.fill("#recharge-amount", "1.5")
    page.click("#form-recharge button[type=submit]")
    page.wait_for_selector("[data-done=recharge]")
    assert page.locator("#room-actions-panel [data-balance]").inner_text() == "26.50"  # 25.00 + 1.50
    screenshot(page, "actions-room-detail")


def test_a_viewer_sees_no_action_buttons(live_app, logged_in_page, world):
    world.account(opening=500)
    page, _ = logged_in_page(1366, 900, role="viewer")
    assert page.goto(live_app(f"/p/{world.property_id}/rooms/B1/R001/actions")).status == 200
    assert page.locator("#room-actions-panel [data-read-only]").count() == 1
    assert page.locator("#room-actions-panel .btn-money, #room-actions-panel .btn-operate, "
                        "#room-actions-panel .btn-danger").count() == 0
