"""Offline checks of the deploy artifacts.

1. `serverless package` (Serverless Framework v3 + serverless-python-requirements) with
   dummy credentials, then cfn-lint on the packaged CloudFormation template;
2. the packaged template's tables and queues equal the local stack's definitions;
3. every IAM statement names specific actions on specific resources (least privilege);
4. every function declares the settings and secrets its code needs (the `NEEDS` of its
   handler's module, core/settings.py), and its role may read exactly those secrets;
   zappa_settings.json likewise for the Flask app (its role is managed outside: names only);
5. operations (docs/operations.md): reserved concurrency within the documented budget, every
   queue encrypted, an on-failure destination for every asynchronous function, an alarm per
   function and dead-letter queue, tracing, access logs and route throttling (the Flask
   app's REST API stage too: zappa's post-deploy callback, infra/deploy/zappa_stage.py);
6. checkov on the packaged template and on zappa's API Gateway template (`zappa template`),
   with the documented skips below; every other check must pass;
7. `zappa package` of the Flask app, in its own virtualenv of runtime dependencies.

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
from infra.deploy.bytecode import compile_product
from infra.deploy.resources import logical_id

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".serverless" / "cloudformation-template-update-stack.json"
# pip (serverless-python-requirements) compiles the bundled libraries checked-hash when this is
# set (py_compile's default), so their .pyc files stay valid in a zip that keeps no times
REPRODUCIBLE_PYC = {"SOURCE_DATE_EPOCH": "315532800"}
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
    compile_product()  # our .pyc files ship with the code
    _run([str(sls), "package", "--stage", stage], env=REPRODUCIBLE_PYC)
    return json.loads(TEMPLATE.read_text())


# W3005 (a redundant DependsOn) is in the HTTP API route that the Serverless Framework
# itself generates for an httpApi event; nothing in our serverless.yml can remove it.
CFN_LINT_IGNORED = ["W3005"]


def cfn_lint() -> None:
    _run([str(ROOT / ".venv" / "bin" / "cfn-lint"), "--ignore-checks", *CFN_LINT_IGNORED, "--", str(TEMPLATE)])


def _norm_table(props: dict) -> dict:
    keep = ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "BillingMode")
    return {**{k: props.get(k) for k in keep},
            "StreamViewType": (props.get("StreamSpecification") or {}).get("StreamViewType")}


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


# X-Ray's PutTraceSegments/PutTelemetryRecords take no resource: "*" is the only way to grant them
# (the Serverless Framework adds this statement for `provider.tracing.lambda`).
ANY_RESOURCE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


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
                if any(r == "*" for r in resources) and not set(actions) <= ANY_RESOURCE_ACTIONS:
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


# -- operations: concurrency, failures, alarms, encryption, tracing, logs (docs/operations.md) --

# Lambda's default concurrency per account and region (ask for it before the first deploy
# where the account has less); AWS keeps at least 100 of it unreserved.
ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MIN = 100
# the functions that cut, restore and ingest: their reservation is theirs alone
GUARANTEED = {"UplinkConsumerLambdaFunction", "ControlTickLambdaFunction"}
# every other function (payments, batch jobs, the zappa tenant API) together reserves at most this
OTHERS_BUDGET = 100
POWERTOOLS_ENV = {"POWERTOOLS_SERVICE_NAME": "feikong", "POWERTOOLS_METRICS_NAMESPACE": "Feikong"}


def _of_type(template: dict, kind: str) -> dict:
    return {rid: r for rid, r in template["Resources"].items() if r["Type"] == kind}


def _ref_id(value) -> str | None:
    """The logical id a Ref / Fn::GetAtt names."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".")[0]
    return None


def async_functions(template: dict) -> set[str]:
    """Functions something invokes asynchronously: EventBridge rules' targets (schedules)."""
    out = set()
    for rule in _of_type(template, "AWS::Events::Rule").values():
        for target in rule["Properties"].get("Targets", []):
            out.add(_ref_id(target["Arn"]))
    return out


