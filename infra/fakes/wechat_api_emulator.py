"""A local emulator of the WeChat (mini program) server API endpoints the product calls.

* ``GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=`` -> ``{"access_token", "expires_in"}``
* ``GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code``
  -> ``{"openid", "session_key"[, "unionid"]}`` for codes issued by :meth:`WeChatApiEmulator.issue_code`
* ``POST /cgi-bin/stable_token`` ``{"grant_type", "appid", "secret", "force_refresh"}`` -> the app's
  current token while it is valid (a new one when expired or forced), so that many processes share one
* ``POST /cgi-bin/message/subscribe/send?access_token=`` (the mini program's token) -> ``{"errcode": 0,
  "errmsg": "ok", "msgid"}``, recorded; 43101 for a user who refused (:meth:`refuse_messages`), 40037 for a
  template not registered (when ``subscribe_templates`` is set), 47003 for a value too long for its kind
  (``thing`` 20 characters, ``phrase`` 5, ...)
* ``POST /cgi-bin/message/template/send?access_token=`` (the official account's token) -> the same shape,
  recorded; 40037 invalid template (when ``oa_templates`` is set), 43004 the user does not follow the official
  account (:meth:`unfollow`), 40003 invalid openid
* ``GET /emulator/messages`` -> a page (Simplified Chinese) of every message accepted, per openid, newest first;
  ``GET /emulator/messages.json`` the same as JSON. Tests make sends fail with :meth:`fail_next`.

The official account's web authorization (OAuth2), with its own AppID and secret (``oa_appid``, ``oa_secret``):

* ``GET  /connect/oauth2/authorize?appid=&redirect_uri=&response_type=code&scope=&state=`` -> the
  emulator's own login screen (Simplified Chinese, for a phone) listing the demo WeChat users
  (``oauth_users``: openid -> nickname; tests add more with :meth:`WeChatApiEmulator.add_oauth_user`);
  choosing one (``POST /connect/oauth2/authorize/confirm``) redirects to ``redirect_uri?code=...&state=...``
* ``GET  /sns/oauth2/access_token?appid=&secret=&code=&grant_type=authorization_code``
  -> ``{"access_token", "expires_in", "refresh_token", "openid", "scope"}``; a code is single use
  (40163), valid 5 minutes (40029 after)
* ``GET  /sns/userinfo?access_token=&openid=&lang=`` -> ``{"openid", "nickname", ...}`` (scope
  ``snsapi_userinfo`` only: 48001 otherwise)

Errors come back as WeChat does: HTTP 200 with ``{"errcode": N, "errmsg": "... rid: ..."}``.

Like WeChat, issuing a new access_token leaves the previous ones valid for 5 more minutes only.
Time can be moved forward with :meth:`WeChatApiEmulator.advance_time` (code and token expiry).
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, request

from infra.fakes.wechatpay_emulator import BackgroundServer, ServedEmulator

TOKEN_GRACE_SECONDS = 300  # older tokens stay valid this long after a new one is issued


@dataclass
class WeChatApiConfig:
    """``appid``/``secret``: the mini program's credentials. ``unionid_by_openid``: openids that also
    get a unionid from jscode2session. ``known_openids``: when set, subscribe/send rejects other
    openids with 40003."""

    appid: str
    secret: str
    host: str = "127.0.0.1"
    port: int = 0
    token_ttl: int = 7200
    code_ttl: int = 300
    unionid_by_openid: dict[str, str] = field(default_factory=dict)
    known_openids: set[str] | None = None
    oa_appid: str = ""  # the official account (web authorization); empty: no official account
    oa_secret: str = ""
    oauth_users: dict[str, str] = field(default_factory=dict)  # openid -> nickname, on the login screen
    # template id -> title; None: any id is accepted (else 40037 for an unknown one)
    subscribe_templates: dict[str, str] | None = None
    oa_templates: dict[str, str] | None = None


@dataclass
class IssuedCode:
    code: str
    openid: str
    session_key: str
    unionid: str | None
    expires_at: float
    used: bool = False


@dataclass
class OAuthGrant:
    """A web authorization code, then the user access token it was exchanged for."""

    code: str
    openid: str
    scope: str
    expires_at: float
    used: bool = False


OAUTH_SCOPES = ("snsapi_base", "snsapi_userinfo")


# the most characters a subscribe/template message value may have, by the key's kind (thing1 -> thing)
VALUE_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
                "symbol": 5, "car_number": 8}
FAILURES = {"http_500": None, "http_503": None, "busy": (-1, "system error"),
            "throttle": (45011, "api minute-quota reach limit mustslower retry next minute"),
            "invalid_token": (40001, "invalid credential, access_token is invalid or not latest")}


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class WeChatApiEmulator(ServedEmulator):
    """Emulated api.weixin.qq.com with driver methods for tests. Thread-safe."""

    def __init__(self, config: WeChatApiConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._offset = 0.0
        self._tokens: dict[str, float] = {}  # access_token -> expires_at
        self._token_app: dict[str, str] = {}  # access_token -> the appid it was issued to
        self._unfollowed: set[str] = set()  # official-account openids that do not follow it (43004)
        self._failures: list[str] = []  # injected failures of the next message sends (FAILURES keys)
        self._codes: dict[str, IssuedCode] = {}
        self._refusals: dict[str, int] = {}  # openid -> errcode for subscribe/send
        self._oauth_codes: dict[str, OAuthGrant] = {}
        self._oauth_tokens: dict[str, tuple[OAuthGrant, float]] = {}  # user access_token -> (grant, expires_at)
        self.oauth_users: dict[str, str] = dict(config.oauth_users)
        self.messages: list[dict[str, Any]] = []
        self.request_log: list[dict[str, Any]] = []
        self.app = create_app(config, self)
        self._server = BackgroundServer(self.app, config.host, config.port)


    # ---- driver methods

    def issue_code(self, openid: str, *, session_key: str | None = None, unionid: str | None = None) -> str:
        """What wx.login() would give the mini program for this user: a one-time code valid 5 minutes."""
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = IssuedCode(
                code=code, openid=openid,
                session_key=session_key or secrets.token_urlsafe(18),
                unionid=unionid or self.config.unionid_by_openid.get(openid),
                expires_at=self.now() + self.config.code_ttl,
            )
        return code

    def add_oauth_user(self, openid: str, nickname: str) -> None:
        """A WeChat user the official account's login screen offers (openid of the official account)."""
        with self._lock:
            self.oauth_users[openid] = nickname

    def issue_oauth_code(self, openid: str, scope: str = "snsapi_userinfo") -> str:
        """What choosing a user on the login screen gives: a web authorization code, valid 5 minutes."""
        code = secrets.token_hex(16)
        with self._lock:
            self._oauth_codes[code] = OAuthGrant(code, openid, scope, self.now() + self.config.code_ttl)
        return code

    def session_key_of(self, code: str) -> str:
        with self._lock:
            return self._codes[code].session_key

    def issue_access_token(self, appid: str | None = None) -> str:
        """A valid access_token of an app (default: the mini program) without an HTTP call
        (same rules as /cgi-bin/token: the app's older tokens stay valid 5 more minutes)."""
        appid = appid or self.config.appid
        with self._lock:
            now = self.now()
            for token, expires_at in list(self._tokens.items()):
                if self._token_app.get(token) == appid:
                    self._tokens[token] = min(expires_at, now + TOKEN_GRACE_SECONDS)
            token = secrets.token_urlsafe(96)[:128]
            self._tokens[token] = now + self.config.token_ttl
            self._token_app[token] = appid
            return token

    def _stable_token(self, appid: str, force: bool) -> tuple[str, int]:
        with self._lock:
            now = self.now()
            if not force:
                live = [(exp, t) for t, exp in self._tokens.items()
                        if self._token_app.get(t) == appid and exp > now + 1]
                if live:
                    exp, token = max(live)
                    return token, int(exp - now)
            return self.issue_access_token(appid), self.config.token_ttl

    def expire_access_tokens(self) -> None:
        """Every issued access_token is now expired (errcode 42001)."""
        with self._lock:
            now = self.now()
            for token in self._tokens:
                self._tokens[token] = now - 1

    def revoke_access_tokens(self) -> None:
        """Every issued access_token is now unknown (errcode 40001, as after a token reset elsewhere)."""
        with self._lock:
            self._tokens.clear()
            self._token_app.clear()

    def refuse_messages(self, openid: str, errcode: int = 43101) -> None:
        """subscribe/send to this openid fails (43101: the user did not accept / no quota left)."""
        with self._lock:
            self._refusals[openid] = errcode

    def accept_messages(self, openid: str) -> None:
        with self._lock:
            self._refusals.pop(openid, None)

    def messages_to(self, openid: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Messages accepted for an openid (kind: "subscribe" or "template"; None: both)."""
        with self._lock:
            return [m for m in self.messages if m["touser"] == openid and kind in (None, m["kind"])]

    def unfollow(self, openid: str) -> None:
        """This official-account user no longer follows it: template messages fail with 43004."""
        with self._lock:
            self._unfollowed.add(openid)

    def follow(self, openid: str) -> None:
        with self._lock:
            self._unfollowed.discard(openid)

    def register_templates(self, subscribe: dict[str, str] | None = None, oa: dict[str, str] | None = None) -> None:
        """Template ids (-> titles) the apps own; once registered, other ids are refused (40037)."""
        with self._lock:
            if subscribe is not None:
                self.config.subscribe_templates = {**(self.config.subscribe_templates or {}), **subscribe}
            if oa is not None:
                self.config.oa_templates = {**(self.config.oa_templates or {}), **oa}

    def fail_next(self, kind: str, count: int = 1) -> None:
        """The next `count` message sends (subscribe or template) fail: "http_500" / "http_503"
        (an HTTP error status), "busy" (errcode -1), "throttle" (45011) or "invalid_token" (40001)."""
        if kind not in FAILURES:
            raise ValueError(f"unknown failure {kind!r}: one of {', '.join(FAILURES)}")
        with self._lock:
            self._failures.extend([kind] * count)

    def _injected(self) -> str | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    # ---- API operations (raise WeChatError)

    def _check_app(self, appid: str | None, secret: str | None) -> None:
        if appid != self.config.appid:
            raise WeChatError(40013, "invalid appid")
        if secret != self.config.secret:
            raise WeChatError(40125, "invalid appsecret")

    def _check_any_app(self, appid: str | None, secret: str | None) -> None:
        """The mini program's or the official account's credentials (each has its own tokens)."""
        if self.config.oa_appid and appid == self.config.oa_appid:
            self._check_oa(appid, secret)
        else:
            self._check_app(appid, secret)

    def _check_token(self, token: str | None, appid: str | None = None) -> None:
        if not token:
            raise WeChatError(41001, "access_token missing")
        with self._lock:
            expires_at = self._tokens.get(token)
            owner = self._token_app.get(token)
        if expires_at is None:
            raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
        if expires_at <= self.now():
            raise WeChatError(42001, "access_token expired")
        if appid is not None and owner != appid:
            raise WeChatError(48001, "api unauthorized")

    def api_token(self, args: dict[str, str]) -> dict[str, Any]:
        if args.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        self._check_any_app(args.get("appid"), args.get("secret"))
        return {"access_token": self.issue_access_token(args.get("appid")), "expires_in": self.config.token_ttl}

    def api_stable_token(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise WeChatError(47001, "data format error")
        if body.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        self._check_any_app(body.get("appid"), body.get("secret"))
        token, expires_in = self._stable_token(body["appid"], bool(body.get("force_refresh")))
        return {"access_token": token, "expires_in": expires_in}

    def api_jscode2session(self, args: dict[str, str]) -> dict[str, Any]:
        self._check_app(args.get("appid"), args.get("secret"))
        if args.get("grant_type") != "authorization_code":
            raise WeChatError(40002, "invalid grant_type")
        code = args.get("js_code")
        if not code:
            raise WeChatError(41008, "missing code")
        with self._lock:
            issued = self._codes.get(code)
            if issued is None or issued.expires_at <= self.now():
                raise WeChatError(40029, "invalid code")
            if issued.used:
                raise WeChatError(40163, "code been used")
            issued.used = True
        result = {"session_key": issued.session_key, "openid": issued.openid}
        if issued.unionid:
            result["unionid"] = issued.unionid
        return result

    def _check_oa(self, appid: str | None, secret: str | None) -> None:
        if not self.config.oa_appid or appid != self.config.oa_appid:
            raise WeChatError(40013, "invalid appid")
        if secret != self.config.oa_secret:
            raise WeChatError(40125, "invalid appsecret")

    def api_oauth_access_token(self, args: dict[str, str]) -> dict[str, Any]:
        self._check_oa(args.get("appid"), args.get("secret"))
        if args.get("grant_type") != "authorization_code":
            raise WeChatError(40002, "invalid grant_type")
        code = args.get("code")
        if not code:
            raise WeChatError(41008, "missing code")
        with self._lock:
            grant = self._oauth_codes.get(code)
            if grant is None or grant.expires_at <= self.now():
                raise WeChatError(40029, "invalid code")
            if grant.used:
                raise WeChatError(40163, "code been used")
            grant.used = True
            token = secrets.token_urlsafe(64)[:86]
            self._oauth_tokens[token] = (grant, self.now() + self.config.token_ttl)
        return {"access_token": token, "expires_in": self.config.token_ttl,
                "refresh_token": secrets.token_urlsafe(64)[:86], "openid": grant.openid, "scope": grant.scope,
                "is_snapshotuser": 0}

    def api_oauth_userinfo(self, args: dict[str, str]) -> dict[str, Any]:
        token = args.get("access_token")
        if not token:
            raise WeChatError(41001, "access_token missing")
        with self._lock:
            found = self._oauth_tokens.get(token)
            if found is None:
                raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
            grant, expires_at = found
            if expires_at <= self.now():
                raise WeChatError(42001, "access_token expired")
            nickname = self.oauth_users.get(grant.openid, "")
        if args.get("openid") != grant.openid:
            raise WeChatError(40003, "invalid openid")
        if grant.scope != "snsapi_userinfo":
            raise WeChatError(48001, "api unauthorized")
        return {"openid": grant.openid, "nickname": nickname, "sex": 0, "province": "", "city": "",
                "country": "", "headimgurl": "", "privilege": []}

    def _check_data(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise WeChatError(47003, "argument invalid! data is required")
        for key, value in data.items():
            if not isinstance(value, dict) or "value" not in value:
                raise WeChatError(47003, f"argument invalid! data.{key}.value is empty")
            limit = VALUE_LIMITS.get(str(key).rstrip("0123456789"))
            if limit and len(str(value["value"])) > limit:
                raise WeChatError(47003, f"argument invalid! data.{key}.value exceeds {limit} characters")

    def _fail_injected(self) -> None:
        kind = self._injected()
        if kind is None:
            return
        if kind.startswith("http_"):
            raise InjectedHttpError(int(kind[5:]))
        raise WeChatError(*FAILURES[kind])

    def _record(self, kind: str, appid: str, body: dict, extra: dict) -> dict[str, Any]:
        msgid = int(secrets.randbits(40))
        with self._lock:
            self.messages.append({
                "kind": kind, "appid": appid, "msgid": msgid, "touser": body["touser"],
                "template_id": body["template_id"], "data": body["data"], "at": self.now(), **extra})
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def api_subscribe_send(self, token: str | None, body: Any) -> dict[str, Any]:
        self._check_token(token, self.config.appid)
        if not isinstance(body, dict):
            raise WeChatError(47001, "data format error")
        touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        if not touser or not template_id or not isinstance(data, dict):
            raise WeChatError(47003, "argument invalid! touser, template_id and data are required")
        known = self.config.known_openids
        if known is not None and touser not in known:
            raise WeChatError(40003, "invalid openid")
        templates = self.config.subscribe_templates
        if templates is not None and template_id not in templates:
            raise WeChatError(40037, "invalid template_id")
        self._check_data(data)
        state = body.get("miniprogram_state", "formal")
        if state not in ("developer", "trial", "formal"):
            raise WeChatError(47003, "argument invalid! miniprogram_state")
        with self._lock:
            refusal = self._refusals.get(touser)
        if refusal:
            raise WeChatError(refusal, "user refuse to accept the msg")
        self._fail_injected()
        return self._record("subscribe", self.config.appid, body, {
            "page": body.get("page"), "miniprogram_state": state, "lang": body.get("lang", "zh_CN")})

    def api_template_send(self, token: str | None, body: Any) -> dict[str, Any]:
        """The official account's template message (/cgi-bin/message/template/send)."""
        self._check_token(token, self.config.oa_appid or None)
        if not isinstance(body, dict):
            raise WeChatError(47001, "data format error")
        touser, template_id = body.get("touser"), body.get("template_id")
        if not touser:
            raise WeChatError(40003, "invalid openid")
        if not template_id:
            raise WeChatError(40037, "invalid template_id")
        templates = self.config.oa_templates
        if templates is not None and template_id not in templates:
            raise WeChatError(40037, "invalid template_id")
        self._check_data(body.get("data"))
        with self._lock:
            unfollowed = touser in self._unfollowed
            refusal = self._refusals.get(touser)
        if unfollowed:
            raise WeChatError(43004, "require subscribe")
        if refusal:
            raise WeChatError(refusal, "user refuse to accept the msg")
        self._fail_injected()
        return self._record("template", self.config.oa_appid, body, {
            "url": body.get("url"), "miniprogram": body.get("miniprogram")})


class InjectedHttpError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def create_app(config: WeChatApiConfig, emulator: WeChatApiEmulator | None = None) -> Flask:
    """The Flask app. Without ``emulator`` a fresh one holds the state (``app.extensions["wechat_api_emulator"]``)."""
    if emulator is None:
        return WeChatApiEmulator(config).app
    emu = emulator
    app = Flask("wechat_api_emulator")
    app.extensions["wechat_api_emulator"] = emu

    def reply(payload: dict[str, Any]) -> Response:
        return Response(json.dumps(payload, ensure_ascii=False), status=200,
                        content_type="application/json; encoding=utf-8")

    @app.errorhandler(WeChatError)
    def _wechat_error(e: WeChatError) -> Response:
        return reply({"errcode": e.errcode, "errmsg": f"{e.errmsg} rid: {secrets.token_hex(12)}"})

    @app.errorhandler(404)
    def _not_found(_e: Exception) -> Response:
        return reply({"errcode": 40066, "errmsg": f"invalid url rid: {secrets.token_hex(12)}"})

    @app.after_request
    def _log(resp: Response) -> Response:
        with emu._lock:
            emu.request_log.append({"method": request.method, "path": request.path, "args": dict(request.args)})
        return resp

    @app.get("/cgi-bin/token")
    def token() -> Response:
        return reply(emu.api_token(dict(request.args)))

    @app.get("/sns/jscode2session")
    def jscode2session() -> Response:
        return reply(emu.api_jscode2session(dict(request.args)))

    @app.get("/connect/oauth2/authorize")
    def oauth_authorize() -> Response:
        problem = _authorize_problem(emu, request.args)
        if problem:
            return _page("无法授权", f'<p class="note">{html.escape(problem)}</p>', 400)
        with emu._lock:
            users = sorted(emu.oauth_users.items())
        hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(request.args.get(k, ""))}">'
                         for k in ("appid", "redirect_uri", "scope", "state"))
        choices = "".join(
            f'<form method="post" action="/connect/oauth2/authorize/confirm">{hidden}'
            f'<input type="hidden" name="openid" value="{html.escape(openid)}">'
            f'<button class="user"><span class="name">{html.escape(nickname or "微信用户")}</span>'
            f'<span class="openid">{html.escape(openid)}</span></button></form>'
            for openid, nickname in users) or '<p class="note">模拟器中还没有微信用户。</p>'
        scope_text = "获取你的昵称和头像" if request.args.get("scope") == "snsapi_userinfo" else "获取你的身份标识"
        body = (f'<p class="note">网页由公众号（{html.escape(request.args.get("appid", ""))}）提供，申请{scope_text}。'
                f'请选择登录的微信用户：</p>{choices}<p class="foot">微信接口模拟器 · 仅用于本地演示和测试</p>')
        return _page("微信授权登录", body, 200)

    @app.post("/connect/oauth2/authorize/confirm")
    def oauth_confirm() -> Response:
        problem = _authorize_problem(emu, request.form)
        openid = request.form.get("openid", "")
        with emu._lock:
            known = openid in emu.oauth_users
        if problem or not known:
            return _page("无法授权", f'<p class="note">{html.escape(problem or "未知的微信用户")}</p>', 400)
        code = emu.issue_oauth_code(openid, request.form["scope"])
        target = request.form["redirect_uri"]
        query = urlencode({"code": code, "state": request.form.get("state", "")})
        return Response(status=302, headers={"Location": f"{target}{'&' if '?' in target else '?'}{query}"})

    @app.get("/sns/oauth2/access_token")
    def oauth_access_token() -> Response:
        return reply(emu.api_oauth_access_token(dict(request.args)))

    @app.get("/sns/userinfo")
    def oauth_userinfo() -> Response:
        return reply(emu.api_oauth_userinfo(dict(request.args)))

    @app.errorhandler(InjectedHttpError)
    def _injected(e: InjectedHttpError) -> Response:
        return Response("<html><body>Service Unavailable</body></html>", status=e.status, content_type="text/html")

    def json_body() -> Any:
        try:
            return json.loads(request.get_data(as_text=True) or "null")
        except ValueError as e:
            raise WeChatError(47001, "data format error") from e

    @app.post("/cgi-bin/stable_token")
    def stable_token() -> Response:
        return reply(emu.api_stable_token(json_body()))

    @app.post("/cgi-bin/message/subscribe/send")
    def subscribe_send() -> Response:
        return reply(emu.api_subscribe_send(request.args.get("access_token"), json_body()))

    @app.post("/cgi-bin/message/template/send")
    def template_send() -> Response:
        return reply(emu.api_template_send(request.args.get("access_token"), json_body()))

    @app.get("/emulator/messages.json")
    def messages_json() -> Response:
        with emu._lock:
            return reply({"messages": list(emu.messages)})

    @app.get("/emulator/messages")
    def messages_page() -> Response:
        return _page("微信消息（模拟器收到的）", _messages_html(emu), 200)

    return app


