"""WeChat API adapter over `wechatpy`: mini-program login (code2session).

The app's credentials (appid and secret) are the `wechat` secret in Secrets Manager; the
API base URL is a setting (FEIKONG_WECHAT_API_BASE) so that local runs and tests talk to
the emulator in infra/; wechatpy fetches access tokens from a fixed host, so the
client below fetches them from the same base.

wechatpy (~0.2 s to import) is imported with the first login, not with this module: the
Flask app imports it at start but most of its requests never log anyone in.
"""

from __future__ import annotations

from typing import Any

from core.integrations import secrets
from core.settings import get_settings

DEFAULT_BASE = "https://api.weixin.qq.com"


class LoginRefused(Exception):
    pass


def _make_client(appid: str, secret: str, base: str) -> Any:
    from wechatpy import WeChatClient

    class _Client(WeChatClient):
        def __init__(self) -> None:
            super().__init__(appid, secret, timeout=5)
            self._base = base.rstrip("/")
            self.API_BASE_URL = f"{self._base}/cgi-bin/"
            self.wxa.API_BASE_URL = f"{self._base}/"

        def fetch_access_token(self):
            return self._fetch_access_token(
                url=f"{self._base}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )

    return _Client()


_client: Any = None


def client() -> Any:
    """The wechatpy client (a `WeChatClient` fetching tokens from the configured base)."""
    global _client
    if _client is None:
        app = secrets.named("wechat")
        _client = _make_client(app["appid"], app["secret"], get_settings().wechat_api_base or DEFAULT_BASE)
    return _client


def reset() -> None:
    global _client
    _client = None


def code_to_session(code: str) -> dict:
    """{"openid", "session_key", "unionid"?} for a wx.login() code; LoginRefused if WeChat says no."""
    from wechatpy.exceptions import WeChatClientException

    try:
        return client().wxa.code_to_session(code)
    except WeChatClientException as e:
        raise LoginRefused(f"{e.errcode}: {e.errmsg}") from None
