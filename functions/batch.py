"""Batch operations (docs/batch.md).

- `due`: every minute, and once per scheduled task by its EventBridge Scheduler one-time
  schedule (event {"task_id": ...}): starts the scheduled tasks whose time has come (their
  items onto the batch queue). Every minute it is also the net under a lost schedule.
- `worker`: the batch queue's consumer: each message is up to 25 items of one task, applied
  once each. Partial batch failures: a failed message comes back alone and lands in the
  dead-letter queue after 5 tries.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, BATCH_QUEUE, SITES

log = Logger(service="feikong")
NEEDS = BASE | BATCH_QUEUE | SITES  # queues items; a trip, close or restore sends signed commands
processor = BatchProcessor(event_type=EventType.SQS)


def _service():
    from core.services import batch  # on first use (docs/cold-start.md)

    return batch.service()


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def due(event: dict, context: LambdaContext) -> dict:
    event = event if isinstance(event, dict) else {}
    if isinstance(event.get("task_id"), str):
        return _service().start(event["task_id"])
    return _service().start_due()


def record_handler(record: SQSRecord) -> dict:
    return _service().handle(record.body)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def worker(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
