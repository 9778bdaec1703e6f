"""A local emulator of WeChat Pay API v3 (direct merchant, JSAPI), for end-to-end tests.

It speaks the real wire protocol, so the product's adapter (built on ``wechatpayv3``) runs
unchanged against it:

* every request must carry a valid ``WECHATPAY2-SHA256-RSA2048`` Authorization header signed
  with the merchant's private key (RSA PKCS#1 v1.5 + SHA-256 over
  ``METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n``), otherwise 401 ``SIGN_ERROR``;
* every response is signed with the emulator's own platform key ("WeChat Pay public key"
  mode: ``Wechatpay-Serial`` is ``public_key_id``), over ``timestamp\\nnonce\\nbody\\n``;
* notifications are encrypted with the APIv3 key (AEAD_AES_256_GCM) and signed the same way,
  and are re-delivered on WeChat's retry schedule (compressed by ``time_scale``).

Point a ``wechatpayv3.WeChatPay`` client at it with::

    client = WeChatPay(..., public_key=emu.platform_public_key_pem, public_key_id=emu.public_key_id)
    client._core._gate_way = emu.url

In a browser outside WeChat, ``GET /emulator/jsbridge.js`` defines ``window.WeixinJSBridge``:
``invoke('getBrandWCPayRequest', params, cb)`` shows a Chinese confirm sheet and posts the
JSAPI parameters to ``POST /emulator/jsapi/pay``, which verifies ``paySign`` as WeChat does
(RSA-SHA256 over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` with the merchant's public key)
and pays the order like :meth:`WeChatPayEmulator.pay` (docs/h5.md). These two routes carry
no merchant signature: the "user" calls them, not the merchant.

Tests drive the "user" side through plain methods: :meth:`WeChatPayEmulator.pay`,
:meth:`~WeChatPayEmulator.complete_refund`, :meth:`~WeChatPayEmulator.build_notification`,
:meth:`~WeChatPayEmulator.deliver`, :meth:`~WeChatPayEmulator.add_external_trade`, ...

Amounts are integers in fen everywhere (as in the API) except in the trade bill (yuan, 2 decimals).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Response, g, request
from werkzeug.serving import WSGIRequestHandler, make_server

# China Standard Time has had no DST since 1991, so a fixed offset is exactly Asia/Shanghai
# (and needs no tz database on the machine).
CST = timezone(timedelta(hours=8), "Asia/Shanghai")

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"

# WeChat Pay re-sends a notification that was not acknowledged with 200/204 after these delays
# (seconds): 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h -- 16 attempts in total.
RETRY_SCHEDULE: tuple[int, ...] = (
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600,
)

TRADE_STATE_DESC = {
    "NOTPAY": "订单未支付",
    "SUCCESS": "支付成功",
    "CLOSED": "订单已关闭",
    "REFUND": "转入退款",
}
REFUND_SUMMARY = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}

BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
    "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
BILL_SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
FEE_RATE = Decimal("0.006")

_OUT_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
_OUT_REFUND_NO_RE = re.compile(r"^[0-9A-Za-z_\-|*@]{1,64}$")
_AUTH_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


# --------------------------------------------------------------------------- helpers


def rfc3339(dt: datetime) -> str:
    """WeChat's time format: ``2018-06-08T10:34:56+08:00``."""
    return dt.astimezone(CST).isoformat(timespec="seconds")


