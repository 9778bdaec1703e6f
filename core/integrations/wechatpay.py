"""WeChat Pay API v3 adapter over `wechatpayv3` (JSAPI: mini-program and official account).

Configured from the environment (FEIKONG_WECHATPAY_*), in the "WeChat Pay public key"
mode (public key + its id, no platform certificate download). The API's base URL is
configurable (FEIKONG_WECHATPAY_BASE_URL) so that local runs and tests talk to the
emulator in infra/; that seam lives here and nowhere else.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import requests
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

from core.domain.payments import timestamp_fresh

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"


class WeChatPayError(Exception):
    """WeChat Pay refused a request or could not be reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    @property
    def definite(self) -> bool:
        """WeChat answered with a 4xx and an error code: the request was refused and did
        nothing. Anything else (no answer, a timeout, a 5xx, an answer whose signature does
        not verify) leaves it unknown whether WeChat acted on it."""
        return 400 <= self.status < 500 and self.code not in ("", "UNKNOWN")


NO_ANSWER = 0  # WeChatPayError.status when WeChat did not answer (timeout, connection error)


def _answered(call):
    """Run a wechatpayv3 call; a missing or unverifiable answer becomes WeChatPayError(0)."""
    try:
        return call()
    except requests.RequestException as e:
        raise WeChatPayError(NO_ANSWER, "NO_ANSWER", f"{type(e).__name__}: {str(e)[:160]}") from e
    except Exception as e:  # wechatpayv3 raises a bare Exception when a 2xx answer's signature fails
        raise WeChatPayError(NO_ANSWER, "UNVERIFIED_ANSWER", str(e)[:200]) from e


@dataclass(frozen=True)
class PayConfig:
    appid: str
    mchid: str
    private_key: str  # merchant API private key (PEM)
    cert_serial_no: str  # merchant API certificate serial
    apiv3_key: str
    public_key: str  # WeChat Pay public key (PEM)
    public_key_id: str
    notify_url: str
    refund_notify_url: str
    base_url: str = DEFAULT_BASE_URL
    read_timeout: float = 10.0  # seconds to wait for an answer (FEIKONG_WECHATPAY_READ_TIMEOUT)

    @staticmethod
    def from_env() -> PayConfig:
        e = os.environ

        def need(name: str) -> str:
            value = e.get(name, "")
            if not value:
                raise RuntimeError(f"{name} is not set: WeChat Pay is not configured")
            return value.replace("\\n", "\n")

        return PayConfig(
            appid=need("FEIKONG_WECHAT_APPID"),
            mchid=need("FEIKONG_WECHATPAY_MCHID"),
            private_key=need("FEIKONG_WECHATPAY_PRIVATE_KEY"),
            cert_serial_no=need("FEIKONG_WECHATPAY_CERT_SERIAL"),
            apiv3_key=need("FEIKONG_WECHATPAY_APIV3_KEY"),
            public_key=need("FEIKONG_WECHATPAY_PUBLIC_KEY"),
            public_key_id=need("FEIKONG_WECHATPAY_PUBLIC_KEY_ID"),
            notify_url=need("FEIKONG_WECHATPAY_NOTIFY_URL"),
            refund_notify_url=e.get("FEIKONG_WECHATPAY_REFUND_NOTIFY_URL") or need("FEIKONG_WECHATPAY_NOTIFY_URL"),
            base_url=e.get("FEIKONG_WECHATPAY_BASE_URL", DEFAULT_BASE_URL).rstrip("/"),
            read_timeout=float(e.get("FEIKONG_WECHATPAY_READ_TIMEOUT") or 10),
        )


