"""The deployment's settings: every environment variable the product reads, named once.

`get_settings()` reads the environment once per process into a frozen, typed `Settings`;
tests and the local stack call `reset_settings()` after changing the environment. The
domain never reads settings (import-linter): services, integrations, the store (table
names) and entry points do.

`Settings` is a frozen dataclass whose fields carry their bounds; `from_environment`
converts the variables' strings by each field's type and every problem is reported at
once, naming its variable. It was a pydantic-settings and then a pydantic model: together
they cost 0.1-0.25 s of every cold start (more than a third of `import botocore`) for
fifteen numbers, flags and strings (docs/cold-start.md).

Secrets are not settings: a setting only names the Secrets Manager secret
(`FEIKONG_*_SECRET_ID`, by default `feikong/<stage>/<name>`) and
core/integrations/secrets.py fetches it. What each entry point needs is declared next to
its handler as `NEEDS` (a `Needs`), checked at cold start by `check_start` and offline
against serverless.yml / zappa_settings.json by infra/deploy/deploy_check.py.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from urllib.parse import urlparse

SERVICE = "feikong"
PREFIX = "FEIKONG_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


class ProductionRefused(RuntimeError):
    """A prod stage was configured with something only a local or demo run may use."""


def _at_least(n: float) -> dict:
    return {"ge": n}


def _above(n: float) -> dict:
    return {"gt": n}


@dataclass(frozen=True)
class Settings:
    """FEIKONG_<FIELD> unless the field's metadata names another variable ("env").
    Frozen: read once, passed down. Bounds ("ge", "gt") are checked however it is made."""

    stage: str = "dev"
    # rating and control
    offline_minutes: int = field(default=30, metadata=_at_least(1))  # no reading for this long: offline
    max_gap_hours: float | None = field(default=None, metadata=_above(0))  # None: the domain default
    max_clock_skew_minutes: float | None = field(default=None, metadata=_at_least(0))
    state_cache_size: int = field(default=10_000, metadata=_at_least(1))  # account / meter states remembered, each
    # payments
    recharge_min_fen: int = field(default=100, metadata=_at_least(1))
    recharge_max_fen: int = field(default=500_000, metadata=_at_least(1))
    pay_query_after_minutes: int = field(default=3, metadata=_at_least(1))
    refund_query_after_minutes: int = field(default=5, metadata=_at_least(1))
    notify_reject_log_seconds: int = field(default=60, metadata=_at_least(1))
    wechatpay_base_url: str = "https://api.mch.weixin.qq.com"
    wechatpay_read_timeout: float = field(default=10.0, metadata=_above(0))
    wechat_api_base: str = "https://api.weixin.qq.com"
    # the official account's web authorization page (locally: the WeChat API emulator)
    wechat_oauth_base: str = "https://open.weixin.qq.com"
    # tenant rate limits (docs/tenant-auth.md): at most N per fixed window, per subject
    login_limit_per_ip: int = field(default=60, metadata=_at_least(1))
    login_limit_per_openid: int = field(default=10, metadata=_at_least(1))
    login_limit_window_seconds: int = field(default=60, metadata=_at_least(1))
    order_limit_per_openid: int = field(default=10, metadata=_at_least(1))
    order_limit_per_ip: int = field(default=30, metadata=_at_least(1))
    order_limit_window_seconds: int = field(default=600, metadata=_at_least(1))
    # one-time SMS codes for binding by phone + room (docs/tenant-auth.md "Bindings", "Limits")
    otp_limit_per_phone: int = field(default=5, metadata=_at_least(1))
    otp_limit_per_openid: int = field(default=10, metadata=_at_least(1))
    otp_limit_per_ip: int = field(default=30, metadata=_at_least(1))
    otp_limit_window_seconds: int = field(default=3600, metadata=_at_least(1))
    # proxies that append to X-Forwarded-For after the client: 1 = CloudFront in front of an
    # edge-optimized API Gateway (zappa's default); the client is the entry before them
    client_ip_proxy_hops: int = field(default=1, metadata=_at_least(0))
    # the WeChat Pay emulator's WeixinJSBridge shim, loaded by the H5 pages to pay outside
    # WeChat (local demo and tests only; prod refuses any value: docs/h5.md)
    wechatpay_jsbridge_url: str = ""
    # notification channels (core/integrations/channels.py, docs/notifications.md "Channels").
    # Template ids per catalog key, "key=id,key=id": mini-program subscribe messages, the
    # official account's template messages, SMS templates (of the provider chosen), voice (TTS codes)
    wechat_subscribe_templates: str = ""
    wechat_template_ids: str = ""
    sms_provider: str = field(default="tencent", metadata={"choices": ("tencent", "aliyun")})
    sms_templates: str = ""
    sms_sign_name: str = ""  # the approved SMS signature (签名), e.g. 费控物业
    sms_app_id: str = ""  # Tencent Cloud SMS SdkAppId (the SMS application)
    sms_region: str = "ap-guangzhou"  # Tencent Cloud region of the SMS API
    # the providers' API endpoints (locally: the SMS emulator, infra/fakes/sms_emulator.py)
    sms_tencent_endpoint: str = "https://sms.tencentcloudapi.com"
    sms_aliyun_endpoint: str = "https://dysmsapi.aliyuncs.com"
    email_from: str = ""  # SES verified sender; empty: the email channel refuses (not configured)
    email_region: str = ""  # SES region (no SES in the AWS China regions); empty: the default region
    # voice calls (text to speech): "" none (the channel refuses), "aliyun" Alibaba Cloud Dyvms SingleCallByTts
    voice_provider: str = field(default="", metadata={"choices": ("", "aliyun")})
    voice_templates: str = ""  # TTS template codes per catalog key, "key=TTS_...,key=TTS_..."
    voice_show_number: str = ""  # the caller number shown (a number bought with the voice service)
    voice_aliyun_endpoint: str = "https://dyvmsapi.aliyuncs.com"
    channel_timeout: float = field(default=5.0, metadata=_above(0))  # seconds per provider request
    # where the tenant H5 pages are served (https://<domain>): template messages and emails link /h5/... there
    h5_base_url: str = ""
    # ledger audit
    audit_batch_size: int = field(default=100, metadata=_at_least(1))
    audit_queue_url: str = ""  # serverless.yml: !Ref LedgerAuditQueue; locally found by name
    notify_queue_url: str = ""  # notification jobs (serverless.yml: !Ref NotificationsQueue); locally found by name
    month_end_queue_url: str = ""  # month-end fan-out (serverless.yml: !Ref MonthEndQueue); locally found by name
    # batch operations (docs/batch.md): the fan-out queue; the one-time schedules' target (the
    # batchDue function) and the role EventBridge Scheduler invokes it with (unset: no schedule
    # is made and the per-minute batchDue starts a scheduled task when it is due)
    batch_queue_url: str = ""
    batch_start_arn: str = ""
    batch_scheduler_role_arn: str = ""
    # console
    default_property: str = ""
    # secrets: ids (names or ARNs) in Secrets Manager, never values
    jwt_secret_id: str = ""  # HS256 key of tenant tokens (32+ characters)
    wechat_secret_id: str = ""  # JSON {"appid", "secret"}: the mini-program's credentials
    wechat_oa_secret_id: str = ""  # JSON {"appid", "secret"}: the official account's (web authorization)
    sms_secret_id: str = ""  # JSON {"key_id", "secret"}: the SMS provider's SecretId/SecretKey (AccessKey)
    voice_secret_id: str = ""  # JSON {"key_id", "secret"}: the voice provider's AccessKey (if one is configured)
    wechatpay_secret_id: str = ""  # JSON: the merchant's configuration and keys (core/integrations/wechatpay.py)
    console_secret_id: str = ""  # the console's session-signing key (32+ characters; docs/console.md)
    site_secret_prefix: str = ""  # + site id: JSON {"current", "previous"?}: a site's signing keys
    secrets_max_age: int = field(default=300, metadata=_at_least(0))  # seconds a fetched secret is cached
    # the AWS endpoint (only the production guard reads it here: botocore finds it itself)
    aws_endpoint: str = field(default="", metadata={"env": "AWS_ENDPOINT_URL"})

    def __post_init__(self) -> None:
        problems = [p for f in fields(self) if (p := _check(f, getattr(self, f.name)))]
        if problems:
            raise SettingsError("; ".join(problems))

    # -- derived ------------------------------------------------------------------------

    @property
    def prod(self) -> bool:
        return self.stage == "prod"

    def resource_name(self, name: str) -> str:
        return f"{SERVICE}-{self.stage}-{name}"

    def secret_id(self, name: str) -> str:
        """The Secrets Manager id of secret `name` (jwt, wechat, wechatpay, console)."""
        return getattr(self, f"{name}_secret_id") or f"{SERVICE}/{self.stage}/{name}"

    def site_secret_id(self, site_id: str) -> str:
        return (self.site_secret_prefix or f"{SERVICE}/{self.stage}/site/") + site_id


FIELDS = {f.name: f for f in fields(Settings)}
TRUE, FALSE = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off", "")


def env_name(name: str) -> str:
    """The environment variable of a Settings field."""
    return FIELDS[name].metadata.get("env") or PREFIX + name.upper()


def _check(f, value) -> str | None:
    """What is wrong with a field's (converted) value, naming its variable; None if nothing."""
    if value is None:
        return None if "None" in f.type else f"{env_name(f.name)}: must be set"
    kind = f.type.split(" | ")[0]
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)) or \
            kind == "float" and (isinstance(value, bool) or not isinstance(value, int | float)
                                 or not math.isfinite(value)) or \
            kind == "bool" and not isinstance(value, bool) or kind == "str" and not isinstance(value, str):
        what = {"int": "an integer", "float": "a finite number", "bool": "true or false"}.get(kind, "text")
        return f"{env_name(f.name)}: must be {what} (got {value!r})"
    if "ge" in f.metadata and value < f.metadata["ge"]:
        return f"{env_name(f.name)}: must be at least {f.metadata['ge']} (got {value!r})"
    if "gt" in f.metadata and value <= f.metadata["gt"]:
        return f"{env_name(f.name)}: must be greater than {f.metadata['gt']} (got {value!r})"
    if "choices" in f.metadata and value not in f.metadata["choices"]:
        return f"{env_name(f.name)}: must be one of {', '.join(map(repr, f.metadata['choices']))} (got {value!r})"
    return None


