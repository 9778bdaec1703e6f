"""Scheduled (daily, 10:00 Beijing time, after WeChat publishes the bill): reconcile
yesterday's WeChat Pay trade bill with our orders and ledger, act on each mismatch
(a missed credit is posted) and store the day per property for the console (docs/finance.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, SITES, WECHATPAY

log = Logger(service="feikong")
NEEDS = BASE | WECHATPAY | SITES  # a missed credit is posted: it may restore supply


@log.inject_lambda_context
@observability.lambda_handler(patch=observability.WECHAT)
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    from core.services.finance import Finance  # on first use (docs/cold-start.md)

    day = event.get("bill_date") or (datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
                                     - timedelta(days=1)).isoformat()
    report = Finance().reconcile(day)  # Payments.reconcile, the actions, each trade's row stored per property
    return {"date": report["date"], "mismatches": report["mismatches"], "actions": report["actions"]}
