"""Scheduled (every minute): ask WeChat Pay about orders pending for a few minutes (a
notification may never come), credit the paid ones, close the expired ones; and about
refunds processing for a few minutes: settle the finished ones, reverse the failed ones
and those WeChat never received."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, SITES, WECHATPAY

log = Logger(service="feikong")
NEEDS = BASE | WECHATPAY | SITES  # a credit may restore supply: commands signed for the site


@log.inject_lambda_context
@observability.lambda_handler(patch=observability.WECHAT)
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    from core.services.payments import Payments  # on first use (docs/cold-start.md)

    return Payments().sweep()
