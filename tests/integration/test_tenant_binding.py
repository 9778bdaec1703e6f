"""Official-account login and bindings over HTTP (docs/tenant-auth.md "Official-account
login", "Bindings"; docs/tenant-api.md "Login", "Bindings"): the Flask app on a free port,
the WeChat API emulator over HTTP (its own login screen, real web-authorization codes,
code2session), binding codes issued as the console issues them, the emulated DynamoDB."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from core.domain.room_actions import BINDING_QR_PREFIX, show_binding_code
from core.services import action_log, auth, bindings, tenancy
from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.stack import forget, seed_secrets
from miniprogram_api.app import create_app
from testkit.builders import Clock, World

APPID, APP_SECRET = "wx00000000000bind01", "app-secret-for-binding-tests"
OA_APPID, OA_SECRET = "wx0a0000000bind0oa", "oa-secret-for-binding-tests"
JWT_SECRET = "jwt-secret-for-tenant-binding-tests-0123456789"
CALLBACK = "https://h5.example.test/h5/oauth-callback?next=%2Fh5%2F"
MASKED = re.compile(r"微信用户 [0-9A-F]{4}")


def oid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


class Phone:
    """The tenant's side: mini-program logins (code2session), official-account logins
    through the emulator's login screen, and the binding routes."""

    def __init__(self, monkeypatch) -> None:
        self.wechat = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=APP_SECRET, oa_appid=OA_APPID,
                                                        oa_secret=OA_SECRET)).start()
        monkeypatch.setenv("FEIKONG_WECHAT_API_BASE", self.wechat.url)
        monkeypatch.setenv("FEIKONG_WECHAT_OAUTH_BASE", self.wechat.url)
        forget()
        seed_secrets({"wechat": {"appid": APPID, "secret": APP_SECRET},
                      "wechat_oa": {"appid": OA_APPID, "secret": OA_SECRET}, "jwt": JWT_SECRET})
        self.web = BackgroundServer(create_app()).start()
        self.base = self.web.url

    def stop(self) -> None:
        self.web.stop()
        self.wechat.stop()
        forget()

    def login(self, openid: str) -> str:
        r = requests.post(f"{self.base}/api/v1/login", json={"code": self.wechat.issue_code(openid)}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def oauth_code(self, openid: str, state: str = "st8") -> tuple[str, str]:
        """Open the authorization URL the H5 page would, choose `openid` on the emulator's
        screen, follow nothing further: (code, state) from the redirect."""
        url = auth.oauth_authorize_url(CALLBACK, state)
        page = requests.get(url, timeout=10)
        assert page.status_code == 200 and "请选择登录的微信用户" in page.text and openid in page.text
        assert 'name="viewport"' in page.text  # made for a phone
        form = {k: parse_qs(urlsplit(url).query)[k][0] for k in ("appid", "redirect_uri", "scope", "state")}
        r = requests.post(f"{self.wechat.url}/connect/oauth2/authorize/confirm", data={**form, "openid": openid},
                          allow_redirects=False, timeout=10)
        assert r.status_code == 302
        target = urlsplit(r.headers["Location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == CALLBACK.split("?")[0]
        query = parse_qs(target.query)
        assert query["next"] == ["/h5/"]  # the page's own query is kept
        return query["code"][0], query["state"][0]

    def oauth_login(self, code: str, state: str | None = "st8") -> requests.Response:
        return requests.post(f"{self.base}/api/v1/login/oauth", json={"code": code, "state": state}, timeout=10)

    def bind(self, token: str, code: str, **extra) -> requests.Response:
        return requests.post(f"{self.base}/api/v1/bindings", json={"code": code, **extra},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def members(self, token: str, account_id: str) -> requests.Response:
        return requests.get(f"{self.base}/api/v1/accounts/{account_id}/members",
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def unbind(self, token: str, account_id: str) -> requests.Response:
        return requests.delete(f"{self.base}/api/v1/bindings/{account_id}",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.fixture
def phone(monkeypatch):
    p = Phone(monkeypatch)
    yield p
    p.stop()


def refused(r: requests.Response, code: str, status: int) -> bool:
    body = r.json()
    return (r.status_code == status and body["error"]["code"] == code
            and any("\u4e00" <= ch <= "\u9fff" for ch in body["error"]["message"]))


def issue(w: World, account_id: str, clock=None) -> str:
    """A binding code as the console's room actions issue it (ABCD-EFGH as shown)."""
    b = bindings.issue(w.property_id, account_id, "测试管理员", **({"clock": clock} if clock else {}))
    return show_binding_code(b.code)


def audit(w: World, action: str) -> list:
    records, _ = action_log.query(w.property_id, datetime.now(UTC) - timedelta(hours=1),
                                  datetime.now(UTC) + timedelta(hours=1), action=action)
    return records


# --- official-account login --------------------------------------------------------------------


def test_official_account_login_through_the_emulators_screen(phone):
    openid = oid()
    phone.wechat.add_oauth_user(openid, "小王")
    code, state = phone.oauth_code(openid, state="abc123")
    assert state == "abc123"
    r = phone.oauth_login(code, state)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "token_type", "expires_in", "refresh_token", "refresh_expires_in", "bound",
                         "properties"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900 and body["bound"] is False
    assert body["properties"] == []
    # the session is the official account's openid: it works like a mini-program session
    w = World()
    account = w.account()
    assert phone.bind(body["token"], issue(w, account)).status_code == 201
    [me] = phone.members(body["token"], account).json()["members"]
    assert me["display_name"] == "小王" and me["is_me"] is True  # the nickname from /sns/userinfo
    # the same code again: WeChat says 40163, the tenant gets a clear 401
    assert refused(phone.oauth_login(code, state), "login_refused", 401)
    # a code WeChat never issued (40029)
    assert refused(phone.oauth_login("0" * 32), "login_refused", 401)
    # an expired one (5 minutes)
    late, _ = phone.oauth_code(openid)
    phone.wechat.advance_time(301)
    assert refused(phone.oauth_login(late), "login_refused", 401)
    # bad input is a 400 and asks WeChat nothing
    before = len(phone.wechat.request_log)
    assert refused(phone.oauth_login(""), "code_required", 400)
    assert refused(phone.oauth_login("c" * 20, state="<script>"), "state_invalid", 400)
    assert len(phone.wechat.request_log) == before


def test_the_emulators_screen_refuses_a_bad_request_in_chinese(phone):
    good = auth.oauth_authorize_url(CALLBACK, "s")
    r = requests.get(good.replace(OA_APPID, "wx-not-ours"), timeout=10)
    assert r.status_code == 400 and "appid 无效" in r.text
    r = requests.post(f"{phone.wechat.url}/connect/oauth2/authorize/confirm",
                      data={"appid": OA_APPID, "redirect_uri": CALLBACK, "scope": "snsapi_userinfo", "state": "s",
                            "openid": "someone-not-listed"}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "未知的微信用户" in r.text


def test_a_snsapi_base_login_keeps_no_nickname(phone):
    openid = oid()
    phone.wechat.add_oauth_user(openid, "不该出现")
    code = phone.wechat.issue_oauth_code(openid, scope="snsapi_base")
    r = phone.oauth_login(code, None)
    assert r.status_code == 200, r.text
    w = World()
    account = w.account()
    assert phone.bind(r.json()["token"], issue(w, account)).status_code == 201
    [me] = phone.members(r.json()["token"], account).json()["members"]
    assert MASKED.fullmatch(me["display_name"])


# --- bindings ----------------------------------------------------------------------------------


def test_roommates_bind_with_a_code_and_with_the_qr_text_and_see_each_other(phone):
    w = World()
    account = w.account(opening=1000)
    alice, bob = oid(), oid()
    phone.wechat.add_oauth_user(bob, "阿波")
    alice_token = phone.login(alice)  # mini-program
    code, _ = phone.oauth_code(bob)
    bob_token = phone.oauth_login(code).json()["token"]  # official account

    typed = issue(w, account)
    r = phone.bind(alice_token, typed.lower())  # typed in lower case, with the dash
    assert r.status_code == 201, r.text
    expected = {"account_id": account, "property_id": w.property_id, "property_name": "测试物业",
                "room_name": "R001", "name": "R001"}
    assert r.json() == expected
    assert phone.bind(alice_token, typed).json() == expected  # a retry: the same answer

    scanned = BINDING_QR_PREFIX + issue(w, account).replace("-", "")
    assert phone.bind(bob_token, scanned).status_code == 201

    def names(token: str) -> dict[bool, str]:
        r = phone.members(token, account)
        assert r.status_code == 200, r.text
        members = r.json()["members"]
        assert len(members) == 2 and all(alice not in m["member_id"] and bob not in m["member_id"] for m in members)
        return {m["is_me"]: m["display_name"] for m in members}

    alice_view, bob_view = names(alice_token), names(bob_token)
    assert alice_view[False] == "阿波" and bob_view[True] == "阿波"  # bob's nickname (official account)
    assert MASKED.fullmatch(alice_view[True]) and bob_view[False] == alice_view[True]  # alice: none known

    assert [a.account_id for a in tenancy.accounts_of(alice)] == [account]
    assert [a.account_id for a in tenancy.accounts_of(bob)] == [account]
    assert len(audit(w, "tenant_bound")) == 2  # the retry recorded nothing more


def test_one_user_holds_accounts_at_two_properties(phone):
    home, shop = World(), World()
    a_home, a_shop = home.account(), shop.account()
    openid = oid()
    token = phone.login(openid)
    assert phone.bind(token, issue(home, a_home)).status_code == 201
    assert phone.bind(token, issue(shop, a_shop)).status_code == 201
    assert {a.account_id for a in tenancy.accounts_of(openid)} == {a_home, a_shop}
    r = requests.post(f"{phone.base}/api/v1/login", json={"code": phone.wechat.issue_code(openid)}, timeout=10)
    assert r.json()["bound"] is True and r.json()["properties"] == sorted([home.property_id, shop.property_id])
    for account in (a_home, a_shop):
        [me] = phone.members(token, account).json()["members"]
        assert me["is_me"] is True


def test_unbind_leaves_the_roommate_bound_and_is_audited(phone):
    w = World()
    account = w.account()
    alice, bob = oid(), oid()
    a_token, b_token = phone.login(alice), phone.login(bob)
    assert phone.bind(a_token, issue(w, account)).status_code == 201
    assert phone.bind(b_token, issue(w, account)).status_code == 201
    r = phone.unbind(a_token, account)
    assert r.status_code == 204 and r.text == ""
    assert refused(phone.members(a_token, account), "account_not_found", 404)  # at once, same session
    assert tenancy.accounts_of(alice) == []
    [left] = phone.members(b_token, account).json()["members"]
    assert left["is_me"] is True
    assert refused(phone.unbind(a_token, account), "account_not_found", 404)  # not a member any more
    [rec] = audit(w, "tenant_unbound")
    assert rec.role == "tenant" and rec.target == f"account:{account}" and alice not in rec.actor_id


def test_codes_that_do_not_bind(phone):
    w, other = World(), World()
    account = w.account()
    mine = w.account()
    token, stranger = phone.login(oid()), phone.login(oid())
    used = issue(w, account)
    assert phone.bind(token, used).status_code == 201
    assert refused(phone.bind(stranger, used), "binding_code_invalid", 404)  # single use
    expired = issue(w, mine, clock=Clock(datetime.now(UTC) - timedelta(hours=24, minutes=1)))
    assert refused(phone.bind(stranger, expired), "binding_code_invalid", 404)  # a day old
    assert refused(phone.bind(stranger, "ZZZZ-ZZZZ"), "binding_code_invalid", 404)  # never issued
    assert refused(phone.bind(stranger, "abc"), "binding_code_invalid", 400)  # not a code at all
    assert refused(phone.bind(stranger, "feikong://bind?code=12"), "binding_code_invalid", 400)
    # a code of another property than the page's: refused, and still good where it belongs
    theirs = issue(other, other.account())
    assert refused(phone.bind(stranger, theirs, property_id=w.property_id), "binding_code_invalid", 404)
    assert phone.bind(stranger, theirs, property_id=other.property_id).status_code == 201
    # nothing was bound by the refusals
    [only] = phone.members(token, account).json()["members"]
    assert only["is_me"] is True
    assert refused(phone.members(stranger, account), "account_not_found", 404)
    assert refused(phone.members(stranger, mine), "account_not_found", 404)
    assert refused(phone.unbind(stranger, mine), "account_not_found", 404)
    # no token: 401
    assert requests.post(f"{phone.base}/api/v1/bindings", json={"code": used}, timeout=10).status_code == 401


def test_the_tenants_own_wechat_user_sees_accounts_opened_later(phone):
    """The console's and the demo's path: directory.bind_openid makes a WeChat user the
    tenant's own, a member of the tenant's open accounts and of those opened afterwards."""
    w = World()
    first = w.account()
    openid = oid()
    w.d.bind_openid(w.tenant_id, openid)
    second = w.account()
    assert {a.account_id for a in tenancy.accounts_of(openid)} == {first, second}
    token = phone.login(openid)
    assert [m["is_me"] for m in phone.members(token, second).json()["members"]] == [True]
