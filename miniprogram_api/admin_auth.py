"""Console logins (docs/console.md): flask-login sessions, flask-wtf CSRF, the login,
logout, password and TOTP pages, and the checks every console view makes.

- The session cookie is signed with the `console` secret (Secrets Manager), fetched on
  the first request that needs it (a tenant API request never does); HttpOnly,
  SameSite=Lax, Secure except on a local run. It holds the admin's login and a random
  session token; the admin's record holds the token's hash, so a logout or a password
  change ends the session at once (core/services/admin_auth.py).
- CSRF: every POST / PUT / PATCH / DELETE but the tenant API's (bearer tokens) carries
  the token, as the form field `csrf_token` or (htmx) the header `X-CSRFToken` that
  console/base.html sets from its `<meta name="csrf-token">`. A request without it is a
  400 in Chinese and changes nothing.
- `admin_required(permission)`: logged in, the property (URL variable, form or query
  field `property_id`) granted (else 404: a property not granted does not exist for
  this admin), the role holding the permission (else 403). The console blueprint's
  gate (`console_gate`) also checks login and the URL's property for every route.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlparse

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from core.domain.admins import PASSWORD_MIN, SESSION_FOR, AdminPrincipal
from core.domain.errors import FeikongError, Forbidden, NotFound, Unauthorized, ValidationError
from core.settings import LOCAL_HOSTS, get_settings
from miniprogram_api.services import _service

bp = Blueprint("admin_auth", __name__)
login_manager = LoginManager()
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
SERVICE_KEY = "feikong.admin_auth"  # app.extensions: a test may put its AdminAuth (with a clock) there
_key_lock = threading.Lock()

NOT_FOUND_MESSAGE = "物业不存在"
CSRF_MESSAGE = "页面已过期或请求来源无效（缺少安全令牌），请刷新页面后重试"


def admin_auth():
    """The AdminAuth service of this app (made on first use)."""

    def make():
        from core.services.admin_auth import AdminAuth

        return AdminAuth()

    return _service(SERVICE_KEY, make)


# -- the session key, fetched when first needed ------------------------------------------


def ensure_key(app: Flask | None = None) -> None:
    app = app or current_app._get_current_object()
    if app.secret_key:
        return
    with _key_lock:
        if not app.secret_key:
            from core.services.admin_auth import console_key

            app.secret_key = console_key()


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, whose key is the `console` secret fetched on the
    first request that carries or sets a session cookie."""

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        ensure_key(app)
        return super().open_session(app, request)

    def save_session(self, app, session, response):
        if session:
            ensure_key(app)
        return super().save_session(app, session, response)


# -- who is logged in ---------------------------------------------------------------------


class ConsoleUser(UserMixin):
    def __init__(self, who: AdminPrincipal, token: str) -> None:
        self.principal = who
        self.token = token

    @property
    def name(self) -> str:  # console/base.html shows the user menu from these
        return self.principal.name

    @property
    def role(self) -> str:
        return self.principal.role

    def get_id(self) -> str:
        return f"{self.principal.admin_id}|{self.token}"  # "|" is outside the login-name charset


@login_manager.user_loader
def _load(user_id: str):
    admin_id, _, token = user_id.partition("|")
    who = admin_auth().authenticate(admin_id, token)
    return ConsoleUser(who, token) if who else None


def current_admin() -> AdminPrincipal | None:
    """The logged-in admin of this request (None if nobody is)."""
    user = current_user
    return user.principal if user and user.is_authenticated else None


def _wants_json() -> bool:
    return (request.path.startswith("/admin/api") or request.headers.get("HX-Request") == "true"
            or request.is_json or request.accept_mimetypes.best == "application/json")


@login_manager.unauthorized_handler
def _unauthorized():
    if _wants_json():
        response = jsonify({"error": {"code": "unauthorized", "message": "请先登录"}})
        response.status_code = 401
        if request.headers.get("HX-Request") == "true":
            response.headers["HX-Redirect"] = url_for("admin_auth.login_page", next=_here())
        return response
    return redirect(url_for("admin_auth.login_page", next=_here()))