def _convert(f, text: str):
    """A variable's string as the field's type; a string the field cannot take comes back
    unchanged, so that __post_init__ reports it with the others."""
    kind = f.type.split(" | ")[0]
    value = text.strip()
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            return text
    if kind == "float":
        try:
            return float(value)
        except ValueError:
            return text
    if kind == "bool":
        low = value.lower()
        return True if low in TRUE else False if low in FALSE else text
    return text


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return from_environment(os.environ)


def from_environment(environ: Mapping[str, str]) -> Settings:
    """Settings from environment variables: FEIKONG_<FIELD> (or the field's "env"); values
    are strings, converted by the field's type ("30" -> 30, "1"/"true"/"yes" -> True).
    Raises SettingsError naming every variable that is wrong."""
    return Settings(**{name: _convert(f, environ[env_name(name)]) for name, f in FIELDS.items()
                       if env_name(name) in environ})


def reset_settings() -> None:
    """Forget the settings read so far (tests and the local stack, after changing the environment)."""
    get_settings.cache_clear()


def resource_name(name: str) -> str:
    """feikong-<stage>-<name>: a table's or queue's name in this deployment."""
    return get_settings().resource_name(name)


# -- what an entry point needs --------------------------------------------------------

SECRET_NAMES = ("jwt", "wechat", "wechatpay", "console", "wechat_oa", "sms", "voice")  # + "sites": the site secrets, one per site


