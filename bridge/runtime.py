"""The bridge at work: one asyncio task per bus polls its meters and runs their commands
between polls; a sender thread drains the outbox to the uplink queue in order; a
receiver thread long-polls the site's down queue; a heartbeat reports health.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import boto3
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

from bridge.config import BusConfig, Config, MeterConfig
from bridge.outbox import Outbox
from bridge.profiles import Profile, load_profile
from core.protocol import messages

log = logging.getLogger("feikong.bridge")
Clock = Callable[[], datetime]
Monotonic = Callable[[], float]
BACKOFF_MAX_CYCLES = 32
# Modbus exception codes (Modbus Application Protocol v1.1b3, section 7), as a meter's
# refusal is reported in a command result
MODBUS_EXCEPTIONS = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
    5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
RECEIVE_WAIT_SECONDS = 20  # SQS long poll: the longest wait SQS allows


def utcnow() -> datetime:
    return datetime.now(UTC)


def modbus_exception_text(code: int) -> str:
    """`Modbus exception 2 (illegal data address)`: the code and its name in the spec."""
    return f"Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'not defined by the Modbus spec')})"


def backoff_seconds(poll_seconds: float, failures: int, recheck_seconds: float) -> float:
    """How long after its `failures`-th unanswered poll a silent meter is asked again: the
    poll interval doubled per miss up to x BACKOFF_MAX_CYCLES, but never longer than
    `recheck_seconds` (or the poll interval itself, if that is longer)."""
    doubled = poll_seconds * min(2 ** (failures - 1), BACKOFF_MAX_CYCLES)
    return min(doubled, max(poll_seconds, recheck_seconds))


@dataclass
class MeterState:
    cfg: MeterConfig
    profile: Profile
    next_due: float = 0.0
    failures: int = 0
    online: bool = True
    last_values: dict = field(default_factory=dict)
    last_read: str = ""


def make_client(bus: BusConfig):
    framer = FramerType.RTU if bus.framing == "rtu" else FramerType.SOCKET
    if bus.kind == "serial":
        return AsyncModbusSerialClient(bus.port, framer=FramerType.RTU, baudrate=bus.baudrate, parity=bus.parity,
                                       bytesize=8, stopbits=1, timeout=bus.timeout, retries=0)
    return AsyncModbusTcpClient(bus.host, port=bus.tcp_port, framer=framer, timeout=bus.timeout, retries=0,
                                reconnect_delay=0.1, reconnect_delay_max=5)


class BusWorker:
    """Serialises every request on one bus: polls, then queued commands, in one loop."""

    def __init__(self, bridge: Bridge, bus: BusConfig) -> None:
        self.bridge, self.bus = bridge, bus
        self.meters = {m.meter_id: MeterState(m, load_profile(m.model)) for m in bus.meters}
        self.commands: asyncio.Queue = asyncio.Queue()
        self.client = None
        self.cycle = 0
        self.stats = {"polls": 0, "failures": 0, "cycles": 0, "last_cycle_seconds": 0.0}

    async def _connect(self) -> None:
        if self.client is None:
            self.client = make_client(self.bus)
        if not self.client.connected:
            await self.client.connect()

    async def _reset(self) -> None:
        """After a timeout or a garbled answer, drop whatever may still be on the line so
        that a late answer can never be taken for the next request's."""
        if self.client is not None:
            self.client.close()
            self.client = None
        await asyncio.sleep(min(self.bus.timeout, 0.1))

    async def read(self, m: MeterState, names: tuple[str, ...]) -> dict | None:
        values: dict = {}
        try:
            await self._connect()
            for block in m.profile.blocks(names):
                rr = await self.client.read_holding_registers(block.start, count=block.count,
                                                              device_id=m.cfg.address)
                if rr.isError() or len(rr.registers) != block.count:
                    raise OSError(f"bad answer {rr}")
                values.update(block.decode(rr.registers))
        except Exception as e:  # timeout, CRC error, garbage, connection loss
            log.debug("read failed", extra={"meter_id": m.cfg.meter_id, "error": repr(e)})
            await self._reset()
            return None
        return values

    async def poll(self, m: MeterState) -> dict | None:
        names = m.profile.poll + (m.profile.poll_meter_side if m.cfg.meter_side else ())
        values = await self.read(m, names)
        self.stats["polls"] += 1
        if values is None:
            m.failures += 1
            self.stats["failures"] += 1
            # back off: a silent meter is asked less often, so it costs the bus at most one
            # short timeout when it is asked, and less and less of the bus's time; but it is
            # asked at least every silent_recheck_seconds, so its return is seen soon
            m.next_due = self.bridge.monotonic() + backoff_seconds(
                m.cfg.poll_seconds, m.failures, self.bridge.config.silent_recheck_seconds)
            if m.online and m.failures >= 3:
                m.online = False
                self.bridge.event(m.cfg.meter_id, "meter_silent", f"{m.failures} polls without an answer")
            return None
        if not m.online:
            self.bridge.event(m.cfg.meter_id, "meter_back", "answers again")
        m.failures, m.online, m.last_values = 0, True, values
        m.last_read = self.bridge.clock().isoformat()
        return values

    def reading(self, m: MeterState, values: dict, seq: int) -> dict:
        regs = {p: str(values[p]) for p in ("sharp", "peak", "flat", "valley") if p in values}
        r = {"meter_id": m.cfg.meter_id, "seq": seq, "read_at": m.last_read, "total": str(values["total"])}
        if regs:
            r["registers"] = regs
        relay = m.profile.supply(values)
        if relay:  # the relay state read back with the poll: what the cloud reconciles against
            r["relay_state"] = relay
        if m.cfg.meter_side and "balance" in values:
            r["balance"] = int(values["balance"])
            r["purchase_count"] = int(values.get("purchase_count", 0))
        return r

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            clock = self.bridge.monotonic
            started = clock()
            self.cycle += 1
            readings, seqs = [], {}
            now = clock()
            for m in self.meters.values():
                while not self.commands.empty():  # commands run between polls
                    await self.execute(*self.commands.get_nowait())
                if m.next_due > now:
                    continue
                m.next_due = now + m.cfg.poll_seconds
                values = await self.poll(m)
                if values is not None and "total" in values:
                    seq = self.bridge.outbox.next_seq(m.cfg.meter_id) if m.cfg.meter_id not in seqs else \
                        seqs[m.cfg.meter_id] + 1
                    seqs[m.cfg.meter_id] = seq
                    readings.append(self.reading(m, values, seq))
            if readings:
                self.bridge.put("readings", seq_updates=seqs, readings=readings)
            self.stats["cycles"] += 1
            self.stats["last_cycle_seconds"] = clock() - started
            due = min((m.next_due for m in self.meters.values()), default=clock() + 1)
            wait = max(0.0, min(due - clock(), 1.0))
            try:
                item = await asyncio.wait_for(self.commands.get(), timeout=wait) if wait > 0 else None
            except TimeoutError:
                item = None
            if item is not None:
                await self.execute(*item)

    # -- commands ------------------------------------------------------------------------

    async def execute(self, cmd: dict, receipt: str | None) -> None:
        command_id, meter_id, op = cmd["command_id"], cmd["meter_id"], cmd["op"]
        if self.bridge.outbox.command_done(command_id) is None:
            m = self.meters.get(meter_id)
            result = await self._execute(m, op, cmd.get("args") or {}) if m else {"status": "failed",
                                                                                 "detail": "unknown meter"}
            self.bridge.put("command_result", command=(command_id, meter_id, result), command_id=command_id,
                            meter_id=meter_id, **result)
            log.info("command executed", extra={"command_id": command_id, "op": op, "result": result})
        if receipt:
            await asyncio.to_thread(self.bridge.delete_command, receipt)

    async def _execute(self, m: MeterState, op: str, args: dict) -> dict:
        profile = m.profile
        if op == "READ_NOW":
            values = await self.poll(m)
            if values is None:
                return {"status": "failed", "detail": "no answer"}
            seq = self.bridge.outbox.next_seq(m.cfg.meter_id)
            self.bridge.put("readings", seq_updates={m.cfg.meter_id: seq}, readings=[self.reading(m, values, seq)])
            return {"status": "applied", "relay_state": profile.supply(values) or ""}
        spec = profile.commands.get(op)
        if spec is None:
            return {"status": "failed", "detail": f"{profile.model} cannot {op}"}
        verify = spec["verify"]
        before = None
        if op == "RECHARGE":  # at most once: the meter's purchase count says if it was applied
            before = await self.read(m, (verify["register"],))
            if before is None:
                return {"status": "failed", "detail": "no answer before writing"}
            count, target = int(before[verify["register"]]), int(args["purchase_count"])
            if count == target:
                return {"status": "applied", "purchase_count": count, "detail": "already applied"}
            if count != target - 1:
                return {"status": "failed", "purchase_count": count, "detail": f"meter count {count}, expected "
                                                                               f"{target - 1}"}
        address, words = profile.write_words(op, args)
        refused, problem = await self._write(m, op, address, words)
        after = await self.read(m, tuple({verify["register"], profile.supply_register}))
        result: dict = {"modbus_exception": refused} if refused is not None else {}
        if after is None:
            read_back = "no answer to the read-back (timeout)"
            return {**result, "status": "failed",
                    "detail": f"{problem}; {read_back}" if problem else f"write acknowledged; {read_back}"}
        got = after[verify["register"]]
        expected = args[verify["equals_arg"]] if "equals_arg" in verify else verify["equals"]
        ok = str(int(got) if not isinstance(got, str) else got) == str(expected)
        result.update(status="applied" if ok else "failed", relay_state=profile.supply(after) or "")
        if op == "RECHARGE":
            result["purchase_count"] = int(after[verify["register"]])
        if problem:  # the read-back still decides (a relay may already be where the order wants it)
            result["detail"] = f"{problem}; {verify['register']} reads {got}"
        elif not ok:
            result["detail"] = f"{verify['register']} reads {got} after {op}"
        return result

    async def _write(self, m: MeterState, op: str, address: int, words: list[int]) -> tuple[int | None, str]:
        """Send one write, once (never blindly again: the read-back decides). Returns the
        Modbus exception code if the meter refused it, and what went wrong in words ("" if
        the meter acknowledged it)."""
        try:
            await self._connect()
            rr = await self.client.write_registers(address, words, device_id=m.cfg.address)
        except Exception as e:
            if isinstance(e, TimeoutError) or isinstance(e, ModbusIOException) and "No response" in str(e):
                problem = "no answer to the write (timeout)"
            elif isinstance(e, ConnectionException):
                problem = f"no connection to bus {self.bus.name}"
            else:  # an answer to another request, a broken connection
                problem = f"write failed ({type(e).__name__})"
            log.warning("write failed", extra={"meter_id": m.cfg.meter_id, "op": op, "error": repr(e)})
            await self._reset()
            return None, problem
        if not rr.isError():
            return None, ""
        if isinstance(rr, ExceptionResponse):  # the meter answered that it will not do it
            code = int(rr.exception_code)
            log.warning("write refused", extra={"meter_id": m.cfg.meter_id, "op": op, "modbus_exception": code})
            return code, f"meter refused the write: {modbus_exception_text(code)}"
        log.warning("write failed", extra={"meter_id": m.cfg.meter_id, "op": op, "error": str(rr)})
        return None, "write failed (an error answer)"


