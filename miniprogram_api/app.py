"""The Flask app: the tenant API (/api/v1, tenant.py) and the admin console (/ and /admin,
console.py), with JSON errors and body checks for every route (errors.py).

Views only translate HTTP to service calls and back (response bodies in serializers.py);
rules live in core/. wsgi.py holds the app object that zappa serves.
"""

from __future__ import annotations

from flask import Flask, jsonify

from core.domain.money import yuan
from core.services import health
from core.services.auth import TenantAuth
from core.services.payments import Payments
from core.settings import BASE, SITES, TENANT_LOGIN, WECHATPAY
from miniprogram_api import console, errors, tenant

# What the app needs deployed (checked at start by wsgi.py, offline against
# zappa_settings.json by infra/deploy/deploy_check.py): tenant logins, recharges (a credit
# may restore supply: commands signed for the site).
NEEDS = BASE | TENANT_LOGIN | WECHATPAY | SITES


def create_app() -> Flask:
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.jinja_env.filters["yuan"] = yuan
    errors.init_app(app)
    app.extensions["feikong.payments"] = Payments()
    app.extensions["feikong.auth"] = TenantAuth()

    @app.get("/health")
    def health_check():
        result = health.check()
        return jsonify(result), 200 if result["status"] == "ok" else 503

    app.register_blueprint(tenant.bp)
    if console.enabled():
        app.register_blueprint(console.bp)
    else:
        @app.get("/")
        def index():
            return jsonify({"service": "feikong", "health": "/health"})

    return app
