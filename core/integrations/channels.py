"""The notification channels behind one port (docs/notifications.md "Channels").

`send(Outbound) -> Result` dispatches by channel and never raises for a provider's error:
the answer says SENT (with the provider's message id), RETRY (the network, a 5xx, throttling:
the caller sends again later) or REJECTED (the provider refused for good: a bad recipient or
template, the user refused, a quota spent for the day, a channel not configured; the
provider's code is in `detail`).

| channel | provider | how |
|---|---|---|
| `subscribe` | WeChat mini-program subscribe message (one-time: the caller spends a consent first, core/store/consents.py) | wechatpy `wxa.send_subscribe_message` |
| `template` | the official account's template message | wechatpy `message.send_template`, the official account's own AppID/secret (`wechat_oa`) |
| `sms` | Tencent Cloud SMS (`FEIKONG_SMS_PROVIDER=tencent`) or Alibaba Cloud SMS (`aliyun`) | core/integrations/sms.py |
| `email` | Amazon SES | `SendEmail` (botocore, the shared session) |
| `voice` | none by default (REJECTED "voice provider not configured"); `aliyun`: Dyvms SingleCallByTts | core/integrations/sms.py |

Template ids per catalog key come from settings ("key=id,key=id"). WeChat access tokens are
fetched with `/cgi-bin/stable_token` (not `/cgi-bin/token`, which invalidates the token every
other Lambda instance holds) and cached per process; a token WeChat calls invalid or expired
(40001, 40014, 42001) is refreshed once and the message sent again. wechatpy, the Tencent
Cloud SDK and requests are imported on the first message, not with this module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from core.integrations import secrets
from core.settings import get_settings


@dataclass(frozen=True)
class Outbound:
    delivery_id: str
    channel: str  # "subscribe" | "template" | "sms" | "email" | "voice"
    to: str  # openid | phone (+86...) | email address
    template_key: str  # catalog key, e.g. "low_balance"
    title: str  # Chinese
    body: str  # Chinese, rendered
    fields: dict[str, str] = field(default_factory=dict)  # WeChat data / SMS template params, in order
    link: str = ""  # H5 URL or mini-program page path


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    detail: str = ""
    provider_id: str = ""


SENT, RETRY, REJECTED = Outcome.SENT, Outcome.RETRY, Outcome.REJECTED
CHANNELS = ("subscribe", "template", "sms", "email", "voice")


def template_ids(text: str) -> dict[str, str]:
    """A "key=id,key=id" setting as {key: id} (spaces ignored, empty entries skipped)."""
    out = {}
    for part in (text or "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() and value.strip():
            out[key.strip()] = value.strip()
    return out


def send(o: Outbound) -> Result:
    """Send one message through its channel; never raises for a provider's error."""
    adapter = _ADAPTERS.get(o.channel)
    if adapter is None:
        return Result(REJECTED, f"unknown channel {o.channel!r}")
    if not o.to:
        return Result(REJECTED, "no recipient")
    try:
        return adapter(o)
    except secrets.SecretMissing as e:  # unreadable now (permissions, a network error): try again later
        return Result(RETRY, str(e)[:300])


# --- WeChat: mini-program subscribe messages, official-account template messages ----------------

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid / not latest / expired access token: refresh once
# -1 system busy; 45009 the API's daily call quota (resets at midnight), 45011 its minute quota: later
TRANSIENT_ERRORS = frozenset({-1, 45009, 45011})
# most characters WeChat takes per data value, by the key's kind (thing1, phrase2, ...): longer is refused (47003)
VALUE_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
                "symbol": 5, "car_number": 8}
DEFAULT_WECHAT_BASE = "https://api.weixin.qq.com"

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def reset() -> None:
    """Forget the clients and their cached tokens (after settings or secrets changed)."""
    from core.integrations import sms

    with _lock:
        _clients.clear()
    sms.reset()


