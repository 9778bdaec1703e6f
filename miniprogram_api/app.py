"""The Flask apps: the tenant API (/api/v1, tenant.py) with the H5 pages (/h5), and the
admin console (/ and /admin, console.py), with JSON errors and body checks for every route
(errors.py).

Views only translate HTTP to service calls and back (response bodies in serializers.py);
rules live in core/. `create_app()` is the whole app in one Flask object (tests, benches,
the demo); zappa serves `create_wsgi_app()` (wsgi.py): the tenant app, built at import,
and the console app, built on the first console request, behind a path dispatcher, so a
tenant's cold start does not import the console (docs/cold-start.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, jsonify
from werkzeug.routing import Rule

from core.domain.money import yuan
from core.settings import BASE, CONSOLE, SITES, TENANT_LOGIN, TENANT_OAUTH, WECHATPAY
from miniprogram_api import errors

# What the app needs deployed (checked at start by wsgi.py, offline against
# zappa_settings.json by infra/deploy/deploy_check.py): tenant logins, recharges (a credit
# may restore supply: commands signed for the site), the console's session key.
NEEDS = BASE | TENANT_LOGIN | TENANT_OAUTH | WECHATPAY | SITES | CONSOLE

# The paths the tenant app answers behind the dispatcher; every other path is the console's.
TENANT_PREFIXES = ("/api/", "/h5/", "/static/")
TENANT_PATHS = frozenset({"/api", "/h5", "/health"})
SHARED_ENDPOINTS = frozenset({"static", "health_check"})  # both apps have them; only the tenant's is reached


def is_tenant_path(path: str) -> bool:
    """Whether the dispatcher hands a request for `path` (PATH_INFO) to the tenant app."""
    return path in TENANT_PATHS or path.startswith(TENANT_PREFIXES)


def tenant_blueprints() -> list[Blueprint]:
    """The tenant's side: a new tenant blueprint goes here, under /api/ or /h5/."""
    from miniprogram_api import (
        tenant,
        tenant_bill_pay,
        tenant_bills,
        tenant_binding,
        tenant_deliveries,
        tenant_money,
        tenant_pages,
        tenant_subscriptions,
        tenant_usage,
    )

    return [
        tenant.bp,  # sessions, accounts, recharges, the API's OpenAPI document
        tenant_pages.bp,  # the official-account H5 pages (/h5/, docs/h5.md)
        tenant_usage.bp,  # usage, realtime values (用量)
        tenant_binding.bp,  # official-account login, bindings, rate-limit answers (绑定)
        tenant_money.bp,  # money chain, refund requests, alarm preferences, notifications
        tenant_deliveries.bp,  # the messages sent to a tenant (通知记录)
        tenant_subscriptions.bp,  # subscribe-message consents (订阅消息授权)
        tenant_bill_pay.bp,  # paying a bill online, the deposit held (账单缴费、押金)
        tenant_bills.bp,  # an account's bills, lines with formulas, payments (账单, docs/billing.md)
        __import__("miniprogram_api.tenant_settlement").tenant_settlement.bp,  # move-out statement (结算单)
    ]


def console_blueprints() -> list[Blueprint]:
    """The console's side (after admin_auth's own): a new console blueprint goes here."""
    from miniprogram_api import (
        console,
        console_actions,
        console_admin,
        console_apportion,
        console_batch,
        console_billing,
        console_finance,
        console_notify,
        console_ops,
        console_refunds,
        console_reports,
        console_room,
        console_tariffs,
    )

    return [
        console.bp,  # the room monitor (房间监控)
        console_ops.bp,  # sites, audit log, OpenAPI document
        console_room.bp,  # room detail (房间详情)
        console_tariffs.bp,  # tariffs (电价方案), anomaly review (异常审核)
        console_actions.bp,  # room actions (房间操作)
        console_admin.bp,  # property settings (物业设置), users (用户管理)
        console_refunds.bp,  # tenants' refund requests (退款审批)
        console_notify.bp,  # notification recipients and log (物业设置 → 通知)
        console_apportion.bp,  # common-area apportionment (公摊, docs/billing.md)
        console_billing.bp,  # charge items (费用项), period runs, bills (账单, docs/billing.md)
        console_finance.bp,  # finance (财务): order list, reconciliation (docs/finance.md)
        console_reports.bp,  # reports (报表): monthly report, energy, income, exports (docs/reports.md)
        console_batch.bp,  # batch operations (批量操作, docs/batch.md)
    ]


class _LazyBuilderRule(Rule):
    """A URL rule whose url_for builders are compiled on first use. Werkzeug compiles two
    builder functions per rule (AST + compile()) when the rule is added: for our ~130
    routes that was ~60% of create_app() and so of the app's cold start, while a request
    builds URLs for only a handful of them (docs/cold-start.md). Matching is unchanged."""

    def _compile_builder(self, append_unknown: bool = True):
        compiled = None

        def build(rule: Rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown)
            return compiled(rule, *args, **kwargs)

        return build


