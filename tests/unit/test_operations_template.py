"""The operational resources serverless.yml includes (infra/deploy/operations.py) and the
queue encryption settings, checked without packaging (the packaged template is checked in
tests/e2e/test_deploy_artifacts.py)."""

from core.integrations.queues import QUEUES, SITE_QUEUE_ATTRIBUTES
from infra.deploy import operations


def test_generated_operations_are_up_to_date():
    assert operations.OUT.read_text() == operations.render(), "run: python -m infra.deploy.resources"


def test_every_queue_is_encrypted_including_the_site_queues_made_at_run_time():
    for name, q in QUEUES.items():
        assert q["attributes"]["SqsManagedSseEnabled"] == "true", name
    # core/integrations/queues.py: ensure_site_queue creates each site's down queue with these
    assert SITE_QUEUE_ATTRIBUTES["SqsManagedSseEnabled"] == "true"
    assert SITE_QUEUE_ATTRIBUTES["FifoQueue"] == "true"


def test_function_logical_ids_follow_the_serverless_framework():
    assert operations.function_logical_id("uplinkConsumer") == "UplinkConsumerLambdaFunction"
    assert operations.function_logical_id("ledger-audit_worker") == "LedgerDashauditUnderscoreworkerLambdaFunction"


def test_serverless_yml_functions_are_read_despite_cloudformation_tags():
    assert operations.function_names() == ["uplinkConsumer", "controlTick", "wechatpayNotify", "paymentsSweep",
                                           "reconcile", "ledgerAudit", "ledgerAuditWorker", "notifyRoute", "notifySend",
                                           "journalStream", "reportRollup", "monthEnd", "monthEndLateFees",
                                           "monthEndWorker", "batchDue", "batchWorker"]


def test_two_functions_make_their_alarms_and_dashboard_lines():
    res = operations.resources(["alpha", "beta-two"])
    alarms = {rid: r["Properties"] for rid, r in res.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    # 2 functions x (errors, throttles) + 7 dead-letter queues (journal-stream-dlq: docs/finance.md)
    # + 1 (report-rollup-dlq: docs/reports.md) + 1 (batch-dlq: docs/batch.md)
    # + uplink age + 5 operational metrics + failed notifications (above a threshold)
    assert len(alarms) == 4 + 7 + 1 + 1 + 1 + 5 + 1
    assert alarms["NotificationsFailedAlarm"]["Threshold"] == operations.NOTIFICATIONS_FAILED_MAX
    assert alarms["BetaDashtwoThrottlesAlarm"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": "BetaDashtwoLambdaFunction"}}]
    assert alarms["AsyncDlqDepthAlarm"]["AlarmName"] == "${self:service}-${sls:stage}-async-dlq-depth"
    assert {a["Statistic"] for a in alarms.values() if a["Namespace"] == "Feikong"} == {"Sum"}
    body = res["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert '["AWS/Lambda","Errors","FunctionName","${self:service}-${sls:stage}-beta-two"]' in body
    assert res["AlarmTopicEmail"]["Properties"]["Endpoint"] == "${param:alarmEmail}"
    # the rendered YAML has no anchors (CloudFormation and readers want each alarm whole)
    assert "&id" not in operations.render() and "*id" not in operations.render()


def test_alarmed_and_charted_metrics_are_the_ones_the_code_emits():
    from core.services import observability

    assert set(operations.BUSINESS_METRICS) | set(operations.OPERATIONAL_METRICS) \
        | set(operations.NOTIFICATION_METRICS) == observability.METRICS
    assert (operations.NAMESPACE, operations.DIMENSION["Value"]) == (observability.NAMESPACE, observability.SERVICE)
