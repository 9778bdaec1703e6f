"""The tenant's H5 pages (/h5/, docs/h5.md) in Chromium at a phone's 390x844, as a tenant
uses them, on the real stack: the live app over the test's moto emulator; the WeChat API
emulator's own OAuth login screen; the WeChat Pay emulator (orders, the WeixinJSBridge
shim that pays from the page, the signed and encrypted notification) and the notification
function behind the local API Gateway (infra/local/paystack.py); a real bridge polling a
simulated Modbus meter and the uplink consumer fed from the queue by a thread.

1. log in through WeChat's authorization screen (the emulator's), bind with a binding code
   issued by the console's service (a wrong code refused in words);
2. recharge a cut account: a bad amount refused, a payment cancelled on the sheet (nothing
   paid), then paid through the shim; the progress chain runs to "restored", the relay
   closed as the meter read it back; the balance credited on the home page;
3. the usage chart (day, month, year) drawn from the hour the meter ran;
4. a second account (the switcher), its statement paged by cursor, the orders with a receipt;
5. alarm preferences saved and read back; roommates; a lost access token refreshed;
   logging out.
Every page: no JavaScript error (page_at), nothing wider than the screen; screenshots
.local/screenshots/h5-<step>-390x844.png.

Worked by hand (tariff 1.0000 yuan/kWh flat, overdraft 0, restore line 0):
- 欧阳晓雯's account: opening 2.00 yuan; the meter (12 kW) runs one simulated hour:
  12.00 kWh -> 12.00 yuan -> balance -10.00: cut, TRIP, the meter opens. The tenant pays
  50.00 -> 40.00: CLOSE, the meter closes.
- the second account: opening 100.00 yuan and 25 corrections of +1.00 (26 entries, the
  statement's first page holds 20) -> 125.00.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bridge.config import parse_config
from bridge.runtime import Bridge
from bridge.simulator import SimBus, SimMeter
from core.domain.room_actions import show_binding_code
from core.integrations.queues import uplink_url
from core.services import bindings, directory
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import directory as dstore
from core.store import meters as meters_store
from functions import uplink_consumer
from infra.demo.wechat import jsbridge_url
from infra.fakes.sitesim import drain_uplink
from miniprogram_api.app import create_app
from testkit.builders import Clock, Metered, uid
from tests.browser.conftest import serve
from tests.browser.test_console_flows import Consumer, wait_for

SH = ZoneInfo("Asia/Shanghai")
W, H = 390, 844
NICK = "欧阳晓雯"


@pytest.fixture(scope="module")
def rig(aws, tmp_path_factory):
    from infra.local.paystack import PayStack

    saved = os.environ.get("FEIKONG_WECHATPAY_JSBRIDGE_URL")
    paystack = PayStack(time_scale=0.001).start()
    os.environ["FEIKONG_WECHATPAY_JSBRIDGE_URL"] = jsbridge_url(paystack.pay.url)
    paystack.apply_env()  # points the adapters at the emulators, seeds their secrets, forgets settings
    openid = uid("oH5")
    paystack.api.add_oauth_user(openid, NICK)
    paystack.api.add_oauth_user(uid("oOther"), "另一位微信用户")

    w = Metered()
    tenant = uid("t")
    directory.register_tenant(w.property_id, tenant, NICK, "13900000101")
    directory.add_room(w.property_id, w.building_id, "F1", "R101", "101", "30")
    directory.add_room(w.property_id, w.building_id, "F1", "R102", "102", "30")
    a1, a2 = uid("a"), uid("a")
    directory.open_account(w.property_id, a1, w.building_id, "R101", tenant, "101 欧阳晓雯",
                           opening_balance=200, overdraft_limit=0)
    directory.open_account(w.property_id, a2, w.building_id, "R102", tenant, "102 商铺",
                           opening_balance=10_000, overdraft_limit=0)
    ledger = LedgerService()
    for i in range(25):
        ledger.post(account_id=a2, entry_id=f"adj:{a2}:{i}", kind="adjust_credit", amount=100,
                    cause=f"test:adjust:{i}", actor="test", memo=f"补贴 {i + 1}")
    meter = w.meter(a1, rated_kw="1000000")  # rated high: a simulated hour arrives in one poll
    # the meter's own clock: an hour ending a few minutes ago (today, in the usage chart),
    # starting on a whole minute: where the hour crosses a time-of-use boundary its parts are
    # whole minutes (0.20 kWh each at 12 kW), so the meter's band registers, each rounded down
    # to 0.01 kWh, still add up to the 12.00 kWh of its total
    sim_clock = Clock(datetime.now(SH).replace(second=0, microsecond=0) - timedelta(minutes=70))
    sim = SimMeter("acrel-ddsy1352", 1, load_kw="12", total="100.00", clock=sim_clock)
    bus = SimBus([sim]).start()
    doc = {
        "site_id": w.site.site_id, "secret": w.site.secret, "state_dir": str(tmp_path_factory.mktemp("bridge")),
        "heartbeat_seconds": 5,
        "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink_url(),
                  "down_queue_url": w.site.down_queue, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
        "buses": [{"name": "bus1", "type": "tcp", "host": "127.0.0.1", "port": bus.port, "framing": "rtu",
                   "timeout": 0.3, "meters": [{"meter_id": meter, "address": 1, "model": "acrel-ddsy1352",
                                               "poll_seconds": 0.4}]}],
    }
    warm, uplink_consumer.ingest = uplink_consumer.ingest, Ingest()
    consumer = Consumer()
    consumer.thread.start()
    bridge = Bridge(parse_config(doc))
    thread = bridge.run_in_thread()
    live = serve(create_app())
    try:
        wait_for(lambda: meters_store.load_meter(meter).baseline, what="the first reading")
        sim_clock.advance(hours=1)  # 12.00 kWh: 2.00 - 12.00 = -10.00 yuan: cut
        wait_for(lambda: str(meters_store.load_meter(meter).relay_state) == "open" and not sim.supply_on,
                 what="the account cut and its meter open")
        # the pages are checked against the hand-worked balance of the whole hour
        wait_for(lambda: dstore.get_account(a1).balance == -1000, what="the whole hour billed (-10.00)")
        yield {"w": w, "pid": w.property_id, "a1": a1, "a2": a2, "meter": meter, "sim": sim, "openid": openid,
               "paystack": paystack, "live": live, "consumer": consumer}
    finally:
        live.server.stop()
        bridge.stop()
        thread.join(timeout=3)
        bus.stop()
        consumer.stop.set()
        consumer.thread.join(timeout=10)
        drain_uplink(uplink_url(), uplink_consumer.handler)  # leave the shared uplink queue empty
        uplink_consumer.ingest = warm
        paystack.stop()
        if saved is None:
            os.environ.pop("FEIKONG_WECHATPAY_JSBRIDGE_URL", None)
        else:
            os.environ["FEIKONG_WECHATPAY_JSBRIDGE_URL"] = saved
        from infra.local.stack import forget

        forget()


# --- helpers ---------------------------------------------------------------------------------


def shoot(page, screenshot, step: str):
    """The page as it is now (h5-<step>-390x844.png); nothing wider than the phone's screen.
    A whole-page shot would draw the sticky tab bar mid-page: it goes to the page's end."""
    page.evaluate("window.scrollTo(0, 0)")
    page.evaluate("document.querySelectorAll('.tabbar, .topbar').forEach(e => e.style.position = 'static')")
    path = screenshot(page, f"h5-{step}")
    page.evaluate("document.querySelectorAll('.tabbar, .topbar').forEach(e => e.style.position = '')")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= W, f"{page.url} is {width}px wide at {W}px"
    return path


