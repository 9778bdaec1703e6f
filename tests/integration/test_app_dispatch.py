"""zappa's WSGI app (miniprogram_api/wsgi.py, app.py `create_wsgi_app`): the tenant app
and the console app behind a path dispatcher (docs/cold-start.md). Checked against the
one app (`create_app`, what every other test serves): every route is matched the same
through the dispatcher, requests are answered the same, the console app is built on the
first console request only, and the deployment check holds for both apps. The HTTP tests
of tests/integration/test_app.py run over both too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.routing import Rule
from werkzeug.test import Client

from infra.local.stack import forget
from miniprogram_api.app import create_app, create_wsgi_app, is_tenant_path

ROOT = Path(__file__).resolve().parents[2]

# hand-picked paths and the app that answers them
SIDES = {
    "/api/v1/login": "tenant", "/api/v1/accounts/a1/statement": "tenant", "/api": "tenant", "/api/": "tenant",
    "/h5": "tenant", "/h5/": "tenant", "/h5/usage": "tenant", "/health": "tenant", "/static/console.css": "tenant",
    "/": "console", "/login": "console", "/logout": "console", "/p/p1/rooms": "console",
    "/admin/api/openapi.json": "console", "/company/users": "console", "/apiv1": "console", "/h5x": "console",
    "/healthz": "console", "/admin/api/v1/login": "console", "/static": "console",
}


def test_each_path_goes_to_its_app():
    assert {p: ("tenant" if is_tenant_path(p) else "console") for p in SIDES} == SIDES


def _values(rule: Rule) -> dict:
    out = {}
    for name, conv in rule._converters.items():
        if hasattr(conv, "items"):  # AnyConverter: one of its words
            out[name] = sorted(conv.items)[0]
        elif conv.__class__.__name__ in ("IntegerConverter", "NumberConverter", "FloatConverter"):
            out[name] = 7
        else:
            out[name] = f"v-{name}"
    return out


def test_every_route_of_the_one_app_is_matched_the_same_through_the_dispatcher():
    one, wsgi = create_app(), create_wsgi_app()
    whole = one.url_map.bind("localhost")
    rules = list(one.url_map.iter_rules())
    assert len(rules) > 100
    for rule in rules:
        path = rule.build(_values(rule))[1]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            expected = whole.match(path, method)
            assert wsgi.app_for(path).url_map.bind("localhost").match(path, method) == expected, (path, method)
    tenant = {r.endpoint for r in wsgi.tenant.url_map.iter_rules()}
    console = {r.endpoint for r in wsgi.console.url_map.iter_rules()}
    assert tenant & console == {"static", "health_check"}  # in both; the dispatcher sends them to the tenant app
    assert tenant | console == {r.endpoint for r in rules}


# requests that need no login, answered by the one app and through the dispatcher
REQUESTS = [
    ("GET", "/health", None, {}),
    ("DELETE", "/health", None, {}),
    ("GET", "/api/v1/openapi.json", None, {}),
    ("GET", "/api/v1/docs", None, {}),
    ("POST", "/api/v1/login", {}, {}),
    ("POST", "/api/v1/login", {"code": 7}, {}),
    ("GET", "/api/v1/accounts", None, {}),
    ("GET", "/api/v1/nope", None, {}),
    ("GET", "/h5/", None, {}),
    ("GET", "/h5/usage", None, {}),
    ("GET", "/static/console.css", None, {}),
    ("GET", "/admin/api/properties/p1/buildings/B1/rooms", None, {}),
    ("POST", "/admin/api/properties/p1/buildings/B1/rooms", {}, {}),
    ("GET", "/", None, {"Accept": "text/html"}),
    ("GET", "/nope", None, {"Accept": "application/json"}),
]


def _answer(client: Client, method: str, path: str, body, headers: dict) -> tuple:
    r = client.open(path, method=method, json=body, headers=headers)
    data = r.get_json() if r.mimetype == "application/json" else r.get_data(as_text=r.mimetype.startswith("text/"))
    return r.status_code, r.mimetype, r.headers.get("Location"), r.headers.get("Allow"), data


def test_requests_are_answered_the_same_through_the_dispatcher(aws):
    one, wsgi = Client(create_app()), Client(create_wsgi_app())
    for method, path, body, headers in REQUESTS:
        assert _answer(wsgi, method, path, body, headers) == _answer(one, method, path, body, headers), (method, path)


def test_a_missing_h5_page_is_a_chinese_page_without_the_console(aws):
    """The error page a browser gets (console/error.html) renders in the tenant app, which
    has no console login, session or CSRF token: no console secret read, no cookie set."""
    wsgi = create_wsgi_app()
    r = Client(wsgi).get("/h5/nope", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.mimetype == "text/html" and "页面不存在" in r.get_data(as_text=True)
    assert "Set-Cookie" not in r.headers
    assert wsgi._console is None


def test_the_console_app_is_built_on_the_first_console_request(aws):
    wsgi = create_wsgi_app()
    client = Client(wsgi)
    for path in ("/health", "/api/v1/accounts", "/h5/", "/static/h5.css"):
        client.get(path)
    assert wsgi._console is None
    assert client.get("/login").status_code == 200
    console = wsgi._console
    assert console is not None and client.get("/").status_code == 302 and wsgi.console is console


@pytest.fixture
def paystack(aws):
    """The local payment stack: its apply_env() seeds every secret the app needs."""
    from infra.local.paystack import PayStack

    stack = PayStack().start()
    stack.apply_env()
    yield stack
    stack.stop()


def test_both_apps_answer_503_until_the_deployment_checks_out(paystack, setenv):
    from core.services import startup

    startup.reset()
    setenv("FEIKONG_JWT_SECRET_ID", "feikong/dev/no-such-jwt")
    forget()
    client = Client(create_wsgi_app(check_start=True))
    for path in ("/health", "/api/v1/accounts", "/login", "/admin/api/openapi.json"):
        r = client.get(path)
        assert r.status_code == 503 and r.get_json()["error"]["code"] == "not_configured", path
    setenv("FEIKONG_JWT_SECRET_ID", "feikong/dev/jwt")  # the local stack's secret
    forget()
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/accounts").status_code == 401  # now the routes themselves answer
    assert client.get("/login").status_code == 200


def test_a_tenant_cold_start_leaves_the_console_for_its_first_request():
    """In a fresh interpreter: importing zappa's module loads none of the console (its
    blueprints, flask-login, flask-wtf), leaves the garbage collector on, and a console
    request then loads it."""
    code = ("import gc, json, sys\nimport miniprogram_api.wsgi as w\n"
            "def console(): return sorted(m for m in sys.modules if m.startswith(('miniprogram_api.console', "
            "'miniprogram_api.admin_auth', 'flask_login', 'flask_wtf', 'wtforms')))\n"
            "before = console()\nw.app.console\n"
            "print(json.dumps([before, gc.isenabled(), 'miniprogram_api.tenant' in sys.modules, console()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    before, collecting, tenant_loaded, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == [] and collecting and tenant_loaded
    assert {"miniprogram_api.console", "miniprogram_api.admin_auth", "flask_login"} <= set(after)


def test_the_admin_api_document_is_the_one_apps(aws):
    """Built from the console app's routes (the tenant API's document, from the tenant
    app's, is compared above as /api/v1/openapi.json)."""
    from miniprogram_api import openapi

    assert openapi.build_document(create_wsgi_app().console) == openapi.build_document(create_app())
