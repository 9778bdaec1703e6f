"""Tariffs (电价方案) and anomaly review (异常审核) in a real browser, at a laptop's and a
tablet's size: a plan made through the form (the time-of-use part shown by the mode
switch), a bad time range refused in Chinese, the preview's hand-worked figure, an
anomaly approved by clicking, and a viewer without buttons. Screenshots:
.local/screenshots/tariffs-list-*, tariffs-form-*, tariffs-preview-*, anomalies-*."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from core.domain.rating import MeterReading
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from testkit import admins
from testkit.builders import Clock, Metered, uid
from tests.browser.conftest import SIZES, sign_in

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def estate(aws):
    """A property with a flat 1.00 yuan/kWh plan and two meters held for review (gaps of
    20 kWh and 9 kWh), and its owner."""
    w = Metered()
    ingest = Ingest(clock=Clock(T0 + timedelta(days=2)))
    meters = []
    for _ in range(2):
        acct = w.account(opening=10_000)
        meter = w.meter(acct, rated_kw="10")
        for seq, hours, total in ((1, 0, "0"), (2, 10, "20.00"), (3, 11, "21.00"), (4, 30, "30.00")):
            ingest.reading(w.site.site_id, MeterReading(meter, seq, T0 + timedelta(hours=hours), Decimal(total)))
        meters.append((acct, meter))
    owner = admins.make_admin(w.property_id, role="owner")
    return w, owner, meters


def fill_tou_plan(page, plan_id: str) -> None:
    page.fill("#plan_id", plan_id)
    page.fill("#name", "工商业分时电价")
    page.fill("#effective_from", "2026-01-01T00:00")
    page.check("input[name=mode][value=tou]")
    assert page.is_hidden("#price") and page.is_visible("#price_peak")
    for period, price in (("sharp", "1.2000"), ("peak", "1.0000"), ("flat", "0.6000"), ("valley", "0.3000")):
        page.fill(f"#price_{period}", price)


@pytest.mark.parametrize("width,height", SIZES)
def test_tariffs_pages_and_the_review_queue(live_app, page_at, screenshot, estate, width, height):
    w, owner, meters = estate
    pid = w.property_id
    page = page_at(width, height)
    sign_in(page, live_app, owner)

    # a new plan through the form: the default day (7 ranges), a bad range first
    page.goto(live_app(f"/p/{pid}/tariffs"))
    page.click("#tariff-new")
    plan_id = uid("tou")
    fill_tou_plan(page, plan_id)
    page.fill("input[name=iv_end_1]", "11:00")  # 08:00-11:00, then 10:00-12:00: overlap
    with page.expect_navigation():
        page.click("#tariff-save")
    assert "重叠" in page.inner_text("#form-error")
    assert page.is_visible("#price_peak")  # the form keeps what was typed
    screenshot(page, "tariffs-form")
    page.fill("input[name=iv_end_1]", "10:00")
    with page.expect_navigation():
        page.click("#tariff-save")
    assert page.url.endswith(f"/p/{pid}/tariffs")
    assert "已创建电价方案「工商业分时电价」" in page.inner_text("#flashes")
    card = page.locator(f"#plan-{plan_id}")
    assert "17:00–19:00 尖" in card.inner_text()
    screenshot(page, "tariffs-list")

    # 电价试算: 10:00-14:00, 8 kWh spread by time: 2 h peak (4 x 1.00) + 2 h flat (4 x 0.60) = 6.40
    card.get_by_text("电价试算").click()
    page.fill("#start_at", "2026-12-01T10:00")
    page.fill("#end_at", "2026-12-01T14:00")
    page.fill("#start_total", "100")
    page.fill("#end_total", "108")
    with page.expect_navigation():
        page.click("#preview-run")
    assert page.inner_text("#preview-total") == "6.40"
    assert page.inner_text("#preview-sum") == "6.4"
    screenshot(page, "tariffs-preview")

    # the review queue: approve the first meter's 20 kWh gap (flat 1.00: 20.00 yuan) by clicking
    page.goto(live_app(f"/p/{pid}/anomalies"))
    screenshot(page, "anomalies")
    acct, meter = meters[0] if width == SIZES[0][0] else meters[1]
    before = LedgerService().balance(acct)
    row = page.locator(f"tr[data-meter='{meter}']").filter(has_text="20.00 kWh")
    with page.expect_navigation():
        row.locator("button.approve").click()
    assert "已审核通过，计费 20.00 元" in page.inner_text("#flashes")
    assert LedgerService().balance(acct) == before - 2000
    # reject the 9 kWh one without a reason: refused in Chinese, nothing done
    row = page.locator(f"tr[data-meter='{meter}']").filter(has_text="9.00 kWh")
    row.locator("input[name=reason]").evaluate("e => e.removeAttribute('required')")
    with page.expect_navigation():
        row.locator("button.reject").click()
    assert "请填写驳回原因" in page.inner_text("#review-error")
    assert LedgerService().balance(acct) == before - 2000


def test_a_viewer_sees_the_pages_without_buttons(live_app, page_at, estate):
    w, owner, _ = estate
    viewer = admins.make_admin(w.property_id, role="viewer", company_id=owner.company_id)
    page = page_at(*SIZES[0])
    sign_in(page, live_app, viewer)
    page.goto(live_app(f"/p/{w.property_id}/tariffs"))
    assert page.locator("#tariff-new").count() == 0 and page.locator("#import-file").count() == 0
    page.goto(live_app(f"/p/{w.property_id}/anomalies"))
    assert page.locator("#anomaly-queue tbody tr").count() >= 1
    assert page.locator("button.approve").count() == 0 and page.locator("button.reject").count() == 0
    assert page.goto(live_app(f"/p/{w.property_id}/tariffs/new")).status == 403
