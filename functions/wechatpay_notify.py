"""WeChat Pay notifications (API Gateway HTTP API event): payments and refunds.

Answers 200 only once the credit (or refund outcome) is durable; anything else makes
WeChat Pay retry. Duplicates and concurrent deliveries are answered with success and
credit nothing twice. The body is passed on as the exact bytes received (signatures are
over them); the service refuses whatever is not UTF-8, JSON or signed."""

from __future__ import annotations

import base64
import binascii
import json

from aws_lambda_powertools import Logger

from core.services.payments import Payments

log = Logger(service="feikong")
payments = Payments()


def _raw_body(event: dict) -> bytes | None:
    body = event.get("body") or ""
    try:
        if event.get("isBase64Encoded"):
            return base64.b64decode(body, validate=True)
        return body.encode("utf-8") if isinstance(body, str) else None
    except (binascii.Error, ValueError):  # not base64; a str with lone surrogates
        return None


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    status, answer = payments.handle_notification(event.get("headers"), _raw_body(event))
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(answer, ensure_ascii=False)}
