"""A stand-in for an on-prem site, speaking the real queue protocol (signed messages on
the uplink and the site's FIFO down queue). Used by the demo and the tests until the
bridge (bridge/) and its Modbus meter simulator take its place.

Meters here are arithmetic: energy grows with a load while the relay is closed; a TRIP
stops it, a CLOSE restarts it, and each command is answered with a command result.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import boto3

from core.domain.rating import MeterReading
from core.protocol import messages

SH = ZoneInfo("Asia/Shanghai")
TOU_HOURS = {  # a simple default split of a day into register periods, by local hour
    **{h: "valley" for h in range(0, 8)},
    **{h: "peak" for h in (8, 9, 10, 18, 19, 20)},
    **{h: "sharp" for h in (11, 12)},
    **{h: "flat" for h in (13, 14, 15, 16, 17, 21, 22, 23)},
}


@dataclass
class SimMeter:
    meter_id: str
    load_kw: Decimal = Decimal("2")
    total: Decimal = Decimal("1000.00")
    registers: dict[str, Decimal] = field(default_factory=dict)  # empty: the meter has no TOU registers
    relay_closed: bool = True
    balance: int | None = None  # meter-side billing: money held by the meter (fen)
    purchase_count: int = 0
    seq: int = 0
    applied: list[str] = field(default_factory=list)
    silent: bool = False  # answers nothing: commands fail with "no answer", polls report nothing

    def advance(self, hours: Decimal, at: datetime) -> None:
        """Use energy for `hours`; registers show it in 0.01 steps, as a meter does."""
        if not self.relay_closed:
            return
        self.exact = getattr(self, "exact", self.total) + self.load_kw * hours
        used = self.exact.quantize(Decimal("0.01"), rounding="ROUND_FLOOR") - self.total
        if used <= 0:
            return
        self.total += used
        if self.registers:
            period = TOU_HOURS[at.astimezone(SH).hour]
            self.registers[period] = self.registers.get(period, Decimal(0)) + used

    def reading(self, at: datetime) -> MeterReading:
        self.seq += 1
        count = self.purchase_count if self.balance is not None else None
        return MeterReading(self.meter_id, self.seq, at, self.total, dict(self.registers), self.balance, count,
                            "closed" if self.relay_closed else "open")


class SimSite:
    def __init__(self, site_id: str, secret: str, down_queue: str, uplink_queue: str) -> None:
        self.site_id, self.secret = site_id, secret
        self.down_queue, self.uplink_queue = down_queue, uplink_queue
        self.sqs = boto3.client("sqs")
        self.meters: dict[str, SimMeter] = {}

    def add(self, meter: SimMeter) -> SimMeter:
        self.meters[meter.meter_id] = meter
        return meter

    def message(self, kind: str, at: datetime, **body) -> dict:
        return messages.sign(messages.envelope(kind, self.site_id, uuid.uuid4().hex, at, **body), self.secret)

    def send(self, msg: dict) -> None:
        self.sqs.send_message(QueueUrl=self.uplink_queue, MessageBody=json.dumps(msg, ensure_ascii=False))

    def send_readings(self, readings: list[MeterReading], at: datetime) -> dict:
        msg = self.message("readings", at, readings=[messages.reading_to_wire(r) for r in readings])
        self.send(msg)
        return msg

    def poll_all(self, at: datetime) -> dict:
        return self.send_readings([m.reading(at) for m in self.meters.values() if not m.silent], at)

    def advance(self, hours: Decimal, at: datetime) -> None:
        for m in self.meters.values():
            m.advance(hours, at)

    def take_commands(self, wait: int = 0, at: datetime | None = None) -> list[dict]:
        """Receive, verify and apply the commands waiting on the down queue; answer each.
        With `at` (the site's clock), commands that expired before it are refused."""
        out = []
        while True:
            resp = self.sqs.receive_message(QueueUrl=self.down_queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
            batch = resp.get("Messages", [])
            if not batch:
                return out
            for qm in batch:
                cmd = json.loads(qm["Body"])
                if messages.verify(cmd, self.secret) and cmd.get("site_id") == self.site_id:
                    out.append(cmd)
                    self._apply(cmd, at)
                self.sqs.delete_message(QueueUrl=self.down_queue, ReceiptHandle=qm["ReceiptHandle"])
            wait = 0

    def _apply(self, cmd: dict, now: datetime | None = None) -> None:
        """Carry out one command as the bridge does: expired ones are refused, a silent
        meter fails, RECHARGE follows the purchase-count protocol (applied at most once)."""
        m = self.meters.get(cmd["meter_id"])
        result: dict = {"status": "failed"}
        if now is not None and datetime.fromisoformat(cmd["expires_at"].replace("Z", "+00:00")) <= now:
            result["detail"] = "expired before it could run"
        elif m is None:
            result["detail"] = "unknown meter"
        elif m.silent:
            result["detail"] = "no answer after writing"
        elif cmd["op"] == "RECHARGE":
            target = int(cmd["args"]["purchase_count"])
            if m.purchase_count == target:
                result = {"status": "applied", "purchase_count": target, "detail": "already applied"}
            elif m.purchase_count != target - 1:
                result = {"status": "failed", "purchase_count": m.purchase_count,
                          "detail": f"meter count {m.purchase_count}, expected {target - 1}"}
            else:
                m.balance = (m.balance or 0) + int(cmd["args"]["amount"])
                m.purchase_count = target
                m.applied.append(cmd["command_id"])
                result = {"status": "applied", "purchase_count": target}
        else:
            if cmd["op"] == "TRIP":
                m.relay_closed = False
            elif cmd["op"] == "CLOSE":
                m.relay_closed = True
            m.applied.append(cmd["command_id"])
            result = {"status": "applied", "relay_state": "closed" if m.relay_closed else "open"}
        self.send(self.message("command_result", now or datetime.now(tz=SH), command_id=cmd["command_id"],
                               meter_id=cmd["meter_id"], **result))


def drain_uplink(queue_url: str, handler, max_batches: int = 100) -> int:
    """Deliver what waits on the uplink queue to a Lambda handler as SQS events, the way
    the event source mapping does, deleting only what the handler did not report failed."""
    sqs = boto3.client("sqs")
    delivered = 0
    for _ in range(max_batches):
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   AttributeNames=["All"])
        batch = resp.get("Messages", [])
        if not batch:
            break
        event = {"Records": [sqs_record(m, queue_url) for m in batch]}
        result = handler(event, LambdaContext())
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for m in batch:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        delivered += len(batch)
    return delivered


def sqs_record(m: dict, queue_url: str) -> dict:
    return {
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m.get("MD5OfBody", ""),
        "eventSource": "aws:sqs", "eventSourceARN": f"arn:aws:sqs:cn-north-1:123456789012:{queue_url.rsplit('/', 1)[-1]}",
        "awsRegion": "cn-north-1",
    }


class LambdaContext:
    function_name = "local"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:cn-north-1:123456789012:function:local"
    aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


def hours(a: datetime, b: datetime) -> Decimal:
    return Decimal(str((b - a) / timedelta(hours=1)))