def _fit(key: str, value: object) -> str:
    text = str(value)
    kind = key.rstrip("0123456789")
    limit = VALUE_LIMITS.get(kind)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _wechat_data(fields: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"value": _fit(k, v)} for k, v in fields.items()}


def _make_wechat_client(appid: str, secret: str, base: str, timeout: float) -> Any:
    import requests
    from wechatpy import WeChatClient
    from wechatpy.exceptions import WeChatClientException

    class _Client(WeChatClient):
        """A WeChatClient on the configured base (locally the emulator) that fetches its
        token with /cgi-bin/stable_token and does not retry by itself (send() refreshes once)."""

        def __init__(self) -> None:
            super().__init__(appid, secret, timeout=timeout, auto_retry=False)
            self._base = base.rstrip("/")
            self.API_BASE_URL = f"{self._base}/cgi-bin/"
            self.wxa.API_BASE_URL = f"{self._base}/"

        def fetch_access_token(self, force_refresh: bool = False):
            import time

            try:
                res = self._http.post(f"{self._base}/cgi-bin/stable_token", timeout=self.timeout, json={
                    "grant_type": "client_credential", "appid": self.appid, "secret": self.secret,
                    "force_refresh": force_refresh})
                res.raise_for_status()
                result = res.json()
            except requests.HTTPError as e:
                raise WeChatClientException(None, None, client=self, request=e.request, response=e.response) from None
            except ValueError:
                raise WeChatClientException(None, "token answer is not JSON", client=self) from None
            if result.get("errcode"):
                raise WeChatClientException(result["errcode"], result.get("errmsg", ""), client=self)
            expires_in = int(result.get("expires_in") or 7200)
            self.session.set(self.access_token_key, result["access_token"], expires_in)
            self.expires_at = int(time.time()) + expires_in
            return result

    return _Client()


def _wechat_client(secret_name: str) -> Any:
    with _lock:
        made = _clients.get(secret_name)
    if made is None:
        app = secrets.named(secret_name)
        s = get_settings()
        made = _make_wechat_client(app["appid"], app["secret"], s.wechat_api_base or DEFAULT_WECHAT_BASE,
                                   s.channel_timeout)
        with _lock:
            made = _clients.setdefault(secret_name, made)
    return made


def _wechat_send(secret_name: str, call) -> Result:
    """call(client) -> WeChat's answer; errors classified, a stale token refreshed once."""
    import requests
    from wechatpy.exceptions import WeChatClientException

    client = _wechat_client(secret_name)
    for attempt in (1, 2):
        try:
            answer = call(client)
        except WeChatClientException as e:
            if e.errcode is None:  # an HTTP error status, not an answer
                status = getattr(e.response, "status_code", None)
                return Result(RETRY, f"wechat HTTP {status}")
            code = int(e.errcode)
            if code in TOKEN_ERRORS and attempt == 1:
                try:
                    client.fetch_access_token()
                except WeChatClientException as te:
                    return _wechat_refusal(te)
                except requests.RequestException as te:
                    return Result(RETRY, f"wechat token: {type(te).__name__}")
                continue
            return _wechat_refusal(e)
        except requests.RequestException as e:
            return Result(RETRY, f"wechat: {type(e).__name__}")
        msgid = answer.get("msgid", "") if isinstance(answer, dict) else ""
        return Result(SENT, "ok", str(msgid))
    raise AssertionError("unreachable")


def _wechat_refusal(e: Any) -> Result:
    if e.errcode is None:
        return Result(RETRY, f"wechat HTTP {getattr(e.response, 'status_code', None)}")
    code = int(e.errcode)
    detail = f"wechat {code}: {str(e.errmsg or '')[:200]}"
    return Result(RETRY if code in TRANSIENT_ERRORS or code in TOKEN_ERRORS else REJECTED, detail)


HOME_PAGE = "pages/home/home"  # the mini-program page a subscribe message opens unless it names one


def _page(link: str) -> str:
    """A subscribe message's page: a mini-program page path as given ("pages/..."), else the
    home page (an H5 path has no mini-program page, and pages other than home need an account)."""
    path = link.lstrip("/")
    return path if path.startswith("pages/") else HOME_PAGE