KIND_TEXT = {"subscribe": "小程序订阅消息", "template": "公众号模板消息"}


def _messages_html(emu: WeChatApiEmulator) -> str:
    """Every message accepted, grouped by openid (the user with the newest message first)."""
    with emu._lock:
        messages = list(emu.messages)
        names = dict(emu.oauth_users)
        titles = {**(emu.config.subscribe_templates or {}), **(emu.config.oa_templates or {})}
    if not messages:
        return '<p class="note">还没有收到消息。</p><p class="foot">微信接口模拟器 · 仅用于本地演示和测试</p>'
    by_user: dict[str, list[dict]] = {}
    for m in reversed(messages):
        by_user.setdefault(m["touser"], []).append(m)
    parts = [f'<p class="note">共 {len(messages)} 条消息，{len(by_user)} 位用户（最新的在前）。</p>']
    for openid, items in by_user.items():
        who = html.escape(names.get(openid) or "微信用户")
        parts.append(f'<section class="user-box"><h2>{who} <span class="openid">{html.escape(openid)}</span></h2>')
        for m in items:
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m["at"]))
            title = titles.get(m["template_id"]) or m["template_id"]
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v.get('value', '')))}</td></tr>"
                           for k, v in (m.get("data") or {}).items())
            link = m.get("page") or m.get("url") or ""
            link_html = f'<div class="openid">打开：{html.escape(link)}</div>' if link else ""
            parts.append(f'<article class="msg"><div class="meta">{KIND_TEXT.get(m["kind"], m["kind"])} · {at}</div>'
                         f'<div class="title">{html.escape(title)}</div><table>{rows}</table>{link_html}</article>')
        parts.append("</section>")
    parts.append('<p class="foot">微信接口模拟器 · 仅用于本地演示和测试</p>')
    return "".join(parts)


