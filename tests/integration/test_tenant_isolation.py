"""The exhaustive isolation test of the tenant API (issue 12): three tenants — A and B at
one property, C at another — each with an account, a meter, a paid WeChat order, a refund
request and a binding; then EVERY rule of the app's url_map under /api/v1 is called with
A's token and B's or C's ids, generically (routes added later are covered as they appear):

- a path parameter is filled by its name (account_id, meter_id, out_trade_no, request_id…;
  an unknown name gets the other tenant's account id and is reported);
- the query string and JSON body are built from the route's models in the app's own
  OpenAPI document, ids by field name; a route outside the document gets every id field.

A route taking an id (in its path, query or body) must answer 404 or 403; no answer of
any route may contain another tenant's ids, names or balances. Without a token every
route answers 401, except the public ones (login, token refresh, the document, its page).

Runs against the app over HTTP on the emulated AWS stack, payments through the WeChat Pay
emulator. `COVERED` records the (method, rule) pairs walked; the test prints them."""

from __future__ import annotations

import uuid

import pytest
import requests

from core.services import directory
from core.services.ledger import LedgerService
from miniprogram_api.tenant_spec import document
from testkit.builders import Metered, uid
from tests.integration.test_payments import Stack
from tests.integration.test_tenant_money import LIMITS

T = 10
PREFIX = "/api/v1"
PUBLIC = {"/api/v1/login", "/api/v1/login/oauth", "/api/v1/token/refresh", "/api/v1/openapi.json", "/api/v1/docs"}
# ids that name something of a tenant: a route given another tenant's must refuse (a
# property_id is filled in too, but a tenant of the property may name it: no refusal needed)
REFUSE_FIELDS = ("account_id", "meter_id", "out_trade_no", "request_id", "tenant_id", "member_id", "room_id")
COVERED: list[tuple[str, str, int, int]] = []


@pytest.fixture(scope="module")
def world(aws):
    mp = pytest.MonkeyPatch()
    for k, v in LIMITS.items():  # the per-address limits are not under test here
        mp.setenv(k, v)
    stack = Stack(mp)
    try:
        p1, p2 = Metered(), Metered()
        a = Tenant(stack, p1, "甲", 12_345)
        b = Tenant(stack, p1, "乙", 77_731)
        c = Tenant(stack, p2, "丙", 88_842)
        yield stack, a, b, c
    finally:
        stack.stop()
        mp.undo()


class Tenant:
    """A tenant of `w` with one account (its own room and name), a meter, a paid order and a
    pending refund request, bound to a WeChat user."""

    def __init__(self, stack: Stack, w: Metered, label: str, opening: int) -> None:
        self.property_id = w.property_id
        self.tenant_id = uid("t")
        self.name = f"{label}租户{uuid.uuid4().hex[:6]}"
        directory.register_tenant(w.property_id, self.tenant_id, self.name, "13900000000")
        w.rooms += 1
        self.room_id = f"R{w.rooms:03d}-{uuid.uuid4().hex[:4]}"
        self.room_name = f"{label}房{uuid.uuid4().hex[:6]}"
        directory.add_room(w.property_id, w.building_id, "F1", self.room_id, self.room_name, "30")
        self.account_id = uid("a")
        directory.open_account(w.property_id, self.account_id, w.building_id, self.room_id, self.tenant_id,
                               self.room_name, opening_balance=opening)
        self.meter_id = w.meter(self.account_id)
        self.openid = f"o{uuid.uuid4().hex[:27]}"
        directory.bind_openid(self.tenant_id, self.openid)
        self.auth = stack.login(self.openid)
        r = stack.recharge(self.auth, self.account_id, 1000)
        assert r.status_code == 201, r.text
        self.out_trade_no = r.json()["out_trade_no"]
        stack.pay.pay(self.out_trade_no)
        assert stack.pay.wait_for_deliveries(10)
        self.balance = LedgerService().balance(self.account_id)
        assert self.balance == opening + 1000
        r = requests.post(f"{stack.base}{PREFIX}/accounts/{self.account_id}/refund-requests",
                          json={"amount": 500, "reason": "退租"}, headers=self.auth, timeout=T)
        assert r.status_code == 201, r.text
        self.request_id = r.json()["request_id"]

    def ids(self) -> dict[str, str]:
        return {"account_id": self.account_id, "meter_id": self.meter_id, "out_trade_no": self.out_trade_no,
                "request_id": self.request_id, "tenant_id": self.tenant_id, "property_id": self.property_id,
                "member_id": self.openid, "room_id": self.room_id}

    def secrets(self) -> list[str]:
        """What must never appear in another tenant's answers."""
        yuan = f"{self.balance // 100}.{self.balance % 100:02d}"
        return [self.account_id, self.meter_id, self.out_trade_no, self.request_id, self.tenant_id, self.name,
                self.room_name, self.openid, yuan, f": {self.balance}"]


def _resolve(doc: dict, schema: dict) -> dict:
    seen = 0
    while "$ref" in schema and seen < 10:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
        seen += 1
    return schema


