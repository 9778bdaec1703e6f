"""The notification sender (docs/notifications.md): jobs from the notifications queue, each
rendered and sent through the channel port once per delivery id. A job that must wait (a
transient failure's backoff, quiet hours) is held invisible on the queue for its wait and
reported failed, so only it comes back (partial batch failures)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, CHANNELS, NOTIFY_QUEUE

log = Logger(service="feikong")
NEEDS = BASE | NOTIFY_QUEUE | CHANNELS  # holds its own messages; WeChat and SMS credentials
# a batch whose every job waits (quiet hours, backoff) is not a failed invocation (no errors alarm)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str:
    from core.services import notify  # on first use (docs/cold-start.md)

    return notify.service().send_record(record.body, record.receipt_handle)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
