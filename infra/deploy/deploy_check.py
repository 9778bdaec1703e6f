"""Offline checks of the deploy artifacts.

1. `serverless package` (Serverless Framework v3 + serverless-python-requirements) with
   dummy credentials, then cfn-lint on the packaged CloudFormation template;
2. the packaged template's tables and queues equal the local stack's definitions;
3. every IAM statement names specific actions on specific resources (least privilege);
4. every function declares the settings and secrets its code needs (the `NEEDS` of its
   handler's module, core/settings.py), and its role may read exactly those secrets;
   zappa_settings.json likewise for the Flask app (its role is managed outside: names only);
5. `zappa package` of the Flask app, in its own virtualenv of runtime dependencies.

    python -m infra.deploy.deploy_check [--skip-zappa]
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from core.integrations.queues import QUEUES
from core.store.schema import table_specs
from infra.deploy.resources import logical_id

ROOT = Path(__file__).resolve().parents[2]
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


# -- settings and secrets each entry point needs --------------------------------------


def needs_of(module_name: str):
    """The `NEEDS` an entry point module declares (core.settings.Needs): defined in it, or
    imported into it (then read from where it is defined, so that a module that checks
    its deployment at import, such as miniprogram_api/wsgi.py, is not run here)."""
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise CheckFailed(f"{module_name}: no such module")
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.ImportFrom) and any(a.name == "NEEDS" for a in node.names):
            return importlib.import_module(node.module).NEEDS
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NEEDS" for t in node.targets):
            return importlib.import_module(module_name).NEEDS
    raise CheckFailed(f"{module_name} declares no NEEDS (core/settings.py): what does it need deployed?")


def secret_arn(secret_id: str, prefix: bool = False) -> str:
    """The partition-neutral ARN pattern (an Fn::Sub string) that grants one secret, or
    (prefix) every secret under a name prefix."""
    return (f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{secret_id}"
            + ("*" if prefix else "-??????"))


def _sub(value) -> str | None:
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    return value if isinstance(value, str) else None


def _missing_env(env: dict, need, where: str) -> list[str]:
    problems = []
    for name in need.env():
        value = env.get(name)
        if value is None or value == "":
            problems.append(f"{where}: {name} is not set (its code needs it: {need.env()[name]})")
    return problems


def _secret_grants(template: dict, role_ref) -> set[str]:
    rid = role_ref.get("Fn::GetAtt", [None])[0] if isinstance(role_ref, dict) else None
    role = template["Resources"].get(rid or "", {})
    grants = set()
    for policy in role.get("Properties", {}).get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            if st.get("Effect") == "Allow" and "secretsmanager:GetSecretValue" in actions:
                resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                grants |= {r for r in map(_sub, resources) if r}
    return grants


def check_needs(template: dict, zappa: dict | None = None, stage: str = "dev") -> None:
    """Every function of the packaged template (and the zappa app) declares what its code
    needs; each role may read the secrets its functions need, and no other."""
    problems = []
    granted: dict[str, set[str]] = {}
    used: dict[str, set[str]] = {}
    for rid, res in template["Resources"].items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        props = res["Properties"]
        module = props["Handler"].rsplit(".", 1)[0].replace("/", ".")
        need = needs_of(module)
        env = props.get("Environment", {}).get("Variables", {})
        problems += _missing_env(env, need, rid)
        role = json.dumps(props.get("Role"), sort_keys=True)
        grants = granted.setdefault(role, _secret_grants(template, props.get("Role")))
        for var, what in need.env().items():
            if not what.startswith("secret:") or not isinstance(env.get(var), str) or not env.get(var):
                continue
            arn = secret_arn(env[var], prefix=what == "secret:sites")
            used.setdefault(role, set()).add(arn)
            if arn not in grants:
                problems.append(f"{rid}: its role may not read {what[7:]} ({arn})")
    for role, grants in granted.items():
        for extra in sorted(grants - used.get(role, set())):
            problems.append(f"a role grants secretsmanager:GetSecretValue on {extra}, which no function of it needs")
    if zappa is not None:
        cfg = zappa[stage]
        need = needs_of(cfg["app_function"].rsplit(".", 1)[0])
        problems += _missing_env(cfg.get("environment_variables", {}), need, f"zappa_settings.json {stage}")
    if problems:
        raise CheckFailed("settings and secrets:\n  " + "\n  ".join(problems))


def zappa_settings() -> dict:
    return json.loads((ROOT / "zappa_settings.json").read_text())


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
    parser = argparse.ArgumentParser(prog="python -m infra.deploy.deploy_check")
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
        check_needs(template, zappa_settings())
        print("every function's settings and secrets declared and granted: ok")
        if not args.skip_zappa:
            out = zappa_package()
            print(f"zappa package: ok ({out.stat().st_size / 2**20:.1f} MiB)")
    except CheckFailed as e:
        print(f"deploy check failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