def parse_rfc3339(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError("time without offset")
    return dt


def yuan(fen: int | Decimal) -> str:
    return f"{(Decimal(fen) / 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}"


def _fee(fen: int) -> int:
    return int((Decimal(fen) * FEE_RATE).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def _digits(n: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(n))


def sign_message(private_key: rsa.RSAPrivateKey, message: str) -> str:
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify_message(public_key: rsa.RSAPublicKey, message: str, signature_b64: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def aes_gcm_encrypt(apiv3_key: str, plaintext: str, associated_data: str, nonce: str | None = None) -> tuple[str, str]:
    """Encrypt like WeChat Pay: returns (base64 ciphertext+tag, 12-char nonce)."""
    nonce = nonce or secrets.token_urlsafe(9)[:12]
    data = AESGCM(apiv3_key.encode("utf-8")).encrypt(
        nonce.encode("utf-8"), plaintext.encode("utf-8"), associated_data.encode("utf-8")
    )
    return base64.b64encode(data).decode("ascii"), nonce


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # the emulators keep their own request_log


class BackgroundServer:
    """Serve a WSGI app with werkzeug on a background thread (port 0 picks a free port)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        if self._server is not None:
            return self
        self._server = make_server(self.host, self.port, self.app, threaded=True,
                                   request_handler=_QuietRequestHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"wsgi-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None


# --------------------------------------------------------------------------- config and state


class ServedEmulator:
    """What every emulator here shares: its WSGI app served by `self._server` (a
    BackgroundServer), started and stopped as a context manager, and a clock that tests
    move forward (`now()` = wall time + `advance_time` offsets; guarded by `self._lock`)."""

    _server: BackgroundServer
    _offset: float = 0.0

    @property
    def url(self) -> str:
        return self._server.url

    def start(self):
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def now(self) -> float:
        return time.time() + self._offset

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (codes and tokens expire)."""
        with self._lock:
            self._offset += seconds


@dataclass
class EmulatorConfig:
    """What the emulated WeChat Pay knows about the merchant.

    ``appids``: the app ids bound to the merchant (a single str is accepted).
    ``merchant_public_key_pem``: public half of the merchant API key, to verify request signatures.
    ``merchant_serial_no``: serial number of the merchant API certificate (Authorization ``serial_no``).
    ``apiv3_key``: the 32-character APIv3 key (encrypts notifications).
    ``time_scale``: factor applied to the notification retry schedule (0.001 -> 15 ms instead of 15 s).
    ``notify_timeout``: seconds to wait for the merchant's answer to a notification (WeChat: 5 s).
    ``refund_notify_url``: used when a refund request has no notify_url (the merchant-platform setting).
    ``max_clock_skew``: seconds a request timestamp may differ from now (WeChat: 5 minutes).
    ``bill_url_ttl``: seconds a bill download_url stays valid (WeChat: 30 s).
    ``clock``: returns "now" as an aware datetime (success_time, create_time...); defaults to real time.
    ``platform_private_key_pem``: reuse a platform key instead of generating one.
    """

    mchid: str
    appids: Sequence[str] | str
    merchant_public_key_pem: str
    merchant_serial_no: str
    apiv3_key: str
    host: str = "127.0.0.1"
    port: int = 0
    time_scale: float = 1.0
    notify_timeout: float = 5.0
    refund_notify_url: str | None = None
    max_clock_skew: int = 300
    bill_url_ttl: float = 30.0
    clock: Callable[[], datetime] | None = None
    platform_private_key_pem: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.appids, str):
            self.appids = (self.appids,)
        self.appids = tuple(self.appids)
        if len(self.apiv3_key.encode("utf-8")) != 32:
            raise ValueError("apiv3_key must be exactly 32 bytes")


@dataclass
class Order:
    appid: str
    mchid: str
    description: str
    out_trade_no: str
    notify_url: str | None
    total: int
    openid: str
    prepay_id: str | None
    create_time: datetime
    time_expire: str | None = None
    attach: str | None = None
    request_fingerprint: str | None = None
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    payer_total: int | None = None
    reported: dict[str, Any] = field(default_factory=dict)  # forged appid/mchid/total for pay()
    bill_total: int | None = None  # make the bill disagree with the API for this trade
    external: bool = False


@dataclass
class Refund:
    refund_id: str
    out_refund_no: str
    out_trade_no: str
    transaction_id: str
    refund: int
    total: int
    reason: str | None
    notify_url: str | None
    create_time: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None
    funds_account: str = "AVAILABLE"


@dataclass
class DeliveryAttempt:
    number: int
    at: datetime
    status: int | None
    error: str | None = None
    response_body: str = ""
    elapsed: float = 0.0


@dataclass
class Delivery:
    """One notification and every attempt to deliver it."""

    id: str
    url: str
    body: str
    headers: dict[str, str]
    event_type: str | None
    ref: str | None  # out_trade_no or out_refund_no
    resign: bool
    attempts: list[DeliveryAttempt] = field(default_factory=list)
    succeeded: bool = False
    dropped: bool = False
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def notification_id(self) -> str | None:
        try:
            return json.loads(self.body).get("id")
        except ValueError:
            return None

    def wait(self, timeout: float | None = 10.0) -> bool:
        return self.done.wait(timeout)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


# --------------------------------------------------------------------------- the emulator


class WeChatPayEmulator:
    """Emulated WeChat Pay (API v3) with driver methods for tests. Thread-safe."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        if config.platform_private_key_pem:
            key = serialization.load_pem_private_key(config.platform_private_key_pem.encode(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("platform key must be RSA")
            self._platform_key = key
        else:
            self._platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.platform_public_key_pem = public_key_pem(self._platform_key)
        self.public_key_id = "PUB_KEY_ID_" + secrets.token_hex(16).upper()
        self._merchant_key = serialization.load_pem_public_key(config.merchant_public_key_pem.encode())
        self.clock: Callable[[], datetime] = config.clock or (lambda: datetime.now(CST))
        self._lock = threading.RLock()
        self._orders: dict[str, Order] = {}
        self._refunds: dict[str, Refund] = {}
        self._bill_tokens: dict[str, tuple[float, bytes, str]] = {}
        self._deliveries: list[Delivery] = []
        self._lost: set[str] = set()
        self._refund_faults: list[dict[str, Any]] = []
        self.refund_create_log: list[str] = []  # out_refund_no of every refund create that arrived
        self._stopping = threading.Event()
        self.request_log: list[dict[str, Any]] = []
        self.app = create_app(config, self)
        self._server = BackgroundServer(self.app, config.host, config.port)

    # ---- lifecycle

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> WeChatPayEmulator:
        self._stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # pending retries give up
        self._server.stop()
        for d in self.deliveries:
            d.done.wait(timeout=self.config.notify_timeout + 1)

    def __enter__(self) -> WeChatPayEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def now(self) -> datetime:
        return self.clock().astimezone(CST)

    # ---- signing

    def sign_response(self, body: str, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
        """The Wechatpay-* headers WeChat Pay puts on a response or a notification."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = nonce or secrets.token_hex(16).upper()
        return {
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sign_message(self._platform_key, f"{ts}\n{nonce}\n{body}\n"),
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Serial": self.public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def verify_request(self, method: str, url: str, body: str, authorization: str | None) -> str:
        """Check a merchant request; returns the mchid or raises ApiError(401, SIGN_ERROR)."""
        if not authorization:
            raise ApiError(401, "SIGN_ERROR", "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》")
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme != AUTH_SCHEME:
            raise ApiError(401, "SIGN_ERROR", "错误的签名认证类型，请参考《微信支付商户REST API签名规则》")
        params = dict(_AUTH_PARAM_RE.findall(rest))
        missing = [k for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no") if not params.get(k)]
        if missing:
            raise ApiError(401, "SIGN_ERROR", f"Http头Authorization缺少参数: {','.join(missing)}")
        if params["mchid"] != self.config.mchid:
            raise ApiError(401, "SIGN_ERROR", "商户号不存在或与证书不匹配")
        if params["serial_no"] != self.config.merchant_serial_no:
            raise ApiError(401, "SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        try:
            ts = int(params["timestamp"])
        except ValueError as e:
            raise ApiError(401, "SIGN_ERROR", "Http头Authorization中的timestamp格式错误") from e
        if abs(time.time() - ts) > self.config.max_clock_skew:
            raise ApiError(401, "SIGN_ERROR", "请求的时间戳已过期或与当前时间相差过大")
        message = f"{method}\n{url}\n{ts}\n{params['nonce_str']}\n{body}\n"
        if not verify_message(self._merchant_key, message, params["signature"]):
            raise ApiError(401, "SIGN_ERROR", "错误的签名，验签失败")
        return params["mchid"]

    # ---- rendering

    def _transaction_json(self, o: Order) -> dict[str, Any]:
        total = o.reported.get("total", o.total)
        d: dict[str, Any] = {
            "appid": o.reported.get("appid", o.appid),
            "mchid": o.reported.get("mchid", o.mchid),
            "out_trade_no": o.out_trade_no,
        }
        if o.transaction_id:
            d["transaction_id"] = o.transaction_id
        d["trade_type"] = "JSAPI"
        d["trade_state"] = o.trade_state
        d["trade_state_desc"] = TRADE_STATE_DESC[o.trade_state]
        if o.attach is not None:
            d["attach"] = o.attach
        amount: dict[str, Any] = {"total": total, "currency": "CNY"}
        if o.success_time:
            d["bank_type"] = "OTHERS"
            d["success_time"] = rfc3339(o.success_time)
            d["payer"] = {"openid": o.openid}
            amount["payer_total"] = o.payer_total if o.payer_total is not None else total
            amount["payer_currency"] = "CNY"
        d["amount"] = amount
        d["promotion_detail"] = []
        return d

    def _refund_json(self, r: Refund) -> dict[str, Any]:
        d: dict[str, Any] = {
            "refund_id": r.refund_id,
            "out_refund_no": r.out_refund_no,
            "transaction_id": r.transaction_id,
            "out_trade_no": r.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
        }
        if r.success_time:
            d["success_time"] = rfc3339(r.success_time)
        d["create_time"] = rfc3339(r.create_time)
        d["status"] = r.status
        d["funds_account"] = r.funds_account
        d["amount"] = {
            "total": r.total,
            "refund": r.refund,
            "from": [],
            "payer_total": r.total,
            "payer_refund": r.refund,
            "settlement_refund": r.refund,
            "settlement_total": r.total,
            "discount_refund": 0,
            "currency": "CNY",
            "refund_fee": 0,
        }
        d["promotion_detail"] = []
        return d

    def _refund_resource(self, r: Refund, mchid: str) -> dict[str, Any]:
        d: dict[str, Any] = {
            "mchid": mchid,
            "transaction_id": r.transaction_id,
            "out_trade_no": r.out_trade_no,
            "refund_id": r.refund_id,
            "out_refund_no": r.out_refund_no,
            "refund_status": r.status,
        }
        if r.success_time:
            d["success_time"] = rfc3339(r.success_time)
        d["user_received_account"] = "支付用户零钱"
        d["amount"] = {"total": r.total, "refund": r.refund, "payer_total": r.total, "payer_refund": r.refund}
        return d

    # ---- API operations (called by the Flask routes; raise ApiError)

    def api_create_jsapi(self, mchid: str, body: dict[str, Any]) -> dict[str, Any]:
        for key in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount", "payer"):
            if key not in body or body[key] in (None, ""):
                raise ApiError(400, "PARAM_ERROR", f"输入源“/body/{key}”映射到字段“{key}”必填性规则校验失败")
        if body["mchid"] != mchid:
            raise ApiError(400, "INVALID_REQUEST", "请求的商户号与请求体中的mchid不一致")
        if body["appid"] not in self.config.appids:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        out_trade_no = body["out_trade_no"]
        if not isinstance(out_trade_no, str) or not _OUT_NO_RE.match(out_trade_no):
            raise ApiError(400, "PARAM_ERROR", "商户订单号只能是6-32位数字、大小写字母_-|*")
        description = body["description"]
        if not isinstance(description, str) or len(description.encode("utf-8")) > 127:
            raise ApiError(400, "PARAM_ERROR", "description 长度不能超过127字节")
        notify_url = body["notify_url"]
        if not isinstance(notify_url, str) or not re.match(r"^https?://", notify_url) or "?" in notify_url:
            raise ApiError(400, "PARAM_ERROR", "notify_url 格式不正确（必须为http(s)绝对地址，且不能携带参数）")
        amount = body["amount"]
        total = amount.get("total") if isinstance(amount, dict) else None
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise ApiError(400, "PARAM_ERROR", "amount.total 必须为正整数（单位：分）")
        if amount.get("currency", "CNY") != "CNY":
            raise ApiError(400, "PARAM_ERROR", "amount.currency 目前只支持CNY")
        payer = body["payer"]
        openid = payer.get("openid") if isinstance(payer, dict) else None
        if not isinstance(openid, str) or not openid:
            raise ApiError(400, "PARAM_ERROR", "JSAPI下单 payer.openid 必填")
        time_expire = body.get("time_expire")
        if time_expire is not None:
            try:
                parse_rfc3339(time_expire)
            except (ValueError, TypeError, AttributeError) as e:
                raise ApiError(400, "PARAM_ERROR", "time_expire 格式必须为rfc3339") from e
        fingerprint = _dumps({
            "appid": body["appid"], "description": description, "notify_url": notify_url, "total": total,
            "openid": openid, "time_expire": time_expire, "attach": body.get("attach"),
        })
        with self._lock:
            existing = self._orders.get(out_trade_no)
            if existing:
                if existing.trade_state == "CLOSED":
                    raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
                if existing.trade_state in ("SUCCESS", "REFUND"):
                    raise ApiError(400, "INVALID_REQUEST", "该订单已支付")
                if existing.request_fingerprint != fingerprint:
                    raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
                return {"prepay_id": existing.prepay_id}
            now = self.now()
            order = Order(
                appid=body["appid"], mchid=mchid, description=description, out_trade_no=out_trade_no,
                notify_url=notify_url, total=total, openid=openid, create_time=now, time_expire=time_expire,
                attach=body.get("attach"), request_fingerprint=fingerprint,
                prepay_id="wx" + now.strftime("%d%H%M%S") + secrets.token_hex(13),
            )
            self._orders[out_trade_no] = order
            return {"prepay_id": order.prepay_id}

    def api_query(self, mchid: str, query_mchid: str | None, *, out_trade_no: str | None = None,
                  transaction_id: str | None = None) -> dict[str, Any]:
        if not query_mchid:
            raise ApiError(400, "PARAM_ERROR", "输入源“/query/mchid”映射到字段“mchid”必填性规则校验失败")
        if query_mchid != mchid:
            raise ApiError(400, "INVALID_REQUEST", "mchid与请求的商户号不一致")
        with self._lock:
            order = self._find_order(out_trade_no=out_trade_no, transaction_id=transaction_id)
            if order is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            return self._transaction_json(order)

    def api_close(self, mchid: str, out_trade_no: str, body: dict[str, Any]) -> None:
        if body.get("mchid") != mchid:
            raise ApiError(400, "PARAM_ERROR", "body.mchid 必填且须与请求的商户号一致")
        with self._lock:
            order = self._orders.get(out_trade_no)
            if order is None:
                raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
            if order.trade_state in ("SUCCESS", "REFUND"):
                raise ApiError(400, "ORDERPAID", "订单已支付")
            order.trade_state = "CLOSED"

    def api_refund(self, mchid: str, body: dict[str, Any]) -> dict[str, Any]:
        out_refund_no = body.get("out_refund_no")
        if not isinstance(out_refund_no, str) or not _OUT_REFUND_NO_RE.match(out_refund_no):
            raise ApiError(400, "PARAM_ERROR", "out_refund_no 必填，1-64位数字、大小写字母_-|*@")
        transaction_id, out_trade_no = body.get("transaction_id"), body.get("out_trade_no")
        if not transaction_id and not out_trade_no:
            raise ApiError(400, "PARAM_ERROR", "transaction_id和out_trade_no必须二选一进行传参")
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise ApiError(400, "PARAM_ERROR", "amount 必填")
        for key in ("refund", "total"):
            v = amount.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ApiError(400, "PARAM_ERROR", f"amount.{key} 必须为正整数（单位：分）")
        if amount.get("currency") != "CNY":
            raise ApiError(400, "PARAM_ERROR", "amount.currency 必填，目前只支持CNY")
        notify_url = body.get("notify_url")
        if notify_url is not None and (not re.match(r"^https?://", str(notify_url)) or "?" in str(notify_url)):
            raise ApiError(400, "PARAM_ERROR", "notify_url 格式不正确")
        with self._lock:
            order = self._find_order(out_trade_no=out_trade_no, transaction_id=transaction_id)
            if order is None or order.mchid != mchid or order.trade_state not in ("SUCCESS", "REFUND"):
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
            paid = order.reported.get("total", order.total)
            existing = self._refunds.get(out_refund_no)
            if existing:
                if existing.out_trade_no == order.out_trade_no and existing.refund == amount["refund"]:
                    return self._refund_json(existing)
                raise ApiError(400, "INVALID_REQUEST", "商户退款单号重复，且与原退款申请的参数不一致")
            if amount["total"] != paid:
                raise ApiError(400, "INVALID_REQUEST", "订单金额与原订单金额不一致")
            refundable = paid - sum(
                r.refund for r in self._refunds.values()
                if r.out_trade_no == order.out_trade_no and r.status != "CLOSED"
            )
            if amount["refund"] > refundable:
                raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            refund = Refund(
                refund_id="50" + _digits(27), out_refund_no=out_refund_no, out_trade_no=order.out_trade_no,
                transaction_id=order.transaction_id or "", refund=amount["refund"], total=paid,
                reason=body.get("reason"), notify_url=notify_url or self.config.refund_notify_url,
                create_time=self.now(), funds_account=body.get("funds_account") or "AVAILABLE",
            )
            self._refunds[out_refund_no] = refund
            order.trade_state = "REFUND"
            return self._refund_json(refund)

    def api_query_refund(self, out_refund_no: str) -> dict[str, Any]:
        with self._lock:
            refund = self._refunds.get(out_refund_no)
            if refund is None:
                raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return self._refund_json(refund)

    def api_tradebill(self, bill_date: str | None, bill_type: str | None, tar_type: str | None,
                      base_url: str | None = None) -> dict[str, Any]:
        try:
            day = date.fromisoformat(bill_date or "")
        except ValueError as e:
            raise ApiError(400, "PARAM_ERROR", "bill_date 格式必须为YYYY-MM-DD") from e
        bill_type = bill_type or "ALL"
        if bill_type not in ("ALL", "SUCCESS", "REFUND"):
            raise ApiError(400, "PARAM_ERROR", "bill_type 取值必须为ALL/SUCCESS/REFUND")
        if tar_type not in (None, "GZIP"):
            raise ApiError(400, "PARAM_ERROR", "tar_type 取值只能为GZIP")
        if day > self.now().date():
            raise ApiError(400, "INVALID_REQUEST", "不支持下载未来日期的账单")
        text = self.trade_bill_text(day, bill_type)
        if text is None:
            raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在，请检查当前商户号在指定日期内是否有成功的交易")
        raw = text.encode("utf-8")
        payload, content_type = (gzip.compress(raw), "application/octet-stream") if tar_type else (raw, "text/plain")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._bill_tokens[token] = (time.monotonic() + self.config.bill_url_ttl, payload, content_type)
        return {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(raw).hexdigest(),
            "download_url": f"{base_url or self.url}/v3/billdownload/file?token={token}",
        }

    def api_download(self, token: str | None) -> tuple[bytes, str]:
        with self._lock:
            entry = self._bill_tokens.get(token or "")
        if entry is None or entry[0] < time.monotonic():
            raise ApiError(400, "INVALID_REQUEST", "下载链接无效或已过期")
        return entry[1], entry[2]

    def _find_order(self, *, out_trade_no: str | None = None, transaction_id: str | None = None) -> Order | None:
        if transaction_id:
            return next((o for o in self._orders.values() if o.transaction_id == transaction_id), None)
        return self._orders.get(out_trade_no or "")

    # ---- the trade bill

    def trade_bill_text(self, day: date, bill_type: str = "ALL") -> str | None:
        """The day's trade bill as WeChat's CSV text, or None when there was no trade that day."""
        with self._lock:
            rows: list[tuple[datetime, list[str], dict[str, int]]] = []
            if bill_type in ("ALL", "SUCCESS"):
                for o in self._orders.values():
                    if o.success_time and o.success_time.astimezone(CST).date() == day:
                        total = o.bill_total if o.bill_total is not None else o.reported.get("total", o.total)
                        fee = _fee(total)
                        rows.append((o.success_time, [
                            o.success_time.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
                            o.reported.get("appid", o.appid), o.reported.get("mchid", o.mchid), "0", "",
                            o.transaction_id or "", o.out_trade_no, o.openid, "JSAPI", "SUCCESS", "OTHERS", "CNY",
                            yuan(total), "0.00", "0", "0", "0.00", "0.00", "", "",
                            o.description, o.attach or "", yuan(fee), "0.60%", yuan(total), "0.00", "",
                        ], {"settle": total, "refund": 0, "fee": fee, "order": total, "applied": 0}))
            if bill_type in ("ALL", "REFUND"):
                for r in self._refunds.values():
                    if r.status == "SUCCESS" and r.success_time and r.success_time.astimezone(CST).date() == day:
                        o = self._orders[r.out_trade_no]
                        fee = -_fee(r.refund)
                        rows.append((r.success_time, [
                            r.success_time.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S"),
                            o.reported.get("appid", o.appid), o.reported.get("mchid", o.mchid), "0", "",
                            r.transaction_id, r.out_trade_no, o.openid, "JSAPI", "REFUND", "OTHERS", "CNY",
                            "0.00", "0.00", r.refund_id, r.out_refund_no, yuan(r.refund), "0.00", "ORIGINAL",
                            "SUCCESS", o.description, o.attach or "", yuan(fee), "0.60%", "0.00", yuan(r.refund), "",
                        ], {"settle": 0, "refund": r.refund, "fee": fee, "order": 0, "applied": r.refund}))
        if not rows:
            return None
        rows.sort(key=lambda row: row[0])
        lines = [BILL_HEADER]
        lines += [",".join("`" + v for v in cells) for _, cells, _ in rows]
        sums = {k: sum(row[2][k] for row in rows) for k in ("settle", "refund", "fee", "order", "applied")}
        lines.append(BILL_SUMMARY_HEADER)
        lines.append(",".join("`" + v for v in (
            str(len(rows)), yuan(sums["settle"]), yuan(sums["refund"]), "0.00", yuan(sums["fee"]),
            yuan(sums["order"]), yuan(sums["applied"]),
        )))
        return "\r\n".join(lines) + "\r\n"

    # ---- driver methods for tests

    def order(self, out_trade_no: str) -> dict[str, Any]:
        """The transaction JSON WeChat would return for a query (KeyError if unknown)."""
        with self._lock:
            return self._transaction_json(self._orders[out_trade_no])

    def refund_info(self, out_refund_no: str) -> dict[str, Any]:
        with self._lock:
            return self._refund_json(self._refunds[out_refund_no])

    def pay(self, out_trade_no: str, *, amount: int | None = None, deliver: bool = True, duplicates: int = 0,
            appid: str | None = None, mchid: str | None = None, openid: str | None = None,
            success_time: datetime | None = None) -> dict[str, Any]:
        """The user pays the order: it becomes SUCCESS with a new transaction_id.

        ``amount`` / ``appid`` / ``mchid`` / ``openid`` forge what WeChat reports for this trade (query,
        notification and bill) to test the adapter's checks. With ``deliver`` the TRANSACTION.SUCCESS
        notification is POSTed to the order's notify_url (plus ``duplicates`` extra copies, sent
        concurrently) in background threads; see :meth:`wait_for_deliveries`. Returns the transaction JSON.
        """
        with self._lock:
            order = self._orders.get(out_trade_no)
            if order is None:
                raise KeyError(f"unknown order {out_trade_no}")
            if order.trade_state != "NOTPAY":
                raise ValueError(f"order {out_trade_no} is {order.trade_state}, cannot pay")
            now = success_time or self.now()
            if order.time_expire and parse_rfc3339(order.time_expire) < now:
                raise ValueError(f"order {out_trade_no} expired at {order.time_expire}")
            order.trade_state = "SUCCESS"
            order.transaction_id = "42000" + _digits(5) + now.astimezone(CST).strftime("%Y%m%d") + _digits(10)
            order.success_time = now
            if amount is not None:
                order.reported["total"] = amount
            if appid is not None:
                order.reported["appid"] = appid
            if mchid is not None:
                order.reported["mchid"] = mchid
            if openid is not None:
                order.openid = openid
            tx = self._transaction_json(order)
            notify_url = order.notify_url
        if deliver and notify_url:
            self._send_event(notify_url, tx, "TRANSACTION.SUCCESS", out_trade_no, copies=1 + duplicates)
        return tx

    def resend_notification(self, out_trade_no: str, *, duplicates: int = 0) -> list[Delivery]:
        """Send the TRANSACTION.SUCCESS notification of a paid order again (clears lose_notification)."""
        with self._lock:
            self._lost.discard(out_trade_no)
            order = self._orders[out_trade_no]
            if not order.success_time or not order.notify_url:
                raise ValueError(f"order {out_trade_no} is not paid or has no notify_url")
            tx, url = self._transaction_json(order), order.notify_url
        return self._send_event(url, tx, "TRANSACTION.SUCCESS", out_trade_no, copies=1 + duplicates)

    def fail_refund_create(self, mode: str, *, times: int = 1, delay: float = 2.0, status: int = 403,
                           code: str = "NOT_ENOUGH", message: str = "基本账户余额不足，请充值后重新发起") -> None:
        """Make the next ``times`` refund creates misbehave (queued after earlier faults):

        * "timeout": WeChat takes the refund but answers only after ``delay`` seconds (the
          caller times out; a repeat with the same out_refund_no returns the refund);
        * "lost": the request never reaches WeChat: nothing is recorded, the caller waits
          ``delay`` seconds for nothing (a 500 after it gave up);
        * "5xx": 500 SYSTEM_ERROR at once, nothing recorded;
        * "reject": ``status`` with ``code``/``message`` at once, nothing recorded.
        """
        if mode not in ("timeout", "lost", "5xx", "reject"):
            raise ValueError(f"unknown refund fault {mode!r}")
        with self._lock:
            self._refund_faults += [{"mode": mode, "delay": delay, "status": status, "code": code,
                                     "message": message} for _ in range(times)]

    def _next_refund_fault(self, body: dict[str, Any]) -> dict[str, Any] | None:
        with self._lock:
            self.refund_create_log.append(str(body.get("out_refund_no")))
            return self._refund_faults.pop(0) if self._refund_faults else None

    def refunds_for(self, out_trade_no: str) -> list[dict[str, Any]]:
        """Every refund WeChat holds for a trade (as the refund query shows them)."""
        with self._lock:
            return [self._refund_json(r) for r in self._refunds.values() if r.out_trade_no == out_trade_no]

    def lose_notification(self, ref: str) -> None:
        """Notifications for this out_trade_no / out_refund_no never arrive (pending retries stop too)."""
        with self._lock:
            self._lost.add(ref)

    def complete_refund(self, out_refund_no: str, status: str = "SUCCESS", *, deliver: bool = True,
                        duplicates: int = 0) -> dict[str, Any]:
        """Finish a PROCESSING refund (SUCCESS, ABNORMAL or CLOSED) and notify its notify_url."""
        if status not in REFUND_SUMMARY:
            raise ValueError("status must be SUCCESS, ABNORMAL or CLOSED")
        with self._lock:
            refund = self._refunds[out_refund_no]
            if refund.status != "PROCESSING":
                raise ValueError(f"refund {out_refund_no} is already {refund.status}")
            refund.status = status
            if status == "SUCCESS":
                refund.success_time = self.now()
            order = self._orders[refund.out_trade_no]
            resource = self._refund_resource(refund, order.mchid)
            result, url = self._refund_json(refund), refund.notify_url
        if deliver and url:
            self._send_event(url, resource, f"REFUND.{status}", out_refund_no, copies=1 + duplicates)
        return result

    def add_external_trade(self, out_trade_no: str, total: int, *, openid: str = "oEmulatorExternalPayer",
                           description: str = "external trade", appid: str | None = None,
                           success_time: datetime | None = None, attach: str | None = None) -> dict[str, Any]:
        """Plant a paid trade that exists at WeChat but was never created through the API (no notification)."""
        with self._lock:
            if out_trade_no in self._orders:
                raise ValueError(f"order {out_trade_no} exists")
            now = success_time or self.now()
            order = Order(
                appid=appid or self.config.appids[0], mchid=self.config.mchid, description=description,
                out_trade_no=out_trade_no, notify_url=None, total=total, openid=openid, prepay_id=None,
                create_time=now, attach=attach, trade_state="SUCCESS", success_time=now, external=True,
                transaction_id="42000" + _digits(5) + now.astimezone(CST).strftime("%Y%m%d") + _digits(10),
            )
            self._orders[out_trade_no] = order
            return self._transaction_json(order)

    def set_bill_amount(self, out_trade_no: str, total: int | None) -> None:
        """Make the trade bill report another amount (fen) for this trade (None restores it)."""
        with self._lock:
            self._orders[out_trade_no].bill_total = total

    # ---- JSAPI payment from a browser (the "user" side of wx.requestPayment / WeixinJSBridge)

    def _order_by_package(self, package: object) -> Order:
        if not isinstance(package, str) or not package.startswith("prepay_id="):
            raise ApiError(400, "PARAM_ERROR", "package 格式错误，应为 prepay_id=***")
        prepay_id = package[len("prepay_id="):]
        with self._lock:
            order = next((o for o in self._orders.values() if prepay_id and o.prepay_id == prepay_id), None)
        if order is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在或prepay_id无效")
        return order

    def jsapi_order(self, package: object) -> dict[str, Any]:
        """What the confirm sheet shows for a JSAPI ``package`` (``prepay_id=...``)."""
        order = self._order_by_package(package)
        with self._lock:
            return {"out_trade_no": order.out_trade_no, "description": order.description, "total": order.total,
                    "amount": yuan(order.total), "trade_state": order.trade_state,
                    "trade_state_desc": TRADE_STATE_DESC[order.trade_state]}

    def jsapi_pay(self, params: object) -> dict[str, Any]:
        """The user confirms a JSAPI payment: check the parameters the merchant signed for
        ``getBrandWCPayRequest`` (appId bound to the merchant, signType RSA, the order's
        prepay_id, paySign = RSA-SHA256 over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``
        verified with the merchant's public key), then pay the order as :meth:`pay` does
        (signed, encrypted notification to its notify_url). Raises ApiError; pays nothing then."""
        if not isinstance(params, dict):
            raise ApiError(400, "PARAM_ERROR", "支付参数必须是JSON对象")
        for key in ("appId", "timeStamp", "nonceStr", "package", "signType", "paySign"):
            if not isinstance(params.get(key), str) or not params[key]:
                raise ApiError(400, "PARAM_ERROR", f"支付参数缺少 {key}")
        if params["appId"] not in self.config.appids:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appId 与商户号不匹配")
        if params["signType"] != "RSA":
            raise ApiError(400, "PARAM_ERROR", "signType 必须为 RSA")
        if not params["timeStamp"].isdigit() or abs(time.time() - int(params["timeStamp"])) > 86400:
            raise ApiError(400, "PARAM_ERROR", "timeStamp 格式错误或已过期")
        order = self._order_by_package(params["package"])
        message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
        if not verify_message(self._merchant_key, message, params["paySign"]):
            raise ApiError(400, "SIGN_ERROR", "支付验证签名失败")
        if order.appid != params["appId"]:
            raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appId 与下单时的 appid 不一致")
        if order.trade_state != "NOTPAY":
            code = "ORDERPAID" if order.trade_state in ("SUCCESS", "REFUND") else "ORDER_CLOSED"
            raise ApiError(400, code, TRADE_STATE_DESC[order.trade_state])
        try:
            return self.pay(order.out_trade_no)
        except ValueError as e:  # expired, or paid by a concurrent confirm
            raise ApiError(400, "ORDER_CLOSED", "订单已过期或已支付") from e

    # ---- notifications

    def build_notification(self, resource: dict[str, Any], event_type: str = "TRANSACTION.SUCCESS", *,
                           tamper: str | None = None, summary: str | None = None,
                           original_type: str | None = None, associated_data: str | None = None,
                           notification_id: str | None = None) -> tuple[dict[str, str], str]:
        """(headers, body) of a notification exactly as WeChat Pay sends it.

        ``tamper``: "signature" (signed with another key), "serial" (unknown Wechatpay-Serial),
        "stale" (timestamp 10 minutes old, validly signed), "ciphertext" (one ciphertext byte flipped
        before signing, so the signature is valid but decryption fails).
        """
        if tamper not in (None, "signature", "serial", "stale", "ciphertext"):
            raise ValueError(f"unknown tamper {tamper!r}")
        kind = "refund" if event_type.startswith("REFUND.") else "transaction"
        original_type = original_type or kind
        associated_data = kind if associated_data is None else associated_data
        if summary is None:
            summary = REFUND_SUMMARY.get(event_type.split(".", 1)[1], "") if kind == "refund" else "支付成功"
        ciphertext, nonce = aes_gcm_encrypt(self.config.apiv3_key, _dumps(resource), associated_data)
        if tamper == "ciphertext":
            raw = bytearray(base64.b64decode(ciphertext))
            raw[len(raw) // 2] ^= 0x01
            ciphertext = base64.b64encode(bytes(raw)).decode("ascii")
        body = _dumps({
            "id": notification_id or str(uuid.uuid4()),
            "create_time": rfc3339(self.now()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": associated_data,
                "nonce": nonce,
            },
        })
        ts = int(time.time()) - (600 if tamper == "stale" else 0)
        headers = {"Content-Type": "application/json", "User-Agent": "Mozilla/4.0"}
        headers.update(self.sign_response(body, timestamp=ts))
        if tamper == "signature":
            other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            headers["Wechatpay-Signature"] = sign_message(
                other, f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body}\n")
        elif tamper == "serial":
            headers["Wechatpay-Serial"] = "PUB_KEY_ID_" + secrets.token_hex(16).upper()
        return headers, body

    def _send_event(self, url: str, resource: dict[str, Any], event_type: str, ref: str,
                    copies: int = 1) -> list[Delivery]:
        headers, body = self.build_notification(resource, event_type)
        barrier = threading.Barrier(copies) if copies > 1 else None
        return [self.deliver(url, dict(headers), body, ref=ref, resign=True, _barrier=barrier) for _ in range(copies)]

    def deliver(self, url: str, headers: dict[str, str], body: str, *, ref: str | None = None,
                resign: bool = False, _barrier: threading.Barrier | None = None) -> Delivery:
        """POST a notification in a background thread, retrying on WeChat's schedule (scaled by
        ``time_scale``) until the answer is 200/204. ``resign``: re-sign each retry with a fresh
        timestamp/nonce (as WeChat does); otherwise the exact headers are re-sent (tampered ones stay
        tampered). Returns the :class:`Delivery`; ``delivery.wait()`` blocks until it is settled."""
        try:
            event_type = json.loads(body).get("event_type")
        except ValueError:
            event_type = None
        d = Delivery(id=uuid.uuid4().hex, url=url, body=body, headers=dict(headers), event_type=event_type,
                     ref=ref, resign=resign)
        with self._lock:
            self._deliveries.append(d)
        threading.Thread(target=self._run_delivery, args=(d, _barrier), name=f"notify-{d.id[:8]}",
                         daemon=True).start()
        return d

    def _is_lost(self, d: Delivery) -> bool:
        with self._lock:
            return d.ref is not None and d.ref in self._lost

    def _run_delivery(self, d: Delivery, barrier: threading.Barrier | None) -> None:
        try:
            if barrier is not None:
                try:
                    barrier.wait(timeout=5)
                except threading.BrokenBarrierError:
                    pass
            for number in range(1, len(RETRY_SCHEDULE) + 2):
                if self._is_lost(d):
                    d.dropped = True
                    return
                if self._stopping.is_set():
                    return
                headers = d.headers
                if d.resign and number > 1:
                    headers = {**d.headers, **self.sign_response(d.body)}
                started, at = time.monotonic(), self.now()
                try:
                    resp = requests.post(d.url, data=d.body.encode("utf-8"), headers=headers,
                                         timeout=self.config.notify_timeout)
                    attempt = DeliveryAttempt(number, at, resp.status_code, response_body=resp.text[:2000])
                except requests.RequestException as e:
                    attempt = DeliveryAttempt(number, at, None, error=f"{type(e).__name__}: {e}")
                attempt.elapsed = time.monotonic() - started
                with self._lock:
                    d.attempts.append(attempt)
                if attempt.status in (200, 204):
                    d.succeeded = True
                    return
                if number > len(RETRY_SCHEDULE):
                    return
                if self._stopping.wait(RETRY_SCHEDULE[number - 1] * self.config.time_scale):
                    return
        finally:
            d.done.set()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def deliveries_for(self, ref: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.ref == ref]

    @property
    def delivery_log(self) -> list[dict[str, Any]]:
        """Every delivery attempt, in order: delivery id, notification id, url, event_type, ref,
        attempt number, HTTP status (None on a connection error/timeout), error, time."""
        log = []
        for d in self.deliveries:
            for a in list(d.attempts):
                log.append({
                    "delivery": d.id, "notification_id": d.notification_id, "url": d.url,
                    "event_type": d.event_type, "ref": d.ref, "attempt": a.number, "status": a.status,
                    "error": a.error, "at": a.at, "elapsed": a.elapsed,
                })
        return sorted(log, key=lambda e: e["at"])

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until every delivery started so far has succeeded, given up or been dropped."""
        deadline = time.monotonic() + timeout
        return all(d.done.wait(max(0.0, deadline - time.monotonic())) for d in self.deliveries)


# --------------------------------------------------------------------------- the HTTP app


def create_app(config: EmulatorConfig, emulator: WeChatPayEmulator | None = None) -> Flask:
    """The Flask app of the emulated API. Without ``emulator`` a fresh (unstarted) one holds the state;
    it is available as ``app.extensions["wechatpay_emulator"]``."""
    if emulator is None:
        return WeChatPayEmulator(config).app
    emu = emulator
    app = Flask("wechatpay_emulator")
    app.extensions["wechatpay_emulator"] = emu

    def json_response(status: int, payload: Any = None) -> Response:
        body = "" if payload is None else _dumps(payload)
        resp = Response(body, status=status)
        if payload is not None:
            resp.headers["Content-Type"] = "application/json; charset=utf-8"
        else:
            resp.headers.pop("Content-Type", None)
        return resp

    def error(e: ApiError) -> Response:
        return json_response(e.status, {"code": e.code, "message": e.message})

    @app.errorhandler(ApiError)
    def _api_error(e: ApiError) -> Response:
        return error(e)

    @app.errorhandler(404)
    def _not_found(_e: Exception) -> Response:
        return json_response(404, {"code": "NOT_FOUND", "message": "请求的资源不存在"})

    @app.errorhandler(405)
    def _bad_method(_e: Exception) -> Response:
        return json_response(405, {"code": "METHOD_NOT_ALLOWED", "message": "请求方法不支持"})

    @app.before_request
    def _authenticate() -> Response | None:
        if request.path.startswith(USER_PATHS):
            g.body_text = request.get_data(cache=True).decode("utf-8", "replace")
            if request.method == "OPTIONS":  # a browser's CORS preflight
                return Response(status=204)
            return None  # the user's side: no merchant signature
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        if not raw_uri:
            qs = request.query_string.decode("latin-1")
            raw_uri = request.path + (f"?{qs}" if qs else "")
        g.body_text = request.get_data(cache=True).decode("utf-8", "replace")
        try:
            g.mchid = emu.verify_request(request.method, raw_uri, g.body_text, request.headers.get("Authorization"))
        except ApiError as e:
            return error(e)
        serial = request.headers.get("Wechatpay-Serial")
        if serial and serial != emu.public_key_id:
            return error(ApiError(400, "PARAM_ERROR", "Wechatpay-Serial 与微信支付公钥ID不匹配"))
        return None

    @app.after_request
    def _sign(resp: Response) -> Response:
        with emu._lock:
            emu.request_log.append({"method": request.method, "path": request.full_path.rstrip("?"),
                                    "status": resp.status_code})
        resp.headers["Request-ID"] = uuid.uuid4().hex
        if request.path.startswith(USER_PATHS):  # called from the product's pages, another origin
            resp.headers["Access-Control-Allow-Origin"] = "*"
            resp.headers["Access-Control-Allow-Headers"] = "Content-Type"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Cache-Control"] = "no-store"
            return resp
        if request.path.startswith("/v3/billdownload/"):
            return resp  # files are not signed; check hash_value instead
        resp.headers.update(emu.sign_response(resp.get_data(as_text=True)))
        return resp

    def json_body() -> dict[str, Any]:
        try:
            data = json.loads(g.body_text or "null")
        except ValueError as e:
            raise ApiError(400, "PARAM_ERROR", "请求体不是合法的JSON") from e
        if not isinstance(data, dict):
            raise ApiError(400, "PARAM_ERROR", "请求体必须是JSON对象")
        return data

    @app.post("/v3/pay/transactions/jsapi")
    def create_jsapi() -> Response:
        return json_response(200, emu.api_create_jsapi(g.mchid, json_body()))

    @app.get("/v3/pay/transactions/out-trade-no/<out_trade_no>")
    def query_by_out_trade_no(out_trade_no: str) -> Response:
        return json_response(200, emu.api_query(g.mchid, request.args.get("mchid"), out_trade_no=out_trade_no))

    @app.get("/v3/pay/transactions/id/<transaction_id>")
    def query_by_id(transaction_id: str) -> Response:
        return json_response(200, emu.api_query(g.mchid, request.args.get("mchid"), transaction_id=transaction_id))

    @app.post("/v3/pay/transactions/out-trade-no/<out_trade_no>/close")
    def close(out_trade_no: str) -> Response:
        emu.api_close(g.mchid, out_trade_no, json_body())
        return json_response(204)

    @app.post("/v3/refund/domestic/refunds")
    def create_refund() -> Response:
        body = json_body()
        fault = emu._next_refund_fault(body)
        if fault is None:
            return json_response(200, emu.api_refund(g.mchid, body))
        mode = fault["mode"]
        if mode == "reject":
            raise ApiError(fault["status"], fault["code"], fault["message"])
        if mode == "5xx":
            raise ApiError(500, "SYSTEM_ERROR", "系统错误")
        payload = emu.api_refund(g.mchid, body) if mode == "timeout" else None  # "lost": never recorded
        emu._stopping.wait(fault["delay"])  # answer after the caller has given up
        return json_response(200, payload) if payload is not None else error(ApiError(500, "SYSTEM_ERROR", "系统错误"))

    @app.get("/v3/refund/domestic/refunds/<out_refund_no>")
    def query_refund(out_refund_no: str) -> Response:
        return json_response(200, emu.api_query_refund(out_refund_no))

    @app.get("/v3/bill/tradebill")
    def tradebill() -> Response:
        a = request.args
        base_url = request.host_url.rstrip("/")
        return json_response(200, emu.api_tradebill(a.get("bill_date"), a.get("bill_type"), a.get("tar_type"), base_url))

    @app.get("/v3/billdownload/file")
    def billdownload() -> Response:
        payload, content_type = emu.api_download(request.args.get("token"))
        return Response(payload, status=200, content_type=content_type)

    @app.get("/emulator/jsbridge.js")
    def jsbridge() -> Response:
        return Response(JSBRIDGE_JS, status=200, content_type="application/javascript; charset=utf-8")

    @app.get("/emulator/jsapi/order")
    def jsapi_order() -> Response:
        return json_response(200, emu.jsapi_order(request.args.get("package")))

    @app.route("/emulator/jsapi/pay", methods=["POST", "OPTIONS"])
    def jsapi_pay() -> Response:
        tx = emu.jsapi_pay(json_body())
        return json_response(200, {"err_msg": "get_brand_wcpay_request:ok", "out_trade_no": tx["out_trade_no"],
                                   "transaction_id": tx["transaction_id"]})

    @app.get("/v3/certificates")
    def certificates() -> Response:
        # This merchant verifies with the WeChat Pay public key, it has no platform certificates.
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "商户未申请平台证书，请使用微信支付公钥验签")

    return app


# --------------------------------------------------------------------------- the JSAPI shim

USER_PATHS = ("/emulator/",)  # routes the paying user's browser calls: no merchant signature, CORS open

# window.WeixinJSBridge for a browser outside WeChat (local demo and tests only: the product's
# pages load it only when FEIKONG_WECHATPAY_JSBRIDGE_URL names it, which prod refuses).
JSBRIDGE_JS = r"""(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? script.src.replace(/\/emulator\/jsbridge\.js.*$/, "") : "";
  var css = "#wxpay-emu-mask{position:fixed;inset:0;background:rgba(0,0,0,.45);z-index:9999;display:flex;" +
    "align-items:flex-end;font-family:system-ui,'PingFang SC','Microsoft YaHei','WenQuanYi Micro Hei',sans-serif}" +
    "#wxpay-emu-sheet{background:#fff;width:100%;border-radius:14px 14px 0 0;padding:20px 20px 28px;" +
    "box-sizing:border-box;text-align:center;color:#111}" +
    "#wxpay-emu-sheet .t{font-size:15px;color:#666}#wxpay-emu-sheet .d{font-size:14px;margin:10px 0 4px;color:#333}" +
    "#wxpay-emu-sheet .a{font-size:34px;font-weight:600;margin:6px 0 18px}" +
    "#wxpay-emu-sheet .n{font-size:12px;color:#999;margin-bottom:16px}" +
    "#wxpay-emu-sheet button{display:block;width:100%;border:0;border-radius:8px;font-size:17px;padding:12px;" +
    "margin-top:10px}#wxpay-emu-confirm{background:#07c160;color:#fff}#wxpay-emu-cancel{background:#f2f2f2;color:#333}" +
    "#wxpay-emu-sheet .e{color:#e64340;font-size:14px;min-height:18px}";

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) e.textContent = text;
    return e;
  }

  function post(path, body) {
    return fetch(base + path, {method: "POST", headers: {"Content-Type": "application/json"},
                               body: JSON.stringify(body)}).then(function (r) {
      return r.json().then(function (j) { return {ok: r.ok, body: j}; });
    });
  }

  function pay(params, cb) {
    var done = function (msg) { mask.remove(); cb({err_msg: "get_brand_wcpay_request:" + msg}); };
    var style = el("style", {}, css);
    var mask = el("div", {id: "wxpay-emu-mask"});
    var sheet = el("div", {id: "wxpay-emu-sheet", role: "dialog", "aria-label": "确认支付"});
    var desc = el("div", {"class": "d"}, "正在读取订单…");
    var amount = el("div", {"class": "a"}, "");
    var err = el("div", {"class": "e", id: "wxpay-emu-error"});
    var ok = el("button", {id: "wxpay-emu-confirm", type: "button"}, "确认支付");
    var no = el("button", {id: "wxpay-emu-cancel", type: "button"}, "取消");
    mask.appendChild(style);
    [el("div", {"class": "t"}, "微信支付（本地模拟器）"), desc, amount,
     el("div", {"class": "n"}, "模拟付款：不会产生真实扣款"), err, ok, no].forEach(function (c) { sheet.appendChild(c); });
    mask.appendChild(sheet);
    document.body.appendChild(mask);
    fetch(base + "/emulator/jsapi/order?package=" + encodeURIComponent(params && params.package || ""))
      .then(function (r) { return r.json(); })
      .then(function (o) {
        if (o.out_trade_no) { desc.textContent = o.description; amount.textContent = "¥" + o.amount; }
        else { desc.textContent = ""; err.textContent = o.message || "订单无效"; }
      })
      .catch(function () { err.textContent = "无法连接微信支付模拟器"; });
    no.onclick = function () { done("cancel"); };
    ok.onclick = function () {
      ok.disabled = true; ok.textContent = "支付中…"; err.textContent = "";
      post("/emulator/jsapi/pay", params || {}).then(function (r) {
        if (r.ok) { done("ok"); return; }
        err.textContent = (r.body && r.body.message) || "支付失败";
        ok.disabled = false; ok.textContent = "确认支付";
        window.__wxpayEmulatorLastError = r.body;
      }).catch(function () { err.textContent = "无法连接微信支付模拟器"; ok.disabled = false; ok.textContent = "确认支付"; });
    };
  }

  window.WeixinJSBridge = {
    emulator: base,
    invoke: function (name, params, cb) {
      cb = cb || function () {};
      if (name === "getBrandWCPayRequest") { pay(params, cb); return; }
      setTimeout(function () { cb({err_msg: name + ":fail_not_supported_by_emulator"}); }, 0);
    },
    on: function () {},
    call: function () {}
  };
  var ready = function () { document.dispatchEvent(new Event("WeixinJSBridgeReady")); };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready); else setTimeout(ready, 0);
})();
"""
