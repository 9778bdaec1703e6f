"""The console's flows in Chromium, as an admin does them (issue 11, "Tests and demo"),
against the live app on the test's moto emulator with a real bridge polling simulated
Modbus meters and the uplink consumer delivering what it sends:

1. log in through the form;                 2. find a room by tenant name (monitor search);
3. counter-recharge a cut account and see balance and supply restored, the relay closed
   as read back by the simulated meter;     4. trip and close a meter with a reason, each
   confirmed by the meter;                  5. each of these in the audit log (审计日志);
6. a viewer sees no action buttons and a POST of an action gets 403;
7. another property's admin gets 404 for the room;
8. a form posted without its CSRF token is refused, nothing changed;
9. five bad passwords lock the login (the one generic message); the right password is
   refused until the lock ends (an injected clock moves 15 minutes, no sleeping).

Screenshots of every console page passed through, at 1366x900 and 1024x768:
.local/screenshots/flow-<step>-<width>x<height>.png.

The property (worked by hand; tariff 1.0000 yuan/kWh flat, overdraft 0, restore line 0):
- 101 欧阳晓雯: opening 2.00 yuan; its meter (bus address 1, 12 kW load) runs for one hour
  of the simulator's own clock (14:00-15:00 Beijing, a flat hour): 12.00 kWh -> 12.00 yuan
  -> balance -10.00, below the cut line 0: cut, TRIP, the meter opens. Counter cash 50.00
  -> 40.00, above the restore line: CLOSE, the meter closes.
- 102 司马建国: opening 200.00 yuan, a meter with no load (address 2): tripped and closed
  by hand.
- 103 上官婉儿: opening 80.00 yuan, no meter.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bridge.config import parse_config
from bridge.runtime import Bridge
from bridge.simulator import SimBus, SimMeter
from core.domain.admins import LOCK_FOR, LOGIN_FAILED_MESSAGE
from core.integrations.queues import uplink_url
from core.services import directory
from core.services.admin_auth import AdminAuth
from core.services.ingest import Ingest
from core.store import meters as meters_store
from functions import uplink_consumer
from infra.fakes.sitesim import drain_uplink
from miniprogram_api.admin_auth import CSRF_MESSAGE
from miniprogram_api.admin_auth import SERVICE_KEY as ADMIN_AUTH_KEY
from testkit import admins
from testkit.builders import Clock, Metered, World, uid
from tests.browser.conftest import SIZES, sign_in

SH = ZoneInfo("Asia/Shanghai")
ROOMS = (  # room, tenant, phone, opening balance (fen)
    ("R101", "欧阳晓雯", "13900000101", 200),
    ("R102", "司马建国", "13900000102", 20_000),
    ("R103", "上官婉儿", "13900000103", 8_000),
)


# --- the site: a bridge, two simulated meters, the uplink consumer ------------------------


def wait_for(predicate, timeout: float = 25.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:.0f} s")
        time.sleep(0.1)


class Consumer:
    """The uplink consumer Lambda, fed by a thread the way its SQS event source would."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True, name="uplink-consumer")

    def _run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                drain_uplink(uplink_url(), uplink_consumer.handler)
            except Exception as e:  # kept for the test's messages; the loop goes on, as Lambda retries
                self.errors.append(repr(e))


