"""The local payment stack: WeChat Pay and WeChat API emulators, a merchant key pair, the
notification function behind a local API Gateway, and the environment that points the
product's adapters at them. Used by `make demo`, the tests and bench/webhook.py."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.scheduler import api_gateway_app, http_routes, load_functions
from infra.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.wechatpay_emulator import BackgroundServer, EmulatorConfig, WeChatPayEmulator

APPID, SECRET, MCHID = "wx1234567890abcdef", "app-secret-for-local-runs", "1900000109"
SERIAL, APIV3_KEY = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", "0123456789abcdefghijklmnopqrstuv"


class PayStack:
    def __init__(self, time_scale: float = 0.0005, gateway_port: int = 0) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.merchant_public = key.public_key()
        self.private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()
        public_pem = self.merchant_public.public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.pay = WeChatPayEmulator(EmulatorConfig(mchid=MCHID, appids=APPID, merchant_public_key_pem=public_pem,
                                                    merchant_serial_no=SERIAL, apiv3_key=APIV3_KEY,
                                                    time_scale=time_scale))
        self.api = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=SECRET))
        routes = http_routes({k: v for k, v in load_functions().items() if k == "wechatpayNotify"})
        self.gateway = BackgroundServer(api_gateway_app(routes), "127.0.0.1", gateway_port)
        self._saved: dict[str, str | None] = {}

    def start(self) -> PayStack:
        self.pay.start()
        self.api.start()
        self.gateway.start()
        self.notify_url = f"{self.gateway.url}/wechatpay/notify"
        return self

    def env(self) -> dict[str, str]:
        return {
            "FEIKONG_WECHAT_APPID": APPID, "FEIKONG_WECHAT_SECRET": SECRET, "FEIKONG_WECHAT_API_BASE": self.api.url,
            "FEIKONG_WECHATPAY_MCHID": MCHID, "FEIKONG_WECHATPAY_PRIVATE_KEY": self.private_pem,
            "FEIKONG_WECHATPAY_CERT_SERIAL": SERIAL, "FEIKONG_WECHATPAY_APIV3_KEY": APIV3_KEY,
            "FEIKONG_WECHATPAY_PUBLIC_KEY": self.pay.platform_public_key_pem,
            "FEIKONG_WECHATPAY_PUBLIC_KEY_ID": self.pay.public_key_id, "FEIKONG_WECHATPAY_BASE_URL": self.pay.url,
            "FEIKONG_WECHATPAY_NOTIFY_URL": self.notify_url,
            "FEIKONG_JWT_SECRET": os.environ.get("FEIKONG_JWT_SECRET") or "local-only-jwt-secret-" + "x" * 20,
        }

    def apply_env(self) -> None:
        """Point the product's adapters at the emulators (and forget clients made before)."""
        from core.integrations import wechat, wechatpay

        for k, v in self.env().items():
            self._saved.setdefault(k, os.environ.get(k))
            os.environ[k] = v
        wechatpay.reset()
        wechat.reset()

    def stop(self) -> None:
        from core.integrations import wechat, wechatpay

        self.gateway.stop()
        self.pay.stop()
        self.api.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        wechatpay.reset()
        wechat.reset()
