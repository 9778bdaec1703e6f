"""The bridge against simulated meters over real Modbus (RTU over TCP) and the cloud's
queues in the AWS emulator: readings decoded exactly into the cloud, TRIP and CLOSE
verified, a RECHARGE redelivered applied once, a silent meter that does not hold up its
bus, kill -9 without losing a reading or applying a command twice, and a cloud outage
buffered and delivered in order."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
import yaml

from bridge.config import parse_config
from bridge.runtime import Bridge, BusWorker
from bridge.simulator import SimBus, SimMeter
from core.integrations.queues import uplink_url
from core.protocol import messages
from core.services.control import Control
from core.services.ingest import Ingest
from core.services.ledger import LedgerService
from core.store import commands as cstore
from core.store import meters as meters_store
from functions import uplink_consumer
from infra.fakes.sitesim import drain_uplink
from infra.local.stack import Emulator, bootstrap, free_port
from testkit.builders import Metered

ROOT = Path(__file__).resolve().parents[2]


def config_doc(w: Metered, bus: SimBus, meters: list[tuple[str, int, str]], state: Path, *, endpoint: str,
               uplink: str, down: str, poll: float = 0.2, timeout: float = 0.3, meter_side: bool = False) -> dict:
    return {
        "site_id": w.site.site_id, "secret": w.site.secret, "state_dir": str(state), "heartbeat_seconds": 1,
        "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink, "down_queue_url": down,
                  "endpoint_url": endpoint},
        "buses": [{"name": "bus1", "type": "tcp", "host": "127.0.0.1", "port": bus.port, "framing": "rtu",
                   "timeout": timeout, "meters": [
                       {"meter_id": mid, "address": addr, "model": model, "poll_seconds": poll,
                        "meter_side": meter_side} for mid, addr, model in meters]}],
    }


def wait_for(predicate, timeout: float = 20.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


def uplink_messages(url: str) -> list[dict]:
    """Take everything waiting on the uplink queue (tests that read it directly)."""
    sqs, out = boto3.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def rig(tmp_path, monkeypatch):
    """A metered cloud site, a simulated bus with three meters, and a bridge for them."""
    w = Metered()
    acct = w.account(opening=100_000)
    ids = [w.meter(acct) for _ in range(2)] + [w.meter(acct, kind="water")]
    sims = [SimMeter("acrel-ddsy1352", 1, load_kw="2", total="1234.56"),
            SimMeter("acrel-ddsy1352", 2, load_kw="3", total="10.00"),
            SimMeter("generic-valve-water", 3, load_kw="0.1", total="5.00")]
    bus = SimBus(sims).start()
    models = ["acrel-ddsy1352", "acrel-ddsy1352", "generic-valve-water"]
    doc = config_doc(w, bus, list(zip(ids, [1, 2, 3], models, strict=True)), tmp_path / "state",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=uplink_url(), down=w.site.down_queue)
    bridge = Bridge(parse_config(doc))
    ingest = Ingest()
    monkeypatch.setattr(uplink_consumer, "ingest", ingest)
    thread = bridge.run_in_thread()
    yield {"w": w, "acct": acct, "ids": ids, "sims": sims, "bus": bus, "bridge": bridge, "ingest": ingest}
    bridge.stop()
    thread.join(timeout=10)
    bus.stop()
    deliver()  # leave the shared uplink queue empty for the tests after this one


def deliver() -> int:
    return drain_uplink(uplink_url(), uplink_consumer.handler)


def test_readings_are_decoded_exactly_into_the_cloud(rig):
    meter = rig["ids"][0]

    def rated():
        deliver()
        m = meters_store.load_meter(meter)
        return m.baseline if m.baseline else None

    baseline = wait_for(rated)
    assert baseline.total >= Decimal("1234.56") and baseline.total < Decimal("1235")
    assert set(baseline.registers) == {"sharp", "peak", "flat", "valley"}
    assert sum(baseline.registers.values()) == baseline.total  # the TOU registers add up
    assert meters_store.load_meter(meter).online


def test_trip_and_close_are_applied_and_verified(rig):
    meter, sim = rig["ids"][0], rig["sims"][0]
    control = Control(rig["ingest"].ledger)
    trip = control.issue(meter, "TRIP", "test:trip", "admin")

    def state(command_id):
        deliver()
        return cstore.get_command(command_id).state in ("applied", "failed")

    wait_for(lambda: state(trip.command_id))
    assert cstore.get_command(trip.command_id).state == "applied"
    assert meters_store.load_meter(meter).relay_state == "open" and not sim.supply_on
    close = control.issue(meter, "CLOSE", "test:close", "admin")
    wait_for(lambda: state(close.command_id))
    assert meters_store.load_meter(meter).relay_state == "closed" and sim.supply_on
    water = rig["ids"][2]
    valve = control.issue(water, "TRIP", "test:valve", "admin")
    wait_for(lambda: state(valve.command_id))
    assert cstore.get_command(valve.command_id).state == "applied" and not rig["sims"][2].supply_on


def test_a_recharge_delivered_twice_is_applied_once(rig):
    meter, sim, w = rig["ids"][1], rig["sims"][1], rig["w"]
    body = messages.sign(messages.envelope(
        "command", w.site.site_id, "rc-1", rig["ingest"].clock(), command_id="recharge-test-1", meter_id=meter,
        op="RECHARGE", args={"amount": 5000, "purchase_count": 1},
        issued_at="2026-11-28T00:00:00+00:00", expires_at="2099-01-01T00:00:00+00:00"), w.site.secret)
    sqs = boto3.client("sqs")
    for dedup in ("first", "redelivered"):  # the queue delivers it twice
        sqs.send_message(QueueUrl=w.site.down_queue, MessageBody=json.dumps(body), MessageGroupId=meter,
                         MessageDeduplicationId=dedup)
    wait_for(lambda: sim.purchase_count == 1 and rig["bridge"].outbox.command_done("recharge-test-1"))
    time.sleep(1.0)  # give the redelivery every chance to run
    assert sim.purchase_count == 1 and sim.balance_fen == Decimal(5000)
    assert rig["bridge"].outbox.command_done("recharge-test-1")["status"] == "applied"
    # a forged command (wrong secret) is refused and never touches the meter
    forged = messages.sign(dict(body, command_id="recharge-forged", args={"amount": 99999, "purchase_count": 2}),
                           "not-the-secret" * 4)
    assert rig["bridge"].accept(json.dumps(forged), None) == "refused"


def test_a_silent_meter_does_not_hold_up_its_bus(tmp_path, aws):
    w = Metered()
    acct = w.account(opening=0)
    ids = [w.meter(acct) for _ in range(16)]
    sims = [SimMeter("acrel-ddsy1352", i + 1, load_kw="1", total="1.00") for i in range(16)]
    sims[7].silent = True
    bus = SimBus(sims).start()
    poll, timeout = 0.5, 0.2
    queue = boto3.client("sqs").create_queue(QueueName=f"feikong-dev-silent-{w.site.site_id}")["QueueUrl"]
    doc = config_doc(w, bus, [(mid, i + 1, "acrel-ddsy1352") for i, mid in enumerate(ids)], tmp_path / "s",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=queue, down=w.site.down_queue,
                     poll=poll, timeout=timeout)
    bridge = Bridge(parse_config(doc))
    thread = bridge.run_in_thread()
    try:
        time.sleep(6)
    finally:
        bridge.stop()
        thread.join(timeout=10)
        bus.stop()
    times: dict[str, list[float]] = {}
    sent = uplink_messages(queue) + [json.loads(t) for _, _, t in bridge.outbox.peek(100_000)]
    for msg in sent:
        if msg["type"] == "readings":
            for r in msg["readings"]:
                times.setdefault(r["meter_id"], []).append(messages._time(r["read_at"]).timestamp())
    assert ids[7] not in times  # never answered
    healthy = [m for m in ids if m != ids[7]]
    assert set(times) == set(healthy)
    gaps = [b - a for m in healthy for a, b in zip(times[m], times[m][1:], strict=False)]
    assert max(gaps) <= poll + timeout + 0.45, max(gaps)  # at most one timeout added, plus scheduling slack
    events = [m for m in sent if m["type"] == "meter_event"]
    assert any(e["event"] == "meter_silent" and e["meter_id"] == ids[7] for e in events)


def test_kill_9_loses_no_reading_and_applies_no_command_twice(tmp_path, aws):
    w = Metered()
    acct = w.account(opening=0)
    ids = [w.meter(acct) for _ in range(2)]
    sims = [SimMeter("acrel-ddsy1352", 1, load_kw="5", total="1.00"),
            SimMeter("acrel-ddsy1352", 2, load_kw="5", total="1.00")]
    bus = SimBus(sims).start()
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"feikong-dev-killtest-{w.site.site_id}")["QueueUrl"]
    # the site's down queue, with a short visibility timeout so that redelivery comes fast
    down = sqs.create_queue(QueueName=f"feikong-dev-killtest-{w.site.site_id}.fifo",
                            Attributes={"FifoQueue": "true", "VisibilityTimeout": "2"})["QueueUrl"]
    doc = config_doc(w, bus, [(ids[0], 1, "acrel-ddsy1352"), (ids[1], 2, "acrel-ddsy1352")], tmp_path / "state",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=queue, down=down, poll=0.1)
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc))
    recharge = messages.sign(messages.envelope(
        "command", w.site.site_id, "k-1", rig_now(), command_id="recharge-kill-1", meter_id=ids[0], op="RECHARGE",
        args={"amount": 700, "purchase_count": 1}, issued_at="2026-11-28T00:00:00+00:00",
        expires_at="2099-01-01T00:00:00+00:00"), w.site.secret)
    log = open(tmp_path / "bridge.log", "ab")  # noqa: SIM115  (kept open across the bridge's lives)

    def start():
        return subprocess.Popen([sys.executable, "-m", "bridge", "run", "--config", str(path)], cwd=ROOT,
                                env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)

    try:
        proc = start()
        time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)  # mid-run, readings in every state of sending
        proc.wait(10)
        proc = start()
        sqs.send_message(QueueUrl=down, MessageBody=json.dumps(recharge), MessageGroupId=ids[0],
                         MessageDeduplicationId="first")
        wait_for(lambda: sims[0].purchase_count == 1, timeout=30)
        proc.send_signal(signal.SIGKILL)  # right after the write: the message may still be on the queue
        proc.wait(10)
        sqs.send_message(QueueUrl=down, MessageBody=json.dumps(recharge), MessageGroupId=ids[0],
                         MessageDeduplicationId="again")  # and a plain duplicate
        proc = start()
        time.sleep(6)  # past the visibility timeout: any redelivery has come and gone
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    finally:
        bus.stop()
        log.close()
    got: dict[str, list[int]] = {}
    results = []
    for msg in uplink_messages(queue):
        assert messages.verify(msg, w.site.secret)
        if msg["type"] == "readings":
            for r in msg["readings"]:
                got.setdefault(r["meter_id"], []).append(r["seq"])
        elif msg["type"] == "command_result":
            results.append(msg)
    for meter in ids:
        seqs = sorted(set(got[meter]))
        assert seqs == list(range(1, len(seqs) + 1)), f"a gap in {meter}'s readings"  # none lost
        assert len(seqs) > 20
    assert sims[0].purchase_count == 1 and sims[0].balance_fen == Decimal(700)  # applied once
    assert results and all(r["status"] == "applied" for r in results)
    assert not sqs.receive_message(QueueUrl=down, WaitTimeSeconds=0).get("Messages")  # all answered and deleted


def rig_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_an_unreachable_cloud_is_buffered_and_delivered_in_order(tmp_path, aws):
    """10 minutes of outage, compressed: readings every 50 ms for the outage, then the
    cloud comes back (same port, tables and queues made again) and gets all in order."""
    port = free_port()
    cloud = Emulator(port).start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = os.environ["AWS_ENDPOINT_URL"]
    w = Metered()
    acct = w.account(opening=0)
    meter = w.meter(acct)
    bus = SimBus([SimMeter("acrel-ddsy1352", 1, load_kw="5", total="1.00")]).start()

    def make_queues():
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        try:
            sqs = boto3.client("sqs", endpoint_url=endpoint)
            up = sqs.create_queue(QueueName="outage-uplink")["QueueUrl"]
            down = sqs.create_queue(QueueName="outage-down.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
            return sqs, up, down
        finally:
            os.environ["AWS_ENDPOINT_URL"] = saved

    sqs, up, down = make_queues()
    doc = config_doc(w, bus, [(meter, 1, "acrel-ddsy1352")], tmp_path / "state", endpoint=endpoint, uplink=up,
                     down=down, poll=0.1)
    bridge = Bridge(parse_config(doc))
    thread = bridge.run_in_thread()
    try:
        time.sleep(1.0)
        cloud.stop()  # the link goes down
        time.sleep(4.0)
        buffered = bridge.outbox.depth()
        assert buffered > 30 and bridge.status["send_error"]
        cloud = Emulator(port).start()  # back, empty, as after an outage of the emulator itself
        sqs, up, down = make_queues()
        wait_for(lambda: bridge.outbox.depth() < 5, timeout=60)
    finally:
        bridge.stop()
        thread.join(timeout=10)
        bus.stop()
    seqs = []
    while True:
        batch = sqs.receive_message(QueueUrl=up, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        for m in batch:
            msg = json.loads(m["Body"])
            if msg["type"] == "readings":
                seqs += [r["seq"] for r in msg["readings"]]
            sqs.delete_message(QueueUrl=up, ReceiptHandle=m["ReceiptHandle"])
    cloud.stop()
    assert len(seqs) >= buffered - 10
    assert seqs == sorted(seqs)  # in order
    assert len(set(seqs)) == len(seqs)
    _ = (bootstrap, LedgerService)


def test_cli_check_config_probe_and_status(tmp_path, aws):
    w = Metered()
    bus = SimBus([SimMeter("acrel-ddsy1352", 5, load_kw="1", total="42.42")]).start()
    doc = config_doc(w, bus, [("E-probe", 5, "acrel-ddsy1352"), ("E-ghost", 6, "acrel-ddsy1352")],
                     tmp_path / "state", endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=uplink_url(),
                     down=w.site.down_queue)
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc))

    def cli(*args):
        return bridge_cli(*args, "--config", str(path))

    try:
        ok = cli("check-config")
        assert ok.returncode == 0 and "2 meter(s)" in ok.stdout
        # --config after the meter, as documented (before it), and before the command
        for argv in (("probe", "E-probe", "--config", str(path)), ("probe", "--config", str(path), "E-probe"),
                     ("--config", str(path), "probe", "E-probe")):
            probe = bridge_cli(*argv)
            assert probe.returncode == 0, (argv, probe.stderr)
            assert "total" in probe.stdout and "42.42" in probe.stdout and "guessed" in probe.stdout
        for argv in (("--config", str(path), "check-config"), ("check-config", "--config", str(path))):
            assert bridge_cli(*argv).returncode == 0
        no_config = bridge_cli("probe", "E-probe")
        assert no_config.returncode == 2 and "--config" in no_config.stderr
        no_meter = bridge_cli("probe", "--config", str(path))
        assert no_meter.returncode == 2 and "METER" in no_meter.stderr and "Traceback" not in no_meter.stderr
        ghost = cli("probe", "E-ghost")
        assert ghost.returncode == 1 and "did not answer" in ghost.stderr
        status = cli("status")
        assert status.returncode == 0 and json.loads(status.stdout)["outbox_depth"] == 0
    finally:
        bus.stop()
    doc["buses"][0]["meters"][1]["address"] = 5
    path.write_text(yaml.safe_dump(doc))
    bad = cli("check-config")
    assert bad.returncode == 2 and "config.buses[0].meters[1].address" in bad.stderr and "Traceback" not in bad.stderr


def bridge_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bridge", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def documented_commands() -> list[str]:
    """Every `python -m bridge ...` command line docs/bridge.md shows (inline or in a block)."""
    text = (ROOT / "docs" / "bridge.md").read_text(encoding="utf-8")
    return [c.strip() for c in re.findall(r"python -m bridge [^`#\n]*", text)]


def test_every_bridge_command_in_the_docs_runs(tmp_path):
    """Each command line of docs/bridge.md, run as written against a simulated meter
    (the config path and the meter id are the docs' own: /etc/feikong/bridge.yaml and
    bridge.yaml point at a test file, E-A101 is the simulated meter)."""
    w = Metered()
    bus = SimBus([SimMeter("acrel-ddsy1352", 1, load_kw="0", total="42.42")]).start()
    queue = boto3.client("sqs").create_queue(QueueName=f"feikong-dev-docs-{w.site.site_id}")["QueueUrl"]
    doc = config_doc(w, bus, [("E-A101", 1, "acrel-ddsy1352")], tmp_path / "state",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=queue, down=w.site.down_queue, poll=0.5)
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc))
    commands = documented_commands()
    assert {shlex.split(c)[3] for c in commands} == {"run", "check-config", "probe", "status"}

    def argv(line: str) -> list[str]:
        words = shlex.split(line.replace("/etc/feikong/bridge.yaml", str(path)))
        assert words[:3] == ["python", "-m", "bridge"], line
        return [str(path) if w == "bridge.yaml" else w for w in words[3:]]

    runs = [argv(c) for c in commands if shlex.split(c)[3] == "run"]
    procs = [subprocess.Popen([sys.executable, "-m", "bridge", *a], cwd=ROOT, env=dict(os.environ),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for a in runs[:1]]
    try:
        for line in commands:
            if shlex.split(line)[3] == "run":
                continue
            out = bridge_cli(*argv(line))
            assert out.returncode == 0, (line, out.stderr)
            if " probe " in line:
                assert "42.42" in out.stdout
        # `run` is running: its heartbeat is what `status` shows, and its readings reach the queue
        wait_for(lambda: json.loads(bridge_cli("status", "--config", str(path)).stdout)["meters"] == 1)
        wait_for(lambda: any(m["type"] == "readings" for m in uplink_messages(queue)))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0, proc.stderr.read()
        bus.stop()


def test_garbage_and_late_answers_never_become_another_meters_reading(tmp_path, aws):
    """A meter that answers garbage (bad CRC) and one that answers after the timeout share
    a bus with a healthy one: every reading the bridge reports carries its own meter's
    registers, and the garbled meter is read correctly once it recovers."""
    w = Metered()
    acct = w.account(opening=0)
    ids = [w.meter(acct) for _ in range(3)]
    garbled = SimMeter("acrel-ddsy1352", 1, load_kw="0", total="100.00")
    healthy = SimMeter("acrel-ddsy1352", 2, load_kw="0", total="500.00")
    late = SimMeter("acrel-ddsy1352", 3, load_kw="0", total="900.00")
    garbled.garbage, late.slow_ms = True, 450
    bus = SimBus([garbled, healthy, late]).start()
    queue = boto3.client("sqs").create_queue(QueueName=f"feikong-dev-garbage-{w.site.site_id}")["QueueUrl"]
    doc = config_doc(w, bus, [(ids[0], 1, "acrel-ddsy1352"), (ids[1], 2, "acrel-ddsy1352"),
                              (ids[2], 3, "acrel-ddsy1352")], tmp_path / "s",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=queue, down=w.site.down_queue,
                     poll=0.2, timeout=0.3)
    bridge = Bridge(parse_config(doc))
    thread = bridge.run_in_thread()
    try:
        time.sleep(3)
        garbled.garbage = False  # the line is clean again
        time.sleep(4)
    finally:
        bridge.stop()
        thread.join(timeout=10)
        bus.stop()
    own = {ids[0]: "100.00", ids[1]: "500.00", ids[2]: "900.00"}
    seen: dict[str, set] = {}
    for msg in uplink_messages(queue) + [json.loads(t) for _, _, t in bridge.outbox.peek(100_000)]:
        if msg["type"] == "readings":
            for r in msg["readings"]:
                seen.setdefault(r["meter_id"], set()).add(r["total"])
    assert seen[ids[1]] == {own[ids[1]]}  # the healthy meter, every time its own value
    assert seen[ids[0]] == {own[ids[0]]}  # read correctly after it recovered
    assert seen.get(ids[2], {own[ids[2]]}) == {own[ids[2]]}  # the late one: never someone else's
    assert bridge.workers["bus1"].stats["failures"] >= 3  # the garbage and the late answers were refused


class Ticks:
    """An injected monotonic clock (seconds) that only moves when the test moves it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_a_silent_meter_is_re_asked_within_the_cap_and_its_return_seen(tmp_path):
    """40 minutes of silence at a 60 s poll, in compressed time: the back-off doubles the
    interval (60, 120, 240, ...) but never past silent_recheck_seconds (120). Without the
    cap the asks would be at 0, 60, 180, 420, 900, 1860 and then 3780 s: a meter back at
    40 minutes would wait 23 more. With it, the meter's return is read within 120 s."""
    w = Metered()
    sim = SimMeter("acrel-ddsy1352", 1, load_kw="0", total="7.00")
    sim.silent = True
    bus = SimBus([sim]).start()
    doc = config_doc(w, bus, [("E-silent", 1, "acrel-ddsy1352")], tmp_path / "state",
                     endpoint=os.environ["AWS_ENDPOINT_URL"], uplink=uplink_url(), down=w.site.down_queue,
                     poll=60, timeout=0.05)
    doc["silent_recheck_seconds"] = 120
    ticks = Ticks()
    bridge = Bridge(parse_config(doc), monotonic=ticks)
    worker = BusWorker(bridge, bridge.config.buses[0])
    m = worker.meters["E-silent"]

    async def scenario() -> tuple[list[float], float, dict | None]:
        asks: list[float] = []
        try:
            while max(ticks.now, m.next_due) <= 1000 + 40 * 60:
                ticks.now = max(ticks.now, m.next_due)  # the bus task asks the meter when it is due
                asks.append(ticks.now - 1000)
                assert await worker.poll(m) is None
            back_at = ticks.now + 1  # it answers again a second after the last unanswered ask: the worst case
            sim.silent = False
            ticks.now = max(back_at, m.next_due)
            return asks, ticks.now - back_at, await worker.poll(m)
        finally:
            if worker.client is not None:
                worker.client.close()

    try:
        asks, waited, values = asyncio.run(scenario())
    finally:
        bus.stop()
    # hand-worked: 60 x 2^(n-1) capped at 120 -> 60, then 120 for ever
    assert asks[:4] == [0, 60, 180, 300]
    assert [b - a for a, b in zip(asks[1:], asks[2:], strict=False)] == [120] * (len(asks) - 2)
    assert m.failures == 0 and len(asks) == 21  # 0, 60, 180, ..., 2340: deep in what was the x32 back-off
    assert values is not None and values["total"] == Decimal("7.00")
    assert waited == 119  # the next ask, 120 s after the last one
    events = [json.loads(body) for _, kind, body in bridge.outbox.peek(1000) if kind == "meter_event"]
    assert [e["event"] for e in events] == ["meter_silent", "meter_back"]


