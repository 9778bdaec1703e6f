"""SMS and voice providers of the channel port (core/integrations/channels.py).

- **Tencent Cloud SMS** (`FEIKONG_SMS_PROVIDER=tencent`, the default): `SendSms` of API
  2021-01-11 through tencentcloud-sdk-python-sms (TC3-HMAC-SHA256 signatures). Templates
  take positional parameters {1}, {2}...: the Outbound's fields in their order.
- **Alibaba Cloud SMS** (`aliyun`): `SendSms` of Dysmsapi 2017-05-25, its RPC API signed
  here (HMAC-SHA1, signature version 1.0: a few lines; the SDK would bring the Tea runtime
  and its dependencies for one call). Templates take named parameters ${name}: the fields
  as a JSON object.
- **Voice** (`FEIKONG_VOICE_PROVIDER=aliyun`): Alibaba Cloud Dyvms `SingleCallByTts` (a
  text-to-speech call from an approved TTS template), the same RPC signature.

Credentials: the `sms` secret {"key_id", "secret"} (Tencent SecretId/SecretKey or an Alibaba
Cloud AccessKey), `voice` for the voice provider. Endpoints are settings (locally the SMS
emulator, infra/fakes/sms_emulator.py, which verifies both signatures). The Tencent SDK
(~0.2 s with requests) is imported on the first SMS, never at a cold start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from core.integrations import secrets
from core.integrations.channels import REJECTED, RETRY, SENT, Outbound, Result, template_ids
from core.settings import get_settings

_lock = threading.Lock()
_tencent: dict[tuple, Any] = {}

# Tencent Cloud SMS: codes worth another try later (per-number 30 s / 1 h limits, API rate
# limits, the provider's own errors); the per-number and per-app daily limits, a spent SMS
# package, a bad number or template are refused for good
TENCENT_TRANSIENT = ("ClientNetworkError", "ServerNetworkError", "InternalError", "RequestLimitExceeded",
                     "LimitExceeded.PhoneNumberThirtySecondLimit", "LimitExceeded.PhoneNumberOneHourLimit",
                     "FailedOperation.FailResolvePacket", "UnknownError")
# Alibaba Cloud: system errors and throttling; isv.BUSINESS_LIMIT_CONTROL is the per-number
# minute/hour/day control: retried unless it is the day's (天级)
ALIYUN_TRANSIENT = ("isp.", "Throttling", "ServiceUnavailable", "InternalError", "SignatureNonceUsed")
MAINLAND = re.compile(r"^\+?86(1\d{10})$")


def reset() -> None:
    with _lock:
        _tencent.clear()


def send_sms(o: Outbound) -> Result:
    s = get_settings()
    template = template_ids(s.sms_templates).get(o.template_key)
    if not template:
        return Result(REJECTED, f"no SMS template for {o.template_key} (FEIKONG_SMS_TEMPLATES)")
    if not s.sms_sign_name:
        return Result(REJECTED, "SMS signature not configured (FEIKONG_SMS_SIGN_NAME)")
    if s.sms_provider == "aliyun":
        return _aliyun_sms(o, template)
    return _tencent_sms(o, template)


# --- Tencent Cloud SMS --------------------------------------------------------------------------


def _tencent_client() -> Any:
    s = get_settings()
    key = secrets.named("sms")
    cache_key = (key["key_id"], key["secret"], s.sms_tencent_endpoint, s.sms_region, s.channel_timeout)
    with _lock:
        made = _tencent.get(cache_key)
    if made is None:
        from tencentcloud.common import credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111 import sms_client

        url = urlsplit(s.sms_tencent_endpoint)
        http = HttpProfile(protocol=url.scheme or "https", endpoint=url.netloc or url.path,
                           reqTimeout=max(1, round(s.channel_timeout)))
        made = sms_client.SmsClient(credential.Credential(key["key_id"], key["secret"]), s.sms_region,
                                    ClientProfile(httpProfile=http))
        with _lock:
            _tencent.clear()  # another key or endpoint: the old client is of no more use
            _tencent[cache_key] = made
    return made


def _tencent_sms(o: Outbound, template: str) -> Result:
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.sms.v20210111 import models

    s = get_settings()
    req = models.SendSmsRequest()
    req.PhoneNumberSet = [o.to]
    req.SmsSdkAppId = s.sms_app_id
    req.SignName = s.sms_sign_name
    req.TemplateId = template
    req.TemplateParamSet = [str(v) for v in o.fields.values()]
    req.SessionContext = o.delivery_id
    try:
        answer = _tencent_client().SendSms(req)
    except TencentCloudSDKException as e:
        code = e.get_code() or ""
        return Result(RETRY if code.startswith(TENCENT_TRANSIENT) else REJECTED,
                      f"tencent {code}: {str(e.get_message())[:200]}")
    statuses = answer.SendStatusSet or []
    if not statuses:
        return Result(RETRY, "tencent: no send status in the answer")
    st = statuses[0]
    if st.Code == "Ok":
        return Result(SENT, "ok", st.SerialNo or "")
    code = st.Code or ""
    return Result(RETRY if code.startswith(TENCENT_TRANSIENT) else REJECTED, f"tencent {code}: {st.Message}")


# --- Alibaba Cloud RPC (SMS, voice) -------------------------------------------------------------


def percent(text: str) -> str:
    """Alibaba Cloud's percent-encoding (RFC 3986: only A-Z a-z 0-9 - _ . ~ stay)."""
    return quote(text, safe="~")


