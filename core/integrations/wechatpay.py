"""WeChat Pay API v3 adapter over `wechatpayv3` (JSAPI: mini-program and official account).

Configured from the `wechatpay` secret in Secrets Manager (merchant ids and keys), in the
"WeChat Pay public key" mode (public key + its id, no platform certificate download). The
API's base URL is a setting (FEIKONG_WECHATPAY_BASE_URL) so that local runs and tests
talk to the emulator in infra/; that seam lives here and nowhere else.

wechatpayv3 (with requests, ~0.1 s to import) is imported when a client first calls
WeChat Pay, not with this module. A notification is verified and decrypted with
`cryptography` alone (the same three calls wechatpayv3.utils makes: PEM public key,
RSA PKCS#1 v1.5 SHA-256, AES-256-GCM), so the notification function, which never calls
WeChat Pay on its path, does not load wechatpayv3 at all (docs/cold-start.md).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from urllib.parse import quote

from core.domain.errors import FeikongError
from core.domain.money import parse_yuan
from core.domain.payments import timestamp_fresh
from core.integrations import secrets as secret_store
from core.settings import get_settings

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
    import requests

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
    def from_settings() -> PayConfig:
        """The merchant's configuration and keys from the `wechatpay` secret (Secrets
        Manager, FEIKONG_WECHATPAY_SECRET_ID: JSON with appid, mchid, cert_serial,
        private_key, apiv3_key, public_key_id, public_key, notify_url and optionally
        refund_notify_url); the endpoint and timeout from the settings."""
        m = secret_store.named("wechatpay")
        s = get_settings()
        return PayConfig(
            appid=m["appid"], mchid=m["mchid"], private_key=m["private_key"], cert_serial_no=m["cert_serial"],
            apiv3_key=m["apiv3_key"], public_key=m["public_key"], public_key_id=m["public_key_id"],
            notify_url=m["notify_url"], refund_notify_url=m.get("refund_notify_url") or m["notify_url"],
            base_url=s.wechatpay_base_url.rstrip("/"), read_timeout=s.wechatpay_read_timeout,
        )


class WeChatPayClient:
    def __init__(self, config: PayConfig) -> None:
        self.config = config

    @cached_property
    def _pay(self):
        """The wechatpayv3 client, made on the first call to WeChat Pay."""
        from wechatpayv3 import WeChatPay, WeChatPayType

        config = self.config
        pay = WeChatPay(
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
        pay._core._gate_way = config.base_url  # the one place that knows the seam
        return pay

    @cached_property
    def _public_key(self):
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem = self.config.public_key.strip()
        if not pem.startswith("-----BEGIN"):  # the key body alone, as the merchant platform shows it
            pem = f"-----BEGIN PUBLIC KEY-----\n{pem}\n-----END PUBLIC KEY-----"
        return load_pem_public_key(pem.encode("utf-8"))

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
        """The day's trade bill as WeChat's CSV text (bill_date: YYYY-MM-DD); "" for a day
        without a successful trade (WeChat answers 400 NO_STATEMENT_EXIST: no file, not an
        error to retry)."""
        core = self._pay._core
        code, text = core.request(f"/v3/bill/tradebill?bill_date={quote(bill_date)}&bill_type=ALL")
        try:
            url = self._result(code, text)["download_url"]
        except WeChatPayError as e:
            if e.code == "NO_STATEMENT_EXIST":
                return ""
            raise
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
        if not _rsa_verify(self._public_key, f"{timestamp}\n{values['Wechatpay-Nonce']}\n{text}\n",
                           values["Wechatpay-Signature"]):
            raise NotificationRejected("bad_signature", 401, "签名验证失败")
        try:
            plain = _aes_gcm_decrypt(self.config.apiv3_key, resource["nonce"], resource["ciphertext"],
                                     resource.get("associated_data", ""))
            decrypted = json.loads(plain) if plain is not None else None
        except (ValueError, TypeError, RecursionError):  # bad base64, nonce length, not UTF-8/JSON
            decrypted = None
        if not isinstance(decrypted, dict):
            raise NotificationRejected("undecryptable", 401, "通知解密失败")
        return {**data, "resource": decrypted}


def _rsa_verify(public_key, message: str, signature: str) -> bool:
    """WeChat Pay's response and notification signature: RSA PKCS#1 v1.5 over SHA-256, base64."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
    from cryptography.hazmat.primitives.hashes import SHA256

    try:
        public_key.verify(base64.b64decode(signature, validate=True), message.encode("utf-8"), PKCS1v15(), SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def _aes_gcm_decrypt(apiv3_key: str, nonce: str, ciphertext: str, associated_data: str) -> str | None:
    """A notification's resource: AES-256-GCM with the APIv3 key; None when the tag does not verify."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        plain = AESGCM(apiv3_key.encode("utf-8")).decrypt(nonce.encode("utf-8"), base64.b64decode(ciphertext),
                                                          associated_data.encode("utf-8"))
    except InvalidTag:
        return None
    return plain.decode("utf-8")


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
        _client = WeChatPayClient(PayConfig.from_settings())
    return _client


def reset() -> None:
    global _client
    _client = None


def parse_trade_bill(text: str) -> dict[str, dict]:
    """Successful trades of a WeChat trade bill (CSV, fields prefixed with a backtick)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return {}
    header = [h.strip() for h in rows[0]]
    try:
        i_no, i_tx, i_state = header.index("商户订单号"), header.index("微信订单号"), header.index("交易状态")
        i_amount = header.index("订单金额") if "订单金额" in header else header.index("应结订单金额")
    except ValueError:
        raise FeikongError("账单格式无法识别", code="bill_unreadable") from None
    out = {}
    for row in rows[1:]:
        if len(row) <= max(i_no, i_tx, i_state, i_amount) or not row[0].startswith("`"):
            continue  # the summary lines at the end
        cells = [c.strip().lstrip("`") for c in row]
        if cells[i_state] != "SUCCESS":
            continue
        out[cells[i_no]] = {"transaction_id": cells[i_tx], "amount": parse_yuan(cells[i_amount])}
    return out
