"""The deploy artifacts, checked offline: serverless package + cfn-lint, the packaged
template against the local table/queue definitions, least-privilege IAM, operations
(concurrency, failure destinations, alarms, encryption, tracing, access logs, throttling),
checkov, zappa package. Expected values are written out here from docs/operations.md."""

import copy
import json
import zipfile

import pytest

from infra.deploy import deploy_check

FUNCTIONS = ["uplinkConsumer", "controlTick", "wechatpayNotify", "paymentsSweep", "reconcile", "ledgerAudit",
             "ledgerAuditWorker", "notifyRoute", "notifySend", "monthEnd", "monthEndLateFees", "monthEndWorker",
             "journalStream", "reportRollup", "batchDue", "batchWorker"]
SCHEDULED = {"ControlTickLambdaFunction", "PaymentsSweepLambdaFunction", "ReconcileLambdaFunction",
             "LedgerAuditLambdaFunction", "MonthEndLambdaFunction", "MonthEndLateFeesLambdaFunction",
             "BatchDueLambdaFunction"}
DLQS = {"UplinkDlqQueue", "LedgerAuditDlqQueue", "AsyncDlqQueue", "NotificationsDlqQueue", "NotifyRouteDlqQueue",
        "MonthEndDlqQueue", "JournalStreamDlqQueue", "ReportRollupDlqQueue", "BatchDlqQueue"}
# docs/operations.md, Concurrency
RESERVED = {"UplinkConsumerLambdaFunction": 20, "ControlTickLambdaFunction": 2, "WechatpayNotifyLambdaFunction": 20,
            "PaymentsSweepLambdaFunction": 2, "ReconcileLambdaFunction": 1, "LedgerAuditLambdaFunction": 1,
            "LedgerAuditWorkerLambdaFunction": 5, "NotifyRouteLambdaFunction": 2, "NotifySendLambdaFunction": 5,
            "MonthEndLambdaFunction": 1, "MonthEndLateFeesLambdaFunction": 1, "MonthEndWorkerLambdaFunction": 4,
            "JournalStreamLambdaFunction": 2, "ReportRollupLambdaFunction": 2, "BatchDueLambdaFunction": 1,
            "BatchWorkerLambdaFunction": 2}
ZAPPA_RESERVED = 50


@pytest.fixture(scope="module")
def packaged():
    """`serverless package` once for this module; each test gets its own copy."""
    return deploy_check.serverless_package()


@pytest.fixture
def template(packaged):
    return copy.deepcopy(packaged)


def _of(template, kind):
    return {rid: r["Properties"] for rid, r in template["Resources"].items() if r["Type"] == kind}


