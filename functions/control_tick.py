"""Scheduled (every minute): pending cuts whose time has come, expired commands, meters
that stopped reporting."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services.control import Control

log = Logger(service="feikong")


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    return Control().tick()
