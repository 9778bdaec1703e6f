"""SQS queues: their definitions (one source for local bootstrap and serverless.yml)
and the adapter that creates a site's down queue."""

from __future__ import annotations

import json

from core import aws
from core.settings import get_settings, resource_name

# Every queue is encrypted at rest with SQS-managed keys (SSE-SQS): no KMS key to grant to
# the on-prem bridges' credentials, no KMS requests to pay for (docs/operations.md).
SSE = {"SqsManagedSseEnabled": "true"}

# Static queues. Site down queues are made per site at registration (site_queue_name).
# `dlq`: a dead-letter queue, alarmed on depth and kept when the stack is deleted.
# a dead-letter queue: kept 14 days, encrypted
_DLQ = {"fifo": False, "dlq": True, "attributes": {"MessageRetentionPeriod": "1209600", **SSE}}
QUEUES: dict[str, dict] = {
    "uplink-dlq": _DLQ,
    "uplink": {
        "fifo": False,
        "attributes": {"VisibilityTimeout": "360", "MessageRetentionPeriod": "1209600", **SSE},  # 6 x consumer timeout
        "dead_letter": {"queue": "uplink-dlq", "max_receive_count": 5},
    },
    # the nightly ledger audit's batches of accounts (functions/ledger_audit.py fans out)
    "ledger-audit-dlq": _DLQ,
    "ledger-audit": {
        "fifo": False,
        "attributes": {"VisibilityTimeout": "1800", "MessageRetentionPeriod": "345600", **SSE},  # 6 x worker timeout; 4 days
        "dead_letter": {"queue": "ledger-audit-dlq", "max_receive_count": 3},
    },
    # notification jobs (docs/notifications.md): one message per (recipient, channel), put by
    # notifyRoute, sent by notifySend. A job waits for its retry (backoff) or the end of quiet
    # hours invisible (ChangeMessageVisibility), and every such wait is a receive: hence the
    # high receive count before the dead-letter queue (the sender fails a job itself after
    # notifications.MAX_ATTEMPTS sends)
    "notifications-dlq": _DLQ,
    "notifications": {
        "fifo": False,
        "attributes": {"VisibilityTimeout": "360", "MessageRetentionPeriod": "345600", **SSE},  # 6 x sender timeout
        "dead_letter": {"queue": "notifications-dlq", "max_receive_count": 20},
    },
    # stream batches of the events table the router failed on (its on-failure destination:
    # the record names the shard and sequence numbers, docs/operations.md)
    "notify-route-dlq": _DLQ,
    # stream batches the finance journal's consumer failed on (its on-failure destination,
    # docs/finance.md): the record names the table's shard and sequence numbers
    "journal-stream-dlq": _DLQ,
    # stream batches of the usage table the report rollup consumer failed on (its on-failure
    # destination, docs/reports.md)
    "report-rollup-dlq": _DLQ,
    # month-end (docs/billing.md "Month-end at scale"): one message per property (apportionment
    # previews, then one per building), per building (charge items, post-paid bills, issuing) and
    # per property and day (late fees), put by the monthEnd schedules, handled by monthEndWorker
    "month-end-dlq": _DLQ,
    "month-end": {
        "fifo": False,
        "attributes": {"VisibilityTimeout": "5400", "MessageRetentionPeriod": "1209600", **SSE},  # 6 x worker timeout
        "dead_letter": {"queue": "month-end-dlq", "max_receive_count": 5},
    },
    # batch operations (docs/batch.md): messages of up to 25 items of one task, put when a task
    # starts or its failed items are retried, handled by batchWorker
    "batch-dlq": _DLQ,
    "batch": {
        "fifo": False,
        "attributes": {"VisibilityTimeout": "1800", "MessageRetentionPeriod": "345600", **SSE},  # 6 x worker timeout; 4 days
        "dead_letter": {"queue": "batch-dlq", "max_receive_count": 5},
    },
    # failed asynchronous invocations (the scheduled functions' on-failure destination in
    # serverless.yml): each message is Lambda's record of the event, the error and the attempts
    "async-dlq": _DLQ,
}

