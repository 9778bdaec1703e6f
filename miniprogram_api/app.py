"""The Flask app: the tenant API (/api/v1, tenant.py) and the admin console (/ and /admin,
console.py), with JSON errors and body checks for every route (errors.py).

Views only translate HTTP to service calls and back (response bodies in serializers.py);
rules live in core/. wsgi.py holds the app object that zappa serves.
"""

from __future__ import annotations

import threading

from flask import Flask, jsonify
from werkzeug.routing import Rule

from core.domain.money import yuan
from core.settings import BASE, CONSOLE, SITES, TENANT_LOGIN, TENANT_OAUTH, WECHATPAY
from miniprogram_api import admin_auth, console, console_ops, errors, tenant

# What the app needs deployed (checked at start by wsgi.py, offline against
# zappa_settings.json by infra/deploy/deploy_check.py): tenant logins, recharges (a credit
# may restore supply: commands signed for the site), the console's session key.
NEEDS = BASE | TENANT_LOGIN | TENANT_OAUTH | WECHATPAY | SITES | CONSOLE


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
    """The app. check_start: before the first request is served, check that this
    deployment has its settings and secrets and nothing of a demo on prod
    (core/services/startup.py), as the Lambda handlers do before their first invocation;
    until it passes every request is answered 503 with the reason (wsgi.py sets it)."""
    app = Flask(__name__)
    app.url_rule_class = _LazyBuilderRule
    app.json.ensure_ascii = False
    app.jinja_env.filters["yuan"] = yuan
    errors.init_app(app)
    if check_start:
        _check_before_first_request(app)

    @app.get("/health")
    def health_check():
        from core.services import health

        result = health.check()
        return jsonify(result), 200 if result["status"] == "ok" else 503

    app.register_blueprint(tenant.bp)
    from miniprogram_api import tenant_pages
    app.register_blueprint(tenant_pages.bp)  # the official-account H5 pages (/h5/, docs/h5.md)
    from miniprogram_api import tenant_usage
    app.register_blueprint(tenant_usage.bp)  # usage, realtime values (用量)
    from miniprogram_api import tenant_binding
    app.register_blueprint(tenant_binding.bp)  # official-account login, bindings, rate-limit answers (绑定)
    from miniprogram_api import tenant_money
    app.register_blueprint(tenant_money.bp)  # money chain, refund requests, alarm preferences, notifications
    from miniprogram_api import tenant_deliveries
    app.register_blueprint(tenant_deliveries.bp)  # the messages sent to a tenant (通知记录)
    from miniprogram_api import tenant_subscriptions
    app.register_blueprint(tenant_subscriptions.bp)  # subscribe-message consents (订阅消息授权)
    admin_auth.init_app(app, exempt=(tenant.bp, tenant_pages.bp, tenant_usage.bp, tenant_binding.bp, tenant_money.bp,
                                     tenant_deliveries.bp, tenant_subscriptions.bp,))  # console logins, sessions, CSRF
    app.register_blueprint(console.bp)
    app.register_blueprint(console_ops.bp)  # sites, audit log, OpenAPI document
    from miniprogram_api import console_room
    app.register_blueprint(console_room.bp)  # room detail (房间详情)
    from miniprogram_api import console_tariffs
    app.register_blueprint(console_tariffs.bp)  # tariffs (电价方案), anomaly review (异常审核)
    from miniprogram_api import console_actions
    app.register_blueprint(console_actions.bp)  # room actions (房间操作)
    from miniprogram_api import console_admin
    app.register_blueprint(console_admin.bp)  # property settings (物业设置), users (用户管理)
    from miniprogram_api import console_refunds
    app.register_blueprint(console_refunds.bp)  # tenants' refund requests (退款审批)
    from miniprogram_api import console_notify
    app.register_blueprint(console_notify.bp)  # notification recipients and log (物业设置 → 通知)

    return app


def _check_before_first_request(app: Flask) -> None:
    passed = threading.Event()

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
