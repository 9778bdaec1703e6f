"""What a cold start loads (docs/cold-start.md): importing a Lambda handler loads neither
the store nor any SDK (they load with the first invocation), and the Flask app, the
payment adapter and the calendar load their heavy libraries on first use. Checked in a
fresh interpreter: this test process has imported everything already."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = sorted(f"functions.{p.stem}" for p in (ROOT / "functions").glob("*.py") if p.stem != "__init__")
LAZY = ("botocore.session", "botocore.client", "boto3", "pynamodb", "wechatpayv3", "wechatpy", "requests", "jwt",
        "cryptography", "holidays", "chinese_calendar", "aws_xray_sdk")  # X-Ray: on the first traced invocation


def _loaded_after_import(modules: list[str]) -> set[str]:
    code = f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def test_each_handler_module_loads_no_store_and_no_sdk():
    for handler in HANDLERS:
        loaded = _loaded_after_import([handler])
        assert handler in loaded and "aws_lambda_powertools.logging" in loaded  # the check sees imports
        assert _heavy(loaded, (*LAZY, "core.store", "core.services.payments", "core.services.ingest")) == [], handler


def test_the_flask_app_object_loads_flask_and_leaves_the_store_and_sdks_for_the_first_request():
    loaded = _loaded_after_import(["miniprogram_api.wsgi"])
    assert {"flask", "miniprogram_api.tenant", "miniprogram_api.services"} <= loaded
    assert _heavy(loaded, (*LAZY, "core.store", "core.services.payments", "core.services.auth",
                           "core.integrations.wechatpay")) == []


def test_the_calendar_loads_its_libraries_on_the_first_day_asked():
    code = ("import json, sys\nfrom datetime import date\nfrom core.domain import calendar\n"
            "before = 'chinese_calendar' in sys.modules or 'holidays' in sys.modules\n"
            # 2024-10-01 National Day; 2024-10-12 a Saturday worked (调休); 2024-10-13 a plain Sunday
            "days = [calendar.day_type(date(2024, 10, d)) for d in (1, 12, 13)]\n"
            "print(json.dumps([before, days, 'chinese_calendar' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, ["holiday", "workday", "weekend"], True]