def _authorize_problem(emu: WeChatApiEmulator, args: Any) -> str | None:
    """Why an authorization request cannot go on (in Chinese, as WeChat's page says it), or None."""
    if not emu.config.oa_appid or args.get("appid") != emu.config.oa_appid:
        return "参数错误：appid 无效"
    target = args.get("redirect_uri", "")
    if urlsplit(target).scheme not in ("http", "https") or not urlsplit(target).netloc:
        return "redirect_uri 参数错误"
    if args.get("scope") not in OAUTH_SCOPES:
        return "scope 参数错误或没有 scope 权限"
    if "response_type" in args and args.get("response_type") != "code":
        return "response_type 参数错误"
    if len(args.get("state", "")) > 128:
        return "state 参数过长"
    return None


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 0; font-family: -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif; background: #ededed; color: #111; }}
header {{ background: #07c160; color: #fff; padding: 16px; font-size: 18px; text-align: center; }}
main {{ padding: 16px; max-width: 480px; margin: 0 auto; }}
.note {{ font-size: 15px; line-height: 1.6; color: #333; }}
form {{ margin: 0 0 12px; }}
button.user {{ display: block; width: 100%; min-height: 56px; padding: 12px 16px; border: 0; border-radius: 8px;
  background: #fff; text-align: left; font-size: 17px; }}
button.user:active {{ background: #dcdcdc; }}
.openid {{ display: block; font-size: 12px; color: #888; margin-top: 4px; word-break: break-all; }}
.foot {{ font-size: 12px; color: #999; text-align: center; margin-top: 24px; }}
.user-box h2 {{ font-size: 16px; margin: 20px 0 8px; }}
.msg {{ background: #fff; border-radius: 8px; padding: 12px 16px; margin: 0 0 10px; }}
.msg .meta {{ font-size: 12px; color: #888; }}
.msg .title {{ font-size: 16px; font-weight: 600; margin: 4px 0 8px; }}
.msg table {{ border-collapse: collapse; font-size: 14px; }}
.msg th {{ text-align: left; color: #888; font-weight: normal; padding: 2px 12px 2px 0; }}
</style></head>
<body><header>{title}</header><main>{body}</main></body></html>
"""


def _page(title: str, body: str, status: int) -> Response:
    return Response(PAGE.format(title=html.escape(title), body=body), status=status,
                    content_type="text/html; charset=utf-8")