def test_a_refused_write_reaches_the_command_result_in_words(rig):
    """The meter answers a TRIP with Modbus exception 2: the command fails and the cloud
    keeps the reason as the bridge said it, with the code; a meter that does not answer
    at all is reported as a timeout, not as a refusal."""
    meter, sim = rig["ids"][0], rig["sims"][0]
    control = Control(rig["ingest"].ledger)

    def finished(command_id):
        deliver()
        c = cstore.get_command(command_id)
        return c.state in ("applied", "failed") and c

    sim.set_faults(refuse_writes=2)
    trip = control.issue(meter, "TRIP", "test:refused", "admin")
    assert wait_for(lambda: finished(trip.command_id)).state == "failed"
    assert sim.supply_on  # the meter changed nothing
    stored = cstore.command_result(trip.command_id)
    assert stored["detail"] == "meter refused the write: Modbus exception 2 (illegal data address); " \
                               "relay_state reads closed"
    assert stored["relay_state"] == "closed" and stored["modbus_exception"] == 2  # the cloud keeps the code too
    sent = rig["bridge"].outbox.command_done(trip.command_id)
    assert sent["modbus_exception"] == 2 and sent["status"] == "failed"

    # refused, but the relay is already where the order wants it: applied, and said so
    sim.set_faults(refuse_writes=6)
    close = control.issue(meter, "CLOSE", "test:refused-close", "admin")
    assert wait_for(lambda: finished(close.command_id)).state == "applied"
    assert cstore.command_result(close.command_id)["detail"] == \
        "meter refused the write: Modbus exception 6 (server device busy); relay_state reads closed"
    assert rig["bridge"].outbox.command_done(close.command_id)["modbus_exception"] == 6

    sim.set_faults(silent=True)  # no answer at all
    again = control.issue(meter, "TRIP", "test:silent", "admin")
    assert wait_for(lambda: finished(again.command_id)).state == "failed"
    assert cstore.command_result(again.command_id)["detail"] == \
        "no answer to the write (timeout); no answer to the read-back (timeout)"
    assert "modbus_exception" not in rig["bridge"].outbox.command_done(again.command_id)
