"""The ledger audit (docs/ledger.md): `handler` runs nightly (02:30 Beijing time; an event
{"full": true} re-verifies every entry on demand, {"property_ids": [...]} audits those
properties' accounts only) and fans out to `worker`, the consumer
of the ledger-audit queue, once the accounts exceed one batch."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, LEDGER_AUDIT

log = Logger(service="feikong")
NEEDS = BASE | LEDGER_AUDIT  # the nightly run queues batches for the worker
processor = BatchProcessor(event_type=EventType.SQS)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: LambdaContext) -> dict:
    from core.services import audit  # on first use (docs/cold-start.md)

    event = event or {}
    ids = event.get("property_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)):
        raise ValueError("property_ids must be a list of property ids")
    result = audit.run(full=bool(event.get("full")), property_ids=ids or None)
    return {"accounts": result["accounts"], "batches": result["batches"], "checked": result["checked"],
            "broken": [b["account_id"] for b in result["broken"]]}


def record_handler(record: SQSRecord) -> dict:
    from core.services import audit

    return audit.run_batch_message(record.body)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def worker(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