def create_app(check_start: bool = False) -> Flask:
    """The whole app: tenant API, H5 pages and console in one Flask object. check_start:
    before the first request is served, check that this deployment has its settings and
    secrets and nothing of a demo on prod (core/services/startup.py), as the Lambda
    handlers do before their first invocation; until it passes every request is answered
    503 with the reason."""
    app = _base_app(threading.Event() if check_start else None)
    tenant = _register(app, tenant_blueprints())
    _add_console(app, exempt=tenant)
    return app


class AppDispatcher:
    """The WSGI app zappa serves (wsgi.py): a request whose path is the tenant's
    (`is_tenant_path`) goes to the tenant app, made when this is; any other to the console
    app, made on the first such request (a tenant's cold start never imports the console:
    flask-login, flask-wtf, its ~100 routes). Paths are not rewritten: each app sees the
    request exactly as the one app did."""

    def __init__(self, tenant: Flask, make_console: Callable[[], Flask]) -> None:
        self.tenant = tenant
        self._make_console = make_console
        self._console: Flask | None = None
        self._lock = threading.Lock()

    @property
    def console(self) -> Flask:
        if self._console is None:
            with self._lock:
                if self._console is None:
                    self._console = self._make_console()
        return self._console

    def app_for(self, path: str) -> Flask:
        return self.tenant if is_tenant_path(path) else self.console

    def __call__(self, environ: dict, start_response: Callable):
        return self.app_for(environ.get("PATH_INFO") or "/")(environ, start_response)


def create_wsgi_app(check_start: bool = False) -> AppDispatcher:
    """zappa's app (wsgi.py): the tenant app now, the console app on its first request.
    check_start: as create_app's, passed once for both apps."""
    passed = threading.Event() if check_start else None
    return AppDispatcher(_tenant_app(passed), lambda: _console_app(passed))


def _tenant_app(passed: threading.Event | None) -> Flask:
    """The tenant API, the H5 pages, /health and /static: no console login, session or
    CSRF (the API authenticates by bearer token; the H5 pages write nothing)."""
    app = _base_app(passed)
    _register(app, tenant_blueprints())
    _check_paths(app, tenant=True)
    return app


def _console_app(passed: threading.Event | None) -> Flask:
    """The console: logins, sessions, CSRF, its pages and /admin/api."""
    app = _base_app(passed)
    _add_console(app, exempt=[])
    _check_paths(app, tenant=False)
    return app


def _base_app(passed: threading.Event | None) -> Flask:
    """A Flask app with what every route has: JSON errors and body checks, /health and
    /static, and (passed given) the deployment check before the first request, skipped
    once `passed` is set (the dispatcher's two apps share it)."""
    app = Flask(__name__)
    app.url_rule_class = _LazyBuilderRule
    app.json.ensure_ascii = False
    app.jinja_env.filters["yuan"] = yuan
    errors.init_app(app)
    if passed is not None:
        _check_before_first_request(app, passed)

    @app.get("/health")
    def health_check():
        from core.services import health

        result = health.check()
        return jsonify(result), 200 if result["status"] == "ok" else 503

    return app


def _register(app: Flask, blueprints: Iterable[Blueprint]) -> list[Blueprint]:
    registered = list(blueprints)
    for bp in registered:
        app.register_blueprint(bp)
    return registered


def _add_console(app: Flask, exempt: list[Blueprint]) -> None:
    from miniprogram_api import admin_auth

    admin_auth.init_app(app, exempt=tuple(exempt))  # console logins, sessions, CSRF
    _register(app, console_blueprints())


def _check_paths(app: Flask, tenant: bool) -> None:
    """Every rule of this app is reachable through the dispatcher (a blueprint added to
    the wrong list, or a tenant route outside /api/ and /h5/, fails here, at start)."""
    stray = sorted(r.rule for r in app.url_map.iter_rules()
                   if r.endpoint not in SHARED_ENDPOINTS and is_tenant_path(r.rule) != tenant)
    if stray:
        side = "tenant" if tenant else "console"
        raise RuntimeError(f"the dispatcher would not send these paths to the {side} app: {stray}")


def _check_before_first_request(app: Flask, passed: threading.Event) -> None:
    @app.before_request
    def started():
        if passed.is_set():
            return
        from core.services.startup import StartRefused, check_start

        try:
            check_start(NEEDS)
        except StartRefused as e:
            app.logger.error("%s", e)
            return jsonify({"error": {"code": "not_configured", "message": "服务暂不可用：部署配置不完整"}}), 503
        passed.set()
