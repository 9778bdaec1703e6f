"""The demo's tenant side (infra/demo/wechat.py, docs/h5.md): every seeded tenant has a
WeChat user on the WeChat API emulator's authorization screen, already bound as seeded,
who logs in to the H5 pages there and sees exactly their own account; the newcomer sees
none until they bind with the code the demo prints; the pages load the WeChat Pay
emulator's payment shim only when the setting names it. Over HTTP: the app, the emulators
(infra/local/paystack.py) and the moto emulator; the demo seeded as `make demo` seeds it."""

from __future__ import annotations

import pytest
import requests

from infra.demo import seed
from infra.demo import wechat as demo_wechat
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.paystack import PayStack
from miniprogram_api.app import create_app


@pytest.fixture(scope="module")
def demo(aws):
    paystack = PayStack().start()
    paystack.apply_env()
    info = seed.seed()
    demo_wechat.configure(paystack.api, info)
    app = BackgroundServer(create_app()).start()
    yield {"info": info, "paystack": paystack, "url": app.url}
    app.stop()
    paystack.stop()


def accounts(demo, token: str) -> list[dict]:
    r = requests.get(f"{demo['url']}/api/v1/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["accounts"]


def test_one_wechat_user_per_seeded_tenant_and_a_newcomer(demo):
    info = demo["info"]
    users = demo_wechat.users(info)
    # 20 rooms, every tenth empty: 18 tenants, 18 accounts, one user each, plus the newcomer
    assert len(info["accounts"]) == 18 and len(users) == 19
    assert sorted(o for o in users if o != demo_wechat.NEWCOMER[0]) == \
        sorted(f"demo-openid-{a.removeprefix('acct-')}" for a in info["accounts"])
    assert info["crossing"] == {"room": "B-201", "account": "acct-B201", "openid": "demo-openid-B201"}
    assert demo["paystack"].api.oauth_users == users


@pytest.mark.parametrize("room", ["A101", "B201", "B203"])
def test_a_demo_tenant_logs_in_on_the_emulators_screen_and_sees_only_their_account(demo, room):
    openid = f"demo-openid-{room}"
    tokens = demo_wechat.oauth_login(demo["url"], openid)
    nickname = demo_wechat.users(demo["info"])[openid]
    assert nickname in tokens["screen"] and "微信授权登录" in tokens["screen"]
    assert tokens["bound"] is True
    mine = accounts(demo, tokens["token"])
    assert [a["account_id"] for a in mine] == [f"acct-{room}"]
    assert mine[0]["property_name"] == seed.PROPERTY_NAME


def test_the_newcomer_binds_with_the_printed_code_as_a_roommate(demo):
    tokens = demo_wechat.oauth_login(demo["url"], demo_wechat.NEWCOMER[0])
    assert tokens["bound"] is False and accounts(demo, tokens["token"]) == []
    code = demo_wechat.binding_code(demo["info"])
    assert len(code) == 9 and code[4] == "-"  # XXXX-XXXX, as the tenant types it
    r = requests.post(f"{demo['url']}/api/v1/bindings", json={"code": code}, timeout=10,
                      headers={"Authorization": f"Bearer {tokens['token']}"})
    assert r.status_code == 201, r.text
    assert [a["account_id"] for a in accounts(demo, tokens["token"])] == ["acct-B201"]
    tenant = demo_wechat.oauth_login(demo["url"], "demo-openid-B201")  # the tenant still sees it too
    members = requests.get(f"{demo['url']}/api/v1/accounts/acct-B201/members", timeout=10,
                           headers={"Authorization": f"Bearer {tenant['token']}"}).json()["members"]
    assert len(members) == 2 and [m["is_me"] for m in members].count(True) == 1


def test_the_pages_load_the_payment_shim_only_when_the_setting_names_it(demo, setenv):
    shim = demo_wechat.jsbridge_url(demo["paystack"].pay.url)
    setenv("FEIKONG_WECHATPAY_JSBRIDGE_URL", None)
    page = requests.get(f"{demo['url']}/h5/recharge", timeout=10)
    assert page.status_code == 200 and "jsbridge.js" not in page.text
    setenv("FEIKONG_WECHATPAY_JSBRIDGE_URL", shim)
    page = requests.get(f"{demo['url']}/h5/recharge", timeout=10)
    assert f'<script src="{shim}"></script>' in page.text
    js = requests.get(shim, timeout=10)
    assert js.status_code == 200 and "getBrandWCPayRequest" in js.text
