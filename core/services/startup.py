"""The cold-start check of an entry point: its settings set, its secrets readable, and,
on the prod stage, nothing that belongs to a local or demo run (core/settings.py).

Each entry point declares `NEEDS` (a `core.settings.Needs`) and calls `check_start(NEEDS)`
once per process (`cold_start` does it on a Lambda handler's first invocation); the
offline deploy check reads the same `NEEDS` against serverless.yml and zappa_settings.json.
"""

from __future__ import annotations

import functools
import threading

from core.integrations import secrets
from core.settings import Needs, ProductionRefused, SettingsError, get_settings, missing, refuse_in_production

_checked: set[Needs] = set()
_lock = threading.Lock()


class StartRefused(RuntimeError):
    """An entry point cannot serve: one message saying everything that is wrong."""


def _secret_text(value) -> list[str]:
    if isinstance(value, dict):
        return [v for k, v in value.items() if k in ("secret", "private_key", "apiv3_key") and isinstance(v, str)]
    return [value]


def check_start(need: Needs) -> None:
    """Raise StartRefused (one clear message) unless this process can serve `need`."""
    with _lock:
        if need in _checked:
            return
    try:
        s = get_settings()
    except SettingsError as e:
        raise StartRefused(f"cannot start: {e}") from None
    problems = [f"{name} is not set" for name in missing(s, need)]
    values: dict[str, str] = {}
    for name in sorted(need.secrets - {"sites"}):
        try:
            for i, text in enumerate(_secret_text(secrets.named(name))):
                values[f"{name}#{i}" if i else name] = text
        except secrets.SecretMissing as e:
            problems.append(str(e))
    try:
        refuse_in_production(s, values)
    except ProductionRefused as e:
        problems.append(str(e))
    if problems:
        raise StartRefused(f"cannot start (stage {s.stage}): " + "; ".join(problems))
    with _lock:
        _checked.add(need)


def reset() -> None:
    with _lock:
        _checked.clear()


def cold_start(need: Needs):
    """Decorator for a Lambda handler: `check_start(need)` before its first invocation
    (and again after a refusal, so a fixed secret is picked up without a redeploy)."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(event, context):
            check_start(need)
            return handler(event, context)

        return run

    return wrap
