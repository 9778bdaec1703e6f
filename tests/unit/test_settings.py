"""Settings (core/settings.py): read once from the environment, typed, named by their
variables; what entry points need; the production guard. Expected values are written
out by hand from the variables set here."""

from __future__ import annotations

import dataclasses

import pytest

from core.settings import (
    BASE,
    DEMO_SECRETS,
    SITES,
    TENANT_LOGIN,
    WECHATPAY,
    ProductionRefused,
    Settings,
    SettingsError,
    get_settings,
    needs,
    placeholder_secret,
    production_problems,
    refuse_in_production,
    reset_settings,
)


@pytest.fixture
def env(monkeypatch):
    for name in [n for n in __import__("os").environ if n.startswith("FEIKONG_") or n == "AWS_ENDPOINT_URL"]:
        monkeypatch.delenv(name)
    reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


def test_read_once_and_frozen_until_reset(env):
    env.setenv("FEIKONG_OFFLINE_MINUTES", "45")
    s = get_settings()
    assert s.offline_minutes == 45 and s.state_cache_size == 10_000 and s.stage == "dev"
    env.setenv("FEIKONG_OFFLINE_MINUTES", "50")
    assert get_settings() is s  # read once per process
    reset_settings()
    assert get_settings().offline_minutes == 50
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.stage = "prod"


def test_a_bad_value_names_its_variable(env):
    env.setenv("FEIKONG_RECHARGE_MIN_FEN", "0")
    env.setenv("FEIKONG_OFFLINE_MINUTES", "perhaps")
    with pytest.raises(SettingsError) as e:
        get_settings()
    assert "FEIKONG_RECHARGE_MIN_FEN" in str(e.value) and "FEIKONG_OFFLINE_MINUTES" in str(e.value)


def test_values_convert_by_type_and_every_bad_one_is_reported_at_once(env):
    env.setenv("FEIKONG_OFFLINE_MINUTES", " 45 ")
    env.setenv("FEIKONG_WECHATPAY_READ_TIMEOUT", "2.5")
    env.setenv("FEIKONG_MAX_GAP_HOURS", "36")
    env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    s = get_settings()
    assert (s.offline_minutes, s.wechatpay_read_timeout, s.max_gap_hours, s.max_clock_skew_minutes, s.aws_endpoint) == \
        (45, 2.5, 36.0, None, "http://127.0.0.1:5000")
    reset_settings()
    for name, value in {"FEIKONG_OFFLINE_MINUTES": "thirty", "FEIKONG_WECHATPAY_READ_TIMEOUT": "0",
                        "FEIKONG_MAX_GAP_HOURS": "nan", "FEIKONG_SECRETS_MAX_AGE": "-1",
                        "FEIKONG_STATE_CACHE_SIZE": "1.5"}.items():
        env.setenv(name, value)
    with pytest.raises(SettingsError) as e:
        get_settings()
    message = str(e.value)
    for part in ("FEIKONG_OFFLINE_MINUTES: must be an integer (got 'thirty')",
                 "FEIKONG_WECHATPAY_READ_TIMEOUT: must be greater than 0 (got 0.0)",
                 "FEIKONG_MAX_GAP_HOURS: must be a finite number (got nan)",
                 "FEIKONG_SECRETS_MAX_AGE: must be at least 0 (got -1)",
                 "FEIKONG_STATE_CACHE_SIZE: must be an integer (got '1.5')"):
        assert part in message
    with pytest.raises(SettingsError, match="FEIKONG_RECHARGE_MIN_FEN: must be at least 1"):
        Settings(recharge_min_fen=0)  # made in code, checked the same way


def test_secret_ids_default_per_stage_and_can_be_named(env):
    env.setenv("FEIKONG_STAGE", "prod")
    env.setenv("FEIKONG_JWT_SECRET_ID", "arn:aws-cn:secretsmanager:cn-north-1:1:secret:jwt-AbCdEf")
    s = get_settings()
    assert s.secret_id("wechatpay") == "feikong/prod/wechatpay"
    assert s.secret_id("jwt") == "arn:aws-cn:secretsmanager:cn-north-1:1:secret:jwt-AbCdEf"
    assert s.site_secret_id("s1") == "feikong/prod/site/s1"
    assert s.resource_name("ledger") == "feikong-prod-ledger"