async def read_once(bus: BusConfig, meter: MeterConfig) -> dict | None:
    """Read every register of one meter's profile once (the `probe` command)."""

    class _Probe(BusWorker):
        def __init__(self) -> None:  # no bridge: reads only
            self.bus, self.client = bus, None

    worker = _Probe()
    m = MeterState(meter, load_profile(meter.model))
    try:
        return await worker.read(m, tuple(m.profile.registers))
    finally:
        if worker.client is not None:
            worker.client.close()


class Bridge:
    def __init__(self, config: Config, clock: Clock = utcnow, monotonic: Monotonic = time.monotonic) -> None:
        self.config, self.clock = config, clock
        self.monotonic = monotonic  # schedules polls; tests inject one to compress time
        self.outbox = Outbox(config.state_dir / "outbox.sqlite3", config.outbox_capacity)
        kw = {"region_name": config.region}
        if config.endpoint_url:
            kw["endpoint_url"] = config.endpoint_url
        self.sqs = boto3.client("sqs", **kw)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.workers: dict[str, BusWorker] = {}
        self.bus_of: dict[str, str] = {m.meter_id: b.name for b, m in config.meters()}
        self.stop_event = threading.Event()
        self._outbox_ready = threading.Event()  # set by put(): the sender wakes at once, not on a timer
        self.status = {"last_send": "", "send_error": "", "started": ""}
        self._high_alarm = False

    # -- outbox --------------------------------------------------------------------------

    def put(self, kind: str, *, seq_updates: dict | None = None, command: tuple | None = None, **body) -> None:
        msg = messages.sign(messages.envelope(kind, self.config.site_id, uuid.uuid4().hex, self.clock(), **body),
                            self.config.secret)
        self.outbox.put(kind, msg, seq_updates=seq_updates, command=command)
        self._outbox_ready.set()
        if self.outbox.high() and not self._high_alarm:
            self._high_alarm = True
            self.event("", "outbox_high", f"outbox at {self.outbox.depth()} of {self.outbox.capacity}")
        elif self._high_alarm and not self.outbox.high():
            self._high_alarm = False

    def event(self, meter_id: str, event: str, detail: str) -> None:
        log.warning(event, extra={"meter_id": meter_id, "detail": detail})
        self.put("meter_event", meter_id=meter_id, event=event, detail=detail)

    def send_once(self) -> int:
        """Send the oldest messages in one batch; ack the in-order prefix that arrived."""
        rows = self.outbox.peek(self.config.send_batch)
        if not rows:
            return 0
        resp = self.sqs.send_message_batch(
            QueueUrl=self.config.uplink_queue_url,
            Entries=[{"Id": str(row_id), "MessageBody": body} for row_id, _, body in rows],
        )
        ok = {e["Id"] for e in resp.get("Successful", [])}
        done = []
        for row_id, _, _ in rows:
            if str(row_id) not in ok:
                break
            done.append(row_id)
        self.outbox.ack(done)
        if done:
            self.status["last_send"] = self.clock().isoformat()
        return len(done)

    def sender(self) -> None:
        delay = 0.5
        while not self.stop_event.is_set():
            try:
                sent = self.send_once()
                self.status["send_error"] = ""
                delay = 0.5
                if not sent:  # idle: sleep until something is put (or a second, to re-check)
                    self._outbox_ready.wait(1.0)
                    self._outbox_ready.clear()
            except Exception as e:  # the cloud is unreachable: keep everything, back off
                self.status["send_error"] = repr(e)[:200]
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)

    # -- commands --------------------------------------------------------------------------

    def receiver(self) -> None:
        """Long-poll the site's down queue. Each call waits up to RECEIVE_WAIT_SECONDS and
        returns as soon as a command arrives, so a command is handed to its bus at once
        (no timer in between), and an idle site costs three requests a minute."""
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                resp = self.sqs.receive_message(QueueUrl=self.config.down_queue_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=RECEIVE_WAIT_SECONDS)
                delay = 1.0
            except Exception:
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            if self.stop_event.is_set():
                return  # stopping: what this poll took comes back after the queue's visibility timeout
            for qm in resp.get("Messages", []):
                self.accept(qm["Body"], qm["ReceiptHandle"])

    def accept(self, body: str, receipt: str | None) -> str:
        try:
            cmd = json.loads(body)
        except ValueError:
            cmd = None
        if not isinstance(cmd, dict) or cmd.get("type") != "command" or cmd.get("site_id") != self.config.site_id \
                or not messages.verify_any(cmd, self.config.keys()):
            log.error("refused a command that does not verify")
            if receipt:
                self.delete_command(receipt)
            return "refused"
        try:
            expired = datetime.fromisoformat(cmd["expires_at"].replace("Z", "+00:00")) <= self.clock()
        except (KeyError, ValueError, AttributeError):
            expired = True
        if expired:
            if self.outbox.command_done(cmd.get("command_id", "")) is None:
                self.put("command_result", command=(cmd["command_id"], cmd.get("meter_id", ""), {"status": "failed"}),
                         command_id=cmd["command_id"], meter_id=cmd.get("meter_id", ""), status="failed",
                         detail="expired before it could run")
            if receipt:
                self.delete_command(receipt)
            return "expired"
        bus = self.bus_of.get(cmd.get("meter_id", ""))
        if bus is None or self.loop is None:
            return "unknown"
        worker = self.workers[bus]
        try:
            self.loop.call_soon_threadsafe(worker.commands.put_nowait, (cmd, receipt))
        except RuntimeError:  # the bridge's loop has ended: the queue redelivers it later
            return "unknown"
        return "queued"

    def delete_command(self, receipt: str) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.config.down_queue_url, ReceiptHandle=receipt)
        except Exception as e:  # redelivered later; the outbox remembers it ran
            log.warning("could not delete a command message", extra={"error": repr(e)})

    # -- running -----------------------------------------------------------------------

    def health(self) -> dict:
        return {
            "buses": {n: dict(w.stats) for n, w in self.workers.items()},
            "meters_online": sum(1 for w in self.workers.values() for m in w.meters.values() if m.online),
            "meters": sum(len(w.meters) for w in self.workers.values()),
            "outbox_depth": self.outbox.depth(), "outbox_dropped": self.outbox.dropped,
            "last_send": self.status["last_send"], "send_error": self.status["send_error"],
        }

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.put("heartbeat", **self.health())
            self.outbox.set("health", json.dumps(self.health()))
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.config.heartbeat_seconds)
            except TimeoutError:
                pass

    async def main(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.status["started"] = self.clock().isoformat()
        self.workers = {b.name: BusWorker(self, b) for b in self.config.buses}
        threads = [threading.Thread(target=self.sender, daemon=True, name="sender"),
                   threading.Thread(target=self.receiver, daemon=True, name="receiver")]
        for t in threads:
            t.start()
        watcher = asyncio.create_task(self._watch(stop))
        try:
            await asyncio.gather(self._heartbeat(stop), *(w.run(stop) for w in self.workers.values()))
        finally:
            self.stop_event.set()
            watcher.cancel()
            for w in self.workers.values():
                if w.client is not None:
                    w.client.close()
            # the receiver may be inside a long poll (up to RECEIVE_WAIT_SECONDS): it is a
            # daemon thread that checks stop_event when the poll returns, so it is not waited for
            threads[0].join(timeout=5)

    async def _watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.stop_event.is_set():
                stop.set()
            await asyncio.sleep(0.2)

    def run_in_thread(self) -> threading.Thread:
        """For tests and the demo: run the bridge's loop in a thread; stop() ends it."""
        t = threading.Thread(target=lambda: asyncio.run(self.main()), daemon=True, name="bridge")
        t.start()
        return t

    def stop(self) -> None:
        self.stop_event.set()
        self._outbox_ready.set()