def rpc_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Signature version 1.0 (HMAC-SHA1) of an RPC request's parameters (without Signature)."""
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def rpc_call(endpoint: str, action: str, version: str, params: dict[str, str], key: dict) -> tuple[int, dict]:
    """POST one signed RPC request; (HTTP status, JSON answer). Raises requests' errors."""
    import requests

    q = {"AccessKeyId": key["key_id"], "Action": action, "Format": "JSON", "RegionId": "cn-hangzhou",
         "SignatureMethod": "HMAC-SHA1", "SignatureNonce": uuid.uuid4().hex, "SignatureVersion": "1.0",
         "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": version, **params}
    q["Signature"] = rpc_signature("POST", q, key["secret"])
    r = requests.post(endpoint, data=q, timeout=get_settings().channel_timeout)
    try:
        body = r.json()
    except ValueError:
        body = {}
    return r.status_code, body if isinstance(body, dict) else {}


def _aliyun_result(call) -> Result:
    import requests

    try:
        status, body = call()
    except requests.RequestException as e:
        return Result(RETRY, f"aliyun: {type(e).__name__}")
    code, message = str(body.get("Code", "")), str(body.get("Message", ""))[:200]
    if status == 200 and code == "OK":
        return Result(SENT, "ok", str(body.get("BizId") or body.get("CallId") or ""))
    if status >= 500 or code.startswith(ALIYUN_TRANSIENT) or \
            (code == "isv.BUSINESS_LIMIT_CONTROL" and "天级" not in message):
        return Result(RETRY, f"aliyun {code or status}: {message}")
    return Result(REJECTED, f"aliyun {code or status}: {message}")


def _domestic(phone: str) -> str:
    """+8613800000000 -> 13800000000 (Alibaba Cloud: mainland numbers without a prefix, others with their code)."""
    m = MAINLAND.match(phone.strip())
    return m.group(1) if m else phone.strip().lstrip("+")


def _aliyun_sms(o: Outbound, template: str) -> Result:
    s = get_settings()
    key = secrets.named("sms")
    params = {"PhoneNumbers": _domestic(o.to), "SignName": s.sms_sign_name, "TemplateCode": template,
              "TemplateParam": json.dumps(o.fields, ensure_ascii=False, separators=(",", ":")),
              "OutId": o.delivery_id[:64]}
    return _aliyun_result(lambda: rpc_call(s.sms_aliyun_endpoint, "SendSms", "2017-05-25", params, key))


def call_voice(o: Outbound) -> Result:
    """A text-to-speech call (Alibaba Cloud Dyvms SingleCallByTts)."""
    s = get_settings()
    tts = template_ids(s.voice_templates).get(o.template_key)
    if not tts:
        return Result(REJECTED, f"no voice template for {o.template_key} (FEIKONG_VOICE_TEMPLATES)")
    if not s.voice_show_number:
        return Result(REJECTED, "voice caller number not configured (FEIKONG_VOICE_SHOW_NUMBER)")
    key = secrets.named("voice")
    params = {"CalledShowNumber": s.voice_show_number, "CalledNumber": _domestic(o.to), "TtsCode": tts,
              "TtsParam": json.dumps(o.fields, ensure_ascii=False, separators=(",", ":")),
              "OutId": o.delivery_id[:64]}
    return _aliyun_result(lambda: rpc_call(s.voice_aliyun_endpoint, "SingleCallByTts", "2017-05-25", params, key))
