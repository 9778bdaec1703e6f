"""The channel port (core/integrations/channels.py) against its emulators over HTTP with real
signatures: the WeChat API emulator (mini-program subscribe messages, official-account
template messages, stable access tokens), the SMS emulator (Tencent Cloud TC3-HMAC-SHA256,
Alibaba Cloud RPC HMAC-SHA1, verified there), SES in the AWS emulator (read back through
moto's API). Expected values are the inputs as sent or worked by hand."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
import requests
from flask import Flask, Response

from core.integrations import channels
from core.integrations.channels import REJECTED, RETRY, SENT, Outbound
from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.channelstack import SMS_SIGN, ChannelStack
from infra.local.stack import LOCAL_OA_APPID, LOCAL_OA_SECRET, LOCAL_SMS_KEY_ID, forget, seed_secrets

APPID, SECRET = "wx00000000channels", "app-secret-for-local-runs"
KEYS = {"low_balance": "余额不足提醒", "cut_imminent": "即将停电提醒", "payment_received": "充值到账"}
T = 10


@pytest.fixture(scope="module")
def emu(aws):
    wx = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=SECRET, oa_appid=LOCAL_OA_APPID,
                                           oa_secret=LOCAL_OA_SECRET)).start()
    wx.add_oauth_user("oa-user-1", "张三")
    stack = ChannelStack(wx, keys=KEYS).start()
    saved = os.environ.get("FEIKONG_WECHAT_API_BASE")
    os.environ["FEIKONG_WECHAT_API_BASE"] = wx.url
    stack.apply_env("tencent")
    seed_secrets({"wechat": {"appid": APPID, "secret": SECRET},
                  "wechat_oa": {"appid": LOCAL_OA_APPID, "secret": LOCAL_OA_SECRET}})
    yield wx, stack
    stack.stop()
    wx.stop()
    if saved is None:
        os.environ.pop("FEIKONG_WECHAT_API_BASE", None)
    else:
        os.environ["FEIKONG_WECHAT_API_BASE"] = saved
    forget()


@pytest.fixture(autouse=True)
def _fresh_clients():
    channels.reset()
    yield
    channels.reset()


def out(channel: str, to: str, key: str = "low_balance", **kw) -> Outbound:
    fields = kw.pop("fields", {"thing1": "余额不足提醒", "amount2": "12.00元", "thing3": "已低于 20.00 元"})
    return Outbound(delivery_id=f"d-{uuid.uuid4().hex}", channel=channel, to=to, template_key=key,
                    title=KEYS.get(key, key), body="您的账户余额 12.00 元，已低于 20.00 元，请及时充值。", fields=fields, **kw)


def token_fetches(wx: WeChatApiEmulator) -> int:
    return sum(1 for r in wx.request_log if r["path"] in ("/cgi-bin/stable_token", "/cgi-bin/token"))


# --- mini-program subscribe messages ---------------------------------------------------------


def test_subscribe_message_sent_with_its_template_data_and_page(emu):
    wx, stack = emu
    openid = f"o{uuid.uuid4().hex[:20]}"
    r = channels.send(out("subscribe", openid, link="pages/recharge/recharge",
                          fields={"thing1": "余额不足提醒", "amount2": "12.00元", "thing3": "一" * 25}))
    assert r.outcome == SENT, r
    [m] = wx.messages_to(openid)
    assert m["kind"] == "subscribe" and m["appid"] == APPID
    assert m["template_id"] == stack.subscribe_ids["low_balance"] and str(m["msgid"]) == r.provider_id
    assert m["page"] == "pages/recharge/recharge"
    # a thing value holds at most 20 characters: 19 kept and an ellipsis (by hand)
    assert m["data"] == {"thing1": {"value": "余额不足提醒"}, "amount2": {"value": "12.00元"},
                         "thing3": {"value": "一" * 19 + "…"}}
    # the token came from /cgi-bin/stable_token, never /cgi-bin/token (which would invalidate other instances')
    assert not any(x["path"] == "/cgi-bin/token" for x in wx.request_log)
    # an H5 path has no mini-program page: the message opens the mini-program's home page
    assert channels.send(out("subscribe", openid, link="/h5/recharge")).outcome == SENT
    assert wx.messages_to(openid)[-1]["page"] == "pages/home/home"


def test_subscribe_refused_by_the_user_is_rejected_with_wechats_code(emu):
    wx, _ = emu
    openid = f"o{uuid.uuid4().hex[:20]}"
    wx.refuse_messages(openid, 43101)
    r = channels.send(out("subscribe", openid))
    assert r.outcome == REJECTED and "43101" in r.detail
    assert wx.messages_to(openid) == []


def test_subscribe_without_a_template_for_the_key_or_with_one_wechat_does_not_know(emu, setenv):
    wx, stack = emu
    openid = f"o{uuid.uuid4().hex[:20]}"
    before = len(wx.request_log)
    r = channels.send(out("subscribe", openid, key="refund_done"))
    assert r.outcome == REJECTED and "no subscribe template for refund_done" in r.detail
    assert len(wx.request_log) == before  # nothing asked
    setenv("FEIKONG_WECHAT_SUBSCRIBE_TEMPLATES", "low_balance=NOT-A-TEMPLATE")
    r = channels.send(out("subscribe", openid))
    assert r.outcome == REJECTED and "40037" in r.detail and wx.messages_to(openid) == []


@pytest.mark.parametrize("failure", ["http_503", "http_500", "busy", "throttle"])
def test_subscribe_transient_failures_are_retry_then_the_next_try_is_sent(emu, failure):
    wx, _ = emu
    openid = f"o{uuid.uuid4().hex[:20]}"
    wx.fail_next(failure)
    first = channels.send(out("subscribe", openid))
    assert first.outcome == RETRY, first
    assert wx.messages_to(openid) == []
    assert channels.send(out("subscribe", openid)).outcome == SENT
    assert len(wx.messages_to(openid)) == 1


@pytest.mark.parametrize("stale", ["revoked", "expired"])
def test_a_stale_access_token_is_refreshed_once_and_the_message_sent(emu, stale):
    wx, _ = emu
    openid = f"o{uuid.uuid4().hex[:20]}"
    assert channels.send(out("subscribe", openid)).outcome == SENT
    fetches = token_fetches(wx)
    if stale == "revoked":
        wx.revoke_access_tokens()  # WeChat answers 40001 (invalid credential / not latest)
    else:
        wx.expire_access_tokens()  # 42001
    r = channels.send(out("subscribe", openid))
    assert r.outcome == SENT, r
    assert token_fetches(wx) == fetches + 1
    assert len(wx.messages_to(openid)) == 2


def test_a_token_refused_again_after_the_refresh_is_retry_not_a_loop(emu):
    wx, _ = emu
    openid = f"o{uuid.uuid4().hex[:20]}"
    assert channels.send(out("subscribe", openid)).outcome == SENT
    sends = sum(1 for x in wx.request_log if x["path"] == "/cgi-bin/message/subscribe/send")
    wx.fail_next("invalid_token", 2)
    r = channels.send(out("subscribe", openid))
    assert r.outcome == RETRY and "40001" in r.detail
    assert sum(1 for x in wx.request_log if x["path"] == "/cgi-bin/message/subscribe/send") == sends + 2


def test_wechat_unreachable_is_retry(emu, setenv):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    setenv("FEIKONG_WECHAT_API_BASE", f"http://127.0.0.1:{port}")
    r = channels.send(out("subscribe", "o-nobody"))
    assert r.outcome == RETRY and "ConnectionError" in r.detail


# --- official-account template messages -------------------------------------------------------


def test_template_message_sent_with_the_official_accounts_own_token(emu, setenv):
    wx, stack = emu
    setenv("FEIKONG_H5_BASE_URL", "https://h5.example.com/")  # the catalog's links are H5 paths
    r = channels.send(out("template", "oa-user-1", key="cut_imminent", link="/h5/recharge",
                          fields={"thing1": "即将停电提醒", "amount2": "-1.00元", "time3": "11-30 18:00"}))
    assert r.outcome == SENT, r
    [m] = wx.messages_to("oa-user-1", "template")
    assert m["appid"] == LOCAL_OA_APPID and m["template_id"] == stack.template_ids["cut_imminent"]
    assert m["url"] == "https://h5.example.com/h5/recharge"
    assert m["data"]["time3"] == {"value": "11-30 18:00"}
    # the page of what the emulator received names the user, the template's title and the values
    page = requests.get(f"{wx.url}/emulator/messages", timeout=T)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    for text in ("张三", "oa-user-1", "即将停电提醒", "公众号模板消息", "11-30 18:00"):
        assert text in page.text
    listed = requests.get(f"{wx.url}/emulator/messages.json", timeout=T).json()["messages"]
    assert any(x["msgid"] == int(r.provider_id) for x in listed)


def test_template_message_refusals_are_rejected_with_wechats_code(emu, setenv):
    wx, _ = emu
    wx.unfollow("oa-gone")
    r = channels.send(out("template", "oa-gone", key="cut_imminent"))
    assert r.outcome == REJECTED and "43004" in r.detail
    setenv("FEIKONG_WECHAT_TEMPLATE_IDS", "cut_imminent=OA-UNKNOWN")
    r = channels.send(out("template", "oa-user-2", key="cut_imminent"))
    assert r.outcome == REJECTED and "40037" in r.detail
    assert wx.messages_to("oa-gone") == [] and wx.messages_to("oa-user-2") == []


def test_the_mini_programs_token_cannot_send_template_messages(emu):
    wx, stack = emu
    token = wx.issue_access_token(APPID)
    body = {"touser": "oa-user-1", "template_id": stack.template_ids["cut_imminent"], "data": {}}
    r = requests.post(f"{wx.url}/cgi-bin/message/template/send", params={"access_token": token}, json=body,
                      timeout=T).json()
    assert r["errcode"] == 48001


# --- SMS: Tencent Cloud ------------------------------------------------------------------------


def sms_phone() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def test_tencent_sms_sent_with_positional_parameters(emu):
    _, stack = emu
    phone = sms_phone()
    o = out("sms", phone)
    r = channels.send(o)
    assert r.outcome == SENT, r
    [got] = stack.sms.delivered(phone)
    assert (got.provider, got.sign, got.template) == ("tencent", SMS_SIGN, stack.tencent_ids["low_balance"])
    assert got.params == ["余额不足提醒", "12.00元", "已低于 20.00 元"]  # the fields, in their order
    assert got.message_id == r.provider_id and got.context == o.delivery_id


def test_tencent_refusals_are_rejected_and_limits_of_the_hour_retried(emu):
    _, stack = emu
    r = channels.send(out("sms", "+86123"))
    assert r.outcome == REJECTED and "InvalidParameterValue.IncorrectPhoneNumber" in r.detail
    phone = sms_phone()
    stack.sms.config.daily_limit = 2
    try:
        assert [channels.send(out("sms", phone)).outcome for _ in range(2)] == [SENT, SENT]
        r = channels.send(out("sms", phone))
        assert r.outcome == REJECTED and "LimitExceeded.PhoneNumberDailyLimit" in r.detail
    finally:
        stack.sms.config.daily_limit = 10
    assert len(stack.sms.delivered(phone)) == 2
    other = sms_phone()
    stack.sms.fail_next("reject", code="LimitExceeded.PhoneNumberOneHourLimit")
    assert channels.send(out("sms", other)).outcome == RETRY


@pytest.mark.parametrize("failure", ["http_502", "http_503", "throttle"])
def test_tencent_5xx_and_throttling_are_retry(emu, failure):
    _, stack = emu
    phone = sms_phone()
    stack.sms.fail_next(failure)
    r = channels.send(out("sms", phone))
    assert r.outcome == RETRY, r
    assert stack.sms.delivered(phone) == []
    assert channels.send(out("sms", phone)).outcome == SENT


def test_a_forged_tencent_signature_is_refused_by_the_emulator(emu):
    _, stack = emu
    phone = sms_phone()
    seed_secrets({"sms": {"key_id": LOCAL_SMS_KEY_ID, "secret": "a-key-that-is-not-the-one-0000000"}})
    try:
        r = channels.send(out("sms", phone))
    finally:
        seed_secrets(stack.secrets())
    assert r.outcome == REJECTED and "AuthFailure.SignatureFailure" in r.detail
    # a body changed after signing: the SDK's signature over another payload
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.sms.v20210111 import models, sms_client

    captured = {}
    client = sms_client.SmsClient(credential.Credential(LOCAL_SMS_KEY_ID, stack.secrets()["sms"]["secret"]),
                                  "ap-guangzhou", ClientProfile(httpProfile=HttpProfile(
                                      protocol="http", endpoint=stack.sms.url.split("//")[1])))
    original = client.request.send_request

    def capture(req):
        captured["headers"], captured["body"] = dict(req.header), req.data
        return original(req)

    client.request.send_request = capture
    req = models.SendSmsRequest()
    req.PhoneNumberSet, req.SmsSdkAppId, req.SignName = [phone], "1400000001", SMS_SIGN
    req.TemplateId, req.TemplateParamSet = stack.tencent_ids["low_balance"], ["a", "b", "c"]
    assert client.SendSms(req).SendStatusSet[0].Code == "Ok"  # the genuine request goes through
    tampered = captured["body"].replace(phone, sms_phone())
    answer = requests.post(f"{stack.sms.url}/", data=tampered.encode(), timeout=T, headers={
        k: v for k, v in captured["headers"].items() if k.lower() != "host"}).json()
    assert answer["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert len(stack.sms.delivered(phone)) == 1


def test_an_old_tencent_timestamp_is_refused(emu):
    _, stack = emu
    stack.sms.advance_time(400)  # the request's X-TC-Timestamp is now more than 5 minutes old
    try:
        r = channels.send(out("sms", sms_phone()))
    finally:
        stack.sms.advance_time(-400)
    assert r.outcome == REJECTED and "AuthFailure.SignatureExpire" in r.detail


# --- SMS: Alibaba Cloud ------------------------------------------------------------------------


@pytest.fixture
def aliyun(emu, setenv):
    _, stack = emu
    for k, v in stack.env("aliyun").items():
        setenv(k, v)
    channels.reset()
    return stack


def test_aliyun_sms_sent_with_named_parameters_and_a_domestic_number(aliyun):
    phone = sms_phone()
    r = channels.send(out("sms", phone))
    assert r.outcome == SENT, r
    [got] = aliyun.sms.delivered(phone[3:])  # +86 dropped: Alibaba Cloud takes mainland numbers bare
    assert (got.provider, got.template, got.sign) == ("aliyun", aliyun.aliyun_ids["low_balance"], SMS_SIGN)
    assert got.params == {"thing1": "余额不足提醒", "amount2": "12.00元", "thing3": "已低于 20.00 元"}
    assert got.message_id == r.provider_id


def test_aliyun_refusals_failures_and_a_forged_signature(aliyun):
    r = channels.send(out("sms", "+86123"))
    assert r.outcome == REJECTED and "isv.MOBILE_NUMBER_ILLEGAL" in r.detail
    phone = sms_phone()
    aliyun.sms.fail_next("reject")  # isv.BUSINESS_LIMIT_CONTROL 天级流控: refused for the day
    r = channels.send(out("sms", phone))
    assert r.outcome == REJECTED and "isv.BUSINESS_LIMIT_CONTROL" in r.detail
    for failure in ("http_500", "throttle"):
        aliyun.sms.fail_next(failure)
        assert channels.send(out("sms", phone)).outcome == RETRY
    seed_secrets({"sms": {"key_id": LOCAL_SMS_KEY_ID, "secret": "a-key-that-is-not-the-one-0000000"}})
    try:
        r = channels.send(out("sms", phone))
    finally:
        seed_secrets(aliyun.secrets())
    assert r.outcome == REJECTED and "SignatureDoesNotMatch" in r.detail
    assert aliyun.sms.delivered(phone[3:]) == []
    assert channels.send(out("sms", phone)).outcome == SENT


def test_an_aliyun_request_replayed_is_refused(aliyun):
    from core.integrations.sms import rpc_signature

    q = {"AccessKeyId": LOCAL_SMS_KEY_ID, "Action": "SendSms", "Format": "JSON", "RegionId": "cn-hangzhou",
         "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
         "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
         "Version": "2017-05-25", "PhoneNumbers": "13900000000", "SignName": SMS_SIGN,
         "TemplateCode": aliyun.aliyun_ids["low_balance"], "TemplateParam": "{}"}
    q["Signature"] = rpc_signature("GET", q, aliyun.secrets()["sms"]["secret"])
    first = requests.get(f"{aliyun.sms.url}/aliyun/", params=q, timeout=T)
    again = requests.get(f"{aliyun.sms.url}/aliyun/", params=q, timeout=T)
    assert first.json()["Code"] == "OK"
    assert (again.status_code, again.json()["Code"]) == (400, "SignatureNonceUsed")


def test_the_sms_emulators_page_lists_what_it_received(emu):
    _, stack = emu
    phone = sms_phone()
    assert channels.send(out("sms", phone)).outcome == SENT
    page = requests.get(f"{stack.sms.url}/emulator/messages", timeout=T)
    assert page.status_code == 200
    for text in (phone, "腾讯云短信", "已发送", "已低于 20.00 元", SMS_SIGN):
        assert text in page.text


# --- voice ---------------------------------------------------------------------------------------


def test_voice_is_rejected_unless_a_provider_is_configured(emu, setenv):
    _, stack = emu
    phone = sms_phone()
    setenv("FEIKONG_VOICE_PROVIDER", "")
    r = channels.send(out("voice", phone))
    assert r.outcome == REJECTED and r.detail.startswith("voice provider not configured")
    setenv("FEIKONG_VOICE_PROVIDER", "aliyun")
    r = channels.send(out("voice", phone))
    assert r.outcome == SENT, r
    [call] = [x for x in stack.sms.delivered(phone[3:]) if x.provider == "aliyun-voice"]
    assert call.template == stack.voice_ids["low_balance"] and call.message_id == r.provider_id


# --- email: SES in the AWS emulator ---------------------------------------------------------------


def ses_messages(aws_url: str) -> list[dict]:
    data = requests.get(f"{aws_url}/moto-api/data.json", timeout=T).json()
    return data.get("ses", {}).get("Message", [])


def test_email_sent_through_ses_and_read_back_from_the_emulator(emu, aws):
    to = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    r = channels.send(out("email", to, key="payment_received", link="https://h5.example.com/h5/orders"))
    assert r.outcome == SENT and r.provider_id
    [m] = [m for m in ses_messages(aws) if m["id"] == r.provider_id]
    assert m["destinations"] == {"ToAddresses": [to]} and m["source"] == os.environ["FEIKONG_EMAIL_FROM"]
    assert m["subject"] == "充值到账"
    assert m["body"] == "您的账户余额 12.00 元，已低于 20.00 元，请及时充值。\n\nhttps://h5.example.com/h5/orders"


def test_email_refusals_are_rejected(emu, setenv):
    r = channels.send(out("email", "not-an-address"))
    assert r.outcome == REJECTED and "InvalidParameterValue" in r.detail
    setenv("FEIKONG_EMAIL_FROM", "unverified@feikong.localhost")
    r = channels.send(out("email", "a@example.com"))
    assert r.outcome == REJECTED and "MessageRejected" in r.detail
    setenv("FEIKONG_EMAIL_FROM", "")
    assert channels.send(out("email", "a@example.com")).detail.startswith("email sender not configured")


def test_ses_5xx_is_retry(emu, setenv):
    app = Flask("ses-down")

    @app.post("/")
    def down():
        xml = ('<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>'
               '<Message>Service is unavailable</Message></Error><RequestId>r1</RequestId></ErrorResponse>')
        return Response(xml, status=503, content_type="text/xml")

    server = BackgroundServer(app).start()
    try:
        setenv("AWS_ENDPOINT_URL_SES", server.url)
        from core import aws

        aws.reset()
        r = channels.send(out("email", "a@example.com"))
    finally:
        server.stop()
        setenv("AWS_ENDPOINT_URL_SES", None)
        from core import aws

        aws.reset()
    assert r.outcome == RETRY and "ServiceUnavailable" in r.detail


def test_an_unknown_channel_is_rejected(emu):
    r = channels.send(out("pigeon", "x"))
    assert r.outcome == REJECTED and "unknown channel" in r.detail
