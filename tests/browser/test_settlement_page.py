"""退租结算 in Chromium (docs/billing.md "Move-in, move-out and transfer"): the room's action
panel links to it; the form previews the settlement (nothing written), the admin confirms,
the printable statement follows. Screenshot of the preview under .local/screenshots/."""

from __future__ import annotations

from miniprogram_api.app import create_app
from miniprogram_api.console_actions import SERVICE_KEY
from testkit import admins
from tests.browser.conftest import serve, sign_in
from tests.integration.test_move_out import DAY, Flat, fee, rent


def test_preview_then_confirm_in_the_browser(aws, page_at, screenshot):
    f = Flat(200_000, [rent(), fee()])
    f.read("1000.00", 3)
    f.read("1010.00", 2)
    f.actions.move_out.deposits.take(f.admin, f.pid, f.account, 50_000, "cash", "DEPBR0001")
    app = create_app()
    app.extensions[SERVICE_KEY] = f.actions
    live = serve(app)
    try:
        page = page_at(1366, 900)
        sign_in(page, live, admins.make_admin(f.pid))
        page.goto(live(f"/p/{f.pid}/rooms/B1/R001/actions"))
        page.click("[data-settlement-link]")
        page.fill("input[name=day]", DAY)
        page.fill(f"input[name=r_{f.meter}]", "1012.50")
        page.click("#preview")
        preview = page.locator("#settlement-preview")
        assert preview.locator("[data-refund-total]").inner_text().strip() == "¥ 2144.92"
        assert "退还 677.42 元" in preview.locator("[data-item='rent:2030-03']").inner_text()
        screenshot(page, "settlement-preview")
        page.once("dialog", lambda d: d.accept())
        with page.expect_navigation():
            page.click("#confirm-settlement")
        assert "退租结算单" in page.content()
        assert page.locator("[data-status-name]").inner_text() == "已结清"
        screenshot(page, "settlement-statement")
    finally:
        live.server.stop()