class WeChatPayClient:
    def __init__(self, config: PayConfig) -> None:
        self.config = config
        self._pay = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=config.mchid,
            private_key=config.private_key,
            cert_serial_no=config.cert_serial_no,
            appid=config.appid,
            apiv3_key=config.apiv3_key,
            notify_url=config.notify_url,
            public_key=config.public_key,
            public_key_id=config.public_key_id,
            timeout=(3, config.read_timeout),
        )
        self._pay._core._gate_way = config.base_url  # the one place that knows the seam
        self._public_key = load_public_key(config.public_key)

    @staticmethod
    def _result(code: int, text, ok=(200, 204)) -> dict:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if code in ok:
            return json.loads(text) if text else {}
        try:
            body = json.loads(text)
        except (TypeError, ValueError):
            body = {}
        raise WeChatPayError(code, body.get("code", "UNKNOWN"), body.get("message", str(text)[:200]))

    def prepay(self, out_trade_no: str, amount: int, openid: str, description: str, time_expire: str) -> str:
        code, text = self._pay.pay(description=description, out_trade_no=out_trade_no,
                                   amount={"total": amount, "currency": "CNY"}, payer={"openid": openid},
                                   time_expire=time_expire, notify_url=self.config.notify_url)
        return self._result(code, text)["prepay_id"]

    def jsapi_params(self, prepay_id: str) -> dict:
        """What wx.requestPayment needs, signed with the merchant key."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={prepay_id}"
        sign = self._pay.sign([self.config.appid, timestamp, nonce, package])
        return {"appId": self.config.appid, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
                "signType": "RSA", "paySign": sign}

    def query(self, out_trade_no: str) -> dict | None:
        code, text = self._pay.query(out_trade_no=out_trade_no)
        if code == 404:
            return None
        return self._result(code, text)

    def close(self, out_trade_no: str) -> None:
        code, text = self._pay.close(out_trade_no=out_trade_no)
        self._result(code, text)

    def refund(self, out_trade_no: str, out_refund_no: str, amount: int, total: int, reason: str) -> dict:
        """Ask WeChat to refund. WeChatPayError when refused (`definite`) or when the outcome
        is unknown (no answer, 5xx): repeating the call with the same out_refund_no is safe,
        WeChat answers with the refund it already has."""
        code, text = _answered(lambda: self._pay.refund(
            out_refund_no=out_refund_no, out_trade_no=out_trade_no, reason=reason,
            amount={"refund": amount, "total": total, "currency": "CNY"}, notify_url=self.config.refund_notify_url))
        return self._result(code, text)

    def query_refund(self, out_refund_no: str) -> dict | None:
        """The refund as WeChat has it, or None when WeChat has no such refund (404
        RESOURCE_NOT_EXISTS: the create never reached it). Other failures raise."""
        code, text = _answered(lambda: self._pay.query_refund(out_refund_no=out_refund_no))
        if code == 404:
            try:
                self._result(code, text)
            except WeChatPayError as e:
                if e.code == "RESOURCE_NOT_EXISTS":
                    return None
                raise
        return self._result(code, text)

    def trade_bill(self, bill_date: str) -> str:
        """The day's trade bill as WeChat's CSV text (bill_date: YYYY-MM-DD)."""
        core = self._pay._core
        code, text = core.request(f"/v3/bill/tradebill?bill_date={quote(bill_date)}&bill_type=ALL")
        url = self._result(code, text)["download_url"]
        path = url[len(core._gate_way):] if url.startswith(core._gate_way) else url
        code, content = core.request(path, skip_verify=True)
        if code != 200:
            raise WeChatPayError(code, "BILL_DOWNLOAD", "trade bill download failed")
        return content.decode("utf-8-sig") if isinstance(content, bytes) else content

    def verify_notification(self, headers: object, body: bytes | str | None, now: datetime) -> dict:
        """Check a notification before anything else looks at it, and decrypt it.

        In order: header shapes (bounded, the expected characters), the body (UTF-8, at most
        BODY_MAX bytes, a JSON object with an encrypted resource), the timestamp's freshness
        (wechatpayv3 does not check it), the serial (it must name our WeChat Pay public key: an
        unknown serial would make wechatpayv3 download certificates inside the handler), the
        RSA-SHA256 signature over `timestamp\nnonce\nbody\n`, and AES-256-GCM decryption.
        Returns the notification with its `resource` decrypted (a dict), or raises
        NotificationRejected with a stable reason and the HTTP status to answer."""
        h = headers if isinstance(headers, dict) else {}
        values = {name: _header(h, name) for name in NOTIFY_HEADERS}
        for name, pattern in NOTIFY_HEADERS.items():
            if not pattern.fullmatch(values[name]):
                raise NotificationRejected("headers_malformed", 400, f"{name} 缺失或格式错误")
        if isinstance(body, str):
            try:
                body = body.encode("utf-8")
            except UnicodeError:
                body = None
        if not isinstance(body, bytes) or not body or len(body) > BODY_MAX:
            raise NotificationRejected("body_malformed", 400, "通知正文为空或过大")
        try:
            text = body.decode("utf-8")
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise NotificationRejected("body_malformed", 400, "通知正文不是 UTF-8 JSON") from None
        resource = data.get("resource") if isinstance(data, dict) else None
        if not (isinstance(resource, dict) and isinstance(data.get("event_type"), str)
                and all(isinstance(resource.get(k), str) for k in ("ciphertext", "nonce"))
                and isinstance(resource.get("associated_data", ""), str)):
            raise NotificationRejected("body_malformed", 400, "通知正文缺少加密资源")
        timestamp = values["Wechatpay-Timestamp"]
        if not timestamp_fresh(timestamp, now):
            raise NotificationRejected("stale_timestamp", 400, "时间戳过期")
        if values["Wechatpay-Serial"] != self.config.public_key_id:
            raise NotificationRejected("unknown_serial", 401, "签名验证失败")
        if not rsa_verify(timestamp, values["Wechatpay-Nonce"], text, values["Wechatpay-Signature"], self._public_key):
            raise NotificationRejected("bad_signature", 401, "签名验证失败")
        try:
            plain = aes_decrypt(nonce=resource["nonce"], ciphertext=resource["ciphertext"],
                                associated_data=resource.get("associated_data", ""), apiv3_key=self.config.apiv3_key)
            decrypted = json.loads(plain) if plain is not None else None
        except (ValueError, TypeError, RecursionError):  # bad base64, nonce length, not UTF-8/JSON
            decrypted = None
        if not isinstance(decrypted, dict):
            raise NotificationRejected("undecryptable", 401, "通知解密失败")
        return {**data, "resource": decrypted}


class NotificationRejected(Exception):
    """A notification that did not pass verification: nothing about it may be trusted."""

    def __init__(self, reason: str, status: int, message: str) -> None:
        super().__init__(reason)
        self.reason, self.status, self.message = reason, status, message


# What WeChat Pay sends with a notification: a 10-digit Unix timestamp, a 32-character nonce, a base64 RSA-2048 signature (344 characters), the public key
# id ("PUB_KEY_ID_" + 32 hex) or a certificate serial (40 hex). The bounds leave room, no more.
NOTIFY_HEADERS = {
    "Wechatpay-Timestamp": re.compile(r"[0-9]{1,12}"),
    "Wechatpay-Nonce": re.compile(r"[0-9A-Za-z_-]{1,64}"),
    "Wechatpay-Signature": re.compile(r"[A-Za-z0-9+/]{16,1024}={0,2}"),
    "Wechatpay-Serial": re.compile(r"[0-9A-Za-z_]{1,64}"),
    "Wechatpay-Signature-Type": re.compile(r"WECHATPAY2-SHA256-RSA2048"),
}
BODY_MAX = 64 * 1024  # a notification is about 1 KB


def _header(headers: dict, name: str) -> str:
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == name.lower():
            return v if isinstance(v, str) else ""
    return ""


_client: WeChatPayClient | None = None


def client() -> WeChatPayClient:
    global _client
    if _client is None:
        _client = WeChatPayClient(PayConfig.from_env())
    return _client


def reset() -> None:
    global _client
    _client = None