@dataclass(frozen=True)
class Needs:
    """Settings (field names) that must be set and secrets (SECRET_NAMES or "sites") that
    must be readable before an entry point can serve. Combined with `|`."""

    settings: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()

    def __or__(self, other: Needs) -> Needs:
        return Needs(self.settings | other.settings, self.secrets | other.secrets)

    def env(self) -> dict[str, str]:
        """{environment variable: what it is} an entry point's deployment must declare."""
        out = {env_name(s): s for s in sorted(self.settings | {"stage"})}
        for s in sorted(self.secrets):
            out[PREFIX + ("SITE_SECRET_PREFIX" if s == "sites" else f"{s.upper()}_SECRET_ID")] = f"secret:{s}"
        return out


def needs(settings: tuple[str, ...] = (), secrets: tuple[str, ...] = ()) -> Needs:
    unknown = [s for s in settings if s not in FIELDS] + \
              [s for s in secrets if s not in (*SECRET_NAMES, "sites")]
    if unknown:
        raise ValueError(f"unknown settings or secrets: {unknown}")
    return Needs(frozenset(settings), frozenset(secrets))


BASE = needs(("stage",))
SITES = needs(secrets=("sites",))  # signs commands to sites, verifies their messages
WECHATPAY = needs(secrets=("wechatpay",))
TENANT_LOGIN = needs(secrets=("jwt", "wechat"))
TENANT_OAUTH = needs(secrets=("wechat_oa",))  # the official account's web authorization (H5 login)
LEDGER_AUDIT = needs(("audit_queue_url",))
NOTIFY_QUEUE = needs(("notify_queue_url",))  # the notification router and sender (docs/notifications.md)
MONTH_END_QUEUE = needs(("month_end_queue_url",))  # month-end's fan-out (docs/billing.md "Month-end at scale")
BATCH_QUEUE = needs(("batch_queue_url",))  # batch operations' fan-out (docs/batch.md)
CONSOLE = needs(secrets=("console",))  # signs the console's session cookies and CSRF tokens
# sends through the channel port (core/integrations/channels.py): mini-program subscribe messages,
# the official account's template messages, SMS (email: SES through the role; voice: none yet)
CHANNELS = needs(secrets=("wechat", "wechat_oa", "sms"))


