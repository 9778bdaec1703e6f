"""The WeChat Pay and WeChat API emulators, proven against the real client libraries over HTTP."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import threading
import time
import uuid
from datetime import datetime

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask, request
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import (
    BILL_HEADER,
    BILL_SUMMARY_HEADER,
    CST,
    RETRY_SCHEDULE,
    BackgroundServer,
    EmulatorConfig,
    WeChatPayEmulator,
)

MCHID = "1900000109"
APPID = "wx8888888888888888"
SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
APIV3_KEY = "0123456789abcdefghijklmnopqrstuv"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _no(prefix: str = "T") -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return _new_key()


class Receiver:
    """The merchant's notification endpoint: verifies with wechatpayv3 and answers scripted statuses."""

    def __init__(self) -> None:
        self.client: WeChatPay | None = None
        self.script: list[int] = []  # statuses to answer first, then 200
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        app = Flask("receiver")

        @app.post("/notify/<kind>")
        def notify(kind: str):
            body = request.get_data(as_text=True)
            try:
                result = self.client.callback(request.headers, body) if self.client else None
            except Exception as e:  # a rejection the adapter must handle
                result = e
            with self.lock:
                status = self.script.pop(0) if self.script else 200
                self.calls.append({"kind": kind, "body": body, "headers": dict(request.headers),
                                   "result": result, "status": status})
            if status != 200:
                return {"code": "FAIL", "message": "scripted failure"}, status
            return "", 200 if result and not isinstance(result, Exception) else 400

        self.server = BackgroundServer(app)

    def url(self, kind: str = "pay") -> str:
        return f"{self.server.url}/notify/{kind}"


@pytest.fixture
def receiver():
    r = Receiver()
    r.server.start()
    yield r
    r.server.stop()


def _emulator(merchant_key, receiver: Receiver | None = None, **kw) -> WeChatPayEmulator:
    cfg = EmulatorConfig(mchid=MCHID, appids=[APPID], merchant_public_key_pem=_public_pem(merchant_key),
                         merchant_serial_no=SERIAL, apiv3_key=APIV3_KEY, time_scale=kw.pop("time_scale", 0.001),
                         refund_notify_url=receiver.url("refund") if receiver else None, **kw)
    return WeChatPayEmulator(cfg).start()


def _client(emu: WeChatPayEmulator, merchant_key, notify_url: str = "https://example.com/notify",
            private_key: rsa.RSAPrivateKey | None = None, public_key_pem: str | None = None) -> WeChatPay:
    client = WeChatPay(
        wechatpay_type=WeChatPayType.JSAPI, mchid=MCHID, private_key=_private_pem(private_key or merchant_key),
        cert_serial_no=SERIAL, appid=APPID, apiv3_key=APIV3_KEY, notify_url=notify_url,
        public_key=public_key_pem or emu.platform_public_key_pem, public_key_id=emu.public_key_id,
        timeout=(5, 10),
    )
    client._core._gate_way = emu.url  # the only place the gateway lives in wechatpayv3 2.0.4
    return client


@pytest.fixture
def emu(merchant_key, receiver):
    e = _emulator(merchant_key, receiver)
    yield e
    e.stop()


@pytest.fixture
def client(emu, merchant_key, receiver):
    c = _client(emu, merchant_key, notify_url=receiver.url("pay"))
    receiver.client = c
    return c


def _order(client: WeChatPay, total: int = 100, out_trade_no: str | None = None, **kw) -> str:
    out_trade_no = out_trade_no or _no()
    code, body = client.pay(description="电费充值", out_trade_no=out_trade_no, amount={"total": total},
                            payer={"openid": OPENID}, **kw)
    assert code == 200, body
    assert json.loads(body)["prepay_id"].startswith("wx")
    return out_trade_no


# --------------------------------------------------------------------------- WeChat Pay


