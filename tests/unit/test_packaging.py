"""What ships: the wheel and the deploy packages carry product code only, never the local
stack, the fakes, the test kit, the tests or the benchmarks."""

import json
import tomllib
from pathlib import Path

from setuptools import find_namespace_packages

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = {"core", "functions", "miniprogram_api", "bridge", "cli"}
NOT_SHIPPED = {"infra", "testkit", "tests", "bench"}


def test_the_wheel_finds_product_packages_only():
    # pyproject.toml's [tool.setuptools.packages.find], as setuptools applies it (namespaces on by default)
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    found = find_namespace_packages(where=str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert {name.split(".")[0] for name in found} == PRODUCT
    assert {"core.services", "cli", "miniprogram_api"} <= set(found)


def test_zappa_leaves_out_what_does_not_ship():
    # zappa matches each name against every file and folder name; the packaged zip is checked in
    # tests/e2e/test_deploy_artifacts.py
    exclude = set(json.loads((ROOT / "zappa_settings.json").read_text())["dev"]["exclude"])
    assert exclude >= NOT_SHIPPED