def _example(doc: dict, schema: dict, name: str, ids: dict):
    """A value of `schema` for a field called `name`: the other tenant's id for an id field,
    else the simplest value of its type (null when allowed)."""
    if name in ids:
        return ids[name]
    schema = _resolve(doc, schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        if any(o.get("type") == "null" for o in options):
            return None
        return _example(doc, options[0], name, ids)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:  # the required fields and every id field
        required = set(schema.get("required", ()))
        return {k: _example(doc, v, k, ids) for k, v in schema.get("properties", {}).items()
                if k in required or k in ids}
    if kind == "array":
        return []
    if kind == "integer":
        if "default" in schema:
            return schema["default"]
        return min(max(int(schema.get("minimum", 100)), 100), int(schema.get("maximum", 100)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    return "测试"


def _request_parts(doc: dict, path: str, method: str, ids: dict) -> tuple[dict, dict | None, bool]:
    """(query, json body, whether an id goes in them) for one operation of the document;
    a route the document does not have gets every id field in both."""
    op = doc["paths"].get(path, {}).get(method.lower())
    if op is None:  # not typed: every id, in the query and the body
        return dict(ids), (dict(ids) if method in ("POST", "PUT", "PATCH", "DELETE") else None), True
    query, takes_id = {}, False
    for p in op.get("parameters", []):
        if p.get("in") == "query" and (p.get("required") or p["name"] in ids):
            value = _example(doc, p.get("schema", {}), p["name"], ids)
            takes_id |= p["name"] in REFUSE_FIELDS
            if value is not None:
                query[p["name"]] = value
    body = None
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json")
    if content:
        body = _example(doc, content["schema"], "", ids)
        props = _resolve(doc, content["schema"]).get("properties", {})
        takes_id |= any(k in REFUSE_FIELDS for k in props)
    return query, body, takes_id


def _rules(stack: Stack):
    app = stack.web.app
    out = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule, method))
    return out


def _openapi_path(rule) -> str:
    path = rule.rule
    for arg in rule.arguments:
        path = path.replace(f"<{arg}>", "{" + arg + "}")
        for conv in ("string", "path", "int"):
            path = path.replace(f"<{conv}:{arg}>", "{" + arg + "}")
    return path


def test_every_tenant_route_refuses_other_tenants_ids(world):
    stack, a, b, c = world
    app = stack.web.app
    with app.app_context():
        doc = document(app)
    unknown_params: set[str] = set()
    failures = []
    for rule, method in _rules(stack):
        if rule.rule in PUBLIC:
            continue
        for other in (b, c):
            ids = other.ids()
            for arg in rule.arguments:
                if arg not in ids:
                    unknown_params.add(arg)
            path_ids = {arg: ids.get(arg, other.account_id) for arg in rule.arguments}
            url = rule.rule
            for arg, value in path_ids.items():
                url = url.replace(f"<{arg}>", value)
                for conv in ("string", "path", "int"):
                    url = url.replace(f"<{conv}:{arg}>", value)
            query, body, takes_id = _request_parts(doc, _openapi_path(rule), method, ids)
            # logging out ends the session it is called with: that call gets a session of its own
            auth = stack.login(a.openid) if rule.rule.endswith("/logout") else a.auth
            r = requests.request(method, stack.base + url, params=query, json=body, headers=auth, timeout=30,
                                 stream=True)
            text = r.raw.read(200_000, decode_content=True).decode("utf-8", "replace")  # a stream ends at once on 404
            r.close()
            COVERED.append((method, rule.rule, r.status_code, len(text)))
            must_refuse = bool(rule.arguments) or takes_id
            if must_refuse and r.status_code not in (403, 404):
                failures.append(f"{method} {rule.rule} with {other.name}'s ids: {r.status_code} {text[:200]}")
            leaked = [s for s in other.secrets() if s in text]
            if leaked:
                failures.append(f"{method} {rule.rule}: answer holds {leaked} of {other.name}")
    print("\ncovered (method, rule, status, bytes):")
    for row in COVERED:
        print("  ", *row)
    if unknown_params:
        print("path parameters filled with the other tenant's account id:", sorted(unknown_params))
    assert not failures, "\n".join(failures)
    # the walk did reach the routes of every area present (at least this area's)
    walked = {r for _, r, _, _ in COVERED}
    assert {"/api/v1/accounts/<account_id>/refund-requests", "/api/v1/recharges/<out_trade_no>/progress",
            "/api/v1/accounts/<account_id>/notifications", "/api/v1/accounts/<account_id>/alarm-preferences",
            "/api/v1/recharges/<out_trade_no>/progress/stream", "/api/v1/recharge-options"} <= walked


def test_own_ids_work_so_the_refusals_mean_something(world):
    stack, a, _, _ = world
    for path in (f"/accounts/{a.account_id}/refund-requests", f"/recharges/{a.out_trade_no}/progress",
                 f"/accounts/{a.account_id}/notifications", f"/accounts/{a.account_id}/alarm-preferences",
                 f"/recharges/{a.out_trade_no}"):
        r = requests.get(f"{stack.base}{PREFIX}{path}", headers=a.auth, timeout=T)
        assert r.status_code == 200, (path, r.text)
    r = requests.get(f"{stack.base}{PREFIX}/recharge-options", params={"account_id": a.account_id}, headers=a.auth,
                     timeout=T)
    assert r.status_code == 200


def test_without_a_token_every_route_but_the_public_ones_is_401(world):
    stack, a, _, _ = world
    failures = []
    for rule, method in _rules(stack):
        if rule.rule in PUBLIC:
            continue
        url = rule.rule
        for arg in rule.arguments:
            url = url.replace(f"<{arg}>", a.ids().get(arg, a.account_id))
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            r = requests.request(method, stack.base + url, json={} if method != "GET" else None, headers=headers,
                                 timeout=T)
            if r.status_code != 401:
                failures.append(f"{method} {rule.rule} {headers or 'no token'}: {r.status_code} {r.text[:120]}")
            elif r.json()["error"]["code"] in ("", None):
                failures.append(f"{method} {rule.rule}: 401 without an error code")
    assert not failures, "\n".join(failures)
    # the public ones answer without a token
    assert requests.get(f"{stack.base}{PREFIX}/openapi.json", timeout=T).status_code == 200
