"""The deploy artifacts, checked offline: serverless package + cfn-lint, the packaged
template against the local table/queue definitions, least-privilege IAM, zappa package."""

import json
import zipfile

from infra import deploy_check


def test_serverless_package_cfn_lint_and_resources_match():
    template = deploy_check.serverless_package()
    deploy_check.cfn_lint()
    deploy_check.compare_resources(template)
    deploy_check.check_iam(template)
    fn = template["Resources"]["LedgerAuditLambdaFunction"]["Properties"]
    assert fn["Handler"] == "functions/ledger_audit.handler" and fn["Runtime"] == "python3.11"
    rules = sorted(r["Properties"]["ScheduleExpression"] for r in template["Resources"].values()
                   if r["Type"] == "AWS::Events::Rule")
    assert rules == ["cron(0 2 * * ? *)", "cron(30 18 * * ? *)", "rate(1 minute)", "rate(1 minute)"]
    routes = [r["Properties"]["RouteKey"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert routes == ["POST /wechatpay/notify"]
    mappings = [r["Properties"] for r in template["Resources"].values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 1 and mappings[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mappings[0]["EventSourceArn"] == {"Fn::GetAtt": ["UplinkQueue", "Arn"]}
    text = json.dumps(template)
    assert "arn:aws:" not in text  # partition-neutral, so it deploys to AWS China too


def test_zappa_packages_the_flask_app():
    out = deploy_check.zappa_package()
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
    assert "miniprogram_api/app.py" in names and "core/services/ledger.py" in names
    assert not any(n.startswith(("tests/", "bench/", "node_modules/")) for n in names)
