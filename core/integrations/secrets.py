"""Secrets Manager: the one module that reads and writes secrets.

Reads are cached per process for `FEIKONG_SECRETS_MAX_AGE` seconds (default 300), so a
warm Lambda asks once per secret per five minutes; `force` reads afresh (a site key that
no longer verifies, a rotation). The client is the shared botocore session's
(core/aws.py), made on first use, here only. Locally the emulator's Secrets Manager holds
the same secrets, seeded by infra/local (stack bootstrap, paystack), and is reached
through AWS_ENDPOINT_URL like every other client.

This was powertools parameters' `SecretsProvider`: its module imports boto3 (the resource
layer, which nothing of ours uses) on top of botocore, 70-80 ms of every cold start
(about a quarter of the first-notification baseline, docs/cold-start.md), for a
GetSecretValue and an expiry time.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from core import aws
from core.settings import get_settings

_lock = threading.Lock()
_cache: dict[str, tuple[float, str]] = {}  # secret id -> (fetched at, monotonic; SecretString)


class SecretMissing(RuntimeError):
    """A secret the code needs does not exist, cannot be read, or has the wrong shape."""


def clear_cache() -> None:
    """Forget fetched values (tests, the local stack, after a rotation here)."""
    with _lock:
        _cache.clear()


def _read(secret_id: str, force: bool) -> str:
    max_age = get_settings().secrets_max_age
    now = time.monotonic()
    with _lock:
        hit = _cache.get(secret_id)
    if hit is not None and not force and now - hit[0] < max_age:
        return hit[1]
    c = _client()
    try:
        text = c.get_secret_value(SecretId=secret_id).get("SecretString")
    except Exception as e:  # not found, no permission, unreachable: the caller says which secret
        raise SecretMissing(f"secret {secret_id} cannot be read: {str(e)[:300]}") from None
    if not isinstance(text, str) or not text:
        raise SecretMissing(f"secret {secret_id} is empty")
    if max_age > 0:
        with _lock:
            _cache[secret_id] = (now, text)
    return text


def get(secret_id: str, *, json_keys: tuple[str, ...] = (), force: bool = False):
    """A secret's value: a string, or (json_keys given) a dict holding at least those keys."""
    text = _read(secret_id, force)
    if not json_keys:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict) or any(not value.get(k) for k in json_keys):
        raise SecretMissing(f"secret {secret_id} must be a JSON object with {', '.join(json_keys)}")
    return value


def named(name: str):
    """One of the deployment's secrets by name (jwt, wechat, wechatpay, console), in its shape."""
    s = get_settings()
    return get(s.secret_id(name), json_keys=SHAPES[name])


SHAPES: dict[str, tuple[str, ...]] = {
    "jwt": (),
    "console": (),  # the console's session key: a string of 32+ characters
    "wechat": ("appid", "secret"),
    "wechat_oa": ("appid", "secret"),  # the official account (web authorization)
    "sms": ("key_id", "secret"),  # the SMS provider's SecretId/SecretKey (Tencent) or AccessKey (Alibaba Cloud)
    "voice": ("key_id", "secret"),  # the voice provider's AccessKey (Alibaba Cloud), when one is configured
    "wechatpay": ("appid", "mchid", "cert_serial", "private_key", "apiv3_key", "public_key_id", "public_key",
                  "notify_url"),
}


def _client():
    return aws.client("secretsmanager")


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
