"""Bills (账单) in a real browser at a laptop's size: a finance admin reaches 账单 from the
nav, filters the list, opens a bill (lines with formulas), records a counter payment and
sees the status change; the period's preview lists each room's charges.
Screenshots: .local/screenshots/billing-*-1366x900.png."""

from __future__ import annotations

from core.services import charge_items
from core.services.bills import Bills
from testkit import admins
from testkit.builders import World, uid
from tests.browser.conftest import sign_in


def test_bills_pages(live_app, page_at, screenshot):
    w = World()
    accounts = [w.account(opening=2000, overdraft=0) for _ in range(3)]
    pid = w.property_id
    charge_items.create(pid, {"item_id": "fee", "name": "物业费", "category": "property_fee", "basis": "area",
                              "price": "2.35", "cycle": "month", "start": "2026-04-10", "due_days": "30"}, "setup")
    charge_items.create(pid, {"item_id": "svc", "name": "服务费", "category": "service_fee", "basis": "fixed",
                              "price": "30", "cycle": "month", "start": "2026-01-01", "mode": "deduct"}, "setup")
    charge_items.run(pid, "2026-04", "setup")
    bills = Bills()
    first = f"{accounts[0]}:2026-04"
    for action in ("confirm", "issue"):
        bills.transition(pid, first, action, "setup")
    who = admins.make_admin(pid, role="finance", company_id=uid("co"))
    page = page_at(1366, 900)
    sign_in(page, live_app, who)
    page.goto(live_app(f"/p/{pid}/rooms"))
    with page.expect_navigation():
        page.click(f'nav a[href="/p/{pid}/bills"]')
    # 30.00 m² × 2.35 × 21/30 = 49.35 元 billed; 30.00 元 service fee: 20.00 deducted, 10.00 billed
    assert page.locator("#bills tbody tr[data-bill]").count() == 3
    assert page.locator(f'tr[data-bill="{first}"] td.num').first.inner_text() == "59.35"
    screenshot(page, "billing-list")

    with page.expect_navigation():
        page.click(f'tr[data-bill="{first}"] a')
    assert "30.00 m² × 2.35 元/m²/月 × 21/30 天" in page.locator("#bill-lines").inner_text()
    assert "预付余额不足：已从余额扣 20.00 元，差额 10.00 元转入账单" in page.locator("#bill-lines").inner_text()
    page.fill("#payment_id", "R-2026-0001")
    page.fill("#amount", "20.00")
    with page.expect_navigation():
        page.click("#pay")
    assert "已登记缴费 20.00 元" in page.locator("#flashes").inner_text()
    assert page.locator("#bill-paid").inner_text() == "20.00"
    screenshot(page, "billing-bill")

    page.goto(live_app(f"/p/{pid}/bills/run?period=2026-04"))
    assert page.locator("#preview-total").inner_text() == "238.05"  # 3 × (49.35 + 30.00)
    screenshot(page, "billing-run")
