"""WeChat API adapter over `wechatpy`: mini-program login (code2session) and the official
account's web authorization (OAuth2: `wechatpy.oauth.WeChatOAuth`).

The app's credentials (appid and secret) are the `wechat` secret in Secrets Manager; the
API base URL is a setting (FEIKONG_WECHAT_API_BASE) so that local runs and tests talk to
the emulator in infra/; wechatpy fetches access tokens from a fixed host, so the
client below fetches them from the same base. The official account has credentials of
its own (the `wechat_oa` secret) and its authorization page is on another host
(FEIKONG_WECHAT_OAUTH_BASE, open.weixin.qq.com): WeChatOAuth's API_BASE_URL and
OAUTH_BASE_URL are pointed at the configured bases (locally both are the emulator).

wechatpy (~0.2 s to import) is imported with the first login, not with this module: the
Flask app imports it at start but most of its requests never log anyone in.
"""

from __future__ import annotations

from typing import Any

from core.integrations import secrets
from core.settings import get_settings

DEFAULT_BASE = "https://api.weixin.qq.com"
DEFAULT_OAUTH_BASE = "https://open.weixin.qq.com"
OAUTH_TIMEOUT = 5  # seconds; wechatpy's WeChatOAuth sets none


class LoginRefused(Exception):
    pass


class WeChatUnavailable(Exception):
    """WeChat did not answer (network, timeout, 5xx)."""


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


# --- the official account's web authorization (OAuth2) -------------------------------------


def _oauth(redirect_uri: str = "", scope: str = "snsapi_userinfo", state: str = "") -> Any:
    from wechatpy.oauth import WeChatOAuth

    class _OAuth(WeChatOAuth):
        def _request(self, method, url_or_endpoint, **kwargs):
            kwargs.setdefault("timeout", OAUTH_TIMEOUT)
            return super()._request(method, url_or_endpoint, **kwargs)

    app = secrets.named("wechat_oa")
    s = get_settings()
    o = _OAuth(app["appid"], app["secret"], redirect_uri, scope=scope, state=state)
    o.API_BASE_URL = (s.wechat_api_base or DEFAULT_BASE).rstrip("/") + "/"
    o.OAUTH_BASE_URL = (s.wechat_oauth_base or DEFAULT_OAUTH_BASE).rstrip("/") + "/connect/"
    return o


def oauth_authorize_url(redirect_uri: str, state: str, scope: str = "snsapi_userinfo") -> str:
    """Where the H5 page sends the browser: WeChat's authorization page for the official
    account, which comes back to redirect_uri?code=...&state=..."""
    return _oauth(redirect_uri, scope, state).authorize_url


def oauth_exchange(code: str) -> tuple[dict, Any]:
    """({"openid", "access_token", "scope", ...}, the client holding the user's token) for a
    web authorization code; LoginRefused if WeChat says no (bad, expired or used code)."""
    import requests
    from wechatpy.exceptions import WeChatOAuthException

    o = _oauth()
    try:
        return o.fetch_access_token(code), o
    except WeChatOAuthException as e:
        if e.errcode is None:  # an HTTP error status, not an answer
            raise WeChatUnavailable(str(e)) from None
        raise LoginRefused(f"{e.errcode}: {e.errmsg}") from None
    except requests.RequestException as e:
        raise WeChatUnavailable(type(e).__name__) from None


def oauth_nickname(o: Any) -> str | None:
    """The user's nickname (scope snsapi_userinfo), or None if WeChat gives none."""
    import requests
    from wechatpy.exceptions import WeChatOAuthException

    try:
        return o.get_user_info().get("nickname")
    except (WeChatOAuthException, requests.RequestException):
        return None  # the login does not depend on it
