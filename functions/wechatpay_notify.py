"""WeChat Pay notifications (API Gateway HTTP API event): payments and refunds.

Answers 200 only once the credit (or refund outcome) is durable; anything else makes
WeChat Pay retry. Duplicates and concurrent deliveries are answered with success and
credit nothing twice."""

from __future__ import annotations

import base64
import json

from aws_lambda_powertools import Logger

from core.services.payments import Payments

log = Logger(service="feikong")
payments = Payments()


@log.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    status, answer = payments.handle_notification(event.get("headers") or {}, body)
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(answer, ensure_ascii=False)}