def login(page, rig, path: str = "/h5/", screenshot=None):
    """Open a page without a session: to WeChat's (the emulator's) authorization screen,
    choose the tenant there, back to our callback and on to the page asked for."""
    live = rig["live"]
    page.goto(live(path))
    page.wait_for_url(re.compile(r".*/connect/oauth2/authorize\?.*"))
    assert page.url.startswith(rig["paystack"].api.url)
    if screenshot:
        shoot(page, screenshot, "1-wechat-login")
    page.click(f'button.user:has-text("{NICK}")')


def text(page, selector: str) -> str:
    return re.sub(r"\s+", "", page.locator(selector).inner_text())


def code_for(rig, account_id: str) -> str:
    """A binding code as the console issues it (the service behind its 发放绑定码 button)."""
    return show_binding_code(bindings.issue(rig["pid"], account_id, "前台王芳").code)


# --- 1. login and bind ---------------------------------------------------------------------------


def test_1_login_through_wechat_and_bind_with_a_code(rig, page_at, screenshot):
    page = page_at(W, H)
    login(page, rig, "/h5/", screenshot)
    page.wait_for_url(rig["live"]("/h5/bind"))  # logged in, bound to nothing yet: to the bind page
    shoot(page, screenshot, "2-bind")
    page.fill("#bind-code", "ABCD-EFGH")  # a code nobody issued: refused in words, nothing bound
    page.click("#bind-submit")
    page.locator("#bind-error").wait_for()
    assert page.locator("#bind-error").inner_text() == "绑定码无效或已过期，请向物业重新索取"
    shoot(page, screenshot, "2-bind-refused")
    page.fill("#bind-code", code_for(rig, rig["a1"]).lower())  # as a person types it
    page.click("#bind-submit")
    page.locator("#bound-place").wait_for()
    assert text(page, "#bound-place") == "测试物业·101"
    shoot(page, screenshot, "2-bound")
    page.click("#bound-home")
    page.locator("#balance").wait_for()
    assert text(page, "#balance") == "¥-10.00"
    assert page.locator("#supply").get_attribute("data-state") == "cut"
    assert "停止供电" in page.locator("#supply").inner_text() and "-10.00" in page.locator("#supply").inner_text()
    assert page.locator("#switcher").count() == 0  # one account: no switcher
    shoot(page, screenshot, "3-home-cut")


