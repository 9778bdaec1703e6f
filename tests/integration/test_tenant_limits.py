"""Rate limits of logins and recharge orders (docs/tenant-auth.md, "Limits") over HTTP: two
instances of the Flask app (two Lambda containers, each with its own services) on free
ports share the DynamoDB counters in the emulator; the WeChat API and WeChat Pay emulators
answer over HTTP. Time moves by the clock injected into the services, never by sleeping.

Hand-worked expectations: the clock starts at a whole hour, so the 60-second and the
600-second windows start with it; Retry-After at the window's first second is the whole
window, 59 seconds later it is 1, and a second later a new window starts."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from core.services.auth import TenantAuth
from core.services.payments import Payments
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.paystack import PayStack
from miniprogram_api.app import create_app
from testkit.builders import Clock, World

MESSAGE = "操作过于频繁，请稍后再试"
CLOUDFRONT = "130.176.0.10"  # the edge in front of the API: the last X-Forwarded-For entry


def oid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def an_ip() -> str:
    return f"203.0.{random.randint(0, 255)}.{random.randint(1, 254)}"


class Instances:
    """Two app instances with services on one injected clock."""

    def __init__(self, setenv, limits: dict[str, str]) -> None:
        for name, value in limits.items():
            setenv(name, value)
        self.stack = PayStack().start()
        self.stack.apply_env()
        self.clock = Clock(datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        self.apps = []
        for _ in range(2):
            app = create_app()
            app.extensions["feikong.auth"] = TenantAuth(clock=self.clock)
            app.extensions["feikong.payments"] = Payments(clock=self.clock)
            self.apps.append(BackgroundServer(app).start())

    def stop(self) -> None:
        for a in self.apps:
            a.stop()
        self.stack.stop()

    def url(self, n: int, path: str) -> str:
        return f"{self.apps[n % 2].url}/api/v1{path}"

    def login(self, n: int, openid: str, ip: str) -> requests.Response:
        code = self.stack.api.issue_code(openid)
        return requests.post(self.url(n, "/login"), json={"code": code},
                             headers={"X-Forwarded-For": f"{ip}, {CLOUDFRONT}"}, timeout=10)

    def order(self, n: int, token: str, account_id: str, ip: str) -> requests.Response:
        return requests.post(self.url(n, "/recharges"), json={"account_id": account_id, "amount": 1000},
                             headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": f"{ip}, {CLOUDFRONT}"},
                             timeout=20)


def limited(r: requests.Response, retry_after: int) -> bool:
    return (r.status_code == 429 and r.json() == {"error": {"code": "rate_limited", "message": MESSAGE}}
            and r.headers["Retry-After"] == str(retry_after))


@pytest.fixture
def login_limits(setenv):
    i = Instances(setenv, {"FEIKONG_LOGIN_LIMIT_PER_IP": "3", "FEIKONG_LOGIN_LIMIT_PER_OPENID": "2",
                           "FEIKONG_LOGIN_LIMIT_WINDOW_SECONDS": "60"})
    yield i
    i.stop()


@pytest.fixture
def order_limits(setenv):
    i = Instances(setenv, {"FEIKONG_ORDER_LIMIT_PER_OPENID": "2", "FEIKONG_ORDER_LIMIT_PER_IP": "3",
                           "FEIKONG_ORDER_LIMIT_WINDOW_SECONDS": "600"})
    yield i
    i.stop()


def test_logins_per_address_across_two_instances_until_the_window_ends(login_limits):
    api, ip = login_limits, an_ip()
    for n in range(3):  # instance 0, 1, 0: one counter
        assert api.login(n, oid(), ip).status_code == 200
    spared = oid()
    code = api.stack.api.issue_code(spared)
    r = requests.post(api.url(1, "/login"), json={"code": code}, headers={"X-Forwarded-For": f"{ip}, {CLOUDFRONT}"},
                      timeout=10)
    assert limited(r, 60)
    # refused before WeChat was asked: the code is still good
    assert requests.post(api.url(0, "/login"), json={"code": code},
                         headers={"X-Forwarded-For": f"{an_ip()}, {CLOUDFRONT}"}, timeout=10).status_code == 200
    # the official-account login counts against the same address
    assert limited(requests.post(api.url(0, "/login/oauth"), json={"code": "x" * 32},
                                 headers={"X-Forwarded-For": f"{ip}, {CLOUDFRONT}"}, timeout=10), 60)
    # what a client puts before the edge's entry is not believed: still this address
    assert limited(api.login(1, oid(), f"198.51.100.7, {ip}"), 60)
    assert api.login(1, oid(), an_ip()).status_code == 200  # another address is its own
    api.clock.advance(seconds=59)
    assert limited(api.login(0, oid(), ip), 1)
    api.clock.advance(seconds=1)  # a new window
    assert api.login(1, oid(), ip).status_code == 200


def test_logins_per_wechat_user(login_limits):
    api, openid = login_limits, oid()
    assert api.login(0, openid, an_ip()).status_code == 200
    assert api.login(1, openid, an_ip()).status_code == 200
    assert limited(api.login(0, openid, an_ip()), 60)  # a third address changes nothing
    assert api.login(1, oid(), an_ip()).status_code == 200
    api.clock.advance(seconds=60)
    assert api.login(1, openid, an_ip()).status_code == 200


def test_orders_per_wechat_user_and_per_address(order_limits):
    api = order_limits
    w = World()
    account = w.account()
    tenant, roommate = oid(), oid()
    w.d.bind_openid(w.tenant_id, tenant)
    from core.services import bindings

    bindings.redeem_binding_code(bindings.issue(w.property_id, account, "测试").code, roommate)
    home = an_ip()
    t = api.login(0, tenant, an_ip()).json()["token"]
    m = api.login(1, roommate, an_ip()).json()["token"]

    assert api.order(0, t, account, home).status_code == 201
    assert api.order(1, t, account, home).status_code == 201
    assert limited(api.order(0, t, account, home), 600)  # the tenant's third in 10 minutes
    assert limited(api.order(1, t, account, an_ip()), 600)  # from anywhere
    assert api.order(1, m, account, home).status_code == 201  # the address's third (refusals above not counted)
    assert limited(api.order(0, m, account, home), 600)  # the address's fourth
    # that refusal counted against the roommate too (each check counts before it answers): 3 > 2
    assert limited(api.order(0, m, account, an_ip()), 600)
    api.clock.advance(seconds=599)
    assert limited(api.order(1, t, account, an_ip()), 1)
    api.clock.advance(seconds=1)
    assert api.order(1, t, account, home).status_code == 201
    # a refused order created nothing: 4 orders (2 + 1 + 1), no more
    from core.store import payments as orders

    assert len(orders.orders_of_account(account)) == 4


def test_the_deploy_callback_throttles_the_rest_api_stage(aws):
    """zappa's post-deploy callback (infra/deploy/zappa_stage.py) against the emulator's
    API Gateway: every method of the stage gets zappa_settings.json's limits."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    import boto3

    from infra.deploy import zappa_stage

    cfg = json.loads((Path(__file__).resolve().parents[2] / "zappa_settings.json").read_text())["dev"]
    client = boto3.client("apigateway")
    api_id = client.create_rest_api(name=f"feikong-api-dev-{uuid.uuid4().hex[:6]}")["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="ANY", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="ANY", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName="dev")
    cli = SimpleNamespace(stage_config=cfg, api_stage="dev", lambda_name="feikong-api-dev",
                          zappa=SimpleNamespace(apigateway_client=client, get_api_id=lambda name: api_id))
    zappa_stage.apply_stage_settings(cli)
    settings = client.get_stage(restApiId=api_id, stageName="dev")["methodSettings"]["*/*"]
    assert settings["throttlingRateLimit"] == 100.0 and settings["throttlingBurstLimit"] == 200
