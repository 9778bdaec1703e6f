"""Pieces of the channel port that need no network: the Alibaba Cloud RPC signature against
the provider's documented example, the TC3 signature of the SMS emulator against the Tencent
SDK's, the "key=id" template settings, the settings' choices and the production guard."""

from __future__ import annotations

import pytest

from core.integrations.channels import template_ids
from core.integrations.sms import rpc_signature
from core.settings import Settings, SettingsError, from_environment, production_problems
from infra.fakes import sms_emulator

# Alibaba Cloud's documentation of signature version 1.0 (ECS DescribeRegions, secret "testsecret")
DOC_PARAMS = {"AccessKeyId": "testid", "Action": "DescribeRegions", "Format": "XML", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "SignatureVersion": "1.0",
              "Timestamp": "2016-02-23T12:46:24Z", "Version": "2014-05-26"}
DOC_SIGNATURE = "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_rpc_signature_matches_the_documented_example():
    assert rpc_signature("GET", DOC_PARAMS, "testsecret") == DOC_SIGNATURE
    assert sms_emulator.rpc_signature("GET", DOC_PARAMS, "testsecret") == DOC_SIGNATURE


def test_the_emulators_tc3_signature_is_the_sdks():
    from tencentcloud.common.sign import Sign

    to_sign = "TC3-HMAC-SHA256\n1551113065\n2019-02-25/sms/tc3_request\n" + "a" * 64
    assert sms_emulator.tc3_signature("key", "2019-02-25", "sms", to_sign) == \
        Sign.sign_tc3("key", "2019-02-25", "sms", to_sign)


def test_template_settings():
    assert template_ids(" low_balance = 2100001 ,cut_imminent=2100002,,bad,=x,y=") == {
        "low_balance": "2100001", "cut_imminent": "2100002"}
    assert template_ids("") == {}


def test_the_sms_provider_is_one_of_two():
    assert from_environment({"FEIKONG_SMS_PROVIDER": "aliyun"}).sms_provider == "aliyun"
    with pytest.raises(SettingsError, match="FEIKONG_SMS_PROVIDER: must be one of 'tencent', 'aliyun'"):
        from_environment({"FEIKONG_SMS_PROVIDER": "twilio"})
    with pytest.raises(SettingsError, match="FEIKONG_VOICE_PROVIDER"):
        from_environment({"FEIKONG_VOICE_PROVIDER": "tencent"})


def test_prod_refuses_the_sms_emulator_and_its_demo_key():
    s = Settings(stage="prod", sms_tencent_endpoint="http://127.0.0.1:9100", sms_aliyun_endpoint="http://localhost/aliyun/",
                 voice_aliyun_endpoint="http://127.0.0.1:9100/aliyun/", h5_base_url="http://127.0.0.1:8000")
    problems = "; ".join(production_problems(s, {"sms": "sms-secret-key-for-local-runs-0123"}))
    for name in ("FEIKONG_SMS_TENCENT_ENDPOINT", "FEIKONG_SMS_ALIYUN_ENDPOINT", "FEIKONG_VOICE_ALIYUN_ENDPOINT",
                 "FEIKONG_H5_BASE_URL",
                 "secret sms holds a demo value"):
        assert name in problems
    assert production_problems(Settings(stage="prod")) == []