# --- 2. recharge: cancelled, then paid, and the supply back ---------------------------------------


def test_2_recharge_through_the_jsapi_shim_restores_supply(rig, page_at, screenshot):
    page = page_at(W, H)
    emu = rig["paystack"].pay
    login(page, rig, f"/h5/recharge?account={rig['a1']}")
    page.wait_for_url(re.compile(r".*/h5/recharge\?account=.*"))
    page.locator("#order:not([hidden])").wait_for()
    assert page.locator("#presets button").count() >= 3
    assert "已断电" in page.locator("#limits").inner_text()
    shoot(page, screenshot, "4-recharge")

    page.fill("#custom-amount", "五十")
    page.click("#pay")
    assert page.locator("#pay-error").inner_text().startswith("金额格式无效")  # refused on the page: no order
    assert not [r for r in emu.request_log if r["path"].startswith("/v3/pay/")]
    page.fill("#custom-amount", "50")
    assert page.locator("#pay").inner_text() == "微信支付 ¥50.00"

    # the sheet of the payment shim; cancelled: the order stays unpaid
    page.click("#pay")
    page.locator("#wxpay-emu-sheet").wait_for()
    page.wait_for_function("() => document.querySelector('#wxpay-emu-sheet .a').textContent === '¥50.00'")
    shoot(page, screenshot, "5-pay-sheet")
    page.click("#wxpay-emu-cancel")
    page.locator("#pay-error").wait_for()
    assert page.locator("#pay-error").inner_text() == "已取消支付"
    assert emu.deliveries == []  # no payment, no notification

    # paid: the chain runs to the relay closed as the meter read it back
    page.click("#pay")
    page.click("#wxpay-emu-confirm")
    progress = page.locator("#progress")
    progress.wait_for()
    shoot(page, screenshot, "6-progress")
    page.locator('#progress[data-state="restored"]').wait_for(timeout=40_000)
    steps = page.locator("#steps li").evaluate_all("els => els.map(e => [e.dataset.step, e.dataset.done])")
    assert steps == [["paid", "true"], ["credited", "true"], ["command_sent", "true"], ["relay_closed", "true"]]
    assert text(page, "#balance-after") == "当前余额¥40.00"
    assert rig["sim"].supply_on and str(meters_store.load_meter(rig["meter"]).relay_state) == "closed"
    no = progress.get_attribute("data-order")
    assert emu.order(no)["trade_state"] == "SUCCESS" and emu.order(no)["amount"]["total"] == 5000
    shoot(page, screenshot, "6-restored")

    page.click("#done-home")
    page.locator("#balance").wait_for()
    assert text(page, "#balance") == "¥40.00"
    assert page.locator("#supply").get_attribute("data-state") == "on"
    shoot(page, screenshot, "7-home-restored")


