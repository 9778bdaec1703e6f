"""The H5 bind page's second tab, 手机号验证 (docs/h5.md), in Chromium at 390x844 on the real
stack: the live app over the test's moto emulator, the WeChat API emulator's authorization
screen for the login, and the code sent through the channel port to the SMS emulator, read
back from the emulator's HTTP API as the tenant would read their phone. A wrong code is
refused in words (4 tries left), the right one binds. Screenshots: .local/screenshots/
h5-bind-phone.png (the code sent, the countdown running) and h5-bind-phone-bound-390x844.png."""

from __future__ import annotations

import os
import random
import re

import pytest
import requests

from core.services import directory
from infra.local.channelstack import ChannelStack
from miniprogram_api.app import create_app
from testkit.builders import uid
from tests.browser.conftest import SCREENSHOTS, serve

W, H = 390, 844
NICK = "林小满"


@pytest.fixture(scope="module")
def rig(aws):
    from infra.local.paystack import PayStack
    from infra.local.stack import forget

    paystack = PayStack(time_scale=0.001).start()
    paystack.apply_env()
    channels = ChannelStack(paystack.api).start()
    channels.apply_env("tencent")
    openid = uid("oBindPhone")
    paystack.api.add_oauth_user(openid, NICK)
    pid = uid("p")
    directory.create_property(pid, "阳光公寓")
    directory.add_building(pid, "B", "B 栋")
    directory.add_floor(pid, "B", "B2F", "2 层", 2)
    directory.add_room(pid, "B", "B2F", "B201", "B-201", "30")
    phone = "139" + f"{random.randrange(10 ** 8):08d}"
    tenant, account = uid("t"), uid("a")
    directory.register_tenant(pid, tenant, "王租户", phone)
    directory.open_account(pid, account, "B", "B201", tenant, "B201 王租户")
    live = serve(create_app())
    try:
        yield {"live": live, "paystack": paystack, "channels": channels, "pid": pid, "phone": phone,
               "account": account, "openid": openid}
    finally:
        live.server.stop()
        channels.stop()
        paystack.stop()
        forget()


def sms_codes(rig) -> list[str]:
    r = requests.get(f"{rig['channels'].sms.url}/emulator/messages.json", timeout=10)
    return [m["params"][0] for m in r.json()["messages"] if m["phone"] == "+86" + rig["phone"] and m["code"] == "Ok"]


def test_bind_by_phone_and_room_with_the_sms_code(rig, page_at, screenshot):
    page = page_at(W, H)
    live = rig["live"]
    page.goto(live(f"/h5/bind?property={rig['pid']}"))
    page.wait_for_url(re.compile(r".*/connect/oauth2/authorize\?.*"))
    page.click(f'button.user:has-text("{NICK}")')
    page.wait_for_url(re.compile(r".*/h5/bind\?property=.*"))
    page.click("#tab-phone")
    assert page.locator("#phone-panel").is_visible() and not page.locator("#code-panel").is_visible()
    assert not page.locator("#phone-property-field").is_visible()  # the property came with the link
    # a malformed phone is refused on the page: nothing asked
    page.fill("#phone-room", "b-201")
    page.fill("#phone-number", "12345")
    page.click("#phone-send")
    assert page.locator("#phone-error").inner_text() == "请填写 11 位手机号"
    assert sms_codes(rig) == []

    page.fill("#phone-number", rig["phone"])
    page.click("#phone-send")
    page.locator("#phone-note:not([hidden])").wait_for()
    assert page.locator("#phone-note").inner_text() == "若手机号与房间登记信息一致，验证码已发送"
    assert re.fullmatch(r"(60|59|58) 秒后重新获取", page.locator("#phone-send").inner_text())
    assert page.locator("#phone-send").is_disabled()
    [code] = sms_codes(rig)
    assert re.fullmatch(r"\d{6}", code)
    page.fill("#phone-code", code)
    # h5-bind-phone.png: the tab, the form filled, the code sent and the countdown running
    page.evaluate("document.querySelectorAll('.tabbar, .topbar').forEach(e => e.style.position = 'static')")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "h5-bind-phone.png"), full_page=True)
    page.evaluate("document.querySelectorAll('.tabbar, .topbar').forEach(e => e.style.position = '')")
    assert page.evaluate("document.documentElement.scrollWidth") <= W

    page.fill("#phone-code", f"{(int(code) + 1) % 10 ** 6:06d}")  # a wrong code: refused in words
    page.click("#phone-submit")
    page.locator("#phone-error:not(:empty)").wait_for()
    assert page.locator("#phone-error").inner_text() == "验证码错误，还可以再试 4 次"
    page.fill("#phone-code", code)
    page.click("#phone-submit")
    page.locator("#bound-place").wait_for()
    assert re.sub(r"\s+", "", page.locator("#bound-place").inner_text()) == "阳光公寓·B-201"
    screenshot(page, "h5-bind-phone-bound")
    page.click("#bound-home")
    page.locator("#balance").wait_for()
    assert os.path.exists(SCREENSHOTS / "h5-bind-phone.png")


def test_the_phone_tab_asks_for_the_property_when_the_link_has_none(rig, page_at):
    page = page_at(W, H)
    page.goto(rig["live"]("/h5/bind?tab=phone"))
    page.wait_for_url(re.compile(r".*/connect/oauth2/authorize\?.*"))
    page.click(f'button.user:has-text("{NICK}")')
    page.wait_for_url(re.compile(r".*/h5/bind\?tab=phone"))
    assert page.locator("#phone-panel").is_visible() and page.locator("#phone-property-field").is_visible()
    page.fill("#phone-room", "B-201")
    page.fill("#phone-number", rig["phone"])
    page.click("#phone-send")
    assert page.locator("#phone-error").inner_text() == "请填写物业编号"
