"""The mini-program (miniprogram/) cannot drift from the tenant API: every path it calls,
with its method, is a route of the Flask app under /api/v1.

The client names each endpoint once, in miniprogram/utils/endpoints.js; pages call them by
name (`api.call('statement', ...)`) and only utils/http.js calls wx.request. The jest tests
(miniprogram/__tests__) check the requests the pages make; this test checks the table
against the app's url_map.
"""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from miniprogram_api.app import create_app

ROOT = Path(__file__).resolve().parents[2]
MP = ROOT / "miniprogram"
PREFIX = "/api/v1"
ENDPOINT_LINE = re.compile(r"^\s*(\w+): \{ method: '(GET|POST|PUT|PATCH|DELETE)', path: '(/[^']*)' \},?\s*$")


def client_sources() -> dict[str, str]:
    """The mini-program's own JavaScript (not its tests or their configuration)."""
    return {str(p.relative_to(MP)): p.read_text(encoding="utf-8") for p in sorted(MP.rglob("*.js"))
            if "__tests__" not in p.parts and p.name != "jest.config.js"}


def endpoints() -> dict[str, tuple[str, str]]:
    text = (MP / "utils" / "endpoints.js").read_text(encoding="utf-8")
    found = {}
    for line in text.splitlines():
        m = ENDPOINT_LINE.match(line)
        if m:
            found[m[1]] = (m[2], m[3])
    # every line that looks like an endpoint was understood: none slips past the check below
    assert len(found) == text.count("method: '"), "miniprogram/utils/endpoints.js: keep one endpoint a line"
    return found


ENDPOINTS = endpoints()


def test_the_table_is_read_and_holds_the_pages_needs():
    assert {"login", "refresh", "bind", "accounts", "usage", "statement", "rechargeOptions", "createRecharge",
            "rechargeProgress"} <= set(ENDPOINTS)


def test_pages_call_only_named_endpoints_and_only_http_js_calls_wx_request():
    sources = client_sources()
    called = {name for text in sources.values() for name in re.findall(r"api\.call\(\s*'(\w+)'", text)}
    assert called, "no api.call(...) found in miniprogram/: the pattern no longer matches the client"
    assert called <= set(ENDPOINTS), f"called but not in endpoints.js: {sorted(called - set(ENDPOINTS))}"
    assert [f for f, text in sources.items() if "wx.request(" in text] == ["utils/http.js"]
    # auth.js and api.js send to paths from the table, never to a literal one
    for f, text in sources.items():
        assert not re.search(r"http\.send\([^)]*'/", text), f"{f} sends to a literal path"
    assert re.search(r"apiBase: 'https://[^']+/api/v1'", sources["config.js"]), "config.js apiBase must end in /api/v1"


@pytest.fixture(scope="module")
def routes():
    return create_app().url_map.bind("localhost")


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_each_endpoint_is_a_route_of_the_app_with_its_method(routes, name):
    method, path = ENDPOINTS[name]
    concrete = PREFIX + re.sub(r":(\w+)", lambda m: f"sample-{m[1]}", path)
    try:
        rule, _ = routes.match(concrete, method=method, return_rule=True)
    except MethodNotAllowed:
        pytest.fail(f"{name}: {method} {PREFIX}{path} is not allowed (the app has the path with other methods)")
    except NotFound:
        pytest.fail(f"{name}: {PREFIX}{path} is not a route of the app")
    assert rule.rule.startswith(PREFIX + "/"), f"{name}: matched {rule.rule}, outside the tenant API"
    # the parameters the client fills are the ones the route takes, in the same places
    assert re.sub(r"<(?:\w+:)?(\w+)>", r":\1", rule.rule) == PREFIX + path


def test_the_mini_program_ships_in_no_lambda_package():
    # zappa drops any file or folder whose name matches an "exclude" entry (shutil.ignore_patterns)
    exclude = json.loads((ROOT / "zappa_settings.json").read_text())["dev"]["exclude"]
    assert any(fnmatch.fnmatch("miniprogram", pattern) for pattern in exclude)
    assert not any(fnmatch.fnmatch("miniprogram_api", pattern) for pattern in exclude)
    # serverless.yml packages only what its patterns name, after "!**"
    block = re.search(r"^package:\n(?:[ ].*\n)+", (ROOT / "serverless.yml").read_text(), re.M)[0]
    patterns = re.findall(r'^\s+- "([^"]+)"', block, re.M)
    assert patterns[0] == "!**"
    assert not [p for p in patterns[1:] if not p.startswith("!") and fnmatch.fnmatch("miniprogram/app.js", p)]
    # nor is it a Python package of the wheel
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(fnmatch.fnmatch("miniprogram", pattern) for pattern in include)
