"""Rate limits of tenant logins and recharge orders (docs/tenant-auth.md, "Limits").

Each check is one UpdateItem on a DynamoDB counter (core/store/limits.py), so a limit
holds across every Lambda instance of the app. The limits are settings
(FEIKONG_LOGIN_LIMIT_*, FEIKONG_ORDER_LIMIT_*); the clock is injected (tests move time).

The client's address is taken per request by the web layer (`remember_client_ip`, from
X-Forwarded-For as API Gateway passes it: core/domain/limits.client_ip) and read here by
`TenantAuth.login` and `Payments.create_recharge`, so every route that logs in or orders
is limited without passing the address through each call.
"""

from __future__ import annotations

from contextvars import ContextVar

from core.domain import limits as rules
from core.domain.clock import Clock, utcnow
from core.settings import get_settings

# The store and the logger load with the first check, not with the per-request hook that
# remembers the client's address (every request of the app runs it: docs/cold-start.md).
_client_ip: ContextVar[str | None] = ContextVar("feikong_client_ip", default=None)


def remember_client_ip(forwarded_for: str | None, remote_addr: str | None) -> None:
    """Called by the web layer at the start of each request."""
    _client_ip.set(rules.client_ip(forwarded_for, remote_addr, get_settings().client_ip_proxy_hops))


def client_ip() -> str | None:
    """The current request's client address (None outside a request)."""
    return _client_ip.get()


def login_rules() -> tuple[rules.Rule, rules.Rule]:
    s = get_settings()
    return (rules.Rule("login_ip", s.login_limit_per_ip, s.login_limit_window_seconds),
            rules.Rule("login_openid", s.login_limit_per_openid, s.login_limit_window_seconds))


def order_rules() -> tuple[rules.Rule, rules.Rule]:
    s = get_settings()
    return (rules.Rule("order_ip", s.order_limit_per_ip, s.order_limit_window_seconds),
            rules.Rule("order_openid", s.order_limit_per_openid, s.order_limit_window_seconds))


class Limiter:
    def __init__(self, clock: Clock = utcnow, counters=None) -> None:
        self.clock, self._counters = clock, counters

    @property
    def counters(self):
        if self._counters is None:
            from core.store import limits as store

            self._counters = store
        return self._counters

    def check(self, rule: rules.Rule, subject: str | None) -> None:
        """Count one hit of `subject` under `rule`; RateLimited (429) once over the limit.
        No subject (no address known): nothing to count."""
        if not subject:
            return
        now = self.clock()
        w = rules.window(rule, now)
        purge_at = w.end + rules.KEEP_AFTER_WINDOW
        hits = self.counters.hit(rules.counter_key(rule, subject, w), purge_at)
        if hits > rule.limit:
            if hits == rule.limit + 1:  # one line per subject and window, not one per refused hit
                from aws_lambda_powertools import Logger

                Logger(service="feikong", child=True).warning("rate limit reached", rule=rule.name, limit=rule.limit,
                            window_seconds=rule.window_seconds)
            raise rules.RateLimited(rules.retry_after(w, now))

    def login_ip(self) -> None:
        self.check(login_rules()[0], client_ip())

    def login_openid(self, openid: str) -> None:
        self.check(login_rules()[1], openid)

    def order(self, openid: str) -> None:
        ip_rule, openid_rule = order_rules()
        self.check(openid_rule, openid)
        self.check(ip_rule, client_ip())


__all__ = ["Limiter", "client_ip", "remember_client_ip"]
