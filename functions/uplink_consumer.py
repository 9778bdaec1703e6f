"""SQS uplink consumer: readings batches, command results, heartbeats and meter events
from the bridges. Partial batch failures are reported, so one bad message is retried
alone (and lands in the dead-letter queue after 5 tries) without holding up the rest."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from core.services.ingest import Ingest

log = Logger(service="feikong")
processor = BatchProcessor(event_type=EventType.SQS)
ingest = Ingest()  # kept warm between invocations: it remembers meter and account states


def record_handler(record: SQSRecord) -> dict:
    return ingest.handle(record.body)


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
