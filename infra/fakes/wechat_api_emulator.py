"""A local emulator of the WeChat (mini program) server API endpoints the product calls.

* ``GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=`` -> ``{"access_token", "expires_in"}``
* ``GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code``
  -> ``{"openid", "session_key"[, "unionid"]}`` for codes issued by :meth:`WeChatApiEmulator.issue_code`
* ``POST /cgi-bin/message/subscribe/send?access_token=`` -> ``{"errcode": 0, "errmsg": "ok"}``, recorded

Errors come back as WeChat does: HTTP 200 with ``{"errcode": N, "errmsg": "... rid: ..."}``.

Like WeChat, issuing a new access_token leaves the previous ones valid for 5 more minutes only.
Time can be moved forward with :meth:`WeChatApiEmulator.advance_time` (code and token expiry).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request

from infra.fakes.wechatpay_emulator import BackgroundServer

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


@dataclass
class IssuedCode:
    code: str
    openid: str
    session_key: str
    unionid: str | None
    expires_at: float
    used: bool = False


class WeChatError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class WeChatApiEmulator:
    """Emulated api.weixin.qq.com with driver methods for tests. Thread-safe."""

    def __init__(self, config: WeChatApiConfig) -> None:
        self.config = config
        self._lock = threading.RLock()
        self._offset = 0.0
        self._tokens: dict[str, float] = {}  # access_token -> expires_at
        self._codes: dict[str, IssuedCode] = {}
        self._refusals: dict[str, int] = {}  # openid -> errcode for subscribe/send
        self.messages: list[dict[str, Any]] = []
        self.request_log: list[dict[str, Any]] = []
        self.app = create_app(config, self)
        self._server = BackgroundServer(self.app, config.host, config.port)

    # ---- lifecycle

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> WeChatApiEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> WeChatApiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def now(self) -> float:
        return time.time() + self._offset

    def advance_time(self, seconds: float) -> None:
        """Move the emulator's clock forward (codes and tokens expire)."""
        with self._lock:
            self._offset += seconds

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

    def session_key_of(self, code: str) -> str:
        with self._lock:
            return self._codes[code].session_key

    def issue_access_token(self) -> str:
        """A valid access_token without an HTTP call (same rules as /cgi-bin/token)."""
        with self._lock:
            now = self.now()
            for token, expires_at in list(self._tokens.items()):
                self._tokens[token] = min(expires_at, now + TOKEN_GRACE_SECONDS)
            token = secrets.token_urlsafe(96)[:128]
            self._tokens[token] = now + self.config.token_ttl
            return token

    def expire_access_tokens(self) -> None:
        """Every issued access_token is now expired (errcode 42001)."""
        with self._lock:
            now = self.now()
            for token in self._tokens:
                self._tokens[token] = now - 1

    def refuse_messages(self, openid: str, errcode: int = 43101) -> None:
        """subscribe/send to this openid fails (43101: the user did not accept / no quota left)."""
        with self._lock:
            self._refusals[openid] = errcode

    def accept_messages(self, openid: str) -> None:
        with self._lock:
            self._refusals.pop(openid, None)

    def messages_to(self, openid: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if m["touser"] == openid]

    # ---- API operations (raise WeChatError)

    def _check_app(self, appid: str | None, secret: str | None) -> None:
        if appid != self.config.appid:
            raise WeChatError(40013, "invalid appid")
        if secret != self.config.secret:
            raise WeChatError(40125, "invalid appsecret")

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise WeChatError(41001, "access_token missing")
        with self._lock:
            expires_at = self._tokens.get(token)
        if expires_at is None:
            raise WeChatError(40001, "invalid credential, access_token is invalid or not latest")
        if expires_at <= self.now():
            raise WeChatError(42001, "access_token expired")

    def api_token(self, args: dict[str, str]) -> dict[str, Any]:
        if args.get("grant_type") != "client_credential":
            raise WeChatError(40002, "invalid grant_type")
        self._check_app(args.get("appid"), args.get("secret"))
        return {"access_token": self.issue_access_token(), "expires_in": self.config.token_ttl}

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

    def api_subscribe_send(self, token: str | None, body: Any) -> dict[str, Any]:
        self._check_token(token)
        if not isinstance(body, dict):
            raise WeChatError(47001, "data format error")
        touser, template_id, data = body.get("touser"), body.get("template_id"), body.get("data")
        if not touser or not template_id or not isinstance(data, dict):
            raise WeChatError(47003, "argument invalid! touser, template_id and data are required")
        known = self.config.known_openids
        if known is not None and touser not in known:
            raise WeChatError(40003, "invalid openid")
        for key, value in data.items():
            if not isinstance(value, dict) or "value" not in value:
                raise WeChatError(47003, f"argument invalid! data.{key}.value is empty")
        state = body.get("miniprogram_state", "formal")
        if state not in ("developer", "trial", "formal"):
            raise WeChatError(47003, "argument invalid! miniprogram_state")
        with self._lock:
            refusal = self._refusals.get(touser)
            if refusal:
                raise WeChatError(refusal, "user refuse to accept the msg")
            self.messages.append({
                "touser": touser, "template_id": template_id, "page": body.get("page"), "data": data,
                "miniprogram_state": state, "lang": body.get("lang", "zh_CN"), "at": self.now(),
            })
        return {"errcode": 0, "errmsg": "ok", "msgid": int(secrets.randbits(40))}


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

    @app.post("/cgi-bin/message/subscribe/send")
    def subscribe_send() -> Response:
        try:
            body = json.loads(request.get_data(as_text=True) or "null")
        except ValueError as e:
            raise WeChatError(47001, "data format error") from e
        return reply(emu.api_subscribe_send(request.args.get("access_token"), body))

    return app