SITE_QUEUE_ATTRIBUTES = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "VisibilityTimeout": "60",
    "MessageRetentionPeriod": "1209600",
    **SSE,
}


def queue_name(name: str) -> str:
    return resource_name(name)


def site_queue_name(site_id: str) -> str:
    return resource_name(f"site-{site_id}-down.fifo")


def sqs():
    """The process's SQS client, made on first use from the shared session (core/aws.py)."""
    return aws.client("sqs")


def ensure_site_queue(site_id: str) -> str:
    """Create (or find) the FIFO queue that carries commands to one site. Returns its URL."""
    return sqs().create_queue(QueueName=site_queue_name(site_id), Attributes=SITE_QUEUE_ATTRIBUTES)["QueueUrl"]


def send_command(queue_url: str, body: dict, *, group: str, dedup: str) -> None:
    """One signed command on a site's FIFO queue: ordered per meter, deduplicated by id."""
    sqs().send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        MessageGroupId=group,
        MessageDeduplicationId=dedup[:128],
    )


def uplink_url() -> str:
    return sqs().get_queue_url(QueueName=queue_name("uplink"))["QueueUrl"]


def send_uplink(body: dict) -> None:
    sqs().send_message(QueueUrl=uplink_url(), MessageBody=json.dumps(body, ensure_ascii=False))


def send_audit_batches(bodies: list[dict]) -> None:
    """Messages on the ledger audit queue, up to ten a request."""
    # FEIKONG_AUDIT_QUEUE_URL: set by serverless.yml; locally found by name
    url = get_settings().audit_queue_url or sqs().get_queue_url(QueueName=queue_name("ledger-audit"))["QueueUrl"]
    for start in range(0, len(bodies), 10):
        group = bodies[start:start + 10]
        resp = sqs().send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": json.dumps(b, separators=(",", ":"))} for i, b in enumerate(group)])
        if resp.get("Failed"):
            raise RuntimeError(f"ledger audit batches not queued: {resp['Failed']}")


def notifications_url() -> str:
    """The notification jobs' queue (FEIKONG_NOTIFY_QUEUE_URL: set by serverless.yml; locally found by name)."""
    return get_settings().notify_queue_url or _url_by_name("notifications")


_urls: dict[str, str] = {}


def _url_by_name(name: str) -> str:
    full = queue_name(name)
    if full not in _urls:
        _urls[full] = sqs().get_queue_url(QueueName=full)["QueueUrl"]
    return _urls[full]


def send_batch(url: str, bodies: list[str]) -> None:
    """Messages on a queue, ten a request; raises if any was refused (the caller's batch is retried)."""
    for start in range(0, len(bodies), 10):
        group = bodies[start:start + 10]
        resp = sqs().send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(group)])
        if resp.get("Failed"):
            raise RuntimeError(f"messages not queued: {resp['Failed']}")


def hold(url: str, receipt_handle: str, seconds: int) -> None:
    """Keep a received message invisible for `seconds` (at most 12 h): its retry or its
    deferral. The caller then reports it failed, so the event source leaves it on the queue."""
    sqs().change_message_visibility(QueueUrl=url, ReceiptHandle=receipt_handle,
                                    VisibilityTimeout=max(0, min(int(seconds), MAX_VISIBILITY)))


MAX_VISIBILITY = 43_200 - 60  # SQS's limit is 12 hours


def month_end_url() -> str:
    """The month-end queue (FEIKONG_MONTH_END_QUEUE_URL: set by serverless.yml; locally found by name)."""
    return get_settings().month_end_queue_url or _url_by_name("month-end")


def batch_url() -> str:
    """The batch operations' queue (FEIKONG_BATCH_QUEUE_URL: set by serverless.yml; elsewhere found by name)."""
    return get_settings().batch_queue_url or _url_by_name("batch")
