"""Batch operations in a real browser (docs/batch.md): an admin picks 批量分闸 for a building of
50 rooms, reads the dry run, confirms, and watches the progress bar and the per-item results
fill in (htmx polls the progress while the worker handles the queue's messages, one at a
time, driven by the test: no sleeping); the site then trips every meter and reads it back.
Screenshots: .local/screenshots/batch-new-*.png, batch-dry-run-*, batch-progress-*, batch-done-*."""

from __future__ import annotations

import boto3
import pytest

from core.integrations.queues import batch_url, uplink_url
from core.services.batch import Batch
from core.store import meters as mstore
from functions import batch as batch_fn
from functions import uplink_consumer
from infra.fakes.sitesim import LambdaContext, SimMeter, drain_uplink, sqs_record
from miniprogram_api.console_batch import SERVICE_KEY
from testkit.builders import Metered

ROOMS = 50


@pytest.fixture
def world(aws):
    """The property the signed-in admin is granted: 50 rooms, each an account and a meter."""
    return Metered()


def handle_one() -> int:
    """The worker handles the next message of the batch queue; returns its items."""
    sqs = boto3.client("sqs")
    got = sqs.receive_message(QueueUrl=batch_url(), MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
    for m in got:
        assert batch_fn.worker({"Records": [sqs_record(m, batch_url())]}, LambdaContext()) == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=batch_url(), ReceiptHandle=m["ReceiptHandle"])
    return len(got)


def test_a_batch_trip_of_50_rooms_shows_progress_and_per_item_results(live_app, logged_in_page, world, screenshot,
                                                                      monkeypatch):
    meters = [world.meter(world.account(opening=5000)) for _ in range(ROOMS)]
    site = world.sim()
    for m in meters:
        site.add(SimMeter(m))
    # messages of 10 items (5 in all) so that the progress moves in steps the test can see
    live_app.app.extensions[SERVICE_KEY] = Batch(per_message=10)
    monkeypatch.setattr("core.services.batch._default", Batch())
    sqs = boto3.client("sqs")
    while got := sqs.receive_message(QueueUrl=batch_url(), MaxNumberOfMessages=10).get("Messages"):
        for m in got:
            sqs.delete_message(QueueUrl=batch_url(), ReceiptHandle=m["ReceiptHandle"])
    try:
        page, _ = logged_in_page(1366, 900)
        assert page.goto(live_app(f"/p/{world.property_id}/batch")).status == 200
        assert "批量操作" in page.locator(".sidenav a[aria-current=page]").inner_text()
        page.click("#new-task")
        page.check("input[name=op][value=trip]")
        assert page.locator("input[name=reason]").is_visible() and not page.locator("input[name=amount]").is_visible()
        page.fill("input[name=reason]", "线路检修")
        page.check("input[name=buildings][value=B1]")
        screenshot(page, "batch-new")
        with page.expect_navigation():
            page.click("#preview-button")
        rows = page.locator("#batch-items tbody tr")
        assert rows.count() == ROOMS
        assert rows.first.locator("td").nth(3).inner_text() == "分闸（手动保持）"
        assert page.locator("#confirm").inner_text() == f"确认执行 {ROOMS} 项"
        screenshot(page, "batch-dry-run")

        with page.expect_navigation():
            page.click("#confirm")
        assert page.locator("#task-state").inner_text() == "执行中"
        assert page.locator("#cancel").inner_text() == "取消未开始的项目"
        assert page.locator("#batch-bar em").inner_text() == f"0%（0/{ROOMS}）"
        # two messages handled: the page shows 20 of 50 without a reload (htmx every 2 s)
        assert handle_one() == 1 and handle_one() == 1
        page.wait_for_selector(f"#batch-bar em:text('40%（20/{ROOMS}）')", timeout=10_000)
        assert page.locator("#count-done").inner_text() == "20"
        assert page.locator("#batch-items tr[data-state=done]").count() == 20
        assert page.locator("#batch-items tr[data-state=pending]").count() == 30
        screenshot(page, "batch-progress")

        while handle_one():
            pass
        page.wait_for_selector("#batch-progress[data-settled=true]", timeout=10_000)
        assert page.locator("#batch-bar em").inner_text() == f"100%（{ROOMS}/{ROOMS}）"
        assert page.locator("#task-state").inner_text() == "已完成"
        assert page.locator("#cancel").count() == 0 and page.locator("#retry").count() == 0  # nothing left to do
        done = page.locator("#batch-items tr[data-state=done]")
        assert done.count() == ROOMS
        assert done.first.locator("td").nth(3).inner_text() == "已下发分闸命令"
        assert done.first.locator("td").nth(4).inner_text().startswith("命令 trip-")
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, "batch-done")
    finally:
        live_app.app.extensions.pop(SERVICE_KEY, None)

    # the control path carried it out: every meter tripped and read back open
    assert len(site.take_commands()) == ROOMS
    drain_uplink(uplink_url(), uplink_consumer.handler)
    assert {str(mstore.load_meter(m).relay_state) for m in meters} == {"open"}
    assert not any(site.meters[m].relay_closed for m in meters)
