"""Scheduled (every minute): pending cuts whose time has come, expired commands, meters
that stopped reporting; then bridges gone silent and meters silent for long (outages)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, SITES

log = Logger(service="feikong")
NEEDS = BASE | SITES  # what this function needs deployed (core/settings.py; checked by infra/deploy)


@log.inject_lambda_context
@observability.lambda_handler
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    result = make_control().tick()
    from core.services import outages  # bridges gone silent, meters silent for long (after the supply work)

    return {**result, **outages.check()}


def make_control():
    """The control service, imported on first use (docs/cold-start.md); tests put their own here."""
    from core.services.control import Control

    return Control()
