"""The report rollup consumer (docs/reports.md): the usage table's stream (every change of an
account's day or month summary) copied into the building rollups that reports read. A batch
is applied as a whole, exactly once per change whatever is redelivered (core/store/rollups.py:
each room copy is conditioned on the version it replaces); an error fails the whole batch,
which the event source retries (halved on each failure) and then hands to its on-failure
queue. `{"backfill": "<property_id>"}` invoked directly rebuilds a property's rollups from
the summaries."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE

log = Logger(service="feikong")
NEEDS = BASE  # reads accounts and charge items, writes rollups


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    from core.services import reports  # on first use (docs/cold-start.md)

    if "backfill" in event:
        stats = reports.service().backfill(str(event["backfill"]))
        log.info("rollups rebuilt", property_id=event["backfill"], **stats)
        return stats
    records = event.get("Records") or []
    stats = reports.service().records(records)
    if stats.get("repaired"):
        log.info("rollup changes repaired", **stats)
    return {"batchItemFailures": []}
