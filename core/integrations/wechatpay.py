"""WeChat Pay API v3 adapter over `wechatpayv3` (JSAPI: mini-program and official account).

Configured from the environment (FEIKONG_WECHATPAY_*), in the "WeChat Pay public key"
mode (public key + its id, no platform certificate download). The API's base URL is
configurable (FEIKONG_WECHATPAY_BASE_URL) so that local runs and tests talk to the
emulator in infra/; that seam lives here and nowhere else.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote

from wechatpayv3 import WeChatPay, WeChatPayType

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"


class WeChatPayError(Exception):
    """WeChat Pay refused a request or could not be reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


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
            timeout=(3, 10),
        )
        self._pay._core._gate_way = config.base_url  # the one place that knows the seam

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
        code, text = self._pay.refund(out_refund_no=out_refund_no, out_trade_no=out_trade_no, reason=reason,
                                      amount={"refund": amount, "total": total, "currency": "CNY"},
                                      notify_url=self.config.refund_notify_url)
        return self._result(code, text)

    def query_refund(self, out_refund_no: str) -> dict | None:
        code, text = self._pay.query_refund(out_refund_no=out_refund_no)
        if code == 404:
            return None
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

    def notification(self, headers: dict, body: str) -> dict | None:
        """Verify (signature with the key the serial names) and decrypt a notification.
        None when it does not verify. The timestamp's freshness is the caller's check."""
        serial = _header(headers, "Wechatpay-Serial")
        if serial != self.config.public_key_id:
            return None
        try:
            return self._pay.callback(headers=dict(headers), body=body)
        except Exception:  # tampered ciphertext, bad JSON: wechatpayv3 raises
            return None


def _header(headers: dict, name: str) -> str:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
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
