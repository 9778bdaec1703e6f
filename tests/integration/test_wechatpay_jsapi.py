"""The WeChat Pay emulator's JSAPI side (what WeChat's in-app browser does for
WeixinJSBridge.invoke('getBrandWCPayRequest')): POST /emulator/jsapi/pay verifies paySign
as WeChat Pay v3 does — RSA-SHA256 over "appId\\ntimeStamp\\nnonceStr\\npackage\\n" with the
merchant's public key — and only then pays, with the signed, encrypted notification the
merchant's wechatpayv3 client accepts. Over HTTP, with the real client library; the
parameters here are signed by hand with `cryptography`, independently of the product."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Flask, request
from wechatpayv3 import WeChatPay, WeChatPayType

from core.settings import ProductionRefused, Settings, production_problems, refuse_in_production
from infra.fakes.wechatpay_emulator import BackgroundServer, EmulatorConfig, WeChatPayEmulator

MCHID, APPID, SERIAL = "1900000109", "wx8888888888888888", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
APIV3_KEY = "0123456789abcdefghijklmnopqrstuv"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def _pem(key: rsa.RSAPrivateKey, private: bool) -> str:
    if private:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign(key: rsa.RSAPrivateKey, *parts: str) -> str:
    message = "".join(p + "\n" for p in parts).encode()
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


class Merchant:
    """The merchant's notification endpoint, verifying with wechatpayv3."""

    def __init__(self) -> None:
        self.client: WeChatPay | None = None
        self.received: list[dict] = []
        self.lock = threading.Lock()
        app = Flask("merchant")

        @app.post("/notify")
        def notify():
            result = self.client.callback(request.headers, request.get_data(as_text=True))
            with self.lock:
                self.received.append(result)
            return ("", 204) if result else ("", 400)

        self.server = BackgroundServer(app).start()


@pytest.fixture(scope="module")
def stack():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    merchant = Merchant()
    emu = WeChatPayEmulator(EmulatorConfig(mchid=MCHID, appids=[APPID], merchant_public_key_pem=_pem(key, False),
                                           merchant_serial_no=SERIAL, apiv3_key=APIV3_KEY, time_scale=0.001)).start()
    client = WeChatPay(wechatpay_type=WeChatPayType.JSAPI, mchid=MCHID, private_key=_pem(key, True),
                       cert_serial_no=SERIAL, appid=APPID, apiv3_key=APIV3_KEY,
                       notify_url=f"{merchant.server.url}/notify", public_key=emu.platform_public_key_pem,
                       public_key_id=emu.public_key_id, timeout=(5, 10))
    client._core._gate_way = emu.url
    merchant.client = client
    yield {"key": key, "emu": emu, "client": client, "merchant": merchant}
    emu.stop()
    merchant.server.stop()


def order(stack, total: int = 5000) -> tuple[str, str]:
    no = f"T{uuid.uuid4().hex[:20]}"
    code, text = stack["client"].pay(description="电费充值 A-101", out_trade_no=no, amount={"total": total},
                                     payer={"openid": OPENID})
    assert code == 200, text
    return no, f"prepay_id={json.loads(text)['prepay_id']}"


def params(stack, package: str, key: rsa.RSAPrivateKey | None = None, **over) -> dict:
    ts, nonce = str(int(time.time())), secrets.token_hex(16)
    p = {"appId": APPID, "timeStamp": ts, "nonceStr": nonce, "package": package, "signType": "RSA",
         "paySign": sign(key or stack["key"], APPID, ts, nonce, package)}
    p.update(over)
    return p


def pay(stack, body) -> requests.Response:
    return requests.post(f"{stack['emu'].url}/emulator/jsapi/pay", json=body, timeout=10)


def test_signed_params_pay_the_order_and_notify_the_merchant(stack):
    no, package = order(stack, 5000)
    sheet = requests.get(f"{stack['emu'].url}/emulator/jsapi/order", params={"package": package}, timeout=10)
    assert sheet.json() == {"out_trade_no": no, "description": "电费充值 A-101", "total": 5000, "amount": "50.00",
                            "trade_state": "NOTPAY", "trade_state_desc": "订单未支付"}
    r = pay(stack, params(stack, package))
    assert r.status_code == 200 and r.json()["err_msg"] == "get_brand_wcpay_request:ok", r.text
    assert r.headers["Access-Control-Allow-Origin"] == "*"  # the product's page is another origin
    assert stack["emu"].order(no)["trade_state"] == "SUCCESS"
    assert stack["emu"].wait_for_deliveries(10)
    got = [n for n in stack["merchant"].received if n["resource"]["out_trade_no"] == no]
    assert len(got) == 1 and got[0]["resource"]["trade_state"] == "SUCCESS" and got[0]["resource"]["amount"]["total"] == 5000
    again = pay(stack, params(stack, package))  # a second confirm: refused, paid once
    assert (again.status_code, again.json()["code"]) == (400, "ORDERPAID")


