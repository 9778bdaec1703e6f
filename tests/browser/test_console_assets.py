"""The console's front end in a real browser: htmx and ECharts served by the app from
/static/vendor (copied from npm by `make vendor`, no CDN), the layout of
console/base.html at a laptop's and a tablet's size, the CSRF header on htmx requests and
a refused htmx request explained in Chinese. Screenshots: .local/screenshots/."""

from __future__ import annotations

import json
import struct
from types import SimpleNamespace

import pytest
import requests
from flask import abort, render_template_string, request

from miniprogram_api.app import create_app
from tests.browser.conftest import ROOT, SIZES, serve

PINNED = json.loads((ROOT / "package.json").read_text())["dependencies"]
VENDOR = {"htmx.min.js": ROOT / "node_modules/htmx.org/dist/htmx.min.js",
          "echarts.min.js": ROOT / "node_modules/echarts/dist/echarts.min.js"}


def test_vendor_files_are_the_pinned_npm_builds_served_by_the_app(live_app):
    for name, npm_file in VENDOR.items():
        r = requests.get(live_app(f"/static/vendor/{name}"), timeout=10)
        assert r.status_code == 200, name
        assert r.headers["Content-Type"].startswith("text/javascript")
        assert r.content == npm_file.read_bytes(), f"{name} is not the npm build: run `make vendor`"
    css = requests.get(live_app("/static/console.css"), timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "@font-face" not in css.text and "url(http" not in css.text  # no external fonts or assets


@pytest.mark.parametrize("width,height", SIZES)
def test_login_page_loads_htmx_from_the_app_and_echarts_is_served(live_app, page_at, screenshot, width, height):
    page = page_at(width, height)
    scripts = []
    page.on("response", lambda r: scripts.append((r.url, r.status)) if r.url.endswith(".js") else None)
    assert page.goto(live_app("/login")).status == 200
    page.wait_for_load_state("networkidle")
    # the sign-in page draws no chart: it empties base.html's echarts block
    assert scripts == [(live_app("/static/vendor/htmx.min.js"), 200)]
    assert page.evaluate("htmx.version") == PINNED["htmx.org"]
    assert page.request.get(live_app("/static/vendor/echarts.min.js")).status == 200
    assert page.locator('meta[name="csrf-token"]').get_attribute("content")  # flask-wtf's token
    assert page.locator("input[type=password]").is_visible()
    assert page.title() == "登录 · 费控"
    assert page.locator("nav.sidenav").count() == 0  # nobody signed in: no nav, no menus
    assert_fits(page, width)
    check_png(screenshot(page, "login"), width)


def test_a_signed_in_admin_gets_the_layout_with_nav_and_menu(logged_in_page, world):
    page, who = logged_in_page(1024, 768, role="finance")
    rooms = f"/p/{world.property_id}/rooms"
    assert page.url.endswith(rooms)  # / leads to the first granted property's rooms
    assert page.locator("nav.sidenav a.active").get_attribute("href") == rooms
    assert page.locator("nav.sidenav a").nth(4).get_attribute("href") == f"/p/{world.property_id}/audit"
    assert page.locator(".user-menu summary").inner_text().split() == [who.name[:1], who.name]
    assert page.locator(".user-menu .role-tag").text_content() == "财务"  # (hidden at tablet width)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token and page.locator('.user-menu-items input[name="csrf_token"]').get_attribute("value") == token
    page.locator(".user-menu summary").click()
    with page.expect_navigation():
        page.locator(".user-menu-items button", has_text="退出").click()  # POST /logout with the form's token
    assert "/login" in page.url
    page.goto(page.url.split("/login")[0] + rooms)
    assert "/login" in page.url  # the session is over


# -- the layout, on a sample page that uses every part of the stylesheet ----------------

SAMPLE = """{% extends "console/base.html" %}
{% block title %}样式示例{% endblock %}
{% block content %}
<div class="page-header"><div><div class="breadcrumb"><a href="#">阳光公寓</a> / 房间监控</div>
  <h1>房间监控</h1></div><span class="subtitle">共 24 间 · 每 5 秒刷新</span>
  <div class="actions"><button class="btn btn-primary" id="echo" hx-get="/sample/echo" hx-target="#echoed">刷新</button>
  <button class="btn btn-danger" id="refused" hx-get="/sample/refused" hx-target="#echoed">批量断电</button></div></div>
<div id="echoed" class="muted"></div>
<div class="stats">
  <div class="stat"><div class="label">房间</div><div class="value">24</div></div>
  <div class="stat stat-danger"><div class="label">欠费</div><div class="value">3</div></div>
  <div class="stat stat-warning"><div class="label">余额不足</div><div class="value">5</div></div>
  <div class="stat"><div class="label">离线电表</div><div class="value">1</div></div>
</div>
<form class="filters"><input type="search" placeholder="房间号、租户姓名或手机号">
  {% for f in ["欠费", "已断电", "离线", "余额不足", "空置"] %}<label class="chip"><input type="checkbox"{% if loop.first %} checked{% endif %}>{{ f }}</label>{% endfor %}
  <select><option>全部楼栋</option></select></form>
<div class="legend">{% for s, l in states %}<span><span class="swatch" style="background:var(--st-{{ 'low-1' if s == 'low' else s }})"></span>{{ l }}</span>{% endfor %}</div>
<section class="building card"><div class="card-header"><h2>1 号楼</h2><span class="badge badge-success">网关在线</span></div>
<div class="card-body">
{% for floor in [3, 2, 1] %}<div class="floor"><div class="floor-label">{{ floor }} 层</div><div class="tiles">
  {% for s, l in states %}<a class="tile state-{{ s }}" href="#"><span class="state-label">{{ l }}</span>
    <div class="room">{{ floor }}0{{ loop.index }}</div><div class="tenant">{{ "" if s == "vacant" else "张三丰" }}</div>
    <div class="balance">{{ {"arrears": "-12.30", "cut": "-56.00", "low": "8.20", "vacant": "—"}.get(s, "126.50") }}</div>
    <div class="meta"><span class="dot{{ ' offline' if s == 'offline' else (' open' if s == 'cut' else '') }}"></span>{{ "离线" if s == "offline" else ("分闸" if s == "cut" else "合闸") }}{% if loop.index == 4 and floor == 2 %} <span class="inflight" title="指令执行中"></span>{% endif %}</div></a>
  {% endfor %}</div></div>{% endfor %}
</div></section>
<div class="grid grid-2">
<div class="card"><div class="card-header"><h3>最近账单</h3><div class="actions"><button class="btn btn-sm btn-money">柜台充值</button>
  <button class="btn btn-sm btn-operate">合闸</button><button class="btn btn-sm btn-admin">轮换密钥</button><button class="btn btn-sm">导出</button></div></div>
<div class="card-body flush table-wrap"><table class="table"><thead><tr><th>时间</th><th>类型</th><th class="num">金额 (元)</th><th>原因</th></tr></thead>
<tbody><tr><td>2025-03-01 08:00</td><td><span class="badge badge-info">充值</span></td><td class="num">100.00</td><td>微信支付</td></tr>
<tr><td>2025-03-01 09:00</td><td><span class="badge badge-warning">电费</span></td><td class="num neg">-3.42</td><td>抄表 12.5 kWh</td></tr>
<tr><td>2025-03-01 10:00</td><td><span class="badge badge-danger">断电</span></td><td class="num">0.00</td><td>余额低于断电线</td></tr></tbody></table></div></div>
<div class="card"><div class="card-header"><h3>今日用电</h3></div><div class="card-body"><div class="chart" id="chart"></div></div></div>
</div>
{% endblock %}
{% block scripts %}<script>
echarts.init(document.getElementById("chart")).setOption({grid: {left: 40, right: 10, top: 20, bottom: 30},
  xAxis: {type: "category", data: ["0时", "4时", "8时", "12时", "16时", "20时"]}, yAxis: {type: "value", name: "kWh"},
  series: [{type: "bar", data: [0.4, 0.3, 1.2, 2.1, 1.6, 2.8], itemStyle: {color: "#2563eb"}}], animation: false});
</script>{% endblock %}
"""
STATES = [("normal", "正常"), ("low", "余额不足"), ("arrears", "欠费"), ("cut", "已断电"), ("offline", "离线"),
          ("protected", "保电"), ("vacant", "空置")]
SAMPLE_TOKEN = "sample-csrf-token"


@pytest.fixture(scope="module")
def sample(aws):
    app = create_app()

    @app.get("/sample/<property_id>/rooms")  # (the console's own /p/... routes need a login)
    def sample_page(property_id):
        return render_template_string(
            SAMPLE, states=STATES, property_id=property_id, nav_active="rooms", csrf_token=lambda: SAMPLE_TOKEN,
            admin=SimpleNamespace(name="王经理", role="owner"),
            properties=[{"property_id": "P1", "name": "阳光公寓"}, {"property_id": "P2", "name": "东湖花园"}])

    @app.get("/sample/echo")
    def echo():
        return f"X-CSRFToken: {request.headers.get('X-CSRFToken', '(none)')}"

    @app.get("/sample/refused")
    def refused():
        abort(403)

    live = serve(app)
    yield live
    live.server.stop()


@pytest.mark.parametrize("width,height", SIZES)
def test_layout_at_laptop_and_tablet_size(sample, page_at, screenshot, width, height):
    page = page_at(width, height)
    assert page.goto(sample("/sample/P1/rooms")).status == 200
    assert page.title() == "样式示例 · 费控"
    nav = page.locator("nav.sidenav a")
    assert nav.count() == 13  # the sample admin is an owner: 用户管理 too
    assert [nav.nth(i).get_attribute("href") for i in range(13)] == [
        "/p/P1/rooms", "/p/P1/tariffs", "/p/P1/anomalies", "/p/P1/sites", "/p/P1/audit", "/p/P1/refunds",
        "/p/P1/apportion", "/p/P1/bills", "/p/P1/reports", "/p/P1/finance", "/p/P1/batch", "/p/P1/settings",
        "/company/users"]
    assert page.locator("nav.sidenav a.active").get_attribute("href") == "/p/P1/rooms"
    nav_width = page.locator("nav.sidenav").bounding_box()["width"]
    if width >= 1366:  # full labels
        assert page.locator("nav.sidenav a.active .nav-full").is_visible() and nav_width == 200
    else:  # the nav collapses to a rail of short labels
        assert page.locator("nav.sidenav a.active .nav-short").inner_text() == "房间" and nav_width == 68
        assert not page.locator("nav.sidenav a.active .nav-full").is_visible()
    assert page.locator("#property-switcher option:checked").inner_text() == "阳光公寓"
    assert page.locator(".user-menu summary").inner_text().startswith("王")
    page.locator(".user-menu summary").click()
    assert page.locator(".user-menu-items a", has_text="修改密码").is_visible()
    assert page.locator(".user-menu-items button", has_text="退出").is_visible()
    page.locator(".user-menu summary").click()
    assert page.evaluate("echarts.version") == PINNED["echarts"]
    assert page.locator("#chart canvas").count() == 1  # ECharts drew
    assert_fits(page, width)
    check_png(screenshot(page, "layout-sample"), width)


def test_htmx_sends_the_csrf_token_and_explains_a_refusal(sample, page_at):
    page = page_at(1366, 900)
    page.goto(sample("/sample/P1/rooms"))
    page.click("#echo")
    page.wait_for_function("document.getElementById('echoed').textContent.length > 0")
    assert page.locator("#echoed").inner_text() == f"X-CSRFToken: {SAMPLE_TOKEN}"
    page.click("#refused")  # 403: errors.py's JSON message appears in the flash area, nothing is swapped
    alert = page.locator("#flashes .flash-error")
    alert.wait_for()
    assert alert.inner_text().startswith("没有权限")
    assert page.locator("#echoed").inner_text() == f"X-CSRFToken: {SAMPLE_TOKEN}"
    alert.locator(".flash-close").click()
    assert page.locator("#flashes .flash").count() == 0


def test_switching_property_keeps_the_section(sample, page_at):
    page = page_at(1024, 768)
    page.goto(sample("/sample/P1/rooms"))
    with page.expect_request(sample("/p/P2/rooms")) as asked:
        page.select_option("#property-switcher", label="东湖花园")
    assert asked.value.is_navigation_request()


def assert_fits(page, width: int) -> None:
    """Nothing sticks out sideways: the page scrolls only down."""
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def check_png(path, width: int) -> None:
    """A PNG as wide as the viewport, at least a screen high (full page), not a blank."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    png_width, png_height = struct.unpack(">II", data[16:24])  # IHDR
    assert png_width == width and png_height >= 600
    assert len(data) > 20_000  # a blank page compresses to a few KB
