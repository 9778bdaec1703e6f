"""Secrets Manager: the one module that reads and writes secrets.

Reads go through aws-lambda-powertools parameters (a `SecretsProvider`, cached for
`FEIKONG_SECRETS_MAX_AGE` seconds per process), so a warm Lambda asks once per secret per
five minutes. The client is made on first use, here only (one place to share a botocore
session). Locally the emulator's Secrets Manager holds the same secrets, seeded by
infra/local (stack bootstrap, paystack), and is reached through AWS_ENDPOINT_URL like
every other client.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from core import aws
from core.settings import get_settings

_provider = None
_lock = threading.Lock()


class SecretMissing(RuntimeError):
    """A secret the code needs does not exist, cannot be read, or has the wrong shape."""


def provider():
    global _provider
    with _lock:
        if _provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            _provider = SecretsProvider(boto3_client=aws.client("secretsmanager"))  # the shared session
    return _provider


def clear_cache() -> None:
    """Forget fetched values and the client (tests, the local stack, after a rotation here)."""
    global _provider
    with _lock:
        _provider = None


def get(secret_id: str, *, json_keys: tuple[str, ...] = (), force: bool = False):
    """A secret's value: a string, or (json_keys given) a dict holding at least those keys."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    s = get_settings()
    try:
        value = provider().get(secret_id, max_age=s.secrets_max_age, transform="json" if json_keys else None,
                               force_fetch=force)
    except (GetParameterError, TransformParameterError) as e:
        raise SecretMissing(f"secret {secret_id} cannot be read: {str(e)[:300]}") from None
    if json_keys:
        if not isinstance(value, dict) or any(not value.get(k) for k in json_keys):
            raise SecretMissing(f"secret {secret_id} must be a JSON object with {', '.join(json_keys)}")
    elif not isinstance(value, str) or not value:
        raise SecretMissing(f"secret {secret_id} is empty")
    return value


def named(name: str):
    """One of the deployment's secrets by name (jwt, wechat, wechatpay), in its shape."""
    s = get_settings()
    return get(s.secret_id(name), json_keys=SHAPES[name])


SHAPES: dict[str, tuple[str, ...]] = {
    "jwt": (),
    "wechat": ("appid", "secret"),
    "wechatpay": ("appid", "mchid", "cert_serial", "private_key", "apiv3_key", "public_key_id", "public_key",
                  "notify_url"),
}


def _client():
    return provider().client


def put(secret_id: str, value: str | dict, description: str = "") -> None:
    """Write a secret's new version (it becomes AWSCURRENT), creating the secret if absent."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    c = _client()
    try:
        c.put_secret_value(SecretId=secret_id, SecretString=text)
    except c.exceptions.ResourceNotFoundException:
        c.create_secret(Name=secret_id, SecretString=text, Description=description or "feikong")


def create_if_absent(secret_id: str, value: str | dict, description: str = "") -> bool:
    """Create a secret with `value`; False (and nothing written) if it exists already."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    c = _client()
    try:
        c.create_secret(Name=secret_id, SecretString=text, Description=description or "feikong")
        return True
    except c.exceptions.ResourceExistsException:
        return False


# -- site keys ------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteKeys:
    """A site's signing keys: `current` signs and verifies; `previous` (during a rotation)
    still verifies."""

    current: str
    previous: str = ""

    def to_dict(self) -> dict:
        return {"current": self.current, **({"previous": self.previous} if self.previous else {})}


def site_keys(site_id: str, force: bool = False) -> SiteKeys:
    value = get(get_settings().site_secret_id(site_id), json_keys=("current",), force=force)
    return SiteKeys(value["current"], value.get("previous") or "")


def put_site_keys(site_id: str, keys: SiteKeys) -> None:
    put(get_settings().site_secret_id(site_id), keys.to_dict())


def create_site_keys(site_id: str, keys: SiteKeys) -> SiteKeys:
    """Create a site's secret; if it exists (a registration retried), the keys it holds."""
    if create_if_absent(get_settings().site_secret_id(site_id), keys.to_dict(), f"feikong site {site_id}"):
        return keys
    return site_keys(site_id, force=True)
