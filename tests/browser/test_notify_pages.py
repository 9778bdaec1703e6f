"""Notification recipients (物业设置 → 通知接收人) and the delivery logs in a real browser at a
laptop's and a tablet's size: an operator reaches the page from 物业设置's tabs, adds an
official-account openid for every admin event and a mobile number for one (a bad number
refused in Chinese first), removes one; the room detail shows the account's deliveries and
通知记录 filters the property's log. Screenshots: .local/screenshots/notify-*.png."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core.domain import notifications as n
from core.store import deliveries as dstore
from core.store import notify_recipients as rstore
from testkit import admins
from testkit.builders import World, uid
from tests.browser.conftest import SIZES, sign_in

OPENID = "oAdmin_0123456789abcdefghij"


def log(w: World, account: str, kind: str, channel: str, to: str, status: str, at: datetime, detail: str = ""):
    did = n.delivery_id(f"test:{uuid.uuid4().hex}", channel, to)
    dstore.defer(did, property_id=w.property_id, account_id=account, event_ref="x", kind=kind, channel=channel,
                 recipient=n.mask(channel, to), now=at, until=at)
    dstore.finish(did, status, at, detail=detail)
    return did


@pytest.mark.parametrize("width,height", SIZES)
def test_recipients_page(live_app, page_at, screenshot, width, height):
    w = World()
    who = admins.make_admin(w.property_id, role="operator", company_id=uid("co"))
    page = page_at(width, height)
    sign_in(page, live_app, who)
    page.goto(live_app(f"/p/{w.property_id}/settings"))
    with page.expect_navigation():
        page.click("#tab-notify")
    assert page.locator(".no-recipients").count() == 6
    screenshot(page, "notify-empty")

    page.select_option("#event_type", "all")
    page.select_option("#channel", "template")
    page.fill("#to", OPENID)
    with page.expect_navigation():
        page.click("#add-recipient")
    assert "已添加接收人（6 类事件）" in page.locator("#flashes").inner_text()

    page.select_option("#event_type", "bridge_offline")
    page.select_option("#channel", "sms")
    page.fill("#to", "1380013800")
    with page.expect_navigation():
        page.click("#add-recipient")
    assert page.locator("#error-to").inner_text() == "手机号格式不正确，请填写 11 位中国大陆手机号"
    assert page.input_value("#to") == "1380013800"  # what was typed is kept
    screenshot(page, "notify-error")
    page.fill("#to", "138 0013 8000")
    with page.expect_navigation():
        page.click("#add-recipient")
    assert rstore.recipients(w.property_id, "bridge_offline") == [("template", OPENID), ("sms", "+8613800138000")]

    row = page.locator('tr[data-type="meter_offline"][data-channel="template"]')
    with page.expect_navigation():
        row.locator("button").click()
    assert rstore.recipients(w.property_id, "meter_offline") == []
    assert page.locator('tr.no-recipients[data-type="meter_offline"]').count() == 1
    widest = page.evaluate("document.documentElement.scrollWidth")
    assert widest <= width  # nothing wider than the screen
    screenshot(page, "notify-recipients")


@pytest.mark.parametrize("width,height", SIZES)
def test_delivery_logs(live_app, page_at, screenshot, width, height):
    w = World()
    account = w.account(opening=1000)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    log(w, account, "low_balance", n.SUBSCRIBE, "oTenant0123456789abcdefghijk", n.SENT, t0)
    log(w, account, "cut_imminent", n.SMS, "+8613800138000", n.RETRYING, t0 + timedelta(minutes=1),
        "provider 503")
    log(w, account, "payment_received", n.SUBSCRIBE, "oTenant0123456789abcdefghijk", n.NO_CONSENT,
        t0 + timedelta(minutes=2))
    log(w, "", "bridge_offline", n.EMAIL, "ops@example.com", n.FAILED, t0 + timedelta(minutes=3), "550 rejected")
    who = admins.make_admin(w.property_id, role="viewer", company_id=uid("co"))
    page = page_at(width, height)
    sign_in(page, live_app, who)
    page.goto(live_app(f"/p/{w.property_id}/rooms/{w.building_id}/R001"))
    box = page.locator(f"#deliveries-{account}")
    box.scroll_into_view_if_needed()
    assert box.locator("tr[data-delivery]").count() == 3
    statuses = box.locator("tr[data-delivery] td:nth-child(5)").all_inner_texts()
    assert [s.strip() for s in statuses] == ["未订阅", "重试中", "已发送"]
    page.evaluate("window.scrollTo(0, 0)")  # a whole-page picture from the top (the bar stays on top)
    screenshot(page, "notify-room-detail")

    page.goto(live_app(f"/p/{w.property_id}/settings/deliveries"))
    assert page.locator("tr[data-delivery]").count() == 4
    page.select_option("select[name=status]", "failed")
    with page.expect_navigation():
        page.click("#delivery-filters button[type=submit]")
    assert page.locator("tr[data-delivery]").count() == 1
    assert "550 rejected" in page.locator("tr[data-delivery]").inner_text()
    screenshot(page, "notify-deliveries")
