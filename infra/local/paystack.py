"""The local payment stack: WeChat Pay and WeChat API emulators, a merchant key pair, the
notification function behind a local API Gateway, and the environment that points the
product's adapters at them. Used by `make demo`, the tests and bench/webhook.py."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from infra.fakes.wechat_api_emulator import WeChatApiConfig, WeChatApiEmulator
from infra.fakes.wechatpay_emulator import BackgroundServer, EmulatorConfig, WeChatPayEmulator
from infra.local.scheduler import api_gateway_app, http_routes, load_functions
from infra.local.stack import LOCAL_OA_APPID, LOCAL_OA_SECRET, forget, seed_secrets

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
        self.api = WeChatApiEmulator(WeChatApiConfig(appid=APPID, secret=SECRET, oa_appid=LOCAL_OA_APPID,
                                                     oa_secret=LOCAL_OA_SECRET))
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
        """Settings that point the product's adapters at the emulators (no secrets: those
        are seeded in the emulator's Secrets Manager by `apply_env`)."""
        return {"FEIKONG_WECHAT_API_BASE": self.api.url, "FEIKONG_WECHAT_OAUTH_BASE": self.api.url,
                "FEIKONG_WECHATPAY_BASE_URL": self.pay.url}

    def secrets(self) -> dict[str, dict]:
        """The values of the `wechat` and `wechatpay` secrets (core/integrations/secrets.py shapes)."""
        return {
            "wechat": {"appid": APPID, "secret": SECRET},
            "wechat_oa": {"appid": LOCAL_OA_APPID, "secret": LOCAL_OA_SECRET},
            "wechatpay": {"appid": APPID, "mchid": MCHID, "cert_serial": SERIAL, "private_key": self.private_pem,
                          "apiv3_key": APIV3_KEY, "public_key_id": self.pay.public_key_id,
                          "public_key": self.pay.platform_public_key_pem, "notify_url": self.notify_url},
        }

    def apply_env(self) -> None:
        """Point the product's adapters at the emulators, seed their secrets in the emulator's
        Secrets Manager (read there exactly as in AWS), and forget settings, secrets and
        clients read before."""
        for k, v in self.env().items():
            self._saved.setdefault(k, os.environ.get(k))
            os.environ[k] = v
        forget()
        seed_secrets(self.secrets())

    def stop(self) -> None:
        self.gateway.stop()
        self.pay.stop()
        self.api.stop()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        forget()

