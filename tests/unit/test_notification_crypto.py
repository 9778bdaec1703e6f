"""Notification verification and decryption with `cryptography` alone (core/integrations/
wechatpay.py), checked against wechatpayv3's own utils as the independent model, and
without loading wechatpayv3 (the notification function's cold start: docs/cold-start.md)."""

import base64
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.integrations.wechatpay import NotificationRejected, PayConfig, WeChatPayClient

ROOT = Path(__file__).resolve().parents[2]
APIV3 = "0123456789abcdef0123456789abcdef"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def config(public_key: str = PEM) -> PayConfig:
    return PayConfig("wx1", "1900000001", "unused", "SERIAL1", APIV3, public_key, "PUB_KEY_ID_1", "https://x/n",
                     "https://x/r")


def notification(resource: dict, key=KEY, ts: int | None = None) -> tuple[dict, str]:
    nonce = os.urandom(6).hex()
    aad = "transaction"
    ct = AESGCM(APIV3.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(), aad.encode())
    body = json.dumps({"id": "n1", "event_type": "TRANSACTION.SUCCESS", "resource": {
        "algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ct).decode(), "nonce": nonce,
        "associated_data": aad, "original_type": "transaction"}})
    ts = str(ts or int(time.time()))
    hnonce = os.urandom(8).hex().upper()
    sig = key.sign(f"{ts}\n{hnonce}\n{body}\n".encode(), padding.PKCS1v15(), hashes.SHA256())
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": hnonce, "Wechatpay-Serial": "PUB_KEY_ID_1",
            "Wechatpay-Signature": base64.b64encode(sig).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}, body


def test_a_signed_notification_is_decrypted_and_agrees_with_wechatpayv3():
    from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

    headers, body = notification({"out_trade_no": "R1", "amount": {"total": 500}})
    got = WeChatPayClient(config()).verify_notification(headers, body, datetime.now(UTC))
    assert got["resource"] == {"out_trade_no": "R1", "amount": {"total": 500}}
    # the independent model: wechatpayv3's utils say the same of the same bytes
    h, r = headers, json.loads(body)["resource"]
    assert rsa_verify(h["Wechatpay-Timestamp"], h["Wechatpay-Nonce"], body, h["Wechatpay-Signature"],
                      load_public_key(PEM))
    assert json.loads(aes_decrypt(r["nonce"], r["ciphertext"], r["associated_data"], APIV3)) == got["resource"]


def test_a_key_given_without_pem_armour_is_accepted():
    bare = "".join(PEM.strip().splitlines()[1:-1])
    headers, body = notification({"out_trade_no": "R2"})
    assert WeChatPayClient(config(bare)).verify_notification(headers, body, datetime.now(UTC))["resource"] == {
        "out_trade_no": "R2"}


@pytest.mark.parametrize("tamper", ["other_key", "body", "ciphertext", "signature_text"])
def test_tampered_notifications_are_refused_as_wechatpayv3_refuses_them(tamper):
    from wechatpayv3.utils import load_public_key, rsa_verify

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers, body = notification({"out_trade_no": "R3"}, key=other if tamper == "other_key" else KEY)
    if tamper == "body":
        body = body.replace('"n1"', '"n2"')  # the notification id changed after signing
    if tamper == "ciphertext":  # re-signed, so only the GCM tag can tell
        data = json.loads(body)
        ct = bytearray(base64.b64decode(data["resource"]["ciphertext"]))
        ct[0] ^= 1
        data["resource"]["ciphertext"] = base64.b64encode(bytes(ct)).decode()
        body = json.dumps(data)
        sig = KEY.sign(f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n{body}\n".encode(),
                       padding.PKCS1v15(), hashes.SHA256())
        headers["Wechatpay-Signature"] = base64.b64encode(sig).decode()
    if tamper == "signature_text":
        headers["Wechatpay-Signature"] = "A" * 344
    expected = "undecryptable" if tamper == "ciphertext" else "bad_signature"
    with pytest.raises(NotificationRejected) as e:
        WeChatPayClient(config()).verify_notification(headers, body, datetime.now(UTC))
    assert e.value.reason == expected
    if expected == "bad_signature":  # wechatpayv3 agrees the signature is bad
        assert not rsa_verify(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body,
                              headers["Wechatpay-Signature"], load_public_key(PEM))


def test_verifying_a_notification_does_not_load_wechatpayv3():
    code = (
        "import json, sys\n"
        "from datetime import UTC, datetime\n"
        "from tests.unit.test_notification_crypto import config, notification\n"
        "assert 'wechatpayv3' not in sys.modules\n"
        "from core.integrations.wechatpay import WeChatPayClient\n"
        "h, b = notification({'out_trade_no': 'R5'})\n"
        "WeChatPayClient(config()).verify_notification(h, b, datetime.now(UTC))\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('wechatpayv3', 'requests'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
