"""Property settings (物业设置) and users (用户管理) in a real browser at a laptop's and a
tablet's size: an operator saves the protected windows (a bad grace delay refused in
Chinese first); an owner sees the company's users (a locked and a disabled one), creates
one with a random password shown once, and disables a user whose open page then lands on
the login. Screenshots: .local/screenshots/settings-*.png, users-*.png."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.store import tariffs as tariffs_store
from miniprogram_api import console_admin
from miniprogram_api.app import create_app
from testkit import admins
from testkit.builders import World, uid
from tests.browser.conftest import SIZES, LiveApp, serve, sign_in


def make_app():
    """create_app() with this area's blueprint (registered once, also when app.py has it)."""
    app = create_app()
    if console_admin.bp.name not in app.blueprints:
        app.register_blueprint(console_admin.bp)
    return app


@pytest.fixture(scope="module")
def live_app(aws) -> Iterator[LiveApp]:
    """The conftest's live app, with this area's blueprint (until app.py registers it)."""
    live = serve(make_app())
    yield live
    live.server.stop()


@pytest.mark.parametrize("width,height", SIZES)
def test_settings_page(live_app, page_at, screenshot, width, height):
    w = World()
    co = uid("co")
    who = admins.make_admin(w.property_id, role="operator", company_id=co)
    page = page_at(width, height)
    sign_in(page, live_app, who)
    assert page.goto(live_app(f"/p/{w.property_id}/settings")).status == 200
    assert page.input_value("#night_start") == "22:00" and page.input_value("#night_end") == "08:00"
    assert page.is_checked("#holidays") and not page.is_checked("#weekends")
    screenshot(page, "settings")

    page.fill("#grace_minutes", "2000")
    page.check("#weekends")
    with page.expect_navigation():
        page.click("#save-settings")
    assert page.locator("#error-grace_minutes").inner_text() == "宽限时间必须是 0 到 1440 之间的整数（分钟）"
    assert page.is_checked("#weekends")  # what was typed is kept
    assert tariffs_store.get_protection(w.property_id) == {}
    screenshot(page, "settings-error")

    page.fill("#grace_minutes", "30")
    page.fill("#night_start", "23:00")
    page.fill("#night_end", "07:00")
    with page.expect_navigation():
        page.click("#save-settings")
    assert "断电保护设置已保存" in page.locator("#flashes").inner_text()
    assert tariffs_store.get_protection(w.property_id) == {
        "night": ["23:00", "07:00"], "weekends": True, "holidays": True, "grace_minutes": 30,
        "timezone": "Asia/Shanghai"}
    assert page.input_value("#grace_minutes") == "30"
    screenshot(page, "settings-saved")

    viewer = admins.make_admin(w.property_id, role="viewer", company_id=co)
    vpage = page_at(width, height)
    sign_in(vpage, live_app, viewer)
    vpage.goto(live_app(f"/p/{w.property_id}/settings"))
    assert vpage.locator("#save-settings").count() == 0 and vpage.is_disabled("#grace_minutes")
    screenshot(vpage, "settings-viewer")


@pytest.mark.parametrize("width,height", SIZES)
def test_users_page(live_app, page_at, screenshot, width, height):
    w = World()
    co = uid("co")
    owner = admins.make_admin(w.property_id, company_id=co, name="王经理")
    operator = admins.make_admin(w.property_id, role="operator", company_id=co, name="李运营")
    locked = admins.make_admin(w.property_id, role="finance", company_id=co, name="钱财务")
    admins.make_admin(w.property_id, role="viewer", company_id=co, name="赵只读")
    page = page_at(width, height)
    for _ in range(5):  # five bad passwords lock the finance user
        page.goto(live_app("/login"))
        page.fill("#email", locked.email)
        page.fill("#password", "Wrong-password-1")
        with page.expect_navigation():
            page.click("button[type=submit]")
    op_page = page_at(width, height)
    sign_in(op_page, live_app, operator)
    sign_in(page, live_app, owner)

    assert page.goto(live_app("/company/users")).status == 200
    table = page.locator("#users")
    assert table.locator("tbody tr").count() == 4
    row = table.locator(f'tr[data-email="{locked.email}"]')
    assert "已锁定" in row.inner_text() and "财务" in row.inner_text()
    assert "正常" in table.locator(f'tr[data-email="{operator.email}"]').inner_text()
    screenshot(page, "users")

    page.click("#new-user")
    email = f"{uid('new')}@example.com"
    page.fill("#email", email)
    page.fill("#name", "孙运营")
    page.select_option("#role", "operator")
    page.check(f'input[name=property_ids][value="{w.property_id}"]')
    screenshot(page, "users-form")
    with page.expect_navigation():
        page.click("#save-user")
    password = page.locator("#new-password").inner_text()
    assert len(password) == 16
    screenshot(page, "users-password")

    page.goto(live_app("/company/users"))
    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        page.locator(f'tr[data-email="{operator.email}"] button:has-text("停用")').click()
    assert f"已停用 {operator.email}" in page.locator("#flashes").inner_text()
    assert "已停用" in page.locator(f'tr[data-email="{operator.email}"]').inner_text()
    assert page.locator(f'tr[data-email="{email}"]').count() == 1
    page.locator(f'tr[data-email="{locked.email}"] summary:has-text("重置密码")').click()
    screenshot(page, "users-after")

    op_page.goto(live_app(f"/p/{w.property_id}/rooms"))
    assert "/login" in op_page.url  # the disabled operator's session ended
