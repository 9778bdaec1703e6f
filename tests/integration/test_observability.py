"""Metrics and tracing of the Lambda handlers (core/services/observability.py): handlers
invoked with real events against the emulator publish the invocation's counts as one
CloudWatch EMF line on stdout (what powertools Metrics prints and CloudWatch Logs turns into
metrics); with tracing on, the X-Ray subsegments reach the daemon address over UDP.
Expected values are worked out by hand in each test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest

from core.integrations.queues import uplink_url
from core.protocol import messages
from core.services import observability
from core.services import payments as payments_service
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.services.payments import Payments
from functions import payments_sweep, uplink_consumer, wechatpay_notify
from infra.fakes.sitesim import LambdaContext, SimMeter, sqs_record
from testkit.builders import Clock, Metered
from tests.integration.test_payments import Stack

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def published(out: str) -> list[dict[str, int]]:
    """The EMF lines printed, each as {metric: value}; every one in namespace Feikong with
    the single dimension service=feikong, unit Count."""
    found = []
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Feikong" and directive["Dimensions"] == [["service"]]
        assert blob["service"] == "feikong"
        values = {}
        for m in directive["Metrics"]:
            assert m["Unit"] == "Count"
            v = blob[m["Name"]]
            values[m["Name"]] = sum(v) if isinstance(v, list) else v
        found.append(values)
    return found


def invoke(capsys, handler, event) -> tuple[object, list[dict[str, int]]]:
    capsys.readouterr()
    result = handler(event, LambdaContext())
    return result, published(capsys.readouterr().out)


def records(*messages: dict) -> dict:
    return {"Records": [sqs_record({"MessageId": uuid.uuid4().hex, "ReceiptHandle": "r", "Body": json.dumps(m)},
                                   uplink_url()) for m in messages]}


class Site:
    """A metered account on a site stand-in whose messages reach the uplink consumer
    handler directly (not through the shared queue, so nothing else is delivered)."""

    def __init__(self, monkeypatch, opening: int) -> None:
        self.clock = Clock(T0 + timedelta(hours=3))
        ingest = Ingest(clock=self.clock)
        ingest.control = Control(ingest.ledger, self.clock)
        monkeypatch.setattr(uplink_consumer, "ingest", ingest)
        self.w = Metered()
        self.account = self.w.account(opening=opening)
        self.meter = self.w.meter(self.account)
        self.sim = self.w.sim()
        self.m = self.sim.add(SimMeter(self.meter))  # total 1000.00 kWh
        self.sent: list[dict] = []
        self.sim.send = self.sent.append  # the site's uplink messages, kept here

    def cut_by_usage(self, capsys) -> list[dict[str, int]]:
        """One readings message: 1000.00 (the baseline), 1002.00, 1006.00 kWh an hour apart,
        at 1 yuan/kWh: 2.00 then 4.00 yuan, from 5.00 to -1.00: the account is cut."""
        readings = []
        for i, used in enumerate(("0", "2", "4")):
            self.m.total += Decimal(used)
            readings.append(self.m.reading(T0 + timedelta(hours=i)))
        msg = self.sim.message("readings", T0 + timedelta(hours=2),
                               readings=[messages.reading_to_wire(r) for r in readings])
        _, emf = invoke(capsys, uplink_consumer.handler, records(msg))
        return emf


def test_the_uplink_consumer_publishes_readings_rated_the_cut_and_a_failed_command_once(aws, monkeypatch, capsys):
    site = Site(monkeypatch, opening=500)
    # two readings rated (the first only sets the baseline), one TRIP sent because of the cut
    assert site.cut_by_usage(capsys) == [{"CommandsIssued": 1, "ReadingsRated": 2, "SupplyCut": 1}]
    assert LedgerService().balance(site.account) == -100
    site.m.silent = True  # the meter does not answer: the bridge reports the TRIP failed
    (cmd,) = site.sim.take_commands(at=site.clock.now)
    assert cmd["op"] == "TRIP"
    (result,) = site.sent
    _, first = invoke(capsys, uplink_consumer.handler, records(result))
    _, again = invoke(capsys, uplink_consumer.handler, records(result))  # the same report delivered twice
    assert first == [{"CommandsFailed": 1}] and again == [{"CommandsFailed": 0}]


@pytest.fixture
def stack(aws, monkeypatch):
    s = Stack(monkeypatch)
    yield s
    s.stop()


def test_a_payment_notification_publishes_one_credit_and_its_restore_and_its_duplicate_nothing(stack, monkeypatch,
                                                                                               capsys):
    site = Site(monkeypatch, opening=500)
    site.cut_by_usage(capsys)  # balance -1.00, TRIP sent
    openid = f"o{uuid.uuid4().hex[:27]}"
    site.w.d.bind_openid(site.w.tenant_id, openid)
    no = stack.recharge(stack.login(openid), site.account, 1000).json()["out_trade_no"]
    stack.pay.lose_notification(no)  # delivered here, to the handler itself
    headers, body = stack.pay.build_notification(stack.pay.pay(no))
    event = {"headers": headers, "body": body, "isBase64Encoded": False}
    (answer, first) = invoke(capsys, wechatpay_notify.handler, event)
    assert answer["statusCode"] == 200
    # 10.00 yuan lifts -1.00 to 9.00: credited once, the meter's CLOSE sent at once
    assert first == [{"CommandsIssued": 1, "PaymentsCredited": 1, "SupplyRestored": 1}]
    (answer, again) = invoke(capsys, wechatpay_notify.handler, event)
    assert answer["statusCode"] == 200 and again == []  # a duplicate counts nothing, publishes nothing
    assert LedgerService().balance(site.account) == 900


def test_the_sweep_publishes_the_stuck_order_it_credited(stack, monkeypatch, capsys):
    w = Metered()
    account = w.account(opening=0)
    openid = f"o{uuid.uuid4().hex[:27]}"
    w.d.bind_openid(w.tenant_id, openid)
    no = stack.recharge(stack.login(openid), account, 3000).json()["out_trade_no"]
    stack.pay.lose_notification(no)
    stack.pay.pay(no)  # paid at WeChat; the notification never comes
    clock = Clock(datetime.now(UTC) + timedelta(minutes=5))  # past the 3 minutes the sweep waits
    monkeypatch.setattr(payments_service, "Payments", partial(Payments, clock=clock))
    _, emf = invoke(capsys, payments_sweep.handler, {})
    (metrics,) = emf
    # this order at least (other tests' orders share the tables); both figures published every run
    assert metrics["SweepStuckOrders"] >= 1 and metrics["PaymentsCredited"] >= 1 and "SweepStuckRefunds" in metrics
    assert LedgerService().balance(account) == 3000


def test_counts_outside_a_handler_are_kept_nowhere():
    observability.count("PaymentsCredited")  # a service used by the Flask app or a test: nothing kept
    observed = observability.lambda_handler(lambda event, context: observability.count("SupplyCut", 2))
    with pytest.raises(ValueError):
        observability.count("PaymentCredited")  # a misspelt name fails loudly, in or out of a handler
    assert observability._counts == {}
    observed({}, LambdaContext())
    assert observability._counts == {}  # published and cleared


TRACE_CHILD = """
from infra.fakes.sitesim import LambdaContext
from functions import control_tick
print(control_tick.handler({}, LambdaContext()))
"""


def test_with_tracing_on_the_handler_and_its_aws_calls_reach_the_xray_daemon(aws):
    """In a fresh process, as in Lambda: LAMBDA_TASK_ROOT and a sampled trace id set,
    tracing not disabled; the daemon is a UDP socket here."""
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(0.5)
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(ROOT), "POWERTOOLS_TRACE_DISABLED": "false",
           "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
           "_X_AMZN_TRACE_ID": "Root=1-6745a3b0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"}
    # read the datagrams while the child runs: a socket buffer read only afterwards can
    # overflow with the tick's subsegments and drop the last one, the handler's
    datagrams: list[bytes] = []
    child_done = threading.Event()

    def receive() -> None:
        while True:
            try:
                datagrams.append(daemon.recv(65536))
            except TimeoutError:
                if child_done.is_set():
                    return

    reader = threading.Thread(target=receive)
    reader.start()
    try:
        proc = subprocess.run([sys.executable, "-c", TRACE_CHILD], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        child_done.set()
        reader.join(10)
        daemon.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = []
    for datagram in datagrams:
        header, doc = datagram.decode().split("\n", 1)
        assert json.loads(header) == {"format": "json", "version": 1}
        names.append((json.loads(doc).get("namespace"), json.loads(doc)["name"]))
    assert ("local", "## handler") in names  # powertools capture_lambda_handler
    assert ("aws", "dynamodb") in names  # botocore patched: the tick's queries
