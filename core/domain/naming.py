"""Resource names carry the service and a stage prefix: feikong-<stage>-<name>."""

from __future__ import annotations

import os

SERVICE = "feikong"


def stage() -> str:
    return os.environ.get("FEIKONG_STAGE", "dev")


def resource_name(name: str) -> str:
    return f"{SERVICE}-{stage()}-{name}"
