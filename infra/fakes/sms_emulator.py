"""A local emulator of the SMS (and voice) APIs the product calls: Tencent Cloud SMS and
Alibaba Cloud SMS / voice, each verifying its provider's request signature.

* ``POST /`` — Tencent Cloud API 3.0, ``X-TC-Action: SendSms``, ``X-TC-Version: 2021-01-11``,
  signed TC3-HMAC-SHA256 (``Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<date>/sms/tc3_request,
  SignedHeaders=content-type;host, Signature=...``; ``X-TC-Timestamp`` within 5 minutes). Answers as
  Tencent does: ``{"Response": {"SendStatusSet": [{"SerialNo", "PhoneNumber", "Fee", "SessionContext",
  "Code": "Ok", "Message": "send success", "IsoCode"}], "RequestId"}}``; per number ``Code`` may be
  ``InvalidParameterValue.IncorrectPhoneNumber`` or ``LimitExceeded.PhoneNumberDailyLimit`` (more than
  ``daily_limit`` a day); request errors are ``{"Response": {"Error": {"Code", "Message"}, "RequestId"}}``
  (``AuthFailure.SignatureFailure``, ``AuthFailure.SecretIdNotFound``, ``AuthFailure.SignatureExpire``,
  ``FailedOperation.TemplateIncorrectOrUnapproved``, ``FailedOperation.SignatureIncorrectOrUnapproved``,
  ``InvalidParameterValue.SdkAppIdNotExist``, ``RequestLimitExceeded``...).
* ``GET|POST /aliyun/`` — Alibaba Cloud RPC API, signature version 1.0 (HMAC-SHA1 over the sorted,
  percent-encoded parameters; ``Timestamp`` within 15 minutes, ``SignatureNonce`` single use):
  ``Action=SendSms`` (Dysmsapi 2017-05-25) -> ``{"Code": "OK", "Message": "OK", "BizId", "RequestId"}`` or
  ``isv.MOBILE_NUMBER_ILLEGAL``, ``isv.SMS_TEMPLATE_ILLEGAL``, ``isv.SMS_SIGNATURE_ILLEGAL``,
  ``isv.BUSINESS_LIMIT_CONTROL`` (天级流控); ``Action=SingleCallByTts`` (Dyvms) -> ``{"Code": "OK", "CallId"}``.
  A bad signature is HTTP 400 ``SignatureDoesNotMatch``, an unknown key 404 ``InvalidAccessKeyId.NotFound``.
* ``GET /emulator/messages`` — a page (Simplified Chinese) of everything received, per phone number,
  newest first; ``GET /emulator/messages.json`` the same as JSON.

Locally one key pair serves both providers (``key_id`` / ``secret``). Tests make requests fail with
:meth:`SmsEmulator.fail_next` (``http_500``/``http_502``/``http_503``, ``throttle``, ``reject``) or refuse a
number with :meth:`SmsEmulator.refuse`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, request

from infra.fakes.wechatpay_emulator import BackgroundServer, ServedEmulator

TC3 = re.compile(r"TC3-HMAC-SHA256 Credential=([^/\s]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
                 r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})")
PHONE_E164 = re.compile(r"^\+(86)?(\d{6,15})$")
MAINLAND = re.compile(r"^1\d{10}$")
TENCENT_SKEW = 300  # seconds a TC3 timestamp may be off
ALIYUN_SKEW = 900


@dataclass
class SmsEmulatorConfig:
    """``key_id``/``secret``: the SecretId/SecretKey (Tencent) and AccessKey (Alibaba Cloud) accepted.
    ``templates``: template id or code -> its text (``{1}`` Tencent, ``${name}`` Alibaba Cloud; None: no
    parameter check); ``None`` accepts any template. ``sign_names``: approved signatures (None: any)."""

    key_id: str
    secret: str
    sdk_app_id: str = "1400000001"
    sign_names: set[str] | None = None
    templates: dict[str, str | None] | None = None
    daily_limit: int = 10  # messages per number per (UTC) day
    host: str = "127.0.0.1"
    port: int = 0


@dataclass
class Received:
    provider: str  # "tencent" | "aliyun" | "aliyun-voice"
    phone: str
    sign: str
    template: str
    params: Any  # list (Tencent) or dict (Alibaba Cloud)
    code: str  # "Ok"/"OK" or the error code
    text: str = ""
    message_id: str = ""
    context: str = ""
    at: float = field(default_factory=time.time)

    def ok(self) -> bool:
        return self.code in ("Ok", "OK")


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


class InjectedStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


FAILURE_KINDS = ("http_500", "http_502", "http_503", "throttle", "reject")


class SmsEmulator(ServedEmulator):
    """Emulated sms.tencentcloudapi.com and dysmsapi/dyvmsapi.aliyuncs.com, with driver methods for tests."""

    def __init__(self, config: SmsEmulatorConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._offset = 0.0
        self._nonces: set[str] = set()
        self._sent_today: dict[tuple[str, str], int] = {}  # (phone, UTC date) -> messages accepted
        self._refusals: dict[str, str] = {}
        self._failures: list[tuple[str, str | None]] = []
        self.received: list[Received] = []
        self.requests = 0
        self.app = create_app(self)
        self._server = BackgroundServer(self.app, config.host, config.port)


    # ---- driver methods

    def fail_next(self, kind: str, count: int = 1, code: str | None = None) -> None:
        """The next `count` send requests fail: an HTTP status (``http_500``...), ``throttle`` (the
        provider's rate limit) or ``reject`` (the number refused with `code`, by default the daily limit)."""
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure {kind!r}: one of {', '.join(FAILURE_KINDS)}")
        with self._lock:
            self._failures.extend([(kind, code)] * count)

    def refuse(self, phone: str, code: str) -> None:
        """Every message to this number is refused with `code` (the provider's per-number code)."""
        with self._lock:
            self._refusals[phone] = code

    def delivered(self, phone: str | None = None) -> list[Received]:
        """Messages accepted (to one number, or all)."""
        with self._lock:
            return [r for r in self.received if r.ok() and (phone is None or r.phone == phone)]

    def _take_failure(self) -> tuple[str, str | None] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _count_today(self, phone: str) -> bool:
        """Count one message to `phone` today; False when the daily limit is reached."""
        day = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%d")
        with self._lock:
            n = self._sent_today.get((phone, day), 0)
            if n >= self.config.daily_limit:
                return False
            self._sent_today[(phone, day)] = n + 1
            return True

    def _record(self, r: Received) -> None:
        with self._lock:
            self.received.append(r)

    def _template_text(self, template: str) -> tuple[bool, str | None]:
        templates = self.config.templates
        if templates is None:
            return True, None
        return template in templates, templates.get(template)

    def _sign_ok(self, sign: str) -> bool:
        return bool(sign) and (self.config.sign_names is None or sign in self.config.sign_names)

    # ---- Tencent Cloud

    def tencent(self, method: str, headers: Any, body: bytes) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
        m = TC3.fullmatch(headers.get("Authorization", ""))
        if not m:
            raise ApiError("AuthFailure.InvalidAuthorization", "Authorization header is invalid")
        secret_id, date, service, signed_headers, signature = m.groups()
        if secret_id != self.config.key_id:
            raise ApiError("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your "
                                                           "SecretId is correct.")
        try:
            ts = int(headers.get("X-TC-Timestamp", ""))
        except ValueError:
            raise ApiError("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is invalid") from None
        if abs(self.now() - ts) > TENCENT_SKEW:
            raise ApiError("AuthFailure.SignatureExpire", "Signature expired, Timestamp is too far from now.")
        names = signed_headers.split(";")
        if "content-type" not in names or "host" not in names or method != "POST":
            raise ApiError("AuthFailure.SignatureFailure", "content-type and host must be signed (POST)")
        canonical_headers = "".join(f"{h}:{headers.get(h, '').strip().lower()}\n" for h in names)
        canonical = "\n".join([method, "/", "", canonical_headers, signed_headers, hashlib.sha256(body).hexdigest()])
        scope = f"{date}/{service}/tc3_request"
        to_sign = "\n".join(["TC3-HMAC-SHA256", str(ts), scope, hashlib.sha256(canonical.encode()).hexdigest()])
        expected = tc3_signature(self.config.secret, date, service, to_sign)
        if date != datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") or service != "sms" or \
                not hmac.compare_digest(expected, signature):
            raise ApiError("AuthFailure.SignatureFailure", "The provided credentials could not be validated. "
                                                           "Please check your signature is correct.")
        if headers.get("X-TC-Action") != "SendSms":
            raise ApiError("InvalidAction", f"The action {headers.get('X-TC-Action')} is not found")
        if headers.get("X-TC-Version") != "2021-01-11":
            raise ApiError("NoSuchVersion", "The requested version does not exist or is not supported.")
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            raise ApiError("InvalidParameter", "request body is not JSON") from None
        phones = params.get("PhoneNumberSet")
        if not isinstance(phones, list) or not phones or len(phones) > 200:
            raise ApiError("MissingParameter", "The request is missing a required parameter `PhoneNumberSet`.")
        if str(params.get("SmsSdkAppId", "")) != self.config.sdk_app_id:
            raise ApiError("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId not exist.")
        sign = str(params.get("SignName", ""))
        if not self._sign_ok(sign):
            raise ApiError("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误。")
        template = str(params.get("TemplateId", ""))
        known, text = self._template_text(template)
        if not known:
            raise ApiError("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配。")
        values = [str(v) for v in params.get("TemplateParamSet") or []]
        if text is not None and len(set(re.findall(r"\{(\d+)\}", text))) != len(values):
            raise ApiError("FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                           "请求内容与审核通过的模板内容不匹配。")
        failure = self._take_failure()
        if failure and failure[0].startswith("http_"):
            raise InjectedStatus(int(failure[0][5:]))
        if failure and failure[0] == "throttle":
            raise ApiError("RequestLimitExceeded", "请求的次数超过了频率限制。")
        rendered = _render_positional(text, values)
        statuses = []
        for phone in phones:
            phone = str(phone)
            code, message = "Ok", "send success"
            with self._lock:
                refused = self._refusals.get(phone)
            if not PHONE_E164.match(phone) or (phone.startswith("+86") and not MAINLAND.match(phone[3:])):
                code, message = "InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误。"
            elif failure and failure[0] == "reject":
                code, message = failure[1] or "LimitExceeded.PhoneNumberDailyLimit", "injected refusal"
            elif refused:
                code, message = refused, "refused"
            elif not self._count_today(phone):
                code, message = "LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限。"
            serial = uuid.uuid4().hex if code == "Ok" else ""
            self._record(Received("tencent", phone, sign, template, values, code, rendered, serial,
                                  str(params.get("SessionContext", "")), self.now()))
            statuses.append({"SerialNo": serial, "PhoneNumber": phone, "Fee": 1 if code == "Ok" else 0,
                             "SessionContext": str(params.get("SessionContext", "")), "Code": code,
                             "Message": message, "IsoCode": "CN" if phone.startswith("+86") else ""})
        return {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}

    # ---- Alibaba Cloud

    def aliyun(self, method: str, values: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
        params = dict(values)
        signature = params.pop("Signature", "")
        for name in ("AccessKeyId", "Action", "SignatureMethod", "SignatureNonce", "SignatureVersion", "Timestamp",
                     "Version"):
            if not params.get(name):
                raise ApiError("MissingParameter", f"{name} is mandatory for this action.", 400)
        if params["AccessKeyId"] != self.config.key_id:
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise ApiError("InvalidParameter", "SignatureMethod or SignatureVersion is not supported.", 400)
        try:
            ts = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise ApiError("InvalidTimeStamp.Format", "Specified time stamp is not valid.", 400) from None
        if abs(self.now() - ts) > ALIYUN_SKEW:
            raise ApiError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", 400)
        expected = rpc_signature(method, params, self.config.secret)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise ApiError("SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", 400)
        with self._lock:
            if params["SignatureNonce"] in self._nonces:
                raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.", 400)
            self._nonces.add(params["SignatureNonce"])
        if params["Version"] != "2017-05-25":
            raise ApiError("InvalidVersion", "Specified parameter Version is not valid.", 400)
        action = params["Action"]
        if action not in ("SendSms", "SingleCallByTts"):
            raise ApiError("InvalidAction.NotFound", f"Specified api {action} is not found.", 404)
        failure = self._take_failure()
        if failure and failure[0].startswith("http_"):
            raise InjectedStatus(int(failure[0][5:]))
        if failure and failure[0] == "throttle":
            raise ApiError("Throttling.User", "Request was denied due to user flow control.", 400)
        voice = action == "SingleCallByTts"
        phone = params.get("CalledNumber" if voice else "PhoneNumbers", "")
        template = params.get("TtsCode" if voice else "TemplateCode", "")
        sign = params.get("CalledShowNumber" if voice else "SignName", "")
        raw = params.get("TtsParam" if voice else "TemplateParam") or "{}"
        provider = "aliyun-voice" if voice else "aliyun"

        def refused(code: str, message: str) -> dict[str, Any]:
            self._record(Received(provider, phone, sign, template, raw, code, "", "", params.get("OutId", ""),
                                  self.now()))
            return {"Code": code, "Message": message, "RequestId": str(uuid.uuid4())}

        if not re.fullmatch(r"1\d{10}|[2-9]\d{7,14}", phone):  # mainland without a prefix, or a country code
            return refused("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        if not voice and not self._sign_ok(sign):
            return refused("isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if voice and not sign:
            return refused("isv.DISPLAY_NUMBER_ILLEGAL", "号显不合法")
        known, text = self._template_text(template)
        if not known:
            return refused("isv.TTS_TEMPLATE_ILLEGAL" if voice else "isv.SMS_TEMPLATE_ILLEGAL",
                           "该账号下找不到对应模板")
        try:
            values = json.loads(raw)
            assert isinstance(values, dict)
        except (ValueError, AssertionError):
            return refused("isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if text is not None and any(name not in values for name in re.findall(r"\$\{(\w+)\}", text)):
            return refused("isv.TEMPLATE_MISSING_PARAMETERS", "模板缺少变量")
        with self._lock:
            code = self._refusals.get(phone)
        if failure and failure[0] == "reject":
            code = failure[1] or "isv.BUSINESS_LIMIT_CONTROL"
        if code:
            return refused(code, "触发天级流控Permits:10" if code == "isv.BUSINESS_LIMIT_CONTROL" else "refused")
        if not self._count_today(phone):
            return refused("isv.BUSINESS_LIMIT_CONTROL", f"触发天级流控Permits:{self.config.daily_limit}")
        message_id = f"{uuid.uuid4().int % 10**18}^0"
        rendered = re.sub(r"\$\{(\w+)\}", lambda g: str(values.get(g.group(1), "")), text) if text else ""
        self._record(Received(provider, phone, sign, template, values, "OK", rendered, message_id,
                              params.get("OutId", ""), self.now()))
        return {"Code": "OK", "Message": "OK", ("CallId" if voice else "BizId"): message_id,
                "RequestId": str(uuid.uuid4())}


def tc3_signature(secret: str, date: str, service: str, to_sign: str) -> str:
    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    signing = mac(mac(mac(("TC3" + secret).encode(), date), service), "tc3_request")
    return hmac.new(signing, to_sign.encode(), hashlib.sha256).hexdigest()


def rpc_signature(method: str, params: dict[str, str], secret: str) -> str:
    """Alibaba Cloud RPC signature version 1.0, written from the provider's documentation (the
    product's own signer, core/integrations/sms.py, is not used here: the emulator checks it)."""
    def enc(text: str) -> str:
        return quote(text, safe="~")

    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    to_sign = f"{method}&{enc('/')}&{enc(canonical)}"
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def _render_positional(text: str | None, values: list[str]) -> str:
    if not text:
        return ""
    return re.sub(r"\{(\d+)\}", lambda g: values[int(g.group(1)) - 1] if int(g.group(1)) <= len(values) else "",
                  text)


PROVIDER_TEXT = {"tencent": "腾讯云短信", "aliyun": "阿里云短信", "aliyun-voice": "阿里云语音通知"}


def create_app(emu: SmsEmulator) -> Flask:
    app = Flask("sms_emulator")
    app.extensions["sms_emulator"] = emu

    def reply(payload: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(payload, ensure_ascii=False), status=status, content_type="application/json")

    @app.errorhandler(InjectedStatus)
    def _injected(e: InjectedStatus) -> Response:
        return Response("<html><body>Bad Gateway</body></html>", status=e.status, content_type="text/html")

    @app.post("/")
    def tencent() -> Response:
        try:
            return reply(emu.tencent(request.method, request.headers, request.get_data()))
        except ApiError as e:
            return reply({"Response": {"Error": {"Code": e.code, "Message": e.message},
                                       "RequestId": str(uuid.uuid4())}})

    @app.route("/aliyun/", methods=["GET", "POST"])
    def aliyun() -> Response:
        values = {k: v for k, v in request.values.items()}
        try:
            return reply(emu.aliyun(request.method, values))
        except ApiError as e:
            return reply({"Code": e.code, "Message": e.message, "RequestId": str(uuid.uuid4())}, e.status)

    @app.get("/emulator/messages.json")
    def messages_json() -> Response:
        with emu._lock:
            items = [vars(r) for r in emu.received]
        return reply({"messages": items})

    @app.get("/emulator/messages")
    def messages_page() -> Response:
        return Response(PAGE.format(body=_messages_html(emu)), status=200, content_type="text/html; charset=utf-8")

    return app


def _messages_html(emu: SmsEmulator) -> str:
    with emu._lock:
        items = list(emu.received)
    if not items:
        return '<p class="note">还没有收到短信或语音通知请求。</p>'
    by_phone: dict[str, list[Received]] = {}
    for r in reversed(items):
        by_phone.setdefault(r.phone, []).append(r)
    ok = sum(1 for r in items if r.ok())
    parts = [f'<p class="note">共收到 {len(items)} 条（成功 {ok} 条），{len(by_phone)} 个号码，最新的在前。</p>']
    for phone, rs in by_phone.items():
        parts.append(f"<section><h2>{html.escape(phone)}</h2>")
        for r in rs:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.at))
            status = '<span class="ok">已发送</span>' if r.ok() else f'<span class="bad">失败：{html.escape(r.code)}</span>'
            values = r.params.values() if isinstance(r.params, dict) else r.params
            content = r.text or (" · ".join(map(str, values)) if isinstance(values, (list, type({}.values())))
                                 else str(values))
            sign = f"【{html.escape(r.sign)}】" if r.provider != "aliyun-voice" and r.sign else ""
            parts.append(f'<article class="msg"><div class="meta">{PROVIDER_TEXT.get(r.provider, r.provider)} · {at} · '
                         f'模板 {html.escape(r.template)} · {status}</div>'
                         f'<div class="text">{sign}{html.escape(content)}</div></article>')
        parts.append("</section>")
    return "".join(parts)


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>短信（模拟器收到的）</title>
<style>
body {{ margin: 0; font-family: -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif; background: #f2f3f5; color: #111; }}
header {{ background: #006eff; color: #fff; padding: 16px; font-size: 18px; text-align: center; }}
main {{ padding: 16px; max-width: 640px; margin: 0 auto; }}
.note {{ font-size: 15px; color: #333; }}
h2 {{ font-size: 16px; margin: 20px 0 8px; }}
.msg {{ background: #fff; border-radius: 8px; padding: 12px 16px; margin: 0 0 10px; }}
.meta {{ font-size: 12px; color: #888; margin-bottom: 6px; }}
.text {{ font-size: 15px; line-height: 1.6; word-break: break-all; }}
.ok {{ color: #07a35a; }} .bad {{ color: #d93026; }}
.foot {{ font-size: 12px; color: #999; text-align: center; margin-top: 24px; }}
</style></head>
<body><header>短信 / 语音通知（模拟器收到的）</header><main>{body}
<p class="foot">短信接口模拟器（腾讯云短信、阿里云短信与语音）· 仅用于本地演示和测试</p></main></body></html>
"""
