"""The shell of an SQS consumer Lambda handler (functions/batch.py, functions/month_end.py):
each message's body goes to `handle`, with partial batch failures: a failed message comes back
alone (and lands in the queue's dead-letter queue after its tries), the others are done.
The handler is decorated like every other one: logging context, observability, cold start."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.services import observability
from core.services.startup import cold_start
from core.settings import Needs

log = Logger(service="feikong")


def sqs_worker(need: Needs, handle: Callable[[str], object]) -> Callable[[dict, LambdaContext], dict]:
    """A Lambda handler for an SQS event source (ReportBatchItemFailures): `handle(body)` per
    message; a message whose handle raises is reported failed."""
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> object:
        return handle(record.body)

    @log.inject_lambda_context
    @observability.lambda_handler
    @cold_start(need)
    def worker(event: dict, context: LambdaContext) -> dict:
        return process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)

    return worker
