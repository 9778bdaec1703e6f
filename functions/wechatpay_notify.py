"""WeChat Pay notifications (API Gateway HTTP API event): payments and refunds.

Answers 200 only once the credit (or refund outcome) is durable; anything else makes
WeChat Pay retry. Duplicates and concurrent deliveries are answered with success and
credit nothing twice. The body is passed on as the exact bytes received (signatures are
over them); the service refuses whatever is not UTF-8, JSON or signed."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from core.services import observability
from core.services.startup import cold_start
from core.settings import BASE, SITES, WECHATPAY

if TYPE_CHECKING:
    from core.services.payments import Payments

log = Logger(service="feikong")
NEEDS = BASE | WECHATPAY | SITES  # a credit may restore supply: commands signed for the site
payments: Payments | None = None  # made on the first notification, then kept warm (a bench may set its own)


def _payments() -> Payments:
    global payments
    if payments is None:  # imported here: the store and SDKs load on first use (docs/cold-start.md)
        from core.services.payments import Payments

        payments = Payments()
    return payments


def _raw_body(event: dict) -> bytes | None:
    body = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            return base64.b64decode(body, validate=True)
        return body.encode("utf-8") if isinstance(body, str) else None
    except (binascii.Error, ValueError):  # not base64; a str with lone surrogates
        return None


@log.inject_lambda_context
@observability.lambda_handler(patch=observability.WECHAT)
@cold_start(NEEDS)
def handler(event: dict, context: object) -> dict:
    status, answer = _payments().handle_notification(event.get("headers"), _raw_body(event))
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(answer, ensure_ascii=False)}
