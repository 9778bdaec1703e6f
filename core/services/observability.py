"""Metrics and tracing of the Lambda functions (docs/observability.md).

Services count what happened with one call, `observability.count("PaymentsCredited")`, and
know nothing else. The counts of one invocation are added up here and published once, when
the handler returns, by powertools `Metrics` (`log_metrics`): one CloudWatch embedded metric
format (EMF) line on stdout, namespace `Feikong`, dimension `service=feikong`. No API call,
no latency. Outside a handler wrapped by `lambda_handler` (the Flask app, the CLI, tests
that call services directly) `count` keeps nothing: nothing accumulates, nothing is printed.

`lambda_handler` also traces each invocation with powertools `Tracer` (X-Ray):
`capture_lambda_handler`, with botocore patched (every DynamoDB, SQS and Secrets Manager
call a subsegment) and, for the functions that call WeChat Pay, requests. Metrics and
Tracer are made on the first invocation, not at import: importing the X-Ray SDK costs about
as much as `import boto3` and loads botocore (docs/cold-start.md). When tracing is off
(POWERTOOLS_TRACE_DISABLED=true, as in the local stack and the tests, or outside Lambda)
the X-Ray SDK is not imported at all.

This module lives in core.services, not core.integrations: the entry points (functions/)
may import services only (pyproject.toml, import-linter), and the services are its callers.
"""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

NAMESPACE, SERVICE = "Feikong", "feikong"
METRICS = frozenset({
    # business
    "ReadingsRated", "PaymentsCredited", "CommandsIssued", "CommandsFailed", "SupplyCut", "SupplyRestored",
    # operational (alarms in serverless.yml)
    "SweepStuckOrders", "SweepStuckRefunds", "ReconcileMismatches", "LedgerAuditFailures", "BridgesOffline",
    # notifications (notifySend: docs/notifications.md)
    "NotificationsSent", "NotificationsFailed", "NotificationsNoConsent",
})
BOTOCORE = ("botocore",)  # AWS calls (pynamodb goes through botocore too)
WECHAT = ("botocore", "requests")  # and WeChat Pay (wechatpayv3 uses requests)
_TRUE = ("1", "true", "t", "yes", "y", "on")

_lock = threading.Lock()
_running = 0  # handlers running in this process (one in Lambda; tests may overlap threads)
_counts: dict[str, int] = {}
_tracer: Any = None


def count(name: str, value: int | bool = 1) -> None:
    """Add `value` to the metric `name` (Count) of the running invocation. A zero is
    published too (a gauge-like figure such as BridgesOffline reports its 0)."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}")
    with _lock:
        if _running:
            _counts[name] = _counts.get(name, 0) + int(value)


def tracing_enabled() -> bool:
    """Tracing is on in Lambda unless POWERTOOLS_TRACE_DISABLED says otherwise (powertools'
    own rule, checked here so that the X-Ray SDK is not even imported when off)."""
    if os.getenv("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    return bool(os.getenv("LAMBDA_TASK_ROOT")) and not os.getenv("AWS_SAM_LOCAL")


def lambda_handler(handler: Callable | None = None, *, patch: tuple[str, ...] = BOTOCORE) -> Callable:
    """Decorator for a Lambda handler: X-Ray tracing (`patch`: the libraries whose calls
    become subsegments) and the invocation's counts published when it returns, whether it
    returns or raises (money that moved before a failure was counted)."""
    if handler is None:
        return functools.partial(lambda_handler, patch=patch)
    instrumented: Callable | None = None

    @functools.wraps(handler)
    def run(event, context):
        nonlocal instrumented
        if instrumented is None:  # the first invocation of this process
            instrumented = _instrument(handler, patch)
        return instrumented(event, context)

    return run


def _instrument(handler: Callable, patch: tuple[str, ...]) -> Callable:
    from aws_lambda_powertools import Metrics

    metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE,
                      service=os.getenv("POWERTOOLS_SERVICE_NAME") or SERVICE)
    published = metrics.log_metrics(_counting(handler, metrics), raise_on_empty_metrics=False)

    @functools.wraps(handler)
    def quietly(event, context):
        # an invocation that counted nothing (a forged notification) publishes nothing, without a warning
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            return published(event, context)

    tracer = _make_tracer(patch)
    return tracer.capture_lambda_handler(quietly) if tracer is not None else quietly


def _make_tracer(patch: tuple[str, ...]):
    global _tracer
    if not tracing_enabled():
        return None
    with _lock:
        if _tracer is None:
            from aws_lambda_powertools import Tracer

            _tracer = Tracer(service=os.getenv("POWERTOOLS_SERVICE_NAME") or SERVICE, patch_modules=patch)
        else:  # another handler of this process (tests): patching twice is a no-op
            _tracer.patch(patch)
        return _tracer


def _counting(handler: Callable, metrics) -> Callable:
    @functools.wraps(handler)
    def run(event, context):
        global _running
        with _lock:
            _running += 1
        try:
            return handler(event, context)
        finally:
            with _lock:
                _running -= 1
                counts = dict(_counts)
                _counts.clear()
            for name, value in sorted(counts.items()):
                metrics.add_metric(name=name, unit="Count", value=value)

    return run