# -- the production guard ---------------------------------------------------------------

# Secrets that ship in this repository for local runs and the demo (infra/local/paystack.py,
# tests): public, so a production deployment must never use them. tests/unit/test_settings.py
# checks that the local stack's values are listed here.
DEMO_SECRETS = frozenset({
    "local-only-jwt-secret-" + "x" * 20,  # the local stack's JWT secret
    "app-secret-for-local-runs",  # the WeChat API emulator's app secret
    "oa-secret-for-local-runs",  # the WeChat API emulator's official-account secret
    "0123456789abcdefghijklmnopqrstuv",  # the WeChat Pay emulator's APIv3 key
    "test-jwt-secret-that-is-long-enough-0123456789",
    "local-only-console-secret-" + "y" * 20,  # the local stack's console session key
    "sms-secret-key-for-local-runs-0123",  # the SMS emulator's SecretKey / AccessKey secret
})
LOCAL_HOSTS = ("localhost", "0.0.0.0", "::1")  # and 127.*


def _local(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.") or host.endswith(".localhost")


def placeholder_secret(value: str) -> bool:
    """A site secret nobody should sign with: short, one repeated character, a demo value,
    or a word people put in place of a secret."""
    v = value.strip()
    low = v.lower()
    return (len(v) < 32 or len(set(v)) < 8 or v in DEMO_SECRETS
            or any(w in low for w in ("placeholder", "changeme", "change-me", "example", "secret")))


def production_problems(s: Settings, secret_values: dict[str, str] | None = None) -> list[str]:
    """What a prod stage must not start with (empty for other stages). `secret_values`:
    the values of the secrets the entry point fetched ({name: value})."""
    if not s.prod:
        return []
    problems = []
    for name in ("aws_endpoint", "wechatpay_base_url", "wechat_api_base", "wechat_oauth_base",
                 "sms_tencent_endpoint", "sms_aliyun_endpoint", "voice_aliyun_endpoint", "h5_base_url"):
        url = getattr(s, name)
        if url and _local(url):
            problems.append(f"{env_name(name)} points at a local emulator ({url})")
    if s.wechatpay_jsbridge_url:
        problems.append(f"{env_name('wechatpay_jsbridge_url')} loads the WeChat Pay emulator's payment shim "
                        "into tenant pages (local demo and tests only)")
    for name, value in sorted((secret_values or {}).items()):
        if value in DEMO_SECRETS:
            problems.append(f"secret {name} holds a demo value from this repository")
        elif name.startswith("site:") and placeholder_secret(value):
            problems.append(f"secret {name} holds a placeholder, not a site secret")
    return problems


def refuse_in_production(s: Settings, secret_values: dict[str, str] | None = None) -> None:
    problems = production_problems(s, secret_values)
    if problems:
        raise ProductionRefused(f"refusing to start stage {s.stage!r}: " + "; ".join(problems))


def missing(s: Settings, need: Needs) -> list[str]:
    """Settings a `need` asks for that are empty."""
    return [env_name(f) for f in sorted(need.settings) if getattr(s, f) in ("", None)]
