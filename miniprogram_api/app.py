"""The Flask app: the tenant API (/api/v1, tenant.py) and the admin console (/ and /admin,
console.py), with JSON errors and body checks for every route (errors.py).

Views only translate HTTP to service calls and back (response bodies in serializers.py);
rules live in core/. wsgi.py holds the app object that zappa serves.
"""

from __future__ import annotations

import threading

from flask import Flask, jsonify

from core.domain.money import yuan
from core.settings import BASE, CONSOLE, SITES, TENANT_LOGIN, WECHATPAY
from miniprogram_api import admin_auth, console, console_ops, errors, tenant

# What the app needs deployed (checked at start by wsgi.py, offline against
# zappa_settings.json by infra/deploy/deploy_check.py): tenant logins, recharges (a credit
# may restore supply: commands signed for the site), the console's session key.
NEEDS = BASE | TENANT_LOGIN | WECHATPAY | SITES | CONSOLE


def create_app(check_start: bool = False) -> Flask:
    """The app. check_start: before the first request is served, check that this
    deployment has its settings and secrets and nothing of a demo on prod
    (core/services/startup.py), as the Lambda handlers do before their first invocation;
    until it passes every request is answered 503 with the reason (wsgi.py sets it)."""
    app = Flask(__name__)
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
    admin_auth.init_app(app, exempt=(tenant.bp,))  # console logins, sessions, CSRF
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
