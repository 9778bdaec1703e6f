"""Browser tests: Playwright for Python (pinned in requirements-dev.txt) driving Debian's
Chromium (/usr/bin/chromium, installed by `make deps` through infra/local/browser_deps.sh;
never a browser downloaded by `playwright install`) against the real Flask app,
create_app() served by werkzeug on a free port in a thread, over the test's moto emulator.

Fixtures
- live_app: the app and its base URL (LiveApp.url; live_app("/path") is the full URL).
- browser: headless Chromium, one per test module (Playwright's sync API keeps an event
  loop of its own while it runs, so it is closed before other packages' tests run).
- page_at(width, height): a new page in its own context (zh-CN, Asia/Shanghai) at that
  viewport; closed after the test, which fails if the page raised a JavaScript error.
- logged_in_page(width, height, role="owner"): a page signed in through the real login
  form as a new admin (testkit/admins.py) granted the `world` fixture's property;
  returns (page, admin). sign_in(page, live_app, admin) does the same for any page.
- screenshot(page, name): saves .local/screenshots/<name>-<width>x<height>.png (the whole
  page) and returns its path.
SIZES are the two the console is laid out for: a laptop and a tablet.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from infra.fakes.wechatpay_emulator import BackgroundServer
from miniprogram_api.app import create_app
from testkit import admins

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FEIKONG_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / ".local" / "screenshots"
SIZES = ((1366, 900), (1024, 768))


@dataclass
class LiveApp:
    app: Flask
    url: str
    server: BackgroundServer

    def __call__(self, path: str = "/") -> str:
        return self.url + path


def serve(app: Flask) -> LiveApp:
    """Serve `app` on a free port in a background thread (stop with .server.stop())."""
    server = BackgroundServer(app).start()
    return LiveApp(app, server.url, server)


@pytest.fixture(scope="module")
def live_app(aws) -> Iterator[LiveApp]:
    live = serve(create_app())
    yield live
    live.server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make deps` installs Debian's chromium (infra/local/browser_deps.sh)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page_at(browser):
    opened = []

    def open_page(width: int, height: int):
        context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN",
                                      timezone_id="Asia/Shanghai")
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        opened.append((context, page, errors))
        return page

    yield open_page
    failures = [f"{page.url}: {e}" for _, page, errors in opened for e in errors]
    for context, _, _ in opened:
        context.close()
    assert not failures, f"JavaScript errors: {failures}"


@pytest.fixture
def screenshot():
    def save(page, name: str) -> Path:
        size = page.viewport_size
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def sign_in(page, live: LiveApp, who: admins.TestAdmin) -> None:
    """Through the login form, as a person would; ends on the page the login leads to."""
    page.goto(live("/login"))
    page.fill("#email", who.email)
    page.fill("#password", who.password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login" not in page.url, page.locator("#login-error").all_inner_texts()


@pytest.fixture
def logged_in_page(live_app, page_at, world):
    def open_page(width: int, height: int, role: str = "owner"):
        who = admins.make_admin(world.property_id, role=role)
        page = page_at(width, height)
        sign_in(page, live_app, who)
        return page, who

    return open_page
