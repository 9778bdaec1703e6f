"""SQS uplink consumer: readings batches, command results, heartbeats and meter events
from the bridges. Partial batch failures are reported, so one bad message is retried
alone (and lands in the dead-letter queue after 5 tries) without holding up the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, SITES

if TYPE_CHECKING:
    from core.services.ingest import Ingest

log = Logger(service="feikong")
NEEDS = BASE | SITES  # verifies the sites' messages, signs commands to them
processor = BatchProcessor(event_type=EventType.SQS)
ingest: Ingest | None = None  # made on first use, then kept warm: it remembers meter and account states


def _ingest() -> Ingest:
    global ingest
    if ingest is None:  # imported here: the store and SDKs load on first use (docs/cold-start.md)
        from core.services.ingest import Ingest

        ingest = Ingest()
    return ingest


def record_handler(record: SQSRecord) -> dict:
    return _ingest().handle(record.body)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