def _here() -> str:
    return request.full_path.rstrip("?") if request.method == "GET" else ""


def _property_of_request() -> str | None:
    pid = (request.view_args or {}).get("property_id") or request.form.get("property_id") \
        or request.args.get("property_id")
    if not pid and isinstance(g.get("json_body"), dict):
        pid = g.json_body.get("property_id")
    return pid if isinstance(pid, str) and pid else None


def check(permission: str = "view") -> AdminPrincipal:
    """The request's admin, who may do `permission` on the request's property; raises the
    401 / 404 / 403 otherwise."""
    who = current_admin()
    if who is None:
        raise Unauthorized("请先登录")
    pid = _property_of_request()
    if pid is not None and not who.sees(pid):
        raise NotFound(NOT_FOUND_MESSAGE, code="property_not_found", property_id=pid)
    if not who.can(permission):
        raise Forbidden("没有权限执行此操作")
    return who


def admin_required(permission: str = "view") -> Callable:
    """View decorator: login, property granted (404 otherwise), role has `permission`
    ("view", "operate", "money", "admin"; 403 otherwise)."""

    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def checked(*args, **kwargs):
            if current_admin() is None:
                return login_manager.unauthorized()
            check(permission)
            return view(*args, **kwargs)

        checked.permission = permission  # type: ignore[attr-defined]
        return checked

    return wrap


def console_gate():
    """The console blueprint's before_request: every console route needs a login, and a
    property in its URL must be granted."""
    if current_admin() is None:
        return login_manager.unauthorized()
    ensure_key()
    check("view")
    return None


def client_ip() -> str:
    return request.remote_addr or ""


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc else "/"


# -- pages ---------------------------------------------------------------------------------


@bp.before_request
def _key_first():
    ensure_key()


@bp.route("/login", methods=["GET", "POST"])
def login_page():
    from core.services.admin_auth import LoginFailed

    next_url = _safe_next(request.values.get("next"))
    if current_admin() is not None and request.method == "GET":
        return redirect(next_url)
    error, email = "", ""
    if request.method == "POST":
        email = request.form.get("email", "")
        try:
            done = admin_auth().login(email, request.form.get("password", ""), request.form.get("code", ""),
                                      ip=client_ip())
        except LoginFailed as e:
            error = e.message
        else:
            session.clear()  # nothing of the anonymous session carries over
            session.permanent = True
            login_user(ConsoleUser(done.principal, done.token))
            return redirect(next_url)
    return render_template("console/login.html", error=error, email=email[:64], next=next_url), 401 if error else 200


@bp.post("/logout")
def logout():
    user = current_user
    if user and user.is_authenticated:
        admin_auth().logout(user.principal, user.token, ip=client_ip())
    logout_user()
    session.clear()
    flash("已退出登录", "info")
    return redirect(url_for("admin_auth.login_page"))


@bp.route("/account/password", methods=["GET", "POST"])
@admin_required()
def password_page():
    error = ""
    if request.method == "POST":
        f = request.form
        try:
            if f.get("password", "") != f.get("password2", ""):
                raise ValidationError("两次输入的新密码不一致", code="password_mismatch")
            admin_auth().change_password(current_admin(), current_user.token, f.get("old_password", ""),
                                         f.get("password", ""), ip=client_ip())
        except ValidationError as e:
            error = e.message
        else:
            flash("密码已修改，其他设备上的登录已退出", "success")
            return redirect(url_for("admin_auth.password_page"))
    return render_template("console/password.html", error=error, password_min=PASSWORD_MIN), 400 if error else 200


