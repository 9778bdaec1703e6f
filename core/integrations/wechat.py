"""WeChat API adapter over `wechatpy`: mini-program login (code2session).

The API base URL is configurable (FEIKONG_WECHAT_API_BASE) so that local runs and tests
talk to the emulator in infra/; wechatpy fetches access tokens from a fixed host, so the
client below fetches them from the same base.
"""

from __future__ import annotations

import os

from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

DEFAULT_BASE = "https://api.weixin.qq.com"


class LoginRefused(Exception):
    pass


class _Client(WeChatClient):
    def __init__(self, appid: str, secret: str, base: str) -> None:
        super().__init__(appid, secret, timeout=5)
        self._base = base.rstrip("/")
        self.API_BASE_URL = f"{self._base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{self._base}/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=f"{self._base}/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )


_client: _Client | None = None


def client() -> _Client:
    global _client
    if _client is None:
        appid, secret = os.environ.get("FEIKONG_WECHAT_APPID", ""), os.environ.get("FEIKONG_WECHAT_SECRET", "")
        if not appid or not secret:
            raise RuntimeError("FEIKONG_WECHAT_APPID / FEIKONG_WECHAT_SECRET are not set")
        _client = _Client(appid, secret, os.environ.get("FEIKONG_WECHAT_API_BASE", DEFAULT_BASE))
    return _client


def reset() -> None:
    global _client
    _client = None


def code_to_session(code: str) -> dict:
    """{"openid", "session_key", "unionid"?} for a wx.login() code; LoginRefused if WeChat says no."""
    try:
        return client().wxa.code_to_session(code)
    except WeChatClientException as e:
        raise LoginRefused(f"{e.errcode}: {e.errmsg}") from None