def _url(link: str) -> str | None:
    """A template message's URL: an absolute http(s) link, or an H5 path ("/h5/...") on
    FEIKONG_H5_BASE_URL; None (no link) otherwise."""
    if link.startswith(("https://", "http://")):
        return link
    base = get_settings().h5_base_url
    return base.rstrip("/") + link if base and link.startswith("/") else None


def _subscribe(o: Outbound) -> Result:
    template_id = template_ids(get_settings().wechat_subscribe_templates).get(o.template_key)
    if not template_id:
        return Result(REJECTED, f"no subscribe template for {o.template_key} (FEIKONG_WECHAT_SUBSCRIBE_TEMPLATES)")
    data = _wechat_data(o.fields)
    page = _page(o.link)
    return _wechat_send("wechat", lambda c: c.wxa.send_subscribe_message(o.to, template_id, data, page=page))


def _template(o: Outbound) -> Result:
    template_id = template_ids(get_settings().wechat_template_ids).get(o.template_key)
    if not template_id:
        return Result(REJECTED, f"no official-account template for {o.template_key} (FEIKONG_WECHAT_TEMPLATE_IDS)")
    url = _url(o.link)
    data = _wechat_data(o.fields)
    return _wechat_send("wechat_oa", lambda c: c.message.send_template(o.to, template_id, data, url=url))


# --- email: Amazon SES ------------------------------------------------------------------------

# SES error codes worth another try later (Throttling "Maximum sending rate exceeded"; the
# daily quota, "Daily message quota exceeded", is refused for the day: REJECTED)
SES_TRANSIENT = frozenset({"Throttling", "ThrottlingException", "ServiceUnavailable", "InternalFailure",
                           "RequestTimeout", "TooManyRequestsException"})


def _ses_client() -> Any:
    with _lock:
        made = _clients.get("ses")
    if made is None:
        from botocore.config import Config

        from core import aws

        s = get_settings()
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=s.channel_timeout,
                        read_timeout=s.channel_timeout)
        with aws.LOCK:
            made = aws.session().create_client("ses", region_name=s.email_region or None, config=config)
        with _lock:
            made = _clients.setdefault("ses", made)
    return made


def _email(o: Outbound) -> Result:
    from botocore.exceptions import BotoCoreError, ClientError

    sender = get_settings().email_from
    if not sender:
        return Result(REJECTED, "email sender not configured (FEIKONG_EMAIL_FROM)")
    link = _url(o.link)
    text = o.body + (f"\n\n{link}" if link else "")
    try:
        answer = _ses_client().send_email(
            Source=sender, Destination={"ToAddresses": [o.to]},
            Message={"Subject": {"Data": o.title, "Charset": "UTF-8"},
                     "Body": {"Text": {"Data": text, "Charset": "UTF-8"}}})
    except ClientError as e:
        error = e.response.get("Error", {})
        code, message = error.get("Code", ""), str(error.get("Message", ""))[:200]
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        retry = (code in SES_TRANSIENT and "daily" not in message.lower()) or status >= 500
        return Result(RETRY if retry else REJECTED, f"ses {code}: {message}")
    except BotoCoreError as e:  # no connection, a timeout
        return Result(RETRY, f"ses: {type(e).__name__}")
    return Result(SENT, "ok", answer.get("MessageId", ""))


# --- SMS and voice ------------------------------------------------------------------------------


def _sms(o: Outbound) -> Result:
    from core.integrations import sms

    return sms.send_sms(o)


def _voice(o: Outbound) -> Result:
    if not get_settings().voice_provider:
        return Result(REJECTED, "voice provider not configured (FEIKONG_VOICE_PROVIDER)")
    from core.integrations import sms

    return sms.call_voice(o)


_ADAPTERS = {"subscribe": _subscribe, "template": _template, "sms": _sms, "email": _email, "voice": _voice}
