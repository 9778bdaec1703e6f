"""The cold-start check (core/services/startup.py) against the emulator's Secrets Manager:
a function whose secret is missing refuses to serve, saying which; a prod stage refuses the
local stack's demo secrets (the console's session key among them) and emulator endpoints,
in one message."""

from __future__ import annotations

import pytest

from core.services.startup import StartRefused, check_start
from core.settings import BASE, CONSOLE, TENANT_LOGIN, WECHATPAY
from functions import wechatpay_notify
from infra.fakes.sitesim import LambdaContext
from infra.local.paystack import PayStack
from infra.local.stack import forget


@pytest.fixture
def paystack(aws):
    stack = PayStack().start()
    yield stack
    stack.stop()


def test_a_missing_secret_is_named_at_cold_start(aws, setenv):
    setenv("FEIKONG_WECHATPAY_SECRET_ID", "feikong/dev/no-such-secret")
    forget()
    with pytest.raises(StartRefused, match="secret feikong/dev/no-such-secret cannot be read"):
        check_start(BASE | WECHATPAY)


def test_prod_refuses_the_local_stack_in_one_message(paystack, setenv):
    setenv("FEIKONG_STAGE", "prod")
    paystack.apply_env()  # seeds the demo secrets under feikong/prod/...
    from infra.local.stack import LOCAL_CONSOLE_SECRET, LOCAL_JWT_SECRET, seed_secrets

    seed_secrets({"jwt": LOCAL_JWT_SECRET, "console": LOCAL_CONSOLE_SECRET})
    with pytest.raises(StartRefused) as e:
        check_start(BASE | TENANT_LOGIN | WECHATPAY | CONSOLE)
    message = str(e.value)
    assert message.count("refusing to start stage 'prod'") == 1
    for part in ("secret console holds a demo value", "AWS_ENDPOINT_URL points at a local emulator",
                 "FEIKONG_WECHATPAY_BASE_URL points at a local emulator", "secret jwt holds a demo value",
                 "secret wechat holds a demo value", "holds a demo value"):
        assert part in message
    # the Lambda handler refuses the same way, before touching anything
    with pytest.raises(StartRefused):
        wechatpay_notify.handler({"headers": {}, "body": ""}, LambdaContext())


def test_dev_with_the_local_stack_starts(paystack):
    paystack.apply_env()
    check_start(BASE | TENANT_LOGIN | WECHATPAY)


def test_the_flask_app_answers_503_until_its_deployment_checks_out(aws, setenv):
    """wsgi's app checks before its first request (not at import): a missing secret is a
    503 on every route, the reason in the log; once the secret is there it serves."""
    from core.services import startup
    from miniprogram_api.app import create_app

    startup.reset()
    setenv("FEIKONG_JWT_SECRET_ID", "feikong/dev/no-such-jwt")
    forget()
    client = create_app(check_start=True).test_client()
    for path in ("/health", "/api/v1/accounts"):
        r = client.get(path)
        assert r.status_code == 503 and r.get_json()["error"]["code"] == "not_configured", path
    setenv("FEIKONG_JWT_SECRET_ID", "feikong/dev/jwt")  # the local stack's secret
    forget()
    assert client.get("/health").status_code == 200
    assert client.get("/api/v1/accounts").status_code == 401  # now the route itself answers
