"""The tenant API's reads carry the session check in their own BatchGet (docs/tenant-auth.md,
"The per-request check"; issue 12): "my accounts", a statement page and a month of usage by
day cost at most 2 DynamoDB requests per call, the session check included, and a revoked
session still stops at once, with 401 winning over 404. The Flask app on a free port (with
two routes of this test that guard themselves with `tenant_required(deferred=True)`, for the
safety net), logins through the WeChat API emulator, the emulated DynamoDB; requests are
counted with a botocore hook on the process's one session (bench/api.py's counter).

Hand-worked figures: 3 accounts of one tenant opening at 1.00, 2.00, 3.00 yuan; the first
gets 25 adjustments of +0.01 -> a statement page of 20 of its 26 entries and a cursor; 30
days of usage at 3.25 kWh / 3.25 yuan (325 fen) a day.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
import requests
from flask import jsonify

from bench.api import ByTable
from core.domain.errors import NotFound
from core.services.auth import TenantAuth
from core.services.ledger import LedgerService
from core.settings import resource_name
from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.stack import forget, seed_secrets
from miniprogram_api.app import create_app
from miniprogram_api.tenant import tenant_required
from testkit.builders import Clock, World

APPID, APP_SECRET = "wx000000000deferred1", "app-secret-for-deferred-check-tests"
JWT_SECRET = "jwt-secret-for-deferred-session-tests-0123456789"
SECRET_DATA = "只给登录有效的租户看的数据"
COUNTER = ByTable()  # one for the module: its hook stays on the process's session after a test


def add_probe_routes(app) -> None:
    """Two deferred views of this test: one that never makes an access check (the safety
    net must check the session after it), one that fails before any check."""

    @tenant_required(deferred=True)
    def forgetful():
        return jsonify({"secret": SECRET_DATA})

    @tenant_required(deferred=True)
    def failing():
        raise NotFound("账户不存在", code="account_not_found")

    app.add_url_rule("/test-probe/forgetful", "probe_forgetful", forgetful)
    app.add_url_rule("/test-probe/failing", "probe_failing", failing)


class Api:
    def __init__(self, monkeypatch) -> None:
        self.wechat = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=APP_SECRET)).start()
        monkeypatch.setenv("FEIKONG_WECHAT_API_BASE", self.wechat.url)
        forget()
        seed_secrets({"wechat": {"appid": APPID, "secret": APP_SECRET}, "jwt": JWT_SECRET})
        self.clock = Clock(datetime.now(UTC).replace(microsecond=0))
        app = create_app()
        app.extensions["feikong.auth"] = TenantAuth(clock=self.clock)
        add_probe_routes(app)
        self.web = BackgroundServer(app).start()
        self.counter = COUNTER.attach()
        self.sessions = resource_name("tenant_sessions")

    def stop(self) -> None:
        self.web.stop()
        self.wechat.stop()
        forget()

    def login(self, openid: str) -> dict:
        r = requests.post(f"{self.web.url}/api/v1/login", json={"code": self.wechat.issue_code(openid)}, timeout=10)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def logout(self, auth: dict) -> None:
        assert requests.post(f"{self.web.url}/api/v1/logout", headers=auth, timeout=10).status_code == 204

    def get(self, path: str, auth: dict) -> requests.Response:
        return requests.get(f"{self.web.url}{path}", headers=auth, timeout=30)

    def counted(self, path: str, auth: dict) -> tuple[requests.Response, list[frozenset[str]]]:
        """The answer and the tables of each DynamoDB request the call made."""
        self.counter.attach()
        before = len(self.counter.requests)
        r = self.get(path, auth)
        return r, self.counter.requests[before:]


@pytest.fixture
def api(aws, monkeypatch):
    a = Api(monkeypatch)
    yield a
    a.stop()


def new_openid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def refused(r: requests.Response, code: str, status: int) -> bool:
    body = r.json()
    return r.status_code == status and body["error"]["code"] == code and SECRET_DATA not in r.text


def seed_usage(account_id: str, first: date, days: int) -> None:
    from core.domain.usage import BandUsage, Usage
    from core.store.tx import Tx
    from core.store.usage import add_usage

    for d in range(days):
        tx = Tx()
        add_usage(tx, Usage(account_id, "m-deferred", "electricity", first + timedelta(days=d),
                            (BandUsage("flat", Decimal("3.25"), 325),)), tag="test")
        assert not tx.commit()


# --- requests per call --------------------------------------------------------------------------


def test_the_three_reads_cost_two_requests_with_the_session_check_inside(api):
    w = World()
    accounts = [w.account(opening=100 * n) for n in (1, 2, 3)]
    for n in range(25):
        LedgerService().post(account_id=accounts[0], entry_id=f"adj:{n}", kind="adjust_credit", amount=1,
                             cause="test", actor="admin:x@y")
    first = date.today() - timedelta(days=45)
    last = first + timedelta(days=29)
    seed_usage(accounts[0], first, 30)
    me = new_openid()
    w.d.bind_openid(w.tenant_id, me)
    auth = api.login(me)
    assert api.get("/api/v1/accounts", auth).status_code == 200  # warm: the names cache

    r, reqs = api.counted("/api/v1/accounts", auth)
    assert r.status_code == 200
    assert sorted((a["account_id"], a["balance_fen"]) for a in r.json()["accounts"]) == sorted(
        [(accounts[0], 125), (accounts[1], 200), (accounts[2], 300)])
    sessions, members, accs = api.sessions, resource_name("memberships"), resource_name("accounts")
    assert reqs == [frozenset({members}), frozenset({sessions, accs})], reqs

    r, reqs = api.counted(f"/api/v1/accounts/{accounts[0]}/statement?limit=20", auth)
    assert r.status_code == 200 and len(r.json()["entries"]) == 20 and r.json()["next_cursor"]
    assert reqs == [frozenset({sessions, members}), frozenset({resource_name("ledger")})], reqs

    r, reqs = api.counted(f"/api/v1/accounts/{accounts[0]}/usage?granularity=day&start={first}&end={last}", auth)
    points = r.json()["points"]
    assert r.status_code == 200 and len(points) == 30 and {p["cost_fen"] for p in points} == {325}
    assert reqs == [frozenset({sessions, members}), frozenset({resource_name("usage")})], reqs

    r, reqs = api.counted(f"/api/v1/accounts/{accounts[1]}", auth)  # one account: a single BatchGet of all three
    assert r.status_code == 200 and r.json()["balance_fen"] == 200
    assert reqs == [frozenset({sessions, members, accs})], reqs


def test_a_user_without_accounts_still_has_the_session_checked_in_two_requests(api):
    auth = api.login(new_openid())
    r, reqs = api.counted("/api/v1/accounts", auth)
    assert r.status_code == 200 and r.json()["accounts"] == []
    assert reqs == [frozenset({resource_name("memberships")}), frozenset({api.sessions})], reqs


# --- revocation: 401 at once, and before a 404 ------------------------------------------------


def test_a_revoked_session_is_401_on_every_deferred_read_even_for_another_tenants_ids(api):
    mine_world, theirs_world = World(), World()
    mine, theirs = mine_world.account(opening=500), theirs_world.account(opening=700)
    me = new_openid()
    mine_world.d.bind_openid(mine_world.tenant_id, me)
    auth = api.login(me)
    other = f"/api/v1/accounts/{theirs}"
    # live: another tenant's ids and malformed ids are 404s, the own account answers
    assert api.get(f"/api/v1/accounts/{mine}/statement", auth).status_code == 200
    for path in (other, f"{other}/statement", f"{other}/usage", f"{other}/meters", f"{other}/orders",
                 "/api/v1/accounts/bad%23id/statement"):
        assert refused(api.get(path, auth), "account_not_found", 404), path
    assert refused(api.get("/api/v1/meters/no-such-meter/usage", auth), "meter_not_found", 404)
    assert refused(api.get("/api/v1/orders/NO_SUCH_ORDER", auth), "order_not_found", 404)

    api.logout(auth)
    for path in ("/api/v1/accounts", f"/api/v1/accounts/{mine}", f"/api/v1/accounts/{mine}/statement",
                 f"/api/v1/accounts/{mine}/usage", f"/api/v1/accounts/{mine}/realtime",
                 other, f"{other}/statement", f"{other}/usage", f"{other}/meters", f"{other}/orders",
                 "/api/v1/accounts/bad%23id/statement", f"/api/v1/accounts/{mine}/statement?limit=abc",
                 "/api/v1/meters/no-such-meter/usage", "/api/v1/orders/NO_SUCH_ORDER"):
        r = api.get(path, auth)
        assert refused(r, "session_revoked", 401), (path, r.status_code, r.text)
        assert "500" not in r.text and "700" not in r.text  # no balance of either account leaks
    r, reqs = api.counted(f"{other}/statement", auth)  # judged once, in the read's BatchGet: no second read
    assert refused(r, "session_revoked", 401) and reqs == [frozenset({api.sessions, resource_name("memberships")})]


def test_the_session_is_checked_consistently_a_revocation_counts_on_the_next_request(api):
    w = World()
    account = w.account(opening=900)
    me = new_openid()
    w.d.bind_openid(w.tenant_id, me)
    phone, tablet = api.login(me), api.login(me)
    assert api.get(f"/api/v1/accounts/{account}/statement", phone).status_code == 200
    api.logout(phone)
    assert refused(api.get(f"/api/v1/accounts/{account}/statement", phone), "session_revoked", 401)
    assert refused(api.get("/api/v1/accounts", phone), "session_revoked", 401)
    r = api.get("/api/v1/accounts", tablet)  # the other session of the same user is untouched
    assert r.status_code == 200 and [a["account_id"] for a in r.json()["accounts"]] == [account]


# --- the safety net ------------------------------------------------------------------------------


def test_a_deferred_view_that_makes_no_access_check_has_the_session_checked_after_it(api):
    auth = api.login(new_openid())
    r, reqs = api.counted("/test-probe/forgetful", auth)
    assert r.status_code == 200 and r.json() == {"secret": SECRET_DATA}
    assert reqs == [frozenset({api.sessions})], reqs  # the net's one GetItem
    r, reqs = api.counted("/test-probe/failing", auth)
    assert refused(r, "account_not_found", 404) and reqs == [frozenset({api.sessions})], reqs

    api.logout(auth)
    assert refused(api.get("/test-probe/forgetful", auth), "session_revoked", 401)
    assert refused(api.get("/test-probe/failing", auth), "session_revoked", 401)
    assert refused(api.get("/test-probe/forgetful", {"Authorization": "Bearer not-a-token"}), "token_invalid", 401)


# --- a BatchGet answered in part (UnprocessedKeys) ----------------------------------------------


def test_keys_left_unprocessed_are_read_again_and_every_account_is_listed(api):
    """DynamoDB (and the emulator) answer at most 16 MB per BatchGetItem and leave the rest
    in UnprocessedKeys: 45 accounts of ~395 KB each (17.8 MB > 16 MiB) cannot come in one answer."""
    w = World()
    accounts = [w.account(opening=n) for n in range(1, 46)]
    table, pad = resource_name("accounts"), "x" * 395_000
    ddb = boto3.client("dynamodb")
    for a in accounts:
        ddb.update_item(TableName=table, Key={"account_id": {"S": a}}, UpdateExpression="SET test_padding = :p",
                        ExpressionAttributeValues={":p": {"S": pad}})
    me = new_openid()
    w.d.bind_openid(w.tenant_id, me)
    auth = api.login(me)
    assert api.get("/api/v1/accounts", auth).status_code == 200  # warm: the names cache

    r, reqs = api.counted("/api/v1/accounts", auth)
    assert r.status_code == 200
    assert sorted((a["account_id"], a["balance_fen"]) for a in r.json()["accounts"]) == sorted(
        zip(accounts, range(1, 46), strict=True))
    batches = [t for t in reqs if table in t]
    assert len(reqs) == 3 and len(batches) == 2 and api.sessions in batches[0], reqs  # 46 keys: re-sent, not split

    api.logout(auth)
    assert refused(api.get("/api/v1/accounts", auth), "session_revoked", 401)