@pytest.fixture(scope="module")
def rig(aws, tmp_path_factory):
    w = Metered()
    company = uid("co")
    accounts = {}
    for room, tenant, phone, opening in ROOMS:
        tenant_id = uid("t")
        directory.register_tenant(w.property_id, tenant_id, tenant, phone)
        directory.add_room(w.property_id, w.building_id, "F1", room, room[1:], "30")
        accounts[room] = uid("a")
        directory.open_account(w.property_id, accounts[room], w.building_id, room, tenant_id, room[1:],
                               opening_balance=opening, overdraft_limit=0)
    # rated high: a simulated hour arrives in one poll of real time and must not look like a jump
    meters = {room: w.meter(accounts[room], rated_kw="1000000") for room in ("R101", "R102")}  # addresses 1, 2
    sim_clock = Clock(datetime(2026, 11, 20, 14, 0, tzinfo=SH))  # the meters' own time: moves when we move it
    sims = {"R101": SimMeter("acrel-ddsy1352", 1, load_kw="12", total="100.00", clock=sim_clock),
            "R102": SimMeter("acrel-ddsy1352", 2, load_kw="0", total="500.00", clock=sim_clock)}
    bus = SimBus(list(sims.values())).start()
    doc = {
        "site_id": w.site.site_id, "secret": w.site.secret, "state_dir": str(tmp_path_factory.mktemp("bridge")),
        "heartbeat_seconds": 5,
        "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink_url(),
                  "down_queue_url": w.site.down_queue, "endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
        "buses": [{"name": "bus1", "type": "tcp", "host": "127.0.0.1", "port": bus.port, "framing": "rtu",
                   "timeout": 0.3, "meters": [{"meter_id": meters[room], "address": sim.device_id,
                                               "model": "acrel-ddsy1352", "poll_seconds": 0.4}
                                              for room, sim in sims.items()]}],
    }
    warm, uplink_consumer.ingest = uplink_consumer.ingest, Ingest()
    consumer = Consumer()
    consumer.thread.start()
    bridge = Bridge(parse_config(doc))
    thread = bridge.run_in_thread()
    try:
        wait_for(lambda: all(meters_store.load_meter(m).baseline for m in meters.values()), what="first readings")
        sim_clock.advance(hours=1)  # 101 uses 12.00 kWh: -12.00 yuan, from 2.00 to -10.00: cut
        wait_for(lambda: str(meters_store.load_meter(meters["R101"]).relay_state) == "open"
                 and not sims["R101"].supply_on, what="101 cut and its meter open")
        yield {"w": w, "pid": w.property_id, "company": company, "accounts": accounts, "meters": meters,
               "sims": sims, "consumer": consumer,
               "owner": admins.make_admin(w.property_id, company_id=company, name="前台王芳")}
    finally:
        bridge.stop()
        thread.join(timeout=3)  # its long poll of the down queue may outlive the test: a daemon thread
        bus.stop()
        consumer.stop.set()
        consumer.thread.join(timeout=10)
        drain_uplink(uplink_url(), uplink_consumer.handler)  # leave the shared uplink queue empty
        uplink_consumer.ingest = warm


# --- helpers ---------------------------------------------------------------------------------


def shoot(page, screenshot, step: str) -> list:
    """The page as it is now at both sizes (flow-<step>-WxH.png); nothing wider than the screen."""
    original = page.viewport_size
    page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page draws the sticky bars mid-page
    paths = []
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        paths.append(screenshot(page, f"flow-{step}"))
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{page.url} is {overflow}px wide at {width}x{height}"
    page.set_viewport_size(original)
    return paths


def room_url(live_app, rig, room: str) -> str:
    return live_app(f"/p/{rig['pid']}/rooms/{rig['w'].building_id}/{room}")