# --- 3. usage ---------------------------------------------------------------------------------------


def test_3_usage_chart_day_month_year(rig, page_at, screenshot):
    page = page_at(W, H)
    login(page, rig, f"/h5/usage?account={rig['a1']}")
    page.wait_for_url(re.compile(r".*/h5/usage\?account=.*"))
    for granularity, step in (("day", "8-usage-day"), ("month", "8-usage-month"), ("year", "8-usage-year")):
        page.click(f'.segmented button[data-granularity="{granularity}"]')
        page.wait_for_function("g => (document.querySelector('#usage-chart').dataset.loaded || '').startsWith(g + ':')",
                               arg=granularity)
        page.wait_for_function("() => parseFloat(document.querySelector('#total-kwh').textContent) === 12")
        assert page.locator("#usage-empty").is_hidden()
        assert page.locator("#usage-chart canvas").count() == 1  # ECharts drew its canvas
        assert text(page, "#total-cost") == "¥12.00"
        shoot(page, screenshot, step)
    page.click('.segmented button[data-granularity="day"]')
    page.click("#prev")  # last month: the meter did not run
    page.locator("#usage-empty:not([hidden])").wait_for()
    shoot(page, screenshot, "8-usage-empty")


# --- 4. a second account, its statement paged, orders -------------------------------------------------


def test_4_second_account_statement_pages_and_orders(rig, page_at, screenshot):
    page = page_at(W, H)
    login(page, rig, "/h5/bind")
    page.wait_for_url(rig["live"]("/h5/bind"))
    page.fill("#bind-code", code_for(rig, rig["a2"]))
    page.click("#bind-submit")
    page.click("#bound-home")
    page.locator("#switcher").wait_for()
    assert page.locator("#switcher a").count() == 2
    assert text(page, "#balance") == "¥125.00"
    shoot(page, screenshot, "9-home-two-accounts")

    page.click('[data-link="statement"]')
    page.wait_for_url(re.compile(r".*/h5/statement\?account=.*"))
    entries = page.locator("#entries > li")
    page.wait_for_function("() => document.querySelectorAll('#entries > li').length === 20")
    assert page.locator("#more").is_visible()
    shoot(page, screenshot, "10-statement")
    page.click("#more")
    page.wait_for_function("() => document.querySelectorAll('#entries > li').length === 26")
    assert page.locator("#more").is_hidden()
    ids = entries.evaluate_all("els => els.map(e => e.dataset.entry)")
    assert len(set(ids)) == 26  # the second page continues the first, nothing repeated

    page.select_option("#account-switch", rig["a1"])  # the switcher of a sub-page
    page.wait_for_url(re.compile(rf".*/h5/statement\?account={rig['a1']}"))
    page.goto(rig["live"](f"/h5/orders?account={rig['a1']}"))
    order = page.locator("#entries > li[data-order]")
    order.first.wait_for()
    assert order.count() == 2  # the one paid and the one cancelled on the sheet
    paid = page.locator('#entries > li[data-order][data-status="PAID"], #entries > li[data-order][data-status="paid"]')
    assert paid.count() == 1 and "¥50.00" in paid.inner_text() and "付款人：我" in paid.inner_text()
    paid.click()
    page.locator("#entries > li.detail").wait_for()
    assert "微信支付单号" in page.locator("#entries > li.detail").inner_text()
    shoot(page, screenshot, "11-orders")


