"""Tenant sessions over HTTP (docs/tenant-auth.md): the Flask app on a free port, logins
through the WeChat API emulator (code2session over HTTP), sessions in the emulated
DynamoDB. Time moves by the clock injected into the auth service, never by sleeping.

Expected lifetimes are worked by hand: access 15 min = 900 s; refresh 30 days =
2,592,000 s, sliding, capped 90 days after login."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime

import boto3
import jwt
import pytest
import requests

from core.services.auth import TenantAuth
from core.settings import resource_name
from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.stack import forget, seed_secrets
from miniprogram_api.app import create_app
from testkit.builders import Clock, World

APPID, APP_SECRET = "wx00000000000auth01", "app-secret-for-auth-tests"
JWT_SECRET = "jwt-secret-for-tenant-auth-tests-0123456789"


class Api:
    """The tenant API as a mini-program sees it, with the auth service on `clock`."""

    def __init__(self, monkeypatch) -> None:
        self.wechat = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=APP_SECRET)).start()
        monkeypatch.setenv("FEIKONG_WECHAT_API_BASE", self.wechat.url)
        forget()  # settings, secrets and clients read before
        # the secrets live in the emulator's Secrets Manager, read there as in AWS
        seed_secrets({"wechat": {"appid": APPID, "secret": APP_SECRET}, "jwt": JWT_SECRET})
        self.clock = Clock(datetime.now(UTC).replace(microsecond=0))
        app = create_app()
        app.extensions["feikong.auth"] = TenantAuth(clock=self.clock)
        self.web = BackgroundServer(app).start()
        self.base = self.web.url

    def stop(self) -> None:
        self.web.stop()
        self.wechat.stop()
        forget()

    def login(self, openid: str) -> dict:
        r = requests.post(f"{self.base}/api/v1/login", json={"code": self.wechat.issue_code(openid)}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def refresh(self, refresh_token: object) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/token/refresh", json={"refresh_token": refresh_token}, timeout=10)

    def accounts(self, access: str) -> requests.Response:
        return requests.get(f"{self.base}/api/v1/accounts", headers={"Authorization": f"Bearer {access}"}, timeout=10)

    def logout(self, access: str) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/logout", headers={"Authorization": f"Bearer {access}"}, timeout=10)


@pytest.fixture
def api(monkeypatch):
    a = Api(monkeypatch)
    yield a
    a.stop()


def bound_tenant() -> tuple[World, str, str]:
    w = World()
    account = w.account(opening=1234)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    return w, account, openid


def account_ids(r: requests.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [a["account_id"] for a in r.json()["accounts"]]


def refused(r: requests.Response, code: str, status: int = 401) -> bool:
    """A JSON error with this code and a message in Chinese."""
    body = r.json()
    message = body["error"]["message"]
    return (r.status_code == status and r.headers["Content-Type"].startswith("application/json")
            and body["error"]["code"] == code and any("\u4e00" <= ch <= "\u9fff" for ch in message))


def raw_session_items(openid: str) -> list[dict]:
    table = resource_name("tenant_sessions")
    return boto3.client("dynamodb").query(
        TableName=table, KeyConditionExpression="openid = :o",
        ExpressionAttributeValues={":o": {"S": openid}}, ConsistentRead=True)["Items"]


# --- login and rotation ---------------------------------------------------------------------


def test_login_gives_an_access_token_and_a_refresh_token_kept_only_as_a_hash(api):
    w, account, openid = bound_tenant()
    body = api.login(openid)
    assert body["expires_in"] == 900 and body["refresh_expires_in"] == 2_592_000
    assert body["token_type"] == "Bearer" and body["bound"] is True and body["properties"] == [w.property_id]
    assert account_ids(api.accounts(body["token"])) == [account]
    items = raw_session_items(openid)
    assert len(items) == 1
    assert items[0]["refresh_hash"]["S"] == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    assert body["refresh_token"] not in json.dumps(items[0])
    assert int(items[0]["purge_at"]["N"]) == int(api.clock().timestamp()) + 31 * 86400  # TTL: end + 1 day


def test_refresh_rotates_and_the_new_tokens_work(api):
    w, account, openid = bound_tenant()
    first = api.login(openid)
    api.clock.advance(minutes=10)
    r = api.refresh(first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["token"] != first["token"] and second["refresh_token"] != first["refresh_token"]
    assert second["expires_in"] == 900 and second["refresh_expires_in"] == 2_592_000
    assert account_ids(api.accounts(second["token"])) == [account]
    third = api.refresh(second["refresh_token"])
    assert third.status_code == 200, third.text
    assert account_ids(api.accounts(third.json()["token"])) == [account]


def test_a_spent_refresh_token_presented_again_revokes_the_whole_session(api):
    w, account, openid = bound_tenant()
    first = api.login(openid)
    other_session = api.login(openid)  # the same user on a second phone
    second = api.refresh(first["refresh_token"]).json()
    r = api.refresh(first["refresh_token"])  # the thief (or the tenant) replays the spent token
    assert refused(r, "refresh_reused")
    assert refused(api.refresh(second["refresh_token"]), "session_revoked")
    assert refused(api.accounts(second["token"]), "session_revoked")
    assert refused(api.accounts(first["token"]), "session_revoked")
    assert account_ids(api.accounts(other_session["token"])) == [account]  # only that session ends


def test_two_refreshes_with_one_token_at_once_leave_at_most_one_winner_and_revoke(api):
    w, account, openid = bound_tenant()
    tokens = api.login(openid)
    n = 6
    barrier = threading.Barrier(n)
    results: list[requests.Response] = []

    def go():
        barrier.wait()
        results.append(api.refresh(tokens["refresh_token"]))

    threads = [threading.Thread(target=go) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1
    losers = [r for r in results if r.status_code != 200]
    # a loser that reads the session before a racer revoked it is told the token was
    # reused; one that reads it after, that the session is revoked: refused either way
    assert all(refused(r, "refresh_reused") or refused(r, "session_revoked") for r in losers)
    assert any(refused(r, "refresh_reused") for r in losers)
    assert refused(api.accounts(winners[0].json()["token"]), "session_revoked")


def test_logout_revokes_the_session_and_only_it(api):
    w, account, openid = bound_tenant()
    phone, tablet = api.login(openid), api.login(openid)
    r = api.logout(phone["token"])
    assert r.status_code == 204
    assert refused(api.accounts(phone["token"]), "session_revoked")
    assert refused(api.refresh(phone["refresh_token"]), "session_revoked")
    assert refused(api.logout(phone["token"]), "session_revoked")
    assert account_ids(api.accounts(tablet["token"])) == [account]


def test_rebinding_revokes_the_sessions_of_the_old_and_the_new_wechat_user(api):
    w, account, old_openid = bound_tenant()
    new_openid = f"o{uuid.uuid4().hex[:27]}"
    old = api.login(old_openid)
    new_before = api.login(new_openid)
    assert new_before["bound"] is False and account_ids(api.accounts(new_before["token"])) == []
    w.d.bind_openid(w.tenant_id, new_openid)  # the room changed hands
    assert refused(api.accounts(old["token"]), "session_revoked")
    assert refused(api.refresh(old["refresh_token"]), "session_revoked")
    assert refused(api.accounts(new_before["token"]), "session_revoked")
    fresh = api.login(new_openid)
    assert fresh["bound"] is True and account_ids(api.accounts(fresh["token"])) == [account]
    w.d.bind_openid(w.tenant_id, new_openid)  # binding again to the same user changes nothing
    assert account_ids(api.accounts(fresh["token"])) == [account]


# --- time ---------------------------------------------------------------------------------------


def test_an_expired_access_token_is_a_401_and_refresh_brings_a_working_one(api):
    w, account, openid = bound_tenant()
    tokens = api.login(openid)
    api.clock.advance(minutes=14, seconds=59)
    assert account_ids(api.accounts(tokens["token"])) == [account]
    api.clock.advance(seconds=1)  # 15 minutes after login
    assert refused(api.accounts(tokens["token"]), "token_expired")
    r = api.refresh(tokens["refresh_token"])
    assert r.status_code == 200 and account_ids(api.accounts(r.json()["token"])) == [account]


def test_an_unused_refresh_token_expires_after_30_days(api):
    w, account, openid = bound_tenant()
    tokens = api.login(openid)
    api.clock.advance(days=30)
    assert refused(api.refresh(tokens["refresh_token"]), "refresh_expired")


def test_refreshing_keeps_a_session_90_days_at_most(api):
    w, account, openid = bound_tenant()
    refresh = api.login(openid)["refresh_token"]
    for day in (29, 58):
        api.clock.advance(days=29)
        body = api.refresh(refresh).json()
        assert body["refresh_expires_in"] == 30 * 86400, day
        refresh = body["refresh_token"]
    api.clock.advance(days=29)  # day 87: 3 days left of the 90
    body = api.refresh(refresh).json()
    assert body["refresh_expires_in"] == 3 * 86400 and body["expires_in"] == 900
    api.clock.advance(days=2, hours=23, minutes=50)  # 10 minutes before the end
    body = api.refresh(body["refresh_token"]).json()
    assert body["refresh_expires_in"] == 600 and body["expires_in"] == 600  # access never outlives it
    api.clock.advance(minutes=10)
    assert refused(api.accounts(body["token"]), "token_expired")
    assert refused(api.refresh(body["refresh_token"]), "refresh_expired")


# --- forged and foreign tokens --------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_tampered_access_tokens_are_401(api):
    w, account, openid = bound_tenant()
    other_w, other_account, other_openid = bound_tenant()
    token = api.login(openid)["token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = {
        "signature flipped": f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
        "payload swapped to another openid": f"{header}.{_b64(dict(claims, sub=other_openid))}.{signature}",
        "signed with another key": jwt.encode(dict(claims, sub=other_openid), "x" * 40, algorithm="HS256"),
        "alg none": jwt.encode(dict(claims, sub=other_openid), None, algorithm="none"),
        "no session id": jwt.encode({k: v for k, v in claims.items() if k != "sid"}, JWT_SECRET, algorithm="HS256"),
        "garbage": "not-a-jwt",
    }
    for what, bad in forged.items():
        assert refused(api.accounts(bad), "token_invalid"), what
    r = requests.get(f"{api.base}/api/v1/accounts", timeout=10)
    assert refused(r, "unauthorized")
    # a validly signed token naming a session that does not exist (a leaked key would need a session too)
    ghost = jwt.encode(dict(claims, sid="0" * 32), JWT_SECRET, algorithm="HS256")
    assert refused(api.accounts(ghost), "session_revoked")
    assert account_ids(api.accounts(token)) == [account]


def test_tampered_refresh_tokens_are_401_and_do_not_end_the_session(api):
    w, account, openid = bound_tenant()
    tokens = api.login(openid)
    prefix, sid, secret = tokens["refresh_token"].split(".")
    other_secret = ("B" if secret[0] == "A" else "A") + secret[1:]
    for bad in (f"{prefix}.{sid}.{other_secret}", f"{prefix}.{'f' * 32}.{secret}", "x.y.z",
                tokens["refresh_token"] + "=", tokens["token"]):
        assert refused(api.refresh(bad), "refresh_invalid"), bad
    assert refused(api.refresh(None), "refresh_token_required", 400)
    r = requests.post(f"{api.base}/api/v1/token/refresh", data="not json", timeout=10,
                      headers={"Content-Type": "application/json"})
    assert refused(r, "body_invalid", 400)
    r = api.refresh(tokens["refresh_token"])  # a forger who knows the session id cannot end it
    assert r.status_code == 200, r.text


def test_one_tenants_refresh_token_never_yields_another_tenants_data(api):
    a_world, a_account, a_openid = bound_tenant()
    b_world, b_account, b_openid = bound_tenant()
    a, b = api.login(a_openid), api.login(b_openid)
    a2 = api.refresh(a["refresh_token"]).json()
    assert account_ids(api.accounts(a2["token"])) == [a_account]
    # A's session id and secret under B's openid: no such session of B's
    _, sid, secret = a2["refresh_token"].split(".")
    b_prefix = b["refresh_token"].split(".")[0]
    assert refused(api.refresh(f"{b_prefix}.{sid}.{secret}"), "refresh_invalid")
    # B's session id with A's secret: the hash does not match B's session
    _, b_sid, _ = b["refresh_token"].split(".")
    assert refused(api.refresh(f"{b_prefix}.{b_sid}.{secret}"), "refresh_invalid")
    b2 = api.refresh(b["refresh_token"])
    assert b2.status_code == 200 and account_ids(api.accounts(b2.json()["token"])) == [b_account]
    assert account_ids(api.accounts(api.refresh(a2["refresh_token"]).json()["token"])) == [a_account]
