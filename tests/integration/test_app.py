"""The Flask app over real HTTP (a werkzeug server on a free port) against the emulator.
Console routes are used logged in (testkit/admins.py), as a property's owner."""

import threading

import pytest
import requests
from werkzeug.serving import make_server

from core.services.ledger import LedgerService
from infra.local.stack import free_port
from miniprogram_api import app as app_module
from testkit import admins


@pytest.fixture(params=["create_app", "create_wsgi_app"])
def server(request):
    """The one app, and zappa's: the tenant and console apps behind the path dispatcher
    (miniprogram_api/wsgi.py, tests/integration/test_app_dispatch.py)."""
    port = free_port()
    srv = make_server("127.0.0.1", port, getattr(app_module, request.param)(), threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()


@pytest.fixture
def console(server, world) -> requests.Session:
    """A browser session of the owner of the world's property, logged in."""
    return admins.logged_in(requests.Session(), admins.make_admin(world.property_id), base=server)


def test_health(server):
    r = requests.get(f"{server}/health", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok"}


def test_first_page_lists_rooms_with_balances(server, console, world):
    a = world.account(opening=12_345)
    world.account(opening=-250)
    LedgerService().post(account_id=a, entry_id="use:x", kind="energy", amount=45, cause="t", actor="t")
    r = console.get(f"{server}/", params={"property": world.property_id}, timeout=10)
    assert r.status_code == 200
    assert "测试物业" in r.text and "R001" in r.text
    assert "123.00" in r.text and "-2.50" in r.text
    assert r.url.endswith(f"/p/{world.property_id}/rooms")  # / is the room monitor (docs/console.md)
    assert r.text.count('data-state="arrears"') == 1


def test_first_page_marks_balances_below_50_yuan(server, console, world):
    world.account(opening=4_999)  # 49.99 yuan: low
    world.account(opening=5_000)  # 50.00 yuan: not low
    r = console.get(f"{server}/", params={"property": world.property_id}, timeout=10)
    assert 'data-room="R001" data-state="low"' in r.text and "¥49.99" in r.text
    assert 'data-room="R002" data-state="normal"' in r.text and "¥50.00" in r.text


def test_rooms_api(server, console, world):
    world.account(opening=500)
    r = console.get(f"{server}/admin/api/properties/{world.property_id}/buildings/B1/rooms", timeout=10)
    assert r.status_code == 200
    assert r.json()["rooms"][0]["balance_fen"] == 500 and r.json()["rooms"][0]["balance"] == "5.00"


def test_unknown_property_is_a_clear_404(server, console):
    r = console.get(f"{server}/admin/api/properties/nope/buildings/B1/rooms", timeout=10)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "property_not_found"
    assert r.json()["error"]["message"] == "物业不存在"


def test_the_console_needs_a_login(server, world):
    """No login, no console (docs/console.md): the API says 401, a page sends to /login."""
    world.account(opening=500)
    r = requests.get(f"{server}/admin/api/properties/{world.property_id}/buildings/B1/rooms", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "R00" not in r.text
    r = requests.get(f"{server}/", params={"property": world.property_id}, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")


def test_the_wsgi_module_serves_the_app():
    """zappa's module checks the deployment first: here the local secrets are seeded."""
    from infra.local.paystack import PayStack

    stack = PayStack().start()
    stack.apply_env()
    try:
        from werkzeug.test import Client

        from miniprogram_api.wsgi import app

        assert Client(app).get("/health").json == {"status": "ok", "database": "ok"}
    finally:
        stack.stop()


def test_dead_database_is_a_503_with_a_clear_body(monkeypatch):
    """A separate process, so that its clients point at a port where nothing listens."""
    import subprocess
    import sys

    code = (
        "import json; from miniprogram_api.app import create_app\n"
        "c = create_app().test_client(); r = c.get('/health'); print(r.status_code, json.dumps(r.json))\n"
        "r = c.get('/admin/api/properties/p/buildings/b/rooms'); print(r.status_code, json.dumps(r.json))\n"
    )
    import os

    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_MAX_ATTEMPTS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("503") and '"degraded"' in lines[0]
    assert lines[1].startswith("401") and "unauthorized" in lines[1]  # the console asks for a login first


# --- malformed requests on every route: a 4xx in the JSON error format, never a 500 or HTML -----

ROUTES = [("GET", "/health"), ("GET", "/"), ("POST", "/api/v1/login"), ("GET", "/api/v1/accounts"),
          ("POST", "/api/v1/recharges"), ("GET", "/api/v1/recharges/R20261128000000abcdef"),
          ("GET", "/admin/api/properties/p1/buildings/B1/rooms")]
BODIES = {
    "malformed JSON": (b'{"code": ', "body_invalid"),
    "JSON nested 1,200 deep": (b'{"a":' * 1200 + b"1" + b"}" * 1200, "body_too_deep"),
    "arrays nested 1,200 deep": (b"[" * 1200 + b"]" * 1200, "body_too_deep"),
    "not UTF-8": (b'{"code": "\xff\xfe"}', "body_not_utf8"),
    "over 64 KB": (b'{"code": "' + b"x" * 70_000 + b'"}', "body_too_large"),
}


def _is_json_error(r: requests.Response, status: int, code: str) -> bool:
    body = r.json()
    return (r.status_code == status and r.headers["Content-Type"].startswith("application/json")
            and body["error"]["code"] == code and bool(body["error"]["message"]))


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("method,path", ROUTES)
def test_malformed_bodies_are_a_json_4xx_on_every_route(server, method, path, body):
    raw, code = BODIES[body]
    r = requests.request(method, f"{server}{path}", data=raw, headers={"Content-Type": "application/json"}, timeout=10)
    status = 413 if code == "body_too_large" else 400
    assert _is_json_error(r, status, code), (r.status_code, r.text[:300])


@pytest.mark.parametrize("method,path", ROUTES)
def test_wrong_methods_are_a_json_405_with_allow(server, method, path):
    wrong = "DELETE" if method == "GET" else "PUT"
    r = requests.request(wrong, f"{server}{path}", timeout=10)
    assert _is_json_error(r, 405, "method_not_allowed"), r.text[:300]
    assert method in r.headers["Allow"]


def test_deep_json_on_the_tenant_api_was_a_500(server):
    """The case the tester found: RecursionError inside request.get_json."""
    r = requests.post(f"{server}/api/v1/login", data=b"[" * 1200 + b"]" * 1200,
                      headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "body_too_deep"


def test_ids_in_paths_follow_the_id_rule(server, console, world):
    world.account(opening=500)
    base = f"{server}/admin/api/properties/{world.property_id}/buildings"
    for building in ("B1%23x", "B1%7Cx", "%E6%A5%BC", "x" * 65):
        r = console.get(f"{base}/{building}/rooms", timeout=10)
        assert _is_json_error(r, 400, "id_invalid"), (building, r.text[:200])
    assert console.get(f"{base}/B1/rooms", timeout=10).json()["rooms"][0]["balance_fen"] == 500
