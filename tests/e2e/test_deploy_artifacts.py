"""The deploy artifacts, checked offline: serverless package + cfn-lint, the packaged
template against the local table/queue definitions, least-privilege IAM, zappa package."""

import json
import zipfile

import pytest

from infra.deploy import deploy_check


def test_serverless_package_cfn_lint_and_resources_match():
    template = deploy_check.serverless_package()
    deploy_check.cfn_lint()
    deploy_check.compare_resources(template)
    deploy_check.check_iam(template)
    deploy_check.check_needs(template, deploy_check.zappa_settings())
    # the same template with one function's secret left out fails the check
    broken = json.loads(json.dumps(template))
    del broken["Resources"]["UplinkConsumerLambdaFunction"]["Properties"]["Environment"]["Variables"][
        "FEIKONG_SITE_SECRET_PREFIX"]
    with pytest.raises(deploy_check.CheckFailed, match="UplinkConsumerLambdaFunction: FEIKONG_SITE_SECRET_PREFIX"):
        deploy_check.check_needs(broken)
    fn = template["Resources"]["LedgerAuditLambdaFunction"]["Properties"]
    assert fn["Handler"] == "functions/ledger_audit.handler" and fn["Runtime"] == "python3.11"
    rules = sorted(r["Properties"]["ScheduleExpression"] for r in template["Resources"].values()
                   if r["Type"] == "AWS::Events::Rule")
    assert rules == ["cron(0 2 * * ? *)", "cron(30 18 * * ? *)", "rate(1 minute)", "rate(1 minute)"]
    routes = [r["Properties"]["RouteKey"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert routes == ["POST /wechatpay/notify"]
    mappings = [r["Properties"] for r in template["Resources"].values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 2 and all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    assert sorted(m["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings) == ["LedgerAuditQueue", "UplinkQueue"]
    worker = template["Resources"]["LedgerAuditWorkerLambdaFunction"]["Properties"]
    assert worker["Handler"] == "functions/ledger_audit.worker"
    assert fn["Environment"]["Variables"]["FEIKONG_AUDIT_QUEUE_URL"] == {"Ref": "LedgerAuditQueue"}
    text = json.dumps(template)
    assert "arn:aws:" not in text  # partition-neutral, so it deploys to AWS China too
    with zipfile.ZipFile(deploy_check.ROOT / ".serverless" / "feikong.zip") as z:
        top = {n.split("/")[0] for n in z.namelist()}  # our packages next to the bundled requirements
    assert {"core", "functions"} <= top and not top & {"infra", "testkit", "tests", "bench", "bridge"}


def test_zappa_packages_the_flask_app():
    out = deploy_check.zappa_package()
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
    assert "miniprogram_api/app.py" in names and "core/services/ledger.py" in names
    assert "miniprogram_api/wsgi.py" in names and "miniprogram_api/templates/console/rooms.html" in names
    assert not any(n.startswith(("tests/", "bench/", "node_modules/", "infra/", "testkit/")) for n in names)
