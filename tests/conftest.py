"""Shared fixtures. Integration and e2e tests run against a real moto server over HTTP:
the one `make test` started (AWS_ENDPOINT_URL), or one started here on a free port (always
so under pytest-xdist: one emulator per worker)."""

from __future__ import annotations

import os

import pytest

from core.settings import reset_settings

# powertools without X-Ray (no daemon here) for tests run without the local stack's variables too
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Feikong")
from infra.local.stack import Emulator, apply_env, bootstrap, free_port, is_emulator
from testkit.builders import Metered, World


@pytest.fixture(scope="session")
def aws():
    url = os.environ.get("AWS_ENDPOINT_URL")
    emulator = None
    # under pytest-xdist (make test runs two workers) each worker has an emulator of its
    # own: tests that count requests or scan a table see only their worker's traffic
    if not url or not is_emulator(url) or os.environ.get("PYTEST_XDIST_WORKER"):
        emulator = Emulator(free_port()).start()
        apply_env(emulator.port)
    bootstrap()
    yield os.environ["AWS_ENDPOINT_URL"]
    if emulator:
        emulator.stop()


@pytest.fixture
def world(aws) -> World:
    return World()


@pytest.fixture
def metered(aws) -> Metered:
    return Metered()


@pytest.fixture(autouse=True)
def _fresh_settings():
    """Settings are read once per process (core/settings.py): each test starts from the
    environment as it is."""
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def setenv(monkeypatch):
    """setenv(NAME, value) / setenv(NAME, None): change a setting for this test (the settings
    cache is cleared each time, and again once the environment is restored)."""

    def change(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
        reset_settings()

    yield change
    monkeypatch.undo()
    reset_settings()