def test_jsapi_order_query_and_close(emu, client):
    out_trade_no = _no()
    code, body = client.pay(description="电费充值", out_trade_no=out_trade_no, amount={"total": 100},
                            payer={"openid": OPENID}, attach="acct-1")
    assert code == 200
    prepay_id = json.loads(body)["prepay_id"]
    # The same request again gives the same prepay_id; another amount under the same number is refused.
    code, body = client.pay(description="电费充值", out_trade_no=out_trade_no, amount={"total": 100},
                            payer={"openid": OPENID}, attach="acct-1")
    assert (code, json.loads(body)["prepay_id"]) == (200, prepay_id)
    code, body = client.pay(description="电费充值", out_trade_no=out_trade_no, amount={"total": 200},
                            payer={"openid": OPENID}, attach="acct-1")
    assert (code, json.loads(body)["code"]) == (403, "OUT_TRADE_NO_USED")

    code, body = client.query(out_trade_no=out_trade_no)  # the client verified the response signature
    tx = json.loads(body)
    assert code == 200
    assert tx["trade_state"] == "NOTPAY" and tx["amount"]["total"] == 100 and "transaction_id" not in tx
    assert (tx["appid"], tx["mchid"], tx["trade_type"], tx["attach"]) == (APPID, MCHID, "JSAPI", "acct-1")

    paid = emu.pay(out_trade_no, deliver=False)
    code, body = client.query(out_trade_no=out_trade_no)
    tx = json.loads(body)
    assert tx["trade_state"] == "SUCCESS" and tx["trade_state_desc"] == "支付成功"
    assert tx["transaction_id"] == paid["transaction_id"] and len(tx["transaction_id"]) == 28
    assert tx["payer"] == {"openid": OPENID}
    assert tx["amount"] == {"total": 100, "currency": "CNY", "payer_total": 100, "payer_currency": "CNY"}
    assert datetime.fromisoformat(tx["success_time"]).utcoffset().total_seconds() == 8 * 3600
    code, body = client.query(transaction_id=tx["transaction_id"])
    assert code == 200 and json.loads(body)["out_trade_no"] == out_trade_no

    other = _order(client)
    code, body = client.close(other)
    assert (code, body) == (204, b"")
    assert json.loads(client.query(out_trade_no=other)[1])["trade_state"] == "CLOSED"
    code, body = client.pay(description="电费充值", out_trade_no=other, amount={"total": 100},
                            payer={"openid": OPENID})
    assert (code, json.loads(body)["code"]) == (400, "ORDER_CLOSED")
    with pytest.raises(ValueError):
        emu.pay(other)

    code, body = client.query(out_trade_no=_no())
    assert (code, json.loads(body)) == (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})


def test_order_validation(client):
    code, body = client.pay(description="x", out_trade_no=_no(), amount={"total": 0}, payer={"openid": OPENID})
    assert (code, json.loads(body)["code"]) == (400, "PARAM_ERROR")
    code, body = client.pay(description="x", out_trade_no=_no(), amount={"total": 1}, payer={"openid": OPENID},
                            appid="wx0000000000000000")
    assert (code, json.loads(body)["code"]) == (400, "APPID_MCHID_NOT_MATCH")
    code, body = client.pay(description="x", out_trade_no=_no(), amount={"total": 1}, payer={"openid": OPENID},
                            notify_url="https://example.com/notify?a=1")
    assert (code, json.loads(body)["code"]) == (400, "PARAM_ERROR")


