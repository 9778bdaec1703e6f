"""EventBridge Scheduler one-time schedules (docs/batch.md "Scheduled runs"): a schedule with
an `at(...)` expression that invokes a Lambda function once with a JSON input and deletes
itself after it ran. The client comes from the process's shared session (core/aws.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from core import aws

GROUP = "default"


def scheduler():
    return aws.client("scheduler")


def at_expression(at: datetime) -> str:
    """`at(yyyy-mm-ddThh:mm:ss)` in UTC (the schedule's time zone is set to UTC)."""
    return f"at({at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S')})"


def create_one_time(name: str, at: datetime, target_arn: str, role_arn: str, payload: dict) -> str:
    """Invoke `target_arn` once at `at` with `payload`; the schedule deletes itself after
    it ran. Returns the schedule's ARN. A schedule of this name already there is replaced
    (a retried confirmation)."""
    kwargs = {
        "Name": name[:64], "GroupName": GROUP, "ScheduleExpression": at_expression(at),
        "ScheduleExpressionTimezone": "UTC", "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "Target": {"Arn": target_arn, "RoleArn": role_arn, "Input": json.dumps(payload, separators=(",", ":")),
                   "RetryPolicy": {"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 3600}},
    }
    client = scheduler()
    try:
        return client.create_schedule(**kwargs)["ScheduleArn"]
    except client.exceptions.ConflictException:
        return client.update_schedule(**kwargs)["ScheduleArn"]


def delete(name: str) -> bool:
    """Delete a schedule; False if it is not there (it ran, or was never made)."""
    client = scheduler()
    try:
        client.delete_schedule(Name=name[:64], GroupName=GROUP)
        return True
    except client.exceptions.ResourceNotFoundException:
        return False


def get(name: str) -> dict | None:
    client = scheduler()
    try:
        return client.get_schedule(Name=name[:64], GroupName=GROUP)
    except client.exceptions.ResourceNotFoundException:
        return None