def check_operations(template: dict, zappa: dict | None = None, stage: str = "dev") -> None:
    problems = []
    functions = _of_type(template, "AWS::Lambda::Function")
    queues = _of_type(template, "AWS::SQS::Queue")
    alarms = _of_type(template, "AWS::CloudWatch::Alarm").values()
    dlqs = {_ref_id(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            for q in queues.values() if "RedrivePolicy" in q["Properties"]}

    # concurrency: every function reserved; the guaranteed ones' share cannot be taken
    reserved = {rid: f["Properties"].get("ReservedConcurrentExecutions") for rid, f in functions.items()}
    if zappa is not None:  # the tenant API (zappa's `lambda_concurrency`)
        reserved[f"zappa {stage}"] = zappa[stage].get("lambda_concurrency")
    for rid, n in reserved.items():
        if not isinstance(n, int) or n < 1:
            problems.append(f"{rid}: no reserved concurrency")
    others = sum(n or 0 for rid, n in reserved.items() if rid not in GUARANTEED)
    if others > OTHERS_BUDGET:
        problems.append(f"the non-guaranteed functions reserve {others} > {OTHERS_BUDGET} (docs/operations.md)")
    if sum(n or 0 for n in reserved.values()) > ACCOUNT_CONCURRENCY - UNRESERVED_MIN:
        problems.append(f"reservations leave less than {UNRESERVED_MIN} of {ACCOUNT_CONCURRENCY} unreserved")
    for rid, m in _of_type(template, "AWS::Lambda::EventSourceMapping").items():
        fn = _ref_id(m["Properties"]["FunctionName"])
        if "StartingPosition" in m["Properties"]:  # a stream (the events table's): no poller concurrency to cap,
            # but a failing batch blocks its shard: bounded retries, then the batch goes to a retained queue
            props = m["Properties"]
            target = _ref_id(props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
            if target not in queues:
                problems.append(f"{rid}: a stream mapping needs an on-failure destination queue")
            else:
                dlqs.add(target)
            if not isinstance(props.get("MaximumRetryAttempts"), int) or props["MaximumRetryAttempts"] < 0:
                problems.append(f"{rid}: a stream mapping must bound its retries (MaximumRetryAttempts)")
            continue
        cap = m["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency")
        if not isinstance(cap, int) or cap > (reserved.get(fn) or 0):
            problems.append(f"{rid}: the poller's MaximumConcurrency ({cap}) must not exceed {fn}'s reserved concurrency")

    # failures: an on-failure destination for every asynchronous function, to a retained queue
    destinations = {_ref_id(c["Properties"]["FunctionName"]):
                    _ref_id(c["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"))
                    for c in _of_type(template, "AWS::Lambda::EventInvokeConfig").values()}
    for fn in sorted(async_functions(template)):
        target = destinations.get(fn)
        if target not in queues:
            problems.append(f"{fn} is invoked asynchronously but has no on-failure destination queue")
        else:
            dlqs.add(target)
    for q in sorted(dlqs):
        if queues.get(q, {}).get("DeletionPolicy") != "Retain" or queues[q].get("UpdateReplacePolicy") != "Retain":
            problems.append(f"{q}: a dead-letter queue must be retained (DeletionPolicy/UpdateReplacePolicy)")

    # alarms: errors and throttles per function, depth per dead-letter queue, all to the topic
    def alarmed(namespace, metric, rid):
        return any(a["Properties"]["Namespace"] == namespace and a["Properties"]["MetricName"] == metric
                   and any(_ref_id(d["Value"]) == rid for d in a["Properties"]["Dimensions"]) for a in alarms)
    for rid in sorted(functions):
        for metric in ("Errors", "Throttles"):
            if not alarmed("AWS/Lambda", metric, rid):
                problems.append(f"{rid}: no {metric} alarm")
    for q in sorted(dlqs):
        if not alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible", q):
            problems.append(f"{q}: no depth alarm")
    if not alarmed("AWS/SQS", "ApproximateAgeOfOldestMessage", "UplinkQueue"):
        problems.append("UplinkQueue: no oldest-message age alarm")
    for a in alarms:
        if a["Properties"].get("AlarmActions") != [{"Ref": "AlarmTopic"}]:
            problems.append(f"{a['Properties']['AlarmName']}: does not notify AlarmTopic")

    # encryption, tracing, metrics settings
    for rid, q in sorted(queues.items()):
        if q["Properties"].get("SqsManagedSseEnabled") is not True and not q["Properties"].get("KmsMasterKeyId"):
            problems.append(f"{rid}: not encrypted")
    for rid, f in sorted(functions.items()):
        if f["Properties"].get("TracingConfig", {}).get("Mode") != "Active":
            problems.append(f"{rid}: X-Ray tracing is not active")
        env = f["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in POWERTOOLS_ENV.items():
            if env.get(name) != value:
                problems.append(f"{rid}: {name} is not {value}")

    # the HTTP API: access logs, and a throttle on every route
    routes = [r["Properties"]["RouteKey"] for r in _of_type(template, "AWS::ApiGatewayV2::Route").values()]
    for rid, st in _of_type(template, "AWS::ApiGatewayV2::Stage").items():
        props = st["Properties"]
        if not props.get("AccessLogSettings", {}).get("DestinationArn"):
            problems.append(f"{rid}: no access logs")
        default = props.get("DefaultRouteSettings", {})
        for route in routes:
            limits = {**default, **props.get("RouteSettings", {}).get(route, {})}
            if not (limits.get("ThrottlingRateLimit") and limits.get("ThrottlingBurstLimit")):
                problems.append(f"{rid}: route {route} is not throttled")

    bucket = template["Resources"].get("ServerlessDeploymentBucket", {}).get("Properties", {})
    block = bucket.get("PublicAccessBlockConfiguration", {})
    if not all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls",
                                                  "RestrictPublicBuckets")):
        problems.append("the deployment bucket does not block public access")
    if bucket.get("VersioningConfiguration", {}).get("Status") != "Enabled":
        problems.append("the deployment bucket is not versioned")

    if zappa is not None:
        cfg = zappa[stage]
        if cfg.get("xray_tracing") is not True:
            problems.append(f"zappa_settings.json {stage}: xray_tracing is not on")
        # the REST API stage's throttle: zappa has no setting for it, its post-deploy callback applies it
        problems += [f"zappa_settings.json {stage}: {p}" for p in zappa_throttling_problems(cfg)]
        env = cfg.get("environment_variables", {})
        for name, value in POWERTOOLS_ENV.items():
            if env.get(name) != value:
                problems.append(f"zappa_settings.json {stage}: {name} is not {value}")
    if problems:
        raise CheckFailed("operations:\n  " + "\n  ".join(problems))


def zappa_throttling_problems(cfg: dict) -> list[str]:
    """The Flask app's API Gateway stage is throttled: zappa's `post` callback is
    infra/deploy/zappa_stage.py (it applies the stage's `feikong_stage_throttling` after
    every deploy and update) and the limits are sane."""
    from infra.deploy import zappa_stage

    problems = []
    if cfg.get("callbacks", {}).get("post") != zappa_stage.CALLBACK:
        problems.append(f"callbacks.post is not {zappa_stage.CALLBACK} (the stage would not be throttled)")
    return problems + zappa_stage.throttling_problems(cfg)


# -- checkov ----------------------------------------------------------------------------

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
# Checks that do not apply, each with its reason (docs/operations.md, checkov). Every other
# check must pass. Each id concerns one resource type, so skipping it globally skips no more.
CHECKOV_SKIPS = {
    # the functions reach only AWS APIs and WeChat Pay over HTTPS: a VPC adds NAT gateways
    # (a fixed monthly cost per zone) and no isolation that the role's least privilege lacks
    "CKV_AWS_117": "Lambda function in a VPC",
    # checkov reads only DeadLetterConfig. The asynchronous (scheduled) functions have on-failure
    # destinations instead (the record carries the error too), SQS consumers fail to their
    # queue's redrive DLQ, the HTTP function is invoked synchronously: check_operations
    "CKV_AWS_116": "Lambda DeadLetterConfig",
    # the variables hold names and secret ids, never secrets (Secrets Manager has those);
    # Lambda encrypts them at rest with its service key
    "CKV_AWS_173": "Lambda environment encrypted with a customer KMS key",
    # tables are encrypted with the AWS-managed key (SSEEnabled); a customer key would add
    # a key policy to run and a monthly cost, and no control we use
    "CKV_AWS_119": "DynamoDB encrypted with a customer KMS key",
    # CloudWatch Logs encrypts at rest already; the logs carry ids, not secrets or card data
    "CKV_AWS_158": "log group encrypted with a customer KMS key",
    # the check knows only KmsMasterKeyId; every queue has SQS-managed SSE
    # (SqsManagedSseEnabled), which check_operations verifies on every queue
    "CKV_AWS_27": "SQS queue encrypted with KMS",
    # CloudWatch alarms cannot publish to a topic under the AWS-managed aws/sns key (only a
    # customer key whose policy admits CloudWatch); an alarm message holds names and values only
    "CKV_AWS_26": "SNS topic encrypted with KMS",
    # logging the deployment bucket needs a second bucket (itself unlogged); only
    # CloudFormation reads it, and CloudTrail records who changes it
    "CKV_AWS_18": "S3 access logging on the deployment bucket",
}
ZAPPA_CHECKOV_SKIPS = {
    # the tenant API and the console authenticate in the app (tenant sessions: JWT;
    # docs/tenant-auth.md), so API Gateway's methods are open by design
    "CKV_AWS_59": "API Gateway method without authorization",
}


def checkov(path: Path, skips: dict[str, str]) -> dict:
    """checkov on one CloudFormation template, offline (no download of its guidelines). Every
    check must pass except the documented skips, and each skip must still be needed (it is
    run, not skipped, and must fail only where the list says it does not apply).
    Returns {"passed": n, "skipped": {check id: resources}}."""
    if not CHECKOV.exists():
        raise CheckFailed(".venv-checkov is missing: run `make deps`")
    cmd = [str(CHECKOV), "-f", str(path), "--framework", "cloudformation", "--skip-download", "--quiet",
           "--compact", "-o", "json"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BC_", "PRISMA_"))}
    proc = subprocess.run(cmd, cwd=ROOT, env=clean, capture_output=True, text=True)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise CheckFailed(f"checkov failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}") from None
    # with no failure checkov prints only its summary
    summary = report.get("summary", report)
    failed = report.get("results", {}).get("failed_checks", [])
    if summary.get("parsing_errors"):
        raise CheckFailed(f"checkov could not parse {path.name}: {summary}")
    unexpected = [f"{f['check_id']} {f['resource']}: {f['check_name']}" for f in failed if f["check_id"] not in skips]
    if unexpected:
        raise CheckFailed(f"checkov on {path.name}:\n  " + "\n  ".join(unexpected))
    skipped: dict[str, list[str]] = {}
    for f in failed:
        skipped.setdefault(f["check_id"], []).append(f["resource"])
    unused = sorted(set(skips) - set(skipped))
    if unused:
        raise CheckFailed(f"checkov on {path.name}: skips no longer needed, remove them: {unused}")
    return {"passed": summary.get("passed", 0), "skipped": skipped}


def zappa_template(stage: str = "dev") -> Path:
    """zappa's CloudFormation template of the API Gateway it deploys, made offline (the
    function and role ARNs are placeholders; zappa creates the stage itself by API calls)."""
    venv = ROOT / ".venv-zappa"
    if not (venv / "bin" / "zappa").exists():
        raise CheckFailed(".venv-zappa is missing: run `make deps`")
    out = ROOT / ".local" / f"zappa-template-{stage}.json"
    out.parent.mkdir(exist_ok=True)
    env = {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "AWS_DEFAULT_REGION": "ap-east-1"}
    _run([str(venv / "bin" / "zappa"), "template", stage,
          "--lambda-arn", f"arn:aws:lambda:ap-east-1:000000000000:function:feikong-api-{stage}",
          "--role-arn", f"arn:aws:iam::000000000000:role/feikong-{stage}-api",
          "-o", str(out)], env=env)
    return out


def zappa_settings() -> dict:
    return json.loads((ROOT / "zappa_settings.json").read_text())


def zappa_package(stage: str = "dev") -> Path:
    venv = ROOT / ".venv-zappa"
    if not (venv / "bin" / "zappa").exists():
        raise CheckFailed(".venv-zappa is missing: run `make deps`")
    compile_product()
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
        check_operations(template, zappa_settings())
        print("concurrency, failure destinations, alarms, encryption, tracing, access logs: ok")
        report = checkov(TEMPLATE, CHECKOV_SKIPS)
        print(f"checkov (serverless): ok, {report['passed']} passed, documented skips: {sorted(report['skipped'])}")
        if not args.skip_zappa:
            report = checkov(zappa_template(), ZAPPA_CHECKOV_SKIPS)
            print(f"checkov (zappa): ok, {report['passed']} passed, documented skips: {sorted(report['skipped'])}")
            out = zappa_package()
            print(f"zappa package: ok ({out.stat().st_size / 2**20:.1f} MiB)")
    except CheckFailed as e:
        print(f"deploy check failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
