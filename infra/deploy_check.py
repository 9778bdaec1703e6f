"""Offline checks of the deploy artifacts.

1. `serverless package` (Serverless Framework v3 + serverless-python-requirements) with
   dummy credentials, then cfn-lint on the packaged CloudFormation template;
2. the packaged template's tables and queues equal the local stack's definitions;
3. every IAM statement names specific actions on specific resources (least privilege);
4. `zappa package` of the Flask app, in its own virtualenv of runtime dependencies.

    python -m infra.deploy_check [--skip-zappa]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from core.integrations.queues import QUEUES
from core.store.schema import table_specs
from infra.resources import logical_id

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / ".serverless" / "cloudformation-template-update-stack.json"
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIAOFFLINEPACKAGING",
    "AWS_SECRET_ACCESS_KEY": "offline-packaging-only",
    "SLS_TELEMETRY_DISABLED": "1",
    "SLS_NOTIFICATIONS_MODE": "off",
    "SLS_DEPRECATION_DISABLE": "*",
}


class CheckFailed(Exception):
    pass


def _run(cmd: list[str], env: dict | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(cmd, cwd=ROOT, env={**clean, **DUMMY_AWS, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CheckFailed(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def serverless_package(stage: str = "dev") -> dict:
    sls = ROOT / "node_modules" / ".bin" / "serverless"
    if not sls.exists():
        raise CheckFailed("node_modules/.bin/serverless is missing: run `make deps` (npm ci)")
    _run([str(sls), "package", "--stage", stage])
    return json.loads(TEMPLATE.read_text())


# W3005 (a redundant DependsOn) is in the HTTP API route that the Serverless Framework
# itself generates for an httpApi event; nothing in our serverless.yml can remove it.
CFN_LINT_IGNORED = ["W3005"]


def cfn_lint() -> None:
    _run([str(ROOT / ".venv" / "bin" / "cfn-lint"), "--ignore-checks", *CFN_LINT_IGNORED, "--", str(TEMPLATE)])


def _norm_table(props: dict) -> dict:
    keep = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode")
    return {k: props.get(k) for k in keep}


def compare_resources(template: dict, stage: str = "dev") -> None:
    resources = template["Resources"]
    for spec in table_specs():
        rid = logical_id(spec["TableName"], "Table")
        if rid not in resources:
            raise CheckFailed(f"table {spec['TableName']} ({rid}) is missing from the packaged template")
        props = resources[rid]["Properties"]
        if props["TableName"] != f"feikong-{stage}-{spec['TableName']}":
            raise CheckFailed(f"{rid} is named {props['TableName']}")
        if _norm_table(props) != _norm_table(spec):
            raise CheckFailed(f"{rid} differs from core/store/models.py: {props} != {spec}")
    for name in QUEUES:
        rid = logical_id(name, "Queue")
        if rid not in resources or resources[rid]["Properties"]["QueueName"] != f"feikong-{stage}-{name}":
            raise CheckFailed(f"queue {name} is missing or misnamed in the packaged template")


def check_iam(template: dict) -> None:
    for rid, res in template["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(a == "*" or a.endswith(":*") for a in actions):
                    raise CheckFailed(f"{rid}: wildcard action in {actions}")
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                if any(r == "*" for r in resources):
                    raise CheckFailed(f"{rid}: statement for {actions} applies to every resource")
                if any(a.startswith("dynamodb:Transact") for a in actions):
                    raise CheckFailed(f"{rid}: {actions}: transactions are authorised per item action, not by Transact*")


def zappa_package(stage: str = "dev") -> Path:
    venv = ROOT / ".venv-zappa"
    if not (venv / "bin" / "zappa").exists():
        raise CheckFailed(".venv-zappa is missing: run `make deps`")
    out = ROOT / ".local" / f"zappa-{stage}.zip"
    out.parent.mkdir(exist_ok=True)
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "AWS_DEFAULT_REGION": "ap-east-1"}
    _run([str(venv / "bin" / "zappa"), "package", stage, "-o", str(out)], env=env)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.deploy_check")
    parser.add_argument("--skip-zappa", action="store_true")
    args = parser.parse_args(argv)
    try:
        template = serverless_package()
        print("serverless package: ok")
        cfn_lint()
        print("cfn-lint: ok")
        compare_resources(template)
        print("tables and queues match the local definitions: ok")
        check_iam(template)
        print("IAM least privilege: ok")
        if not args.skip_zappa:
            out = zappa_package()
            print(f"zappa package: ok ({out.stat().st_size / 2**20:.1f} MiB)")
    except CheckFailed as e:
        print(f"deploy check failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
