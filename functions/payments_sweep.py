"""Scheduled (every minute): ask WeChat Pay about orders pending for a few minutes (a
notification may never come), credit the paid ones, close the expired ones; and about
refunds processing for a few minutes: settle the finished ones, reverse the failed ones
and those WeChat never received."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services.payments import Payments

log = Logger(service="feikong")


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return Payments().sweep()
