"""The finance journal's consumer (docs/finance.md): new and changed items of the ledger
(money kinds only: serverless.yml's filter leaves out the metered energy/water debits),
orders, refunds and bill payments arrive from their tables' DynamoDB streams; each becomes
(or rewrites) one row of the property's journal under a key deterministic from its source.
Partial batch failures are reported (the stream resumes from the first failed record)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE

log = Logger(service="feikong")
NEEDS = BASE  # reads accounts, tenants, orders and refunds; writes the journal
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> int:
    from core.services import finance  # on first use (docs/cold-start.md)

    return finance.service().apply_record(record.raw_event)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
