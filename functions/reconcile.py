"""Scheduled (daily, 10:00 Beijing time, after WeChat publishes the bill): reconcile
yesterday's WeChat Pay trade bill with our orders and ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aws_lambda_powertools import Logger

from core.services.payments import Payments

log = Logger(service="feikong")


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    day = event.get("bill_date") or (datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
                                     - timedelta(days=1)).isoformat()
    report = Payments().reconcile(day)
    return {"date": report["date"], "mismatches": len(report["mismatches"])}