@bp.route("/account/totp", methods=["GET", "POST"])
@admin_required()
def totp_page():
    from core.services.admin_auth import new_totp_secret, totp_uri

    service, who, error = admin_auth(), current_admin(), ""
    enabled = service.totp_enabled(who)
    if request.method == "POST":
        f = request.form
        try:
            if enabled:
                service.disable_totp(who, f.get("password", ""), f.get("code", ""), ip=client_ip())
                flash("两步验证已关闭", "success")
            else:
                secret = session.get("totp_pending", "")
                if not secret:
                    raise ValidationError("请刷新页面后重新设置", code="totp_expired")
                service.enable_totp(who, secret, f.get("password", ""), f.get("code", ""), ip=client_ip())
                session.pop("totp_pending", None)
                flash("两步验证已开启，今后登录需要输入动态验证码", "success")
            return redirect(url_for("admin_auth.totp_page"))
        except FeikongError as e:
            error = e.message
    secret = ""
    if not enabled:
        secret = session.get("totp_pending") or new_totp_secret()
        session["totp_pending"] = secret
    return render_template("console/totp.html", enabled=enabled, secret=secret,
                           uri=totp_uri(secret, who.admin_id) if secret else "", error=error), 400 if error else 200


# -- CSRF: flask-wtf's CSRFProtect, loaded with the first request that needs it --------------
# (flask_wtf imports wtforms: ~30 ms of every cold start of the app, tenant API included,
# for a check only console writes make; docs/cold-start.md)

_csrf = None


def _protector():
    global _csrf
    if _csrf is None:
        from flask_wtf.csrf import CSRFProtect

        _csrf = CSRFProtect()  # its checks are called by `_csrf_gate`, for the requests that need them
    return _csrf


def csrf_token() -> str:
    """The session's CSRF token (templates: `{{ csrf_token() }}`)."""
    from flask_wtf.csrf import generate_csrf

    ensure_key()
    return generate_csrf()


def _csrf_error(e):
    current_app.logger.info("CSRF refused: %s %s: %s", request.method, request.path, e.description)
    if _wants_json():
        return jsonify({"error": {"code": "csrf_invalid", "message": CSRF_MESSAGE}}), 400
    return render_template_string(CSRF_PAGE, message=CSRF_MESSAGE), 400


CSRF_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>请求被拒绝 · 费控</title></head>
<body style="font-family:sans-serif;margin:3rem"><h1>请求被拒绝</h1><p>{{ message }}</p>
<p><a href="/">返回控制台</a></p></body></html>"""


def _local_run() -> bool:
    host = (urlparse(get_settings().aws_endpoint).hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


def init_app(app: Flask, exempt: tuple[Blueprint, ...] = ()) -> None:
    """Sessions, logins and CSRF for the app; `exempt`: blueprints that authenticate
    otherwise (the tenant API's bearer tokens)."""
    app.session_interface = ConsoleSessionInterface()
    exempt_names = {b.name for b in exempt}
    app.config.update(
        SESSION_COOKIE_NAME="feikong_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not _local_run(),
        PERMANENT_SESSION_LIFETIME=SESSION_FOR,
        # what CSRFProtect.init_app would set (it is not used: it would import flask_wtf now)
        WTF_CSRF_ENABLED=True,
        WTF_CSRF_METHODS=set(UNSAFE_METHODS),
        WTF_CSRF_FIELD_NAME="csrf_token",
        WTF_CSRF_HEADERS=["X-CSRFToken", "X-CSRF-Token"],
        WTF_CSRF_SSL_STRICT=True,
        WTF_CSRF_TIME_LIMIT=int(SESSION_FOR.total_seconds()),  # a page may stay open for the session
    )
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.before_request
    def _csrf_gate():
        """Every write but the exempt blueprints' carries the session's CSRF token."""
        if request.method not in UNSAFE_METHODS or not request.endpoint or request.blueprint in exempt_names:
            return None
        ensure_key(app)
        from flask_wtf.csrf import CSRFError

        try:
            _protector().protect()
        except CSRFError as e:
            return _csrf_error(e)
        return None

    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session token is the protection
    app.context_processor(lambda: {"current_admin": current_admin()})
    app.register_blueprint(bp)
