"""Notification throughput: events routed to jobs and jobs sent through the sender's Lambda
handler (functions/notify_send.py, fed SQS batches as the event source mapping does)
against the emulators: moto (DynamoDB, SQS), the WeChat API emulator (official-account
template messages) and the SMS emulator (Tencent Cloud SMS, signatures verified).

    .venv/bin/python bench/notify.py [--events 10000] [--accounts 200]

Each event is a low-balance alarm of one of `--accounts` accounts, each with one WeChat user
whose preference is the official account (4 accounts in 5) or SMS (1 in 5): one message per
event. Measured: messages per second through the sender; DynamoDB requests per message as
the emulator counted them (the sender's claim and its outcome: 2; a subscribe message spends
a consent too: 3); SQS requests per message made by our code (none on the happy path: the
event source mapping receives and deletes in batches of 10, 0.2 per message, not counted);
the router's DynamoDB requests per event (members, preferences, and the tenant's phone for
SMS); every job delivered exactly once, duplicates included.

Targets, and why: the sender runs at >= 0.4 of the rate of its two DynamoDB writes alone
(the delivery store's claim and outcome, on the same emulator). A message costs those two
plus the provider's request and, in this local runner, a receive (per 10) and a delete: about
four requests of similar cost against two, so 0.5 is the ceiling and 0.4 leaves room for
rendering and the handler (the emulator's speed varies with the machine's load, so the
absolute rate is reported, not judged: the third request per message is the provider's, and
five senders are reserved, well above the providers' own limits); <= 2.1
DynamoDB requests per message (the claim is what makes it exactly once, the outcome is the
delivery log; 3 with a consent, below the 3 the notes allow); <= 0.01 SQS requests per
message by our code; <= 4.5 DynamoDB requests per routed event; exactly once. The last line
is one JSON object (bench/report.py); the exit code is 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import finish  # noqa: E402
from infra.local.stack import dynamodb_request_counts, emulator_for_script  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=500, help="events routed before the sender drains the queue")
    args = parser.parse_args()
    with emulator_for_script():
        return run(args)


def total(counts: dict) -> int:
    return sum(counts.values())


def run(args) -> int:
    import boto3

    from core import aws
    from core.domain.alarm_prefs import AlarmPrefs
    from core.domain.events import Event, Subject
    from core.domain.ledger import format_time
    from core.integrations import queues
    from core.services import directory, notify
    from core.store import deliveries, tenant_money
    from functions import notify_send
    from infra.fakes.sitesim import drain_uplink
    from infra.local.channelstack import ChannelStack
    from infra.local.paystack import PayStack
    from testkit.builders import World, uid

    pay = PayStack().start()
    pay.apply_env()
    channels = ChannelStack(pay.api).start()
    channels.apply_env()
    channels.sms.config.daily_limit = 10**9  # the bench's numbers get many messages a day; no refusals here
    try:
        w = World()
        accounts, openids, sms_accounts = [], {}, set()
        for i in range(args.accounts):
            account = w.account(opening=100_000)
            openid = uid("o")
            tenant = uid("t")
            directory.register_tenant(w.property_id, tenant, "压测租户", f"139{i:08d}")
            # each account its own tenant (phone) and WeChat user
            from core.store.models import AccountItem

            AccountItem(account).update(actions=[AccountItem.tenant_id.set(tenant)])
            directory.bind_openid(tenant, openid)
            sms = i % 5 == 4
            tenant_money.put_prefs(openid, account, AlarmPrefs(None, ("sms",) if sms else ("template",)), "bench")
            accounts.append(account)
            openids[account] = openid
            if sms:
                sms_accounts.add(account)
        sqs = boto3.client("sqs")
        url = queues.notifications_url()
        while old := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600).get("Messages"):
            for m in old:  # an emulator shared with earlier runs: start from an empty queue
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        clock_start = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
        service = notify.Notify(clock=lambda: clock_start)
        notify._notify = service

        own_sqs = {"n": 0}
        aws.client("sqs").meta.events.register("before-call.sqs", lambda **kw: own_sqs.__setitem__("n", own_sqs["n"] + 1))

        # route and send in chunks, as the two functions run side by side (a queue of ten thousand
        # jobs would measure moto's SQS, whose receives scan the whole queue, not the sender)
        route_seconds = send_seconds = 0.0
        route_requests = send_requests = jobs = resent = handled = sender_sqs = 0
        by_op: dict[str, int] = {}
        own_sqs["n"] = 0
        for chunk in range(0, args.events, args.chunk):
            before = dynamodb_request_counts()
            started = time.perf_counter()
            for k in range(chunk, min(chunk + args.chunk, args.events)):
                account = accounts[k % len(accounts)]
                # each a level of another day, so the repeat policy lets every one through
                at = clock_start + timedelta(days=k // len(accounts))
                e = Event(Subject.account(account), f"alarm:1:{k}:1", "low_balance", w.property_id, format_time(at),
                          status="to_notify", data={"level": 1, "threshold": 5000, "balance": 4000,
                                                    "account_id": account})
                jobs += service.route(e)
            route_seconds += time.perf_counter() - started
            route_requests += total(dynamodb_request_counts()) - total(before)
            # a redelivered share: up to ten jobs a chunk queued a second time (SQS is at-least-once)
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", []):
                if resent < (chunk + args.chunk) // 20:
                    sqs.send_message(QueueUrl=url, MessageBody=m["Body"])
                    resent += 1
            before, sqs_before = dynamodb_request_counts(), own_sqs["n"]
            started = time.perf_counter()
            while got := drain_uplink(url, notify_send.handler, max_batches=100):
                handled += got
            send_seconds += time.perf_counter() - started
            sender_sqs += own_sqs["n"] - sqs_before
            after = dynamodb_request_counts()
            send_requests += total(after) - total(before)
            for op in after:
                if after[op] - before.get(op, 0):
                    by_op[op] = by_op.get(op, 0) + after[op] - before.get(op, 0)

        # the sender's two writes alone (the delivery store's claim and outcome, no handler, no
        # queue, no provider), on the same emulator now: the emulator's speed on this machine
        raw_n = min(500, args.events)
        now = clock_start
        started = time.perf_counter()
        for _ in range(raw_n):
            did = uid("raw")
            deliveries.claim(did, property_id="raw", account_id="", event_ref="raw", kind="low_balance",
                             channel="template", recipient="raw", now=now)
            deliveries.finish(did, "sent", now, provider_id="raw")
        raw_rate = raw_n / (time.perf_counter() - started)

        template_sent = len([m for m in pay.api.messages if m["kind"] == "template"])
        sms_sent = len(channels.sms.delivered())
        expected_sms = sum(1 for k in range(args.events) if accounts[k % len(accounts)] in sms_accounts)
        messages = template_sent + sms_sent
        rate = messages / send_seconds if send_seconds else 0.0
        per_message = send_requests / max(messages, 1)
        sqs_per_message = sender_sqs / max(messages, 1)  # the sender's own (the router's sends excluded)
        per_event = route_requests / max(args.events, 1)
        result = {
            "bench": "notify", "events": args.events, "jobs": jobs, "redelivered": resent, "handled": handled,
            "sent_template": template_sent, "sent_sms": sms_sent,
            "messages_per_second": round(rate, 1), "send_seconds": round(send_seconds, 1),
            "claim_and_outcome_alone_per_second": round(raw_rate, 1), "ratio_to_raw": round(rate / raw_rate, 3),
            "dynamodb_requests_per_message": round(per_message, 3), "sender_dynamodb_requests": by_op,
            "our_sqs_requests_per_message": round(sqs_per_message, 4),
            "router_dynamodb_requests_per_event": round(per_event, 3),
            "router_events_per_second": round(args.events / route_seconds, 1) if route_seconds else 0.0,
        }
        # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
        return finish(result, {
            "ratio_to_raw": (">= 0.4 of the rate of its claim and outcome alone", rate / raw_rate >= 0.4),
            "dynamodb_requests_per_message": ("<= 2.1 DynamoDB requests per message", per_message <= 2.1),
            "our_sqs_requests_per_message": ("<= 0.01 SQS requests per message by our code", sqs_per_message <= 0.01),
            "router_dynamodb_requests_per_event": ("<= 4.5 DynamoDB requests per routed event", per_event <= 4.5),
            "exactly_once": ("every job delivered once, redelivered copies included",
                             jobs == args.events and sms_sent == expected_sms
                             and template_sent == args.events - expected_sms),
        })
    finally:
        channels.stop()
        pay.stop()


if __name__ == "__main__":
    sys.exit(main())
