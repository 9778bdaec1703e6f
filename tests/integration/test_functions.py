"""Lambda handlers invoked with real events against the emulator."""

import json
from dataclasses import dataclass

import boto3

from core.integrations.queues import queue_name
from core.services.ledger import LedgerService
from core.store import audit as audit_store
from core.store.models import AccountItem, EventItem
from functions import ledger_audit
from infra.fakes.sitesim import drain_uplink


@dataclass
class Context:
    function_name: str = "ledgerAudit"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws-cn:lambda:cn-northwest-1:123456789012:function:ledgerAudit"
    aws_request_id: str = "req-1"


SCHEDULE_EVENT = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def test_ledger_audit_fans_out_past_one_batch_and_its_worker_finds_a_balance_off_its_entries(world, setenv):
    good = world.account(opening=1000)
    LedgerService().post(account_id=good, entry_id="use:1", kind="energy", amount=10, cause="t", actor="t")
    bad = world.account(opening=1000)
    # Tamper with a balance behind the ledger's back (what the audit exists to catch).
    AccountItem(bad).update(actions=[AccountItem.balance.set(999_999)])
    extra = [world.account(opening=100) for _ in range(3)]
    setenv("FEIKONG_AUDIT_BATCH_SIZE", "3")  # five accounts here alone are more than one batch
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(
        TableName=AccountItem.Meta.table_name, Select="COUNT", ConsistentRead=True,
        FilterExpression="property_id = :p", ExpressionAttributeValues={":p": {"S": world.property_id}})
    accounts = sum(page["Count"] for page in pages)
    assert accounts >= 5

    # this property's accounts only (the worker's emulator holds every other test's too)
    result = ledger_audit.handler({**SCHEDULE_EVENT, "property_ids": [world.property_id]}, Context())
    assert result["accounts"] == accounts and result["batches"] == -(-accounts // 3)
    assert result["checked"] == 0  # all left to the worker

    url = boto3.client("sqs").get_queue_url(QueueName=queue_name("ledger-audit"))["QueueUrl"]
    seen: list[list[str]] = []

    def worker(event, context):
        seen.extend(json.loads(r["body"])["account_ids"] for r in event["Records"])
        return ledger_audit.worker(event, context)

    assert drain_uplink(url, worker, max_batches=10**6) == result["batches"]
    assert all(len(ids) <= 3 for ids in seen) and {good, bad, *extra} <= {i for ids in seen for i in ids}
    cp = audit_store.subject(good).checkpoint
    assert (cp.seq, cp.balance) == (2, 990)  # opening 1000, then -10
    assert audit_store.subject(bad).checkpoint.seq == 0
    problems = [e.data.as_dict()["problem"] for e in EventItem.query(f"account#{bad}") if e.type == "ledger_audit"]
    assert problems == ["balance_mismatch"]
