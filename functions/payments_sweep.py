"""Scheduled (every minute): ask WeChat Pay about orders pending for a few minutes (a
notification may never come), credit the paid ones, close the expired ones."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services.payments import Payments

log = Logger(service="feikong")


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return Payments().sweep()