# --- 5. preferences, roommates, a refreshed token, logging out ----------------------------------------


def test_5_preferences_members_refresh_and_logout(rig, page_at, screenshot):
    page = page_at(W, H)
    login(page, rig, f"/h5/alarms?account={rig['a1']}")
    page.locator("#prefs:not([hidden])").wait_for()
    # official-account messages need no per-message consent: the page says where reminders come from
    assert "无需逐次订阅" in page.locator("#oa-hint").inner_text()
    page.fill("#low-balance", "三十")
    page.click("#save")
    assert "格式无效" in page.locator("#prefs-error").inner_text()  # refused on the page, nothing sent
    page.fill("#low-balance", "30")
    page.check('input[name=channel][value="template"]')
    page.uncheck('input[name=channel][value="sms"]')
    page.check("#quiet-on")
    page.fill("#quiet-start", "23:00")
    page.fill("#quiet-end", "06:30")
    page.click("#save")
    page.locator("#toast:not([hidden])").wait_for()
    assert page.locator("#toast").inner_text() == "已保存"
    shoot(page, screenshot, "12-alarms")
    page.reload()
    page.locator("#prefs:not([hidden])").wait_for()
    assert page.locator("#low-balance").input_value() == "30.00"
    assert page.locator('input[name=channel][value="template"]').is_checked()
    assert not page.locator('input[name=channel][value="sms"]').is_checked()
    assert page.locator("#quiet-on").is_checked()
    assert (page.locator("#quiet-start").input_value(), page.locator("#quiet-end").input_value()) == ("23:00", "06:30")

    page.goto(rig["live"](f"/h5/members?account={rig['a1']}"))
    page.locator("#members li").first.wait_for()
    me = page.locator("#members li", has=page.locator(".badge", has_text="我"))
    assert me.count() == 1 and NICK in me.inner_text()
    shoot(page, screenshot, "13-members")

    # the access token lost (or expired): the refresh token gets a new one, no new login
    page.evaluate("sessionStorage.setItem('fk.h5.token', 'not-a-token')")
    page.goto(rig["live"]("/h5/"))
    page.locator("#balance").wait_for()
    assert page.url.startswith(rig["live"]("/h5/")) and page.evaluate("sessionStorage.getItem('fk.h5.token')") != \
        "not-a-token"

    page.click("#logout")
    page.wait_for_url(rig["live"]("/h5/signed-out"))
    assert page.evaluate("localStorage.getItem('fk.h5.refresh')") is None
    shoot(page, screenshot, "14-signed-out")


def test_callback_with_a_state_this_browser_was_not_given_is_refused(rig, page_at):
    page = page_at(W, H)
    code = rig["paystack"].api.issue_oauth_code(rig["openid"])
    resp = page.goto(rig["live"](f"/h5/oauth/callback?code={code}&state=forged"))
    assert resp.status == 400 and "请重新登录" in page.locator("#login-error").inner_text()
    assert page.evaluate("sessionStorage.getItem('fk.h5.token')") is None


def test_outside_wechat_without_the_shim_no_order_is_made(rig, page_at, setenv):
    setenv("FEIKONG_WECHATPAY_JSBRIDGE_URL", None)  # a real deployment: WeChat's browser brings the bridge
    page = page_at(W, H)
    login(page, rig, f"/h5/recharge?account={rig['a1']}")
    page.locator("#order:not([hidden])").wait_for()
    assert page.locator("script[src*='jsbridge']").count() == 0
    before = len([r for r in rig["paystack"].pay.request_log if r["path"].startswith("/v3/pay/")])
    page.fill("#custom-amount", "10")
    page.click("#pay")
    page.wait_for_function("() => document.querySelector('#pay-error').textContent !== ''", timeout=8000)
    assert page.locator("#pay-error").inner_text() == "请在微信中打开此页面完成支付"
    assert len([r for r in rig["paystack"].pay.request_log if r["path"].startswith("/v3/pay/")]) == before
