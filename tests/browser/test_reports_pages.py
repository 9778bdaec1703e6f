"""Reports (报表) in a real browser: a finance admin reaches 报表 from the nav, opens the
month's comprehensive report, downloads the Excel file — which openpyxl opens with the totals
worked by hand from the postings made through the real services (tests/integration/
test_console_reports.py `seed`, rollups brought up by their stream consumer) — and goes
through every tab (charts drawn, nothing wider than the screen) and the printable view.
Screenshots: .local/screenshots/reports-<tab>-{1366x900,1024x768}.png, reports-print-*.png."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from testkit import admins
from testkit.builders import uid
from tests.browser.conftest import SIZES, sign_in
from tests.integration.test_console_reports import seed


def _no_overflow(page) -> None:
    """Nothing pushes the page sideways (wide tables scroll inside their .table-wrap)."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), page.url


def _drawn(page, selector: str) -> None:
    """An ECharts chart drawn into the box (a canvas of its size), not the empty note."""
    page.wait_for_selector(f"{selector}[data-drawn] canvas")  # set on ECharts' "finished" (animations done)
    assert page.locator(f"{selector} canvas").first.bounding_box()["height"] > 100


def test_an_admin_exports_the_months_report_and_reads_every_tab(live_app, page_at, screenshot):
    s = seed()
    pid = s.property_id
    who = admins.make_admin(pid, role="finance", company_id=uid("co"))
    for width, height in SIZES:
        page = page_at(width, height)
        sign_in(page, live_app, who)
        page.goto(live_app(f"/p/{pid}/rooms"))
        with page.expect_navigation():
            page.click(f'nav a[href="/p/{pid}/reports"]')
        assert page.url.endswith(f"/p/{pid}/reports/monthly")
        assert page.locator("nav.sidenav a.active").get_attribute("href") == f"/p/{pid}/reports"
        page.fill('#report-filters input[name="month"]', s.month)
        with page.expect_navigation():
            page.click("#report-filters button[type=submit]")
        # 12.50 + 3.00 + 7.25 kWh; cash 50.00 + 20.00
        assert page.locator("#stat-kwh").inner_text() == "22.75"
        assert page.locator("#stat-payments").inner_text() == "70.00"
        total = page.locator('#monthly-report tr[data-mark="total"] td')
        assert total.nth(0).inner_text() == "合计" and total.last.inner_text() == "385.25"
        _no_overflow(page)
        screenshot(page, "reports-monthly")

        if width == 1366:
            with page.expect_download() as download:
                page.click("#export-xlsx")
            assert download.value.suggested_filename == f"{s.month} 月度综合报表.xlsx"
            wb = load_workbook(io.BytesIO(download.value.path().read_bytes()))
            assert wb.sheetnames == ["汇总", "1 号楼", "2 号楼"]
            summary = wb["汇总"]
            assert summary.freeze_panes == "A2"
            head = [c.value for c in summary[1]]
            assert head[:4] == ["楼栋", "房间数", "电量（kWh）", "平（kWh）"]
            last = {h: c.value for h, c in zip(head, summary[summary.max_row], strict=True)}
            assert last["楼栋"] == "合计" and last["房间数"] == 3
            # hand-worked in tests/integration/test_console_reports.py
            assert (last["电量（kWh）"], last["电费（元）"], last["水量（m³）"], last["水费（元）"]) == (22.75, 22.75, 2, 2)
            assert (last["收款（元）"], last["退款（元）"], last["其他费用（元）"], last["期末余额（元）"]) == (70, 10, 900,
                                                                                             385.25)
            assert summary.cell(summary.max_row, head.index("电费（元）") + 1).number_format == "#,##0.00"
            b1 = wb["1 号楼"]
            assert [c.value for c in b1[b1.max_row]][:3] == ["1 号楼", "小计", "2 户"]
            assert b1.cell(1, b1.max_column).value == "期末余额（元）"
            assert b1.cell(b1.max_row, b1.max_column).value == 342.5  # 225.50 + 117.00

        page.goto(live_app(f"/p/{pid}/reports/energy?granularity=month&start={s.month}&end={s.month}"))
        _drawn(page, "#energy-chart")
        assert page.locator("#energy-table tbody tr").first.locator("td").nth(1).inner_text() == "22.75"
        _no_overflow(page)
        screenshot(page, "reports-energy")

        page.goto(live_app(f"/p/{pid}/reports/top?month={s.month}"))
        _drawn(page, "#top-chart")
        assert page.locator("#top-table tbody tr").count() == 3
        _no_overflow(page)
        screenshot(page, "reports-top")

        page.goto(live_app(f"/p/{pid}/reports/income?granularity=month&start={s.month}&end={s.month}"))
        _drawn(page, "#income-chart")
        _drawn(page, "#income-pie")
        assert page.locator("#stat-income-total").inner_text() == "924.75"  # 22.75 + 2.00 + 900.00
        _no_overflow(page)
        screenshot(page, "reports-income")

        for tab in ("arrears", "loss"):
            page.goto(live_app(f"/p/{pid}/reports/{tab}?month={s.month}" if tab == "loss" else
                               f"/p/{pid}/reports/{tab}"))
            _no_overflow(page)
            screenshot(page, f"reports-{tab}")

        page.goto(live_app(f"/p/{pid}/reports/monthly?month=2026-13"))
        assert "月份格式不正确" in page.locator("#report-error").inner_text()
        screenshot(page, "reports-error")

        page.goto(live_app(f"/p/{pid}/reports/monthly?month={s.month}&format=print"))
        assert page.locator("nav.sidenav").count() == 0
        assert page.locator("#print-table-1 tr.row-total td").last.inner_text() == "385.25"
        page.emulate_media(media="print")
        assert not page.locator("#print-now").is_visible()
        screenshot(page, "reports-print")
        page.emulate_media(media="screen")
