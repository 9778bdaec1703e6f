"""The app's URL rules compile their url_for builders lazily (miniprogram_api/app.py,
docs/cold-start.md): every rule must build exactly the URL werkzeug's own eagerly
compiled builder builds, with and without extra query arguments."""

from __future__ import annotations

from werkzeug.routing import Rule

from miniprogram_api.app import create_app


def _value(name: str, conv) -> object:
    if hasattr(conv, "items"):  # AnyConverter: one of its words
        return sorted(conv.items)[0]
    if conv.__class__.__name__ in ("IntegerConverter", "NumberConverter", "FloatConverter"):
        return 7
    return f"v-{name}"


def _values(rule: Rule) -> dict:
    return {name: _value(name, conv) for name, conv in rule._converters.items()}


def test_every_rule_builds_the_url_werkzeug_builds():
    app = create_app()
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 100  # the console, the tenant API and the H5 pages
    for rule in rules:
        values = _values(rule)
        for append_unknown, extra in ((False, {}), (True, {"page": "2", "q": "租户 1"})):
            eager = Rule._compile_builder(rule, append_unknown)
            lazy = rule._build_unknown if append_unknown else rule._build
            args = {**values, **extra}
            assert lazy(**args) == eager(rule, **args), rule.rule


def test_url_for_through_the_app():
    app = create_app()
    with app.test_request_context():
        from flask import url_for

        assert url_for("tenant.recharge_status", out_trade_no="FK1") == "/api/v1/recharges/FK1"
        assert url_for("tenant.recharge_status", out_trade_no="FK1", x="1") == "/api/v1/recharges/FK1?x=1"
        assert url_for("static", filename="console.css") == "/static/console.css"