def test_needs_name_the_variables_a_deployment_must_declare():
    assert (BASE | WECHATPAY | SITES).env() == {
        "FEIKONG_STAGE": "stage", "FEIKONG_SITE_SECRET_PREFIX": "secret:sites",
        "FEIKONG_WECHATPAY_SECRET_ID": "secret:wechatpay"}
    assert set((BASE | TENANT_LOGIN).env()) == {"FEIKONG_STAGE", "FEIKONG_JWT_SECRET_ID", "FEIKONG_WECHAT_SECRET_ID"}
    with pytest.raises(ValueError, match="unknown"):
        needs(("no_such_setting",))


def prod(**values) -> Settings:
    return Settings(stage="prod", **values)


def test_the_guard_lets_other_stages_be():
    s = Settings(stage="dev", aws_endpoint="http://127.0.0.1:4566")
    assert production_problems(s, {"jwt": "local-only-jwt-secret-" + "x" * 20}) == []


def test_prod_refuses_each_local_or_demo_thing_in_one_message():
    s = prod(aws_endpoint="http://127.0.0.1:4566",
             wechatpay_base_url="http://localhost:8100", wechat_api_base="http://127.0.0.2:9000/")
    secrets = {"jwt": "local-only-jwt-secret-xxxxxxxxxxxxxxxxxxxx", "wechatpay#1": "0123456789abcdefghijklmnopqrstuv",
               "wechat": "app-secret-for-local-runs", "site:s1": "b" * 40,
               "console": "local-only-console-secret-yyyyyyyyyyyyyyyyyyyy"}
    with pytest.raises(ProductionRefused) as e:
        refuse_in_production(s, secrets)
    message = str(e.value)
    assert message.startswith("refusing to start stage 'prod': ")
    for part in ("secret console holds a demo value", "AWS_ENDPOINT_URL points at a local emulator",
                 "FEIKONG_WECHATPAY_BASE_URL", "FEIKONG_WECHAT_API_BASE", "secret jwt holds a demo value",
                 "secret wechatpay#1 holds a demo value", "secret wechat holds a demo value",
                 "secret site:s1 holds a placeholder"):
        assert part in message
    assert len(production_problems(s, secrets)) == 8


def test_prod_with_real_looking_values_starts():
    s = prod(aws_endpoint="", wechatpay_base_url="https://api.mch.weixin.qq.com")
    assert production_problems(s, {"jwt": "Zq3v9T1kL0pX8wR2nB6mC4yH7jD5sF1aE9uQ0oI3", "site:s1": "r4Nd0m-K3y_" * 4}) == []


@pytest.mark.parametrize("value,bad", [
    ("b" * 40, True), ("short-key", True), ("please-change-me-to-a-real-key-0123456789", True),
    ("changeme-0123456789abcdefghijklmnopqrstuvwxyz", True), ("PLACEHOLDER-abcdefghijklmnopqrstuvwxyz0123", True),
    ("site-secret-abcdefghijklmnopqrstuvwxyz0123", True), ("Wm0Jd9y8HkQ2pL5tZr7xV1cN3bF6gS4a", False),
])
def test_placeholder_site_secrets(value, bad):
    assert placeholder_secret(value) is bad


def test_the_local_stacks_secrets_are_known_demo_values():
    """Independent of the list: the values infra/ actually seeds must be refused on prod."""
    from infra.local import paystack, stack

    assert {stack.LOCAL_JWT_SECRET, stack.LOCAL_CONSOLE_SECRET, paystack.SECRET, paystack.APIV3_KEY,
            stack.LOCAL_SMS_SECRET} <= DEMO_SECRETS


# -- the offline deploy check of settings and secrets (infra/deploy/deploy_check.py) -----------

