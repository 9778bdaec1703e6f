"""The notification router (docs/notifications.md): new items of the events table arrive
from its DynamoDB stream (filtered to the notifiable types in serverless.yml); each is
expanded into jobs per (recipient, channel) on the notifications queue. Partial batch
failures are reported (the stream resumes from the first failed record); a batch that keeps
failing goes to its on-failure queue after the retries serverless.yml allows."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, NOTIFY_QUEUE

log = Logger(service="feikong")
NEEDS = BASE | NOTIFY_QUEUE  # reads preferences and recipients, queues jobs
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> int:
    from core.services import notify  # on first use (docs/cold-start.md)

    raw = record.raw_event
    if raw.get("eventName") != "INSERT":  # a decision on an event (MODIFY) is not news
        return 0
    return notify.service().route_image(raw["dynamodb"]["NewImage"])


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
