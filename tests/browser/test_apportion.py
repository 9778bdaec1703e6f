"""Common-area apportionment (公摊) in a real browser: the group made through the form
(rooms ticked, sub-meters typed), a period previewed with every room's share and formula
and the loss ratio flagged, then approved. The estate and its hand-worked figures are
tests/integration/test_apportion.py's (group A: R002 26.67, R003 0.00, R004 13.33 yuan;
loss 40.00 % over the 5 % threshold). Screenshots: .local/screenshots/apportion-*."""

from __future__ import annotations

import pytest

from testkit import admins
from tests.browser.conftest import SIZES, sign_in
from tests.integration.test_apportion import PERIOD, Estate


@pytest.mark.parametrize("width,height", SIZES)
def test_group_form_preview_and_approval(live_app, page_at, screenshot, aws, monkeypatch, width, height):
    estate = Estate(monkeypatch)
    owner = admins.make_admin(estate.pid, role="owner")
    page = page_at(width, height)
    sign_in(page, live_app, owner)

    page.goto(live_app(f"/p/{estate.pid}/apportion"))
    assert page.locator("nav.sidenav a.active").get_attribute("href") == f"/p/{estate.pid}/apportion"
    assert "还没有公摊组" in page.inner_text("#apportion-groups")
    page.click("#new-group")
    page.fill("#name", "1 号楼公区照明")
    page.select_option("#master_meter", estate.master)
    page.select_option("#usage_mode", "master_minus_subs")
    page.select_option("#method", "usage")
    for room in ("R002", "R003", "R004", "R005"):
        page.check(f"input[name=member][value='B1/{room}']")
    page.fill("input[name='subs:B1/R002']", estate.meters["R002"])
    page.fill("input[name='subs:B1/R003']", estate.meters["R003"])
    if width == SIZES[0][0]:
        screenshot(page, "apportion-form")
    with page.expect_navigation():
        page.click("#save-group")
    assert "已创建公摊组「1 号楼公区照明」" in page.inner_text("#flashes")

    page.fill("#period", PERIOD)
    with page.expect_navigation():
        page.click("#preview-form button[type=submit]")
    rows = page.locator("#shares tbody tr")
    assert rows.count() == 3  # R005 is vacant and vacant rooms are out
    assert [rows.nth(i).locator("td.amount").inner_text() for i in range(3)] == ["26.67", "0.00", "13.33"]
    assert rows.nth(0).locator("td.formula").inner_text() == \
        "公摊电量 40.00 kWh × 1.00 元/kWh = 40.00 元，按用量 40.00/60.00 kWh 分摊 = 26.67 元"
    assert "40.00%" in page.inner_text("#loss") and page.locator("#loss .badge-danger").is_visible()
    assert page.inner_text("#shares-total") == "40.00" and page.inner_text("#run-status") == "待审批"
    screenshot(page, "apportion-preview")

    with page.expect_navigation():
        page.click("#approve")
    assert page.inner_text("#run-status") == "已入账"
    assert "已审批入账：2 户，合计 40.00 元" in page.inner_text("#flashes")
    assert page.locator("#approve").count() == 0
    page.goto(live_app(f"/p/{estate.pid}/apportion"))
    assert "已入账" in page.inner_text("#apportion-groups") and "损耗 40.00%" in page.inner_text("#apportion-groups")
    screenshot(page, "apportion-list")
