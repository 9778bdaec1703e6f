"""A payment stack (infra/local/paystack.py: the WeChat API and WeChat Pay emulators) with
the product's Flask app served on a free port and the notification function pointed at
it, for integration tests of the tenant API over HTTP.

    stack = ApiStack(monkeypatch)      # started; env applied for this test
    auth = stack.login("openid-a")     # {"Authorization": "Bearer ..."} via wx.login code
    ...
    stack.stop()
"""

from __future__ import annotations

import requests

from core.services.payments import Payments
from functions import wechatpay_notify
from infra.fakes.wechatpay_emulator import BackgroundServer
from infra.local.paystack import PayStack
from miniprogram_api.app import create_app


class ApiStack(PayStack):
    def __init__(self, monkeypatch) -> None:
        super().__init__()
        self.start()
        for k, v in self.env().items():
            monkeypatch.setenv(k, v)
        self.apply_env()
        monkeypatch.setattr(wechatpay_notify, "payments", Payments())
        self.web = BackgroundServer(create_app()).start()
        self.base = self.web.url

    def stop(self) -> None:
        self.web.stop()
        super().stop()

    def login(self, openid: str) -> dict:
        """A bearer header for the WeChat user, logged in with a fresh wx.login code."""
        r = requests.post(f"{self.base}/api/v1/login", json={"code": self.api.issue_code(openid)}, timeout=10)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}