@pytest.mark.parametrize("case,status,code", [
    ("another key", 400, "SIGN_ERROR"),
    ("sign of another package", 400, "SIGN_ERROR"),
    ("nonce changed after signing", 400, "SIGN_ERROR"),
    ("timestamp changed after signing", 400, "SIGN_ERROR"),
    ("not base64", 400, "SIGN_ERROR"),
    ("unknown prepay_id", 404, "ORDER_NOT_EXIST"),
    ("package without prepay_id=", 400, "PARAM_ERROR"),
    ("appId of another app", 400, "APPID_MCHID_NOT_MATCH"),
    ("signType MD5", 400, "PARAM_ERROR"),
    ("no paySign", 400, "PARAM_ERROR"),
    ("stale timestamp", 400, "PARAM_ERROR"),
])
def test_bad_params_are_refused_and_nothing_is_paid(stack, case, status, code):
    no, package = order(stack, 3000)
    _, other_package = order(stack, 1)
    body = {
        "another key": lambda: params(stack, package, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        "sign of another package": lambda: {**params(stack, other_package), "package": package},
        "nonce changed after signing": lambda: {**params(stack, package), "nonceStr": "x" * 32},
        "timestamp changed after signing": lambda: {**params(stack, package),
                                                          "timeStamp": str(int(time.time()) - 5)},
        "not base64": lambda: params(stack, package, paySign="%%%not-base64%%%"),
        "unknown prepay_id": lambda: params(stack, "prepay_id=wx000000000000"),
        "package without prepay_id=": lambda: params(stack, package.removeprefix("prepay_id=")),
        "appId of another app": lambda: params(stack, package, appId="wx0000000000000000"),
        "signType MD5": lambda: params(stack, package, signType="MD5"),
        "no paySign": lambda: {k: v for k, v in params(stack, package).items() if k != "paySign"},
        "stale timestamp": lambda: params(stack, package, timeStamp="1000000000"),
    }[case]()
    before = len(stack["emu"].deliveries)
    r = pay(stack, body)
    assert (r.status_code, r.json()["code"]) == (status, code), r.text
    assert r.json()["message"]  # WeChat's words, in Chinese
    assert stack["emu"].order(no)["trade_state"] == "NOTPAY" and len(stack["emu"].deliveries) == before


def test_not_json_is_refused(stack):
    r = requests.post(f"{stack['emu'].url}/emulator/jsapi/pay", data="[1, 2]", timeout=10,
                      headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "PARAM_ERROR")


def test_the_shim_is_served_and_the_merchant_api_still_needs_its_signature(stack):
    js = requests.get(f"{stack['emu'].url}/emulator/jsbridge.js", timeout=10)
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("application/javascript")
    assert "window.WeixinJSBridge" in js.text and "getBrandWCPayRequest" in js.text and "确认支付" in js.text
    pre = requests.options(f"{stack['emu'].url}/emulator/jsapi/pay", timeout=10,
                           headers={"Origin": "http://127.0.0.1:1", "Access-Control-Request-Method": "POST",
                                    "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 204 and "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
    unsigned = requests.get(f"{stack['emu'].url}/v3/pay/transactions/out-trade-no/T1?mchid={MCHID}", timeout=10)
    assert (unsigned.status_code, unsigned.json()["code"]) == (401, "SIGN_ERROR")


def test_prod_refuses_the_shim():
    assert production_problems(Settings(stage="dev", wechatpay_jsbridge_url="http://127.0.0.1:1/emulator/jsbridge.js")) == []
    prod = Settings(stage="prod", wechatpay_jsbridge_url="https://pay.example.com/emulator/jsbridge.js")
    assert any("FEIKONG_WECHATPAY_JSBRIDGE_URL" in p for p in production_problems(prod))
    with pytest.raises(ProductionRefused, match="FEIKONG_WECHATPAY_JSBRIDGE_URL"):
        refuse_in_production(prod)
    assert production_problems(Settings(stage="prod")) == []