def poll_page(page, check, what: str, timeout: float = 25.0) -> None:
    """Reload the page until check() holds (short waits, no long sleeps)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen on {page.url} within {timeout:.0f} s")
        page.wait_for_timeout(250)
        page.reload()


def relay(page, meter_id: str) -> str | None:
    """The relay state the room page shows for a meter (last read back), None while a command is in flight."""
    meter = page.locator(f'.meter[data-meter="{meter_id}"]')
    if meter.locator("[data-inflight]").count():
        return None
    return meter.locator("[data-relay]").get_attribute("data-relay")


def account_stat(page, account_id: str, stat: str) -> str:
    return page.locator(f'#acct-{account_id} [data-stat="{stat}"] .value').inner_text().strip()


def flat(text: str) -> str:
    """Text without its white space (inline markup breaks lines in inner_text)."""
    return re.sub(r"\s+", "", text)


def csrf(page) -> str:
    return page.locator('meta[name="csrf-token"]').get_attribute("content")


# --- 1, 2: log in, find a room --------------------------------------------------------------


def test_1_log_in_through_the_form(rig, live_app, page_at, screenshot):
    page = page_at(1366, 900)
    who = rig["owner"]
    page.goto(live_app("/"))  # not logged in: to the login page
    assert "/login" in page.url and page.locator("h2").inner_text() == "登录物业控制台"
    shoot(page, screenshot, "1-login")
    page.fill("#email", who.email)
    page.fill("#password", who.password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert page.url == live_app(f"/p/{rig['pid']}/rooms")  # the first granted property's room monitor
    assert page.locator("h1").inner_text() == "房间监控"
    assert "前台王芳" in page.locator(".user-menu summary").inner_text()
    assert page.locator("a.tile").count() == len(ROOMS)
    shoot(page, screenshot, "1-rooms")


def test_2_find_a_room_by_tenant_name(rig, live_app, page_at, screenshot):
    page = page_at(1366, 900)
    sign_in(page, live_app, rig["owner"])
    page.goto(live_app(f"/p/{rig['pid']}/rooms"))
    assert page.locator('a.tile[data-room="R101"]').get_attribute("data-state") == "cut"
    page.fill("#monitor-q", "司马建国")  # htmx reloads the tiles after a short pause in typing
    page.wait_for_function("() => document.querySelectorAll('#monitor-tiles a.tile').length === 1")
    tile = page.locator("#monitor-tiles a.tile")
    assert tile.get_attribute("data-room") == "R102" and "司马建国" in tile.inner_text()
    assert "¥200.00" in tile.inner_text()
    shoot(page, screenshot, "2-search")
    with page.expect_navigation():
        tile.click()
    assert page.url == room_url(live_app, rig, "R102")
    assert page.locator("h1").inner_text() == "102"


# --- 3, 4, 5: counter cash on a cut account, trip and close, the audit log ------------------


def test_3_4_5_recharge_trip_and_close_confirmed_by_the_meter_and_in_the_audit_log(
        rig, live_app, page_at, screenshot):
    page = page_at(1366, 900)
    page.on("dialog", lambda d: d.accept())  # the trip button asks "确定…分闸？"
    sign_in(page, live_app, rig["owner"])
    a101 = rig["accounts"]["R101"]
    m101, m102 = rig["meters"]["R101"], rig["meters"]["R102"]
    sim101, sim102 = rig["sims"]["R101"], rig["sims"]["R102"]

    # 3. the cut room, opened from its tile
    page.goto(live_app(f"/p/{rig['pid']}/rooms"))
    with page.expect_navigation():
        page.click('a.tile[data-room="R101"]')
    assert account_stat(page, a101, "balance") == "¥-10.00"
    assert account_stat(page, a101, "supply") == "已断电"
    assert relay(page, m101) == "open"
    assert page.locator("#room-actions-panel [data-balance]").inner_text() == "-10.00"
    shoot(page, screenshot, "3-room-cut")

    page.fill("#recharge-amount", "50.00")
    receipt_no = page.locator("#recharge-receipt").input_value()
    page.click("#form-recharge button[type=submit]")
    done = page.locator('#room-actions-panel [data-done="recharge"]')
    done.wait_for()
    assert f"已收款：50.00元，收据号{receipt_no}，余额40.00元" in flat(done.inner_text())
    assert page.locator("#room-actions-panel [data-balance]").inner_text() == "40.00"
    shoot(page, screenshot, "3-recharged")

    with page.context.expect_page() as opened:
        page.click("[data-receipt-link]")
    receipt = opened.value
    receipt.wait_for_load_state()
    assert receipt.locator("[data-receipt-no]").inner_text() == receipt_no
    assert receipt.locator("[data-receipt-amount]").inner_text() == "¥ 50.00"
    assert "欧阳晓雯" in receipt.locator(".receipt-table").inner_text()
    shoot(receipt, screenshot, "3-receipt")
    receipt.close()

    poll_page(page, lambda: relay(page, m101) == "closed", "101's relay closed, as read back")
    assert sim101.supply_on  # the meter itself: supply on
    assert account_stat(page, a101, "balance") == "¥40.00"
    assert account_stat(page, a101, "supply") == "供电中"
    states = page.locator(f"#acct-{a101} .commands-table tr[data-command]").evaluate_all(
        "rows => rows.map(r => r.dataset.state)")
    assert states.count("applied") == 2, states  # the cut's TRIP and the restore's CLOSE, both applied
    shoot(page, screenshot, "3-restored")

    # 4. trip and close room 102's meter by hand, with a reason
    page.goto(room_url(live_app, rig, "R102"))
    assert relay(page, m102) == "closed" and sim102.supply_on
    row = page.locator(f'#room-actions-panel tr[data-meter="{m102}"]')
    row.locator('button[value="TRIP"]').click()  # without a reason: refused, nothing sent
    error = page.locator('#room-actions-panel [data-form-error="relay"]')
    error.wait_for()
    assert "请填写操作原因" in error.inner_text()
    shoot(page, screenshot, "4-reason-required")
    row = page.locator(f'#room-actions-panel tr[data-meter="{m102}"]')
    row.locator('input[name="reason"]').fill("线路检修")
    row.locator('button[value="TRIP"]').click()
    done = page.locator('#room-actions-panel [data-done="relay"]')
    done.wait_for()
    assert "分闸命令" in done.inner_text()
    poll_page(page, lambda: relay(page, m102) == "open", "102's relay open, as read back")
    assert not sim102.supply_on
    assert "手动分闸" in page.locator(f'#room-actions-panel tr[data-meter="{m102}"]').inner_text()
    assert "手动分闸：线路检修" in page.locator("#room-events").inner_text()  # the meter's event, with the reason
    shoot(page, screenshot, "4-tripped")

    row = page.locator(f'#room-actions-panel tr[data-meter="{m102}"]')
    row.locator('input[name="reason"]').fill("检修完毕")
    row.locator('button[value="CLOSE"]').click()
    page.locator('#room-actions-panel [data-done="relay"]').wait_for()
    poll_page(page, lambda: relay(page, m102) == "closed", "102's relay closed, as read back")
    assert sim102.supply_on
    assert "手动分闸" not in page.locator(f'#room-actions-panel tr[data-meter="{m102}"]').inner_text()
    shoot(page, screenshot, "4-closed")

    # 5. each in the audit log, by whom, on what, before and after
    page.click('nav.sidenav a[href$="/audit"]')
    page.wait_for_url(f"**/p/{rig['pid']}/audit")
    rows = page.locator("#audit-table tbody tr")
    texts = rows.all_inner_texts()
    by_action = {}
    for text in texts:
        for name in ("柜台充值", "手动分闸", "手动合闸"):
            if name in text:
                by_action.setdefault(name, []).append(text)
    assert {k: len(v) for k, v in by_action.items()} == {"柜台充值": 1, "手动分闸": 1, "手动合闸": 1}, texts
    cash, trip, close = by_action["柜台充值"][0], by_action["手动分闸"][0], by_action["手动合闸"][0]
    assert a101 in cash and "50.00" in cash and receipt_no in cash and "前台王芳" in cash
    assert '"balance":-1000' in cash.replace(" ", "") and '"balance":4000' in cash.replace(" ", "")
    assert m102 in trip and "线路检修" in trip and '"relay":"closed"' in trip.replace(" ", "")
    assert m102 in close and "检修完毕" in close and '"relay":"open"' in close.replace(" ", "")
    assert all("前台王芳" in t for t in (trip, close))
    shoot(page, screenshot, "5-audit")

    page.select_option('select[name="action"]', "manual_trip")
    with page.expect_navigation():
        page.click(".audit-filters button[type=submit]")
    only = page.locator("#audit-table tbody tr").all_inner_texts()
    assert len(only) == 1 and "手动分闸" in only[0] and "线路检修" in only[0], only
    shoot(page, screenshot, "5-audit-filtered")
    assert not rig["consumer"].errors, rig["consumer"].errors


# --- 6, 7, 8: a viewer, another property's admin, a form without its CSRF token ---------------


def test_6_a_viewer_sees_no_action_buttons_and_a_post_gets_403(rig, live_app, page_at, screenshot):
    viewer = admins.make_admin(rig["pid"], role="viewer", company_id=rig["company"], name="只读李明")
    page = page_at(1366, 900)
    sign_in(page, live_app, viewer)
    url = room_url(live_app, rig, "R103")
    page.goto(url)
    a103 = rig["accounts"]["R103"]
    panel = page.locator("#room-actions-panel")
    assert panel.locator("[data-read-only]").inner_text() == "当前角色只能查看，不能操作。"
    assert panel.locator("button").count() == 0 and panel.locator("form").count() == 0
    assert page.locator("main button, main [type=submit]").count() == 0
    balance = account_stat(page, a103, "balance")
    assert balance == "¥80.00"
    shoot(page, screenshot, "6-viewer-room")

    token = csrf(page)
    form = page.request.post(url + "/actions/recharge", form={
        "csrf_token": token, "account_id": a103, "amount": "10.00", "receipt_no": "RCVIEWER000001"})
    assert form.status == 403
    api = page.request.post(live_app(f"/admin/api/properties/{rig['pid']}/accounts/{a103}/counter-recharges"),
                            data={"amount": 1000, "receipt_no": "RCVIEWER000002"}, headers={"X-CSRFToken": token})
    assert api.status == 403 and api.json()["error"]["code"] == "forbidden"
    m102 = rig["meters"]["R102"]
    trip = page.request.post(room_url(live_app, rig, "R102") + "/actions/relay", form={
        "csrf_token": token, "account_id": rig["accounts"]["R102"], "meter_id": m102, "op": "TRIP",
        "reason": "只读用户试图分闸"})
    assert trip.status == 403
    page.reload()
    assert account_stat(page, a103, "balance") == balance  # nothing changed
    assert rig["sims"]["R102"].supply_on and str(meters_store.load_meter(m102).relay_state) == "closed"


def test_7_another_propertys_admin_gets_404_for_the_room(rig, live_app, page_at, screenshot):
    other = World()
    stranger = admins.make_admin(other.property_id, name="别家管理员")  # the owner of another company
    page = page_at(1366, 900)
    sign_in(page, live_app, stranger)
    assert page.url == live_app(f"/p/{other.property_id}/rooms")
    token = csrf(page)
    response = page.goto(room_url(live_app, rig, "R101"))
    assert response.status == 404
    assert "欧阳晓雯" not in page.content() and rig["accounts"]["R101"] not in page.content()
    shoot(page, screenshot, "7-not-found")
    api = page.request.get(live_app(f"/admin/api/properties/{rig['pid']}/rooms/B1/R101"))
    assert api.status == 404
    post = page.request.post(room_url(live_app, rig, "R101") + "/actions/recharge", form={
        "csrf_token": token, "account_id": rig["accounts"]["R101"], "amount": "10.00",
        "receipt_no": "RCSTRANGER0001"})
    assert post.status == 404


def test_8_a_form_posted_without_its_csrf_token_is_refused(rig, live_app, page_at, screenshot):
    page = page_at(1366, 900)
    sign_in(page, live_app, rig["owner"])
    url = room_url(live_app, rig, "R103")
    page.goto(url)
    a103 = rig["accounts"]["R103"]
    assert account_stat(page, a103, "balance") == "¥80.00"

    # the real form, its hidden token removed and the header htmx would add taken off
    page.evaluate("""() => {
        document.querySelector('#form-recharge input[name="csrf_token"]').remove();
        document.addEventListener('htmx:configRequest', e => { delete e.detail.headers['X-CSRFToken']; });
    }""")
    page.fill("#recharge-amount", "10.00")
    with page.expect_response(lambda r: r.url.endswith("/actions/recharge")) as posted:
        page.click("#form-recharge button[type=submit]")
    assert posted.value.status == 400
    flash = page.locator("#flashes .flash-error")
    flash.wait_for()
    assert flash.inner_text().startswith(CSRF_MESSAGE)
    assert page.locator('#room-actions-panel [data-done="recharge"]').count() == 0
    shoot(page, screenshot, "8-csrf-refused")

    # the same as a plain post from another page's script: no token, no session of its own
    bare = page.request.post(url + "/actions/recharge", form={"account_id": a103, "amount": "10.00",
                                                               "receipt_no": "RCNOTOKEN00001"})
    assert bare.status == 400 and CSRF_MESSAGE in bare.text()
    api = page.request.post(live_app(f"/admin/api/properties/{rig['pid']}/accounts/{a103}/counter-recharges"),
                            data={"amount": 1000})
    assert api.status == 400 and api.json()["error"]["code"] == "csrf_invalid"
    page.reload()
    assert account_stat(page, a103, "balance") == "¥80.00"  # nothing changed


# --- 9: lockout ----------------------------------------------------------------------------


def test_9_five_bad_passwords_lock_the_login_until_the_lock_ends(rig, live_app, page_at, screenshot):
    app = live_app.app
    clock = Clock(datetime.now(UTC).replace(microsecond=0))  # the logins' clock: moved, not slept through
    saved = app.extensions.get(ADMIN_AUTH_KEY)
    app.extensions[ADMIN_AUTH_KEY] = AdminAuth(clock=clock)
    try:
        who = admins.make_admin(rig["pid"], company_id=rig["company"], name="锁定测试")
        page = page_at(1366, 900)

        def attempt(email: str, password: str) -> str:
            page.goto(live_app("/login"))
            page.fill("#email", email)
            page.fill("#password", password)
            with page.expect_navigation():
                page.click("button[type=submit]")
            if "/login" not in page.url:
                return "signed in"
            return page.locator("#login-error").inner_text()

        assert attempt("nobody-" + who.email, "whatever-1") == LOGIN_FAILED_MESSAGE  # an unknown login
        for n in range(5):
            assert attempt(who.email, f"wrong-password-{n}") == LOGIN_FAILED_MESSAGE
        assert attempt(who.email, who.password) == LOGIN_FAILED_MESSAGE  # locked: the same answer
        shoot(page, screenshot, "9-locked")
        clock.advance(seconds=LOCK_FOR.total_seconds() - 1)  # 14:59 later: still locked
        assert attempt(who.email, who.password) == LOGIN_FAILED_MESSAGE
        clock.advance(seconds=2)  # 15:01: the lock is over
        assert attempt(who.email, who.password) == "signed in"
        assert page.url == live_app(f"/p/{rig['pid']}/rooms")
    finally:
        if saved is None:
            app.extensions.pop(ADMIN_AUTH_KEY, None)
        else:
            app.extensions[ADMIN_AUTH_KEY] = saved

