"""The bridge runs on a site PC with only bridge/requirements.txt installed: importing any
bridge module must load none of the cloud's modules or libraries. Checked in a fresh
interpreter (this test process has imported the cloud side already)."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BRIDGE_MODULES = ["bridge.__main__", "bridge.config", "bridge.outbox", "bridge.profiles", "bridge.runtime",
                  "bridge.simulator"]
# Cloud-side libraries (holiday calendars, DynamoDB, web framework, WeChat, Lambda tooling)
# and every package of ours except core.protocol.
CLOUD = ("chinese_calendar", "holidays", "pynamodb", "flask", "werkzeug", "wechatpayv3", "wechatpy", "jwt",
         "aws_lambda_powertools", "croniter", "core.domain", "core.store", "core.services", "core.integrations",
         "functions", "miniprogram_api", "infra", "cli", "testkit")


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_bridge_modules_load_nothing_of_the_cloud():
    loaded = _loaded_after_import(BRIDGE_MODULES)
    assert {"bridge.runtime", "core.protocol.messages", "pymodbus", "boto3"} <= loaded  # the check sees imports
    cloud = sorted(m for m in loaded if any(m == c or m.startswith(c + ".") for c in CLOUD))
    assert cloud == []


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.split("#")[0].strip()):
            pins[m[1].lower()] = m[2]
    return pins


def test_bridge_requirements_are_pinned_like_the_product():
    bridge, product = _pins(ROOT / "bridge/requirements.txt"), _pins(ROOT / "requirements.txt")
    assert set(bridge) == {"boto3", "pymodbus", "pyserial", "pyyaml"}
    assert {name: product.get(name) for name in bridge} == bridge
