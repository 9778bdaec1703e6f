"""Month-end (docs/billing.md "Month-end at scale").

- `handler`: monthly, shortly after 00:00 Beijing time on the 1st: one message per property
  on the month-end queue for the month just closed (an event {"period": "YYYY-MM"} reruns a
  given month; {"property_ids": [...]} limits it to those properties).
- `late_fees`: daily, shortly after 00:00 Beijing time: one message per property for the day.
- `worker`: the queue's consumer (property -> apportionment previews and building messages;
  building -> charge items, post-paid bills, issuing; late fees). Partial batch failures:
  a failed message comes back alone and lands in the dead-letter queue after 5 tries.
"""

from __future__ import annotations

from datetime import date

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from core.services import observability
from core.services.sqs_worker import sqs_worker
from core.services.startup import cold_start
from core.settings import BASE, MONTH_END_QUEUE, SITES

log = Logger(service="feikong")
NEEDS = BASE | MONTH_END_QUEUE | SITES  # queues its fan-out; a deducted fee may cut a supply (signed commands)


def _service():
    from core.services import month_end  # on first use (docs/cold-start.md)

    return month_end.service()


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: LambdaContext) -> dict:
    event = event if isinstance(event, dict) else {}
    return _service().start(period=event.get("period"), property_ids=event.get("property_ids"))


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def late_fees(event: dict, context: LambdaContext) -> dict:
    event = event if isinstance(event, dict) else {}
    day = date.fromisoformat(event["day"]) if event.get("day") else None
    return _service().start_late_fees(day=day, property_ids=event.get("property_ids"))


# the month-end queue's consumer: each message handled by the month-end service
worker = sqs_worker(NEEDS, lambda body: _service().handle(body))
