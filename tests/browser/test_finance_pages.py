"""财务 in a real browser at a laptop's size: a finance admin reaches 订单流水 from the nav,
reads the movements with their totals, filters them, turns the page; then 对账 shows the day's
WeChat trade bill against our orders (through the WeChat Pay emulator) and the admin marks a
mismatch reviewed. Screenshots: .local/screenshots/finance-*-1366x900.png."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import requests

from core.services.finance import Finance
from core.services.ledger import LedgerService
from core.services.payments import Payments
from testkit import admins
from testkit.apistack import ApiStack
from testkit.builders import World, uid
from tests.browser.conftest import sign_in


def test_order_list_and_reconciliation(live_app, page_at, screenshot, monkeypatch):
    w = World()
    pid = w.property_id
    account = w.account(opening=0)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    stack = ApiStack(monkeypatch)
    try:
        auth = stack.login(openid)

        def recharge(amount: int) -> str:
            r = requests.post(f"{stack.base}/api/v1/recharges", json={"account_id": account, "amount": amount},
                              headers=auth, timeout=10)
            return r.json()["out_trade_no"]

        paid = recharge(8000)
        stack.pay.pay(paid)
        assert stack.pay.wait_for_deliveries(10)
        stack.pay.set_bill_amount(paid, 7990)  # WeChat's bill says 79.90
        missed = recharge(2000)
        stack.pay.lose_notification(missed)
        stack.pay.pay(missed)
        p = Payments()
        for i in range(55):  # counter cash of 1.00 + i fen: 56 rows with the WeChat order, two pages
            p.counter_recharge(pid, account, 100 + i, f"RCB{i:05d}", "cash", "admin-1")
        p.counter_refund(pid, account, 300, "RFB00001", "admin-1")
        LedgerService().post(account_id=account, entry_id="adj:browser", kind="adjust_debit", amount=150,
                             cause="admin:fix", actor="admin-1", memo="多充冲正")
        day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
        Finance().reconcile(day)  # credits the missed order (its notification was lost)
        Finance().backfill(pid)  # the journal, as the stream consumer writes it
    finally:
        stack.stop()

    who = admins.make_admin(pid, role="finance", company_id=uid("co"))
    page = page_at(1366, 900)
    sign_in(page, live_app, who)
    page.goto(live_app(f"/p/{pid}/rooms"))
    with page.expect_navigation():
        page.click(f'nav a[href="/p/{pid}/finance"]')
    assert page.url.endswith(f"/p/{pid}/finance/orders")
    # in: 80.00 + 20.00 + Σ(1.00 .. 1.54) = 100.00 + 69.85 = 169.85; out: 3.00
    assert page.locator("#total-count").inner_text() == "59"
    assert page.locator("#total-received").inner_text() == "169.85"
    assert page.locator("#total-paid-out").inner_text() == "3.00"
    assert page.locator("#total-net").inner_text() == "166.85"
    assert page.locator("#total-adjusted").inner_text() == "-1.50"
    assert page.locator("#orders tbody tr[data-ref]").count() == 50
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # nothing wider than the screen
    screenshot(page, "finance-orders")

    with page.expect_navigation():
        page.click("#next-page")
    assert page.locator("#orders tbody tr[data-ref]").count() == 9

    page.select_option('select[name="type"]', "wechat_recharge")
    with page.expect_navigation():
        page.click('#order-filters button[type="submit"]')
    assert page.locator("#orders tbody tr[data-ref]").count() == 2
    assert page.locator("#total-received").inner_text() == "100.00"
    screenshot(page, "finance-orders-filtered")

    page.goto(live_app(f"/p/{pid}/finance/orders?from=2026-13-01"))
    assert "开始日期格式应为 YYYY-MM-DD" in page.locator("#filter-error").inner_text()

    with page.expect_navigation():
        page.click("#tab-reconcile")
    rows = page.locator("#recon-rows tbody tr[data-no]")
    assert rows.count() == 2
    assert page.locator(f'tr[data-no="{missed}"]').get_attribute("data-action") == "credited"
    assert "已补记入账" in page.locator(f'tr[data-no="{missed}"]').inner_text()
    assert page.locator(f'tr[data-no="{paid}"]').get_attribute("data-kind") == "amount_differs"
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    screenshot(page, "finance-reconcile")

    page.fill(f'tr[data-no="{paid}"] input[name="note"]', "微信账单金额有误，已联系微信支付核实")
    with page.expect_navigation():
        page.click(f'tr[data-no="{paid}"] button[type="submit"]')
    assert f"已标记为已核查：{paid}" in page.locator("#flashes").inner_text()
    assert "已核查" in page.locator(f'tr[data-no="{paid}"]').inner_text()
    screenshot(page, "finance-reviewed")
