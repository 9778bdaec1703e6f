"""Scheduled (daily): check balance == sum(entries) for every account."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services import audit

log = Logger(service="feikong")


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    result = audit.verify_all()
    return {"checked": result["checked"], "broken": [b["account_id"] for b in result["broken"]]}
