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
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.services import observability
from core.services.sqs_worker import sqs_worker
from core.services.startup import cold_start
from core.settings import BASE, BATCH_QUEUE, SITES

log = Logger(service="feikong")
NEEDS = BASE | BATCH_QUEUE | SITES  # queues items; a trip, close or restore sends signed commands


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


# the batch queue's consumer: each message's items applied by the batch service
worker = sqs_worker(NEEDS, lambda body: _service().handle(body))