def test_request_signatures_are_checked(emu, merchant_key):
    impostor = _client(emu, merchant_key, private_key=_new_key())
    code, body = impostor.query(out_trade_no=_no())
    assert code == 401 and json.loads(body)["code"] == "SIGN_ERROR"
    resp = requests.get(f"{emu.url}/v3/pay/transactions/out-trade-no/{_no()}?mchid={MCHID}", timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == "SIGN_ERROR"


def test_client_refuses_responses_signed_by_another_key(emu, merchant_key, client):
    out_trade_no = _order(client)
    # Only 2xx responses are verified by wechatpayv3, so use an order that exists.
    wrong_platform = _client(emu, merchant_key, public_key_pem=_public_pem(_new_key()))
    with pytest.raises(Exception, match="failed to verify the signature"):
        wrong_platform.query(out_trade_no=out_trade_no)


def test_payment_notification_end_to_end(emu, client, receiver):
    out_trade_no = _order(client, total=2500)
    tx = emu.pay(out_trade_no)
    assert emu.wait_for_deliveries(5)
    [call] = receiver.calls
    note = call["result"]
    assert isinstance(note, dict), note
    assert note["event_type"] == "TRANSACTION.SUCCESS" and note["resource_type"] == "encrypt-resource"
    assert note["summary"] == "支付成功"
    resource = note["resource"]
    assert resource["out_trade_no"] == out_trade_no and resource["trade_state"] == "SUCCESS"
    assert resource["transaction_id"] == tx["transaction_id"]
    assert resource["amount"]["total"] == 2500 and resource["payer"]["openid"] == OPENID
    assert call["headers"]["Wechatpay-Serial"] == emu.public_key_id
    raw = json.loads(call["body"])["resource"]
    assert (raw["original_type"], raw["algorithm"], raw["associated_data"], len(raw["nonce"])) == (
        "transaction", "AEAD_AES_256_GCM", "transaction", 12)
    [entry] = emu.delivery_log
    assert (entry["status"], entry["attempt"], entry["ref"]) == (200, 1, out_trade_no)


def test_forged_amount_and_merchant_are_reported(emu, client, receiver):
    out_trade_no = _order(client, total=100)
    emu.pay(out_trade_no, amount=1, mchid="1999999999")
    assert emu.wait_for_deliveries(5)
    resource = receiver.calls[0]["result"]["resource"]
    assert resource["amount"]["total"] == 1 and resource["mchid"] == "1999999999"


def test_tampered_notifications_are_refused(emu, client):
    out_trade_no = _order(client)
    resource = emu.pay(out_trade_no, deliver=False)

    headers, body = emu.build_notification(resource, "TRANSACTION.SUCCESS")
    assert client.callback(headers, body)["resource"]["out_trade_no"] == out_trade_no
    assert client.decrypt_callback(headers, body) is not None

    headers, body = emu.build_notification(resource, "TRANSACTION.SUCCESS", tamper="signature")
    assert client.callback(headers, body) is None

    headers, body = emu.build_notification(resource, "TRANSACTION.SUCCESS", tamper="ciphertext")
    assert client.callback(headers, body) is None  # signature fine, AES-GCM tag fails

    before = len(emu.request_log)
    headers, body = emu.build_notification(resource, "TRANSACTION.SUCCESS", tamper="serial")
    assert headers["Wechatpay-Serial"] != emu.public_key_id
    assert client.callback(headers, body) is None
    # An unknown serial makes wechatpayv3 fetch /v3/certificates from the gateway, synchronously.
    assert any(r["path"] == "/v3/certificates" for r in emu.request_log[before:])

    headers, body = emu.build_notification(resource, "TRANSACTION.SUCCESS", tamper="stale")
    assert time.time() - int(headers["Wechatpay-Timestamp"]) >= 590
    # wechatpayv3 does not check freshness: the adapter has to.
    assert client.callback(headers, body) is not None


def test_retries_follow_the_schedule(emu, client, receiver):
    receiver.script = [500, 503]
    out_trade_no = _order(client)
    emu.pay(out_trade_no)
    assert emu.wait_for_deliveries(5)
    log = emu.delivery_log
    assert [e["status"] for e in log] == [500, 503, 200]
    gaps = [(b["at"] - a["at"]).total_seconds() for a, b in zip(log, log[1:], strict=False)]
    assert all(gap >= 0.015 * 0.9 for gap in gaps)
    # Each retry is re-signed, and every copy still verifies.
    assert len({c["headers"]["Wechatpay-Nonce"] for c in receiver.calls}) == 3
    assert all(isinstance(c["result"], dict) for c in receiver.calls)
    assert len({json.loads(c["body"])["id"] for c in receiver.calls}) == 1


def test_retries_give_up_after_the_schedule(merchant_key, receiver):
    emu = _emulator(merchant_key, receiver, time_scale=0.00001)
    try:
        client = _client(emu, merchant_key, notify_url=receiver.url("pay"))
        receiver.client = client
        receiver.script = [500] * 100
        out_trade_no = _order(client)
        emu.pay(out_trade_no)
        assert emu.wait_for_deliveries(10)
        [d] = emu.deliveries_for(out_trade_no)
        assert not d.succeeded and len(d.attempts) == len(RETRY_SCHEDULE) + 1 == 16
    finally:
        emu.stop()


def test_unreachable_endpoint_is_retried(emu, client):
    out_trade_no = _order(client, notify_url="http://127.0.0.1:9/notify")
    emu.pay(out_trade_no)
    time.sleep(0.3)
    emu.lose_notification(out_trade_no)  # stop the retries
    assert emu.wait_for_deliveries(5)
    [d] = emu.deliveries_for(out_trade_no)
    assert d.attempts and all(a.status is None and a.error for a in d.attempts) and d.dropped


def test_duplicate_notifications_arrive_concurrently(emu, client, receiver):
    out_trade_no = _order(client)
    emu.pay(out_trade_no, duplicates=2)
    assert emu.wait_for_deliveries(5)
    assert len(receiver.calls) == 3
    assert len({json.loads(c["body"])["id"] for c in receiver.calls}) == 1
    assert all(c["result"]["resource"]["out_trade_no"] == out_trade_no for c in receiver.calls)


def test_lost_notification(emu, client, receiver):
    out_trade_no = _order(client)
    emu.lose_notification(out_trade_no)
    emu.pay(out_trade_no)
    assert emu.wait_for_deliveries(5)
    assert receiver.calls == [] and emu.deliveries_for(out_trade_no)[0].dropped
    assert json.loads(client.query(out_trade_no=out_trade_no)[1])["trade_state"] == "SUCCESS"
    emu.resend_notification(out_trade_no)
    assert emu.wait_for_deliveries(5)
    assert len(receiver.calls) == 1

    silent = _order(client)
    emu.pay(silent, deliver=False)
    assert emu.deliveries_for(silent) == []


def test_refunds(emu, client, receiver):
    out_trade_no = _order(client, total=1000)
    code, body = client.refund(out_refund_no=_no("R"), amount={"refund": 100, "total": 1000, "currency": "CNY"},
                               out_trade_no=out_trade_no)
    assert (code, json.loads(body)["code"]) == (404, "RESOURCE_NOT_EXISTS")  # not paid yet
    tx = emu.pay(out_trade_no, deliver=False)

    first = _no("R")
    code, body = client.refund(out_refund_no=first, amount={"refund": 600, "total": 1000, "currency": "CNY"},
                               transaction_id=tx["transaction_id"], reason="退租",
                               notify_url=receiver.url("refund"))
    refund = json.loads(body)
    assert code == 200 and refund["status"] == "PROCESSING" and refund["out_trade_no"] == out_trade_no
    assert refund["amount"]["refund"] == 600 and refund["refund_id"]
    code, body = client.refund(out_refund_no=_no("R"), amount={"refund": 401, "total": 1000, "currency": "CNY"},
                               out_trade_no=out_trade_no)
    assert (code, json.loads(body)["code"]) == (400, "INVALID_REQUEST")
    code, body = client.refund(out_refund_no=_no("R"), amount={"refund": 10, "total": 999, "currency": "CNY"},
                               out_trade_no=out_trade_no)
    assert (code, json.loads(body)["code"]) == (400, "INVALID_REQUEST")
    assert json.loads(client.query(out_trade_no=out_trade_no)[1])["trade_state"] == "REFUND"

    emu.complete_refund(first, "SUCCESS")
    assert emu.wait_for_deliveries(5)
    [call] = receiver.calls
    note = call["result"]
    assert note["event_type"] == "REFUND.SUCCESS" and note["summary"] == "退款成功"
    assert note["resource"]["refund_status"] == "SUCCESS" and note["resource"]["out_refund_no"] == first
    assert json.loads(call["body"])["resource"]["original_type"] == "refund"
    code, body = client.query_refund(first)
    assert code == 200 and json.loads(body)["status"] == "SUCCESS" and json.loads(body)["success_time"]

    # The rest can be refunded (refund_notify_url from the config is used), and then nothing more.
    second = _no("R")
    code, body = client.refund(out_refund_no=second, amount={"refund": 400, "total": 1000, "currency": "CNY"},
                               out_trade_no=out_trade_no)
    assert code == 200
    emu.complete_refund(second, "ABNORMAL")
    assert emu.wait_for_deliveries(5)
    assert receiver.calls[-1]["result"]["event_type"] == "REFUND.ABNORMAL"
    assert json.loads(client.query_refund(second)[1])["status"] == "ABNORMAL"
    code, body = client.refund(out_refund_no=_no("R"), amount={"refund": 1, "total": 1000, "currency": "CNY"},
                               out_trade_no=out_trade_no)
    assert (code, json.loads(body)["code"]) == (400, "INVALID_REQUEST")
    code, body = client.query_refund(_no("R"))
    assert (code, json.loads(body)["code"]) == (404, "RESOURCE_NOT_EXISTS")


def _bill(client: WeChatPay, day: str) -> tuple[list[list[str]], list[str], str]:
    code, body = client.trade_bill(bill_date=day)  # tar_type defaults to GZIP in wechatpayv3
    assert code == 200, body
    info = json.loads(body)
    assert info["hash_type"] == "SHA1"
    code, content = client.download_bill(info["download_url"])
    assert code == 200
    text = gzip.decompress(content)
    assert hashlib.sha1(text).hexdigest() == info["hash_value"]
    lines = text.decode("utf-8").splitlines()
    assert lines[0] == BILL_HEADER and lines[-2] == BILL_SUMMARY_HEADER
    rows = [[cell.removeprefix("`") for cell in row] for row in csv.reader(io.StringIO("\n".join(lines[1:-2])))]
    summary = [cell.removeprefix("`") for cell in lines[-1].split(",")]
    return rows, summary, lines[1]


def test_trade_bill_groups_by_shanghai_date(emu, client):
    late = datetime(2024, 3, 1, 23, 30, tzinfo=CST)  # 15:30 UTC: still 1 March in Shanghai
    early = datetime(2024, 3, 2, 0, 10, tzinfo=CST)  # 16:10 UTC on 1 March, but 2 March in Shanghai
    a = _order(client, total=1234)
    emu.pay(a, deliver=False, success_time=late)
    b = _order(client, total=500)
    emu.pay(b, deliver=False, success_time=early)
    ext = emu.add_external_trade(_no("X"), 777, success_time=datetime(2024, 3, 1, 8, 0, tzinfo=CST))
    emu.set_bill_amount(a, 1200)

    rows, summary, first_line = _bill(client, "2024-03-01")
    assert first_line.startswith("`2024-03-01 08:00:00,`" + APPID + ",`" + MCHID)
    by_no = {r[6]: r for r in rows}
    assert set(by_no) == {a, ext["out_trade_no"]}
    assert by_no[ext["out_trade_no"]][12] == "7.77" and by_no[ext["out_trade_no"]][9] == "SUCCESS"
    assert by_no[a][12] == "12.00" and by_no[a][24] == "12.00"  # the bill disagrees with the API (12.34)
    assert by_no[a][5] == json.loads(client.query(out_trade_no=a)[1])["transaction_id"]
    assert summary[0] == "2" and summary[1] == "19.77"

    rows, summary, _ = _bill(client, "2024-03-02")
    assert [r[6] for r in rows] == [b] and rows[0][12] == "5.00" and summary[:2] == ["1", "5.00"]

    code, body = client.trade_bill(bill_date="2024-02-28")
    assert (code, json.loads(body)["code"]) == (400, "NO_STATEMENT_EXIST")


def test_trade_bill_lists_refunds(emu, client):
    out_trade_no = _order(client, total=1000)
    emu.pay(out_trade_no, deliver=False)
    out_refund_no = _no("R")
    code, _ = client.refund(out_refund_no=out_refund_no, amount={"refund": 250, "total": 1000, "currency": "CNY"},
                            out_trade_no=out_trade_no)
    assert code == 200
    emu.complete_refund(out_refund_no, deliver=False)
    rows, summary, _ = _bill(client, emu.now().date().isoformat())
    refund_row = next(r for r in rows if r[9] == "REFUND")
    assert (refund_row[15], refund_row[16], refund_row[19]) == (out_refund_no, "2.50", "SUCCESS")
    assert summary[1:3] == ["10.00", "2.50"]
    # The uncompressed bill (no tar_type) is plain CSV text; wechatpayv3 cannot ask for it
    # (trade_bill always sends tar_type), so go through the core.
    code, body = client._core.request(f"/v3/bill/tradebill?bill_date={emu.now().date().isoformat()}&bill_type=REFUND")
    code, content = client.download_bill(json.loads(body)["download_url"])
    assert content.decode("utf-8").count("`REFUND") == 1


# --------------------------------------------------------------------------- WeChat API

WX_APPID = "wxa1b2c3d4e5f60718"
WX_SECRET = "s3cr3t" * 5


@pytest.fixture
def wx():
    e = WeChatApiEmulator(WeChatApiConfig(appid=WX_APPID, secret=WX_SECRET,
                                          unionid_by_openid={"oUnion": "uUnion"})).start()
    yield e
    e.stop()


def test_access_token(wx):
    r = requests.get(f"{wx.url}/cgi-bin/token", params={"grant_type": "client_credential", "appid": WX_APPID,
                                                        "secret": WX_SECRET}, timeout=5).json()
    assert r["expires_in"] == 7200 and r["access_token"]
    r = requests.get(f"{wx.url}/cgi-bin/token", params={"grant_type": "client_credential", "appid": "wxnope",
                                                        "secret": WX_SECRET}, timeout=5).json()
    assert r["errcode"] == 40013
    r = requests.get(f"{wx.url}/cgi-bin/token", params={"grant_type": "client_credential", "appid": WX_APPID,
                                                        "secret": "wrong"}, timeout=5).json()
    assert r["errcode"] == 40125


def test_jscode2session(wx):
    def exchange(code: str) -> dict:
        return requests.get(f"{wx.url}/sns/jscode2session", timeout=5, params={
            "appid": WX_APPID, "secret": WX_SECRET, "js_code": code, "grant_type": "authorization_code"}).json()

    code = wx.issue_code("oPlain")
    r = exchange(code)
    assert r["openid"] == "oPlain" and r["session_key"] == wx.session_key_of(code) and "unionid" not in r
    assert exchange(code)["errcode"] == 40163
    assert exchange("bogus")["errcode"] == 40029
    assert exchange(wx.issue_code("oUnion"))["unionid"] == "uUnion"
    stale = wx.issue_code("oPlain")
    wx.advance_time(301)
    assert exchange(stale)["errcode"] == 40029


def test_subscribe_message(wx):
    token = requests.get(f"{wx.url}/cgi-bin/token", timeout=5, params={
        "grant_type": "client_credential", "appid": WX_APPID, "secret": WX_SECRET}).json()["access_token"]
    msg = {"touser": "oPlain", "template_id": "TPL1", "page": "pages/index",
           "data": {"amount1": {"value": "12.00"}, "thing2": {"value": "电费充值"}}}
    r = requests.post(f"{wx.url}/cgi-bin/message/subscribe/send", params={"access_token": token},
                      data=json.dumps(msg, ensure_ascii=False).encode(), timeout=5).json()
    assert (r["errcode"], r["errmsg"]) == (0, "ok")
    [m] = wx.messages_to("oPlain")
    assert m["template_id"] == "TPL1" and m["data"]["thing2"]["value"] == "电费充值"
    r = requests.post(f"{wx.url}/cgi-bin/message/subscribe/send", params={"access_token": "nope"},
                      json=msg, timeout=5).json()
    assert r["errcode"] == 40001
    wx.refuse_messages("oPlain")
    r = requests.post(f"{wx.url}/cgi-bin/message/subscribe/send", params={"access_token": token},
                      json=msg, timeout=5).json()
    assert r["errcode"] == 43101
    wx.expire_access_tokens()
    r = requests.post(f"{wx.url}/cgi-bin/message/subscribe/send", params={"access_token": token},
                      json=msg, timeout=5).json()
    assert r["errcode"] == 42001


class _EmulatedWeChatClient(WeChatClient):
    """wechatpy hard-codes the token URL in fetch_access_token; every other URL comes from API_BASE_URL."""

    def __init__(self, base: str, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.base = base
        self.API_BASE_URL = f"{base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{base}/"

    def fetch_access_token(self):
        return self._fetch_access_token(url=f"{self.base}/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self.appid, "secret": self.secret})


def test_wechatpy_client_against_the_emulator(wx):
    client = _EmulatedWeChatClient(wx.url, WX_APPID, WX_SECRET)
    code = wx.issue_code("oPlain")
    assert client.wxa.code_to_session(code)["openid"] == "oPlain"
    with pytest.raises(WeChatClientException) as exc:
        client.wxa.code_to_session(code)
    assert exc.value.errcode == 40163
    r = client.wxa.send_subscribe_message("oPlain", "TPL2", {"thing1": {"value": "余额不足"}}, page="pages/a")
    assert r["errcode"] == 0 and wx.messages_to("oPlain")[0]["page"] == "pages/a"
    # An expired token is refreshed transparently by wechatpy (42001 -> fetch -> retry).
    wx.expire_access_tokens()
    client.expires_at = None  # wechatpy trusts its own clock; force it to use the stale token
    assert client.wxa.send_subscribe_message("oPlain", "TPL2", {"thing1": {"value": "x"}})["errcode"] == 0
    assert sum(1 for r in wx.request_log if r["path"] == "/cgi-bin/token") == 2

    bad = _EmulatedWeChatClient(wx.url, WX_APPID, "wrong")
    with pytest.raises(WeChatClientException) as exc:
        bad.fetch_access_token()
    assert exc.value.errcode == 40125
