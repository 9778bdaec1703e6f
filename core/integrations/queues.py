"""SQS queues: their definitions (one source for local bootstrap and serverless.yml)
and the adapter that creates a site's down queue."""

from __future__ import annotations

import boto3

from core.domain.naming import resource_name

# Static queues. Site down queues are made per site at registration (site_queue_name).
QUEUES: dict[str, dict] = {
    "uplink-dlq": {
        "fifo": False,
        "attributes": {"MessageRetentionPeriod": "1209600"},
    },
    "uplink": {
        "fifo": False,
        "attributes": {"VisibilityTimeout": "120", "MessageRetentionPeriod": "1209600"},
        "dead_letter": {"queue": "uplink-dlq", "max_receive_count": 5},
    },
}

SITE_QUEUE_ATTRIBUTES = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "VisibilityTimeout": "60",
    "MessageRetentionPeriod": "1209600",
}


def queue_name(name: str) -> str:
    return resource_name(name)


def site_queue_name(site_id: str) -> str:
    return resource_name(f"site-{site_id}-down.fifo")


def sqs():
    return boto3.client("sqs")


def ensure_site_queue(site_id: str) -> str:
    """Create (or find) the FIFO queue that carries commands to one site. Returns its URL."""
    return sqs().create_queue(QueueName=site_queue_name(site_id), Attributes=SITE_QUEUE_ATTRIBUTES)["QueueUrl"]