PARTITION_NEUTRAL = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"


def template(notify_env: dict | None = None, grants: list[str] | None = None) -> dict:
    """The shape `serverless package` writes, cut down to one role and two functions."""
    env = {"FEIKONG_STAGE": "dev", "FEIKONG_WECHATPAY_SECRET_ID": "feikong/dev/wechatpay",
           "FEIKONG_SITE_SECRET_PREFIX": "feikong/dev/site/"} if notify_env is None else notify_env
    grants = [PARTITION_NEUTRAL + "feikong/dev/wechatpay-??????", PARTITION_NEUTRAL + "feikong/dev/site/*"] \
        if grants is None else grants
    role = {"Fn::GetAtt": ["IamRoleLambdaExecution", "Arn"]}
    return {"Resources": {
        "IamRoleLambdaExecution": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {
            "Statement": [{"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"],
                           "Resource": [{"Fn::Sub": g} for g in grants]}]}}]}},
        "WechatpayNotifyLambdaFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Handler": "functions/wechatpay_notify.handler", "Role": role, "Environment": {"Variables": env}}},
        "ControlTickLambdaFunction": {"Type": "AWS::Lambda::Function", "Properties": {
            "Handler": "functions/control_tick.handler", "Role": role, "Environment": {"Variables": {
                "FEIKONG_STAGE": "dev", "FEIKONG_SITE_SECRET_PREFIX": "feikong/dev/site/"}}}},
    }}


ZAPPA = {"dev": {"app_function": "miniprogram_api.wsgi.app", "environment_variables": {
    "FEIKONG_STAGE": "dev", "FEIKONG_JWT_SECRET_ID": "feikong/dev/jwt", "FEIKONG_WECHAT_SECRET_ID": "feikong/dev/wechat",
    "FEIKONG_WECHATPAY_SECRET_ID": "feikong/dev/wechatpay", "FEIKONG_SITE_SECRET_PREFIX": "feikong/dev/site/",
    "FEIKONG_CONSOLE_SECRET_ID": "feikong/dev/console", "FEIKONG_WECHAT_OA_SECRET_ID": "feikong/dev/wechat_oa"}}}


def failure(tpl: dict, zappa: dict | None = None) -> str:
    from infra.deploy.deploy_check import CheckFailed, check_needs

    with pytest.raises(CheckFailed) as e:
        check_needs(tpl, zappa)
    return str(e.value)


def test_the_deploy_check_passes_a_template_that_declares_and_grants_what_the_code_needs():
    from infra.deploy.deploy_check import check_needs

    check_needs(template(), ZAPPA)


def test_the_deploy_check_fails_a_function_without_a_secret_its_code_needs():
    broken = template(notify_env={"FEIKONG_STAGE": "dev", "FEIKONG_SITE_SECRET_PREFIX": "feikong/dev/site/"})
    assert "WechatpayNotifyLambdaFunction: FEIKONG_WECHATPAY_SECRET_ID is not set" in failure(broken)


def test_the_deploy_check_fails_a_secret_the_role_may_not_read_and_a_grant_nobody_needs():
    message = failure(template(grants=[PARTITION_NEUTRAL + "feikong/dev/site/*",
                                       PARTITION_NEUTRAL + "feikong/dev/jwt-??????"]))
    assert "WechatpayNotifyLambdaFunction: its role may not read wechatpay" in message
    assert "feikong/dev/jwt-??????, which no function of it needs" in message


def test_the_deploy_check_fails_the_flask_app_without_its_login_secrets():
    for var in ("FEIKONG_JWT_SECRET_ID", "FEIKONG_CONSOLE_SECRET_ID", "FEIKONG_WECHAT_OA_SECRET_ID"):
        zappa = {"dev": dict(ZAPPA["dev"], environment_variables={
            k: v for k, v in ZAPPA["dev"]["environment_variables"].items() if k != var})}
        assert f"zappa_settings.json dev: {var} is not set" in failure(template(), zappa)