def test_serverless_package_cfn_lint_and_resources_match(template):
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
    assert rules == ["cron(0 2 * * ? *)", "cron(10 16 * * ? *)", "cron(30 18 * * ? *)", "cron(5 16 L * ? *)",
                     "rate(1 minute)", "rate(1 minute)", "rate(1 minute)"]
    assert deploy_check.async_functions(template) == SCHEDULED
    routes = [r["Properties"]["RouteKey"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert routes == ["POST /wechatpay/notify"]
    mappings = [r["Properties"] for r in template["Resources"].values()
                if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 11 and all(m["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for m in mappings)
    assert sorted(m["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings) == [
        "BatchQueue", "BillsTable", "EventsTable", "LedgerAuditQueue", "LedgerTable", "MonthEndQueue",
        "NotificationsQueue", "OrdersTable", "RefundsTable", "UplinkQueue", "UsageTable"]
    # the notification router: the events table's stream, new items of the notifiable types only
    stream = next(m for m in mappings if m["EventSourceArn"]["Fn::GetAtt"] == ["EventsTable", "StreamArn"])
    (pattern,) = [json.loads(f["Pattern"]) for f in stream["FilterCriteria"]["Filters"]]
    assert pattern["eventName"] == ["INSERT"] and "low_balance" in pattern["dynamodb"]["NewImage"]["type"]["S"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["NotifyRouteDlqQueue", "Arn"]}
    assert (stream["MaximumRetryAttempts"], stream["BisectBatchOnFunctionError"]) == (5, True)
    assert template["Resources"]["EventsTable"]["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    worker = template["Resources"]["LedgerAuditWorkerLambdaFunction"]["Properties"]
    assert worker["Handler"] == "functions/ledger_audit.worker"
    assert fn["Environment"]["Variables"]["FEIKONG_AUDIT_QUEUE_URL"] == {"Ref": "LedgerAuditQueue"}
    text = json.dumps(template)
    assert "arn:aws:" not in text  # partition-neutral, so it deploys to AWS China too
    with zipfile.ZipFile(deploy_check.ROOT / ".serverless" / "feikong.zip") as z:
        top = {n.split("/")[0] for n in z.namelist()}  # our packages next to the bundled requirements
        assert {"core", "functions"} <= top and not top & {"infra", "testkit", "tests", "bench", "bridge"}
        # bytecode ships, checked-hash (valid whatever times the zip keeps): ours and the libraries'
        assert_checked_hash_bytecode(z, ("core/", "functions/", "pynamodb/", "aws_lambda_powertools/", "cachetools/"))


def assert_checked_hash_bytecode(z: zipfile.ZipFile, prefixes: tuple[str, ...]) -> None:
    """Every .py under `prefixes` has its cpython-311 .pyc beside it, flagged hash-based and
    checked (PEP 552: flags 0b11), so Lambda's read-only code directory needs no compiling."""
    names = set(z.namelist())
    for prefix in prefixes:
        sources = [n for n in names if n.startswith(prefix) and n.endswith(".py") and "/__pycache__/" not in n]
        assert sources, prefix
        for src in sources:
            if not z.read(src).strip():  # an empty __init__.py zappa adds to a folder without one
                continue
            folder, _, file = src.rpartition("/")
            pyc = f"{folder}/__pycache__/{file[:-3]}.cpython-311.pyc"
            assert pyc in names, pyc
            flags = int.from_bytes(z.read(pyc)[4:8], "little")
            assert flags == 0b11, (pyc, flags)


def test_zappa_packages_the_flask_app():
    out = deploy_check.zappa_package()
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        assert_checked_hash_bytecode(z, ("miniprogram_api/", "core/", "flask/", "pynamodb/"))
    assert "miniprogram_api/app.py" in names and "core/services/ledger.py" in names
    assert "miniprogram_api/wsgi.py" in names and "miniprogram_api/templates/console/rooms.html" in names
    # the console's front end ships with the app (served from /static, no CDN): the vendor
    # files are copied from npm by `make vendor` (gitignored, so only the build puts them here)
    assert {"miniprogram_api/templates/console/base.html", "miniprogram_api/static/console.css",
            "miniprogram_api/static/vendor/htmx.min.js", "miniprogram_api/static/vendor/echarts.min.js"} <= names
    assert not any(n.startswith(("tests/", "bench/", "node_modules/", "infra/", "testkit/", "cli/", ".")) for n in names)
    assert not names & {"serverless.yml", "pyproject.toml", "package.json", "requirements-dev.txt"}


# -- operations (docs/operations.md) ---------------------------------------------------


def test_operations_check_passes_on_the_packaged_template(template):
    deploy_check.check_iam(template)
    deploy_check.check_operations(template, deploy_check.zappa_settings())


def test_reserved_concurrency_guarantees_ingest_and_control(template):
    functions = _of(template, "AWS::Lambda::Function")
    assert {rid: f["ReservedConcurrentExecutions"] for rid, f in functions.items()} == RESERVED
    assert deploy_check.zappa_settings()["dev"]["lambda_concurrency"] == ZAPPA_RESERVED
    # payments, batch jobs, notifications, month-end and the tenant API together:
    # 20 + 2 + 1 + 1 + 5 + 2 + 5 + 1 + 1 + 4 + 2 (journal) + 2 (report rollups) + 1 + 2 (batch) + 50 = 99 <= 100
    others = sum(n for rid, n in RESERVED.items() if rid not in deploy_check.GUARANTEED) + ZAPPA_RESERVED
    assert others == 99 <= deploy_check.OTHERS_BUDGET
    assert others + 20 + 2 <= deploy_check.ACCOUNT_CONCURRENCY - deploy_check.UNRESERVED_MIN
    # the SQS pollers never run more copies than the function may: no throttled receive
    # counts toward the dead-letter queue
    caps = {m["FunctionName"]["Fn::GetAtt"][0]: m["ScalingConfig"]["MaximumConcurrency"]
            for m in _of(template, "AWS::Lambda::EventSourceMapping").values() if "ScalingConfig" in m}
    assert caps == {"UplinkConsumerLambdaFunction": 20, "LedgerAuditWorkerLambdaFunction": 5,
                    "NotifySendLambdaFunction": 5, "MonthEndWorkerLambdaFunction": 4, "BatchWorkerLambdaFunction": 2}
    # nine more reserved instances for the payments side break the budget (99 + 9)
    template["Resources"]["WechatpayNotifyLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"] = 29
    with pytest.raises(deploy_check.CheckFailed, match="reserve 108 > 100"):
        deploy_check.check_operations(template, deploy_check.zappa_settings())
    del template["Resources"]["ReconcileLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"]
    with pytest.raises(deploy_check.CheckFailed, match="ReconcileLambdaFunction: no reserved concurrency"):
        deploy_check.check_operations(template)


def test_every_asynchronous_function_fails_to_a_retained_queue(template):
    configs = {c["FunctionName"]["Ref"]: c for c in _of(template, "AWS::Lambda::EventInvokeConfig").values()}
    assert set(configs) == SCHEDULED
    for c in configs.values():
        assert c["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["AsyncDlqQueue", "Arn"]}
    # the per-minute runs are not retried (the next run is the retry); the daily ones are
    assert configs["ControlTickLambdaFunction"]["MaximumRetryAttempts"] == 0
    assert "MaximumRetryAttempts" not in configs["ReconcileLambdaFunction"]  # Lambda's default: 2
    for q in DLQS:
        assert template["Resources"][q]["DeletionPolicy"] == "Retain"
        assert template["Resources"][q]["UpdateReplacePolicy"] == "Retain"
    # the role may send there
    statements = template["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert any(st["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
               and st["Resource"] == {"Fn::GetAtt": ["AsyncDlqQueue", "Arn"]} for st in statements["Statement"])
    broken = copy.deepcopy(template)
    del broken["Resources"]["LedgerAuditLambdaEvConf"]
    with pytest.raises(deploy_check.CheckFailed, match="LedgerAuditLambdaFunction is invoked asynchronously"):
        deploy_check.check_operations(broken)
    del template["Resources"]["AsyncDlqQueue"]["DeletionPolicy"]
    with pytest.raises(deploy_check.CheckFailed, match="AsyncDlqQueue: a dead-letter queue must be retained"):
        deploy_check.check_operations(template)


def test_an_alarm_for_every_function_and_dead_letter_queue(template):
    alarms = _of(template, "AWS::CloudWatch::Alarm")
    by_name = {a["AlarmName"]: a for a in alarms.values()}
    expected = ({f"feikong-dev-{fn}-{kind}" for fn in FUNCTIONS for kind in ("errors", "throttles")}
                | {"feikong-dev-uplink-dlq-depth", "feikong-dev-ledger-audit-dlq-depth", "feikong-dev-async-dlq-depth",
                   "feikong-dev-notifications-dlq-depth", "feikong-dev-notify-route-dlq-depth", "feikong-dev-uplink-age",
                   "feikong-dev-month-end-dlq-depth", "feikong-dev-journal-stream-dlq-depth",
                   "feikong-dev-report-rollup-dlq-depth", "feikong-dev-batch-dlq-depth"}
                | {f"feikong-dev-{m}" for m in ("SweepStuckOrders", "SweepStuckRefunds", "ReconcileMismatches",
                                               "LedgerAuditFailures", "BridgesOffline", "NotificationsFailed")})
    assert set(by_name) == expected and len(alarms) == 48
    errors = by_name["feikong-dev-wechatpayNotify-errors"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == ("AWS/Lambda", "Errors", "Sum")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "WechatpayNotifyLambdaFunction"}}]
    assert (errors["ComparisonOperator"], errors["Threshold"]) == ("GreaterThanThreshold", 0)
    depth = by_name["feikong-dev-async-dlq-depth"]
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert depth["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["AsyncDlqQueue", "QueueName"]}}]
    age = by_name["feikong-dev-uplink-age"]
    assert (age["MetricName"], age["Threshold"], age["Period"] * age["EvaluationPeriods"]) == (
        "ApproximateAgeOfOldestMessage", 300, 300)
    stuck = by_name["feikong-dev-SweepStuckOrders"]
    assert (stuck["Namespace"], stuck["Dimensions"]) == ("Feikong", [{"Name": "service", "Value": "feikong"}])
    for a in alarms.values():
        assert a["AlarmActions"] == [{"Ref": "AlarmTopic"}] and a["TreatMissingData"] == "notBreaching"
    sub = next(iter(_of(template, "AWS::SNS::Subscription").values()))
    assert sub == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email", "Endpoint": "feikong-alarms@example.com"}
    body = json.dumps(_of(template, "AWS::CloudWatch::Dashboard")["Dashboard"]["DashboardBody"])
    for metric in ("ReadingsRated", "PaymentsCredited", "CommandsIssued", "CommandsFailed", "SupplyCut",
                   "SupplyRestored", "Throttles", "ApproximateAgeOfOldestMessage", "feikong-dev-ledgerAuditWorker"):
        assert metric in body
    # a function without its alarms fails the check
    del template["Resources"]["ControlTickThrottlesAlarm"]
    with pytest.raises(deploy_check.CheckFailed, match="ControlTickLambdaFunction: no Throttles alarm"):
        deploy_check.check_operations(template)


def test_queues_encrypted_functions_traced_api_logged_and_throttled(template):
    queues = _of(template, "AWS::SQS::Queue")
    assert len(queues) == 14 and all(q["SqsManagedSseEnabled"] is True for q in queues.values())
    for f in _of(template, "AWS::Lambda::Function").values():
        assert f["TracingConfig"] == {"Mode": "Active"}
        env = f["Environment"]["Variables"]
        assert (env["POWERTOOLS_SERVICE_NAME"], env["POWERTOOLS_METRICS_NAMESPACE"]) == ("feikong", "Feikong")
    stage = _of(template, "AWS::ApiGatewayV2::Stage")["HttpApiStage"]
    assert stage["AccessLogSettings"]["DestinationArn"] == {"Fn::GetAtt": ["HttpApiLogGroup", "Arn"]}
    assert stage["RouteSettings"] == {"POST /wechatpay/notify": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100}}
    assert "HttpApiRoutePostWechatpayNotify" in template["Resources"]["HttpApiStage"]["DependsOn"]
    bucket = template["Resources"]["ServerlessDeploymentBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    # X-Ray is the one statement on "*"; any other action there is refused
    role = template["Resources"]["IamRoleLambdaExecution"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [st["Action"] for st in role if st["Resource"] == ["*"]] == [
        ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]]
    role.append({"Effect": "Allow", "Action": ["xray:PutTraceSegments", "sqs:SendMessage"], "Resource": ["*"]})
    with pytest.raises(deploy_check.CheckFailed, match="applies to every resource"):
        deploy_check.check_iam(template)
    del queues["UplinkQueue"]["SqsManagedSseEnabled"]  # (the Properties of the template itself)
    del stage["RouteSettings"]
    del stage["DefaultRouteSettings"]["ThrottlingRateLimit"]
    with pytest.raises(deploy_check.CheckFailed) as e:
        deploy_check.check_operations(template)
    assert "UplinkQueue: not encrypted" in str(e.value)
    assert "HttpApiStage: route POST /wechatpay/notify is not throttled" in str(e.value)


def test_checkov_passes_with_only_the_documented_skips(packaged, tmp_path):
    report = deploy_check.checkov(deploy_check.TEMPLATE, deploy_check.CHECKOV_SKIPS)
    assert set(report["skipped"]) == set(deploy_check.CHECKOV_SKIPS) and report["passed"] >= 60
    # a function without reserved concurrency is caught (CKV_AWS_115 is not skipped)
    broken = copy.deepcopy(packaged)
    del broken["Resources"]["WechatpayNotifyLambdaFunction"]["Properties"]["ReservedConcurrentExecutions"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(deploy_check.CheckFailed, match="CKV_AWS_115 AWS::Lambda::Function.WechatpayNotifyLambdaFunction"):
        deploy_check.checkov(tmp_path / "broken.json", deploy_check.CHECKOV_SKIPS)
    # zappa's API Gateway template: its methods are open by design (the app authenticates)
    report = deploy_check.checkov(deploy_check.zappa_template(), deploy_check.ZAPPA_CHECKOV_SKIPS)
    assert report["skipped"] == {"CKV_AWS_59": ["AWS::ApiGateway::Method.ANY0", "AWS::ApiGateway::Method.ANY1"]}


def test_a_stream_mapping_must_bound_its_retries_and_keep_what_fails(template):
    mapping = next(rid for rid, m in _of(template, "AWS::Lambda::EventSourceMapping").items()
                   if "StartingPosition" in m)
    props = template["Resources"][mapping]["Properties"]
    del props["DestinationConfig"]
    props["MaximumRetryAttempts"] = -1
    with pytest.raises(deploy_check.CheckFailed) as e:
        deploy_check.check_operations(template)
    assert "needs an on-failure destination queue" in str(e.value) and "must bound its retries" in str(e.value)
