"""Prepaid meter simulator that speaks real Modbus (RTU framing over TCP by default).

A `SimMeter` holds the state of one meter (energy, time-of-use split, supply, meter-side
balance, purchase count) and renders it through its profile's register map at the moment
a request arrives. A `SimBus` is one Modbus server (one RS485 line) serving several meters
by device id, in a background thread so synchronous code and tests can start and stop it.

Choices a real meter may make differently (documented here, relied on by tests):
- Reads of addresses the profile does not map return 0; reads of a command's write
  address return the words last written there. Reads with function 0x03 and 0x04 see the
  same registers. Writes (0x06 / 0x10) are accepted only at a command's write address:
  elsewhere exception 2 (illegal data address), wrong words for a fixed command
  exception 3 (illegal data value), other write functions exception 1. A meter given
  `refuse_writes=N` (a fault, below) answers every write with exception N instead.
- Unknown device ids and broadcasts (device id 0) get no answer, as on a real line.
- RECHARGE with a purchase count other than current + 1 is answered normally but
  changes nothing (that is how a real meter refuses a replay).
- In meter-side mode the relay trips by itself when the balance reaches 0, and trips
  stays open on CLOSE while the balance is still <= 0. A recharge
  does not close the relay: the bridge sends CLOSE.

pymodbus 3.16 notes: `ModbusDeviceContext` / data blocks are deprecated and are copied
into `SimDevice`/`SimData` at server start, so a subclassed data block would never be
asked for live values. Registers are served by `SimDevice(action=...)`, whose async
action sees every request and fills the register list in place (reads) or vetoes and
applies writes. `SimData` addresses are the wire addresses (no shift by one; the shift
only exists in the deprecated `ModbusSequentialDataBlock`, which subtracts 1).
Line timing, faults and "one request at a time" live in a small subclass of pymodbus'
`ServerRequestHandler` (see `_BusRequestHandler`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import yaml
from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

from bridge.profiles import WIDTH, Profile, Register, load_profile

log = logging.getLogger(__name__)

try:
    from zoneinfo import ZoneInfo

    SHANGHAI: Any = ZoneInfo("Asia/Shanghai")
except Exception:  # no tz database: China has had no DST since 1991
    SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

TOU_NAMES = ("sharp", "peak", "flat", "valley")
# (first hour, end hour, period) in local Asia/Shanghai time.
DEFAULT_TOU = ((0, 8, "valley"), (8, 11, "peak"), (11, 13, "sharp"), (13, 18, "flat"),
               (18, 21, "peak"), (21, 24, "flat"))
BITS_PER_CHAR = 11
FRAME_GAP_CHARS = Fraction(7, 2)  # RTU silent interval that ends every frame
_US_PER_HOUR = 3_600_000_000


def default_tou_period(hour: int) -> str:
    """The TOU period of a local hour (0..23) in the simulator's default map."""
    for first, end, period in DEFAULT_TOU:
        if first <= hour < end:
            return period
    raise ValueError(f"hour out of range: {hour}")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # naive clock values are taken as UTC


def _to_decimal(f: Fraction) -> Decimal:
    return Decimal(f.numerator) / Decimal(f.denominator)


def _frac(v: Decimal | int | str | float | Fraction) -> Fraction:
    return v if isinstance(v, Fraction) else Fraction(Decimal(str(v)))


def _exception_code(code: int | None) -> ExcCodes | None:
    """A Modbus exception code the spec defines (1-8, 10, 11), or None; ValueError otherwise."""
    return None if code is None else ExcCodes(int(code))


class SimMeter:
    """State of one simulated meter, rendered through its profile's registers.

    Energy advances with `clock` (default real UTC time): every read, write or call to
    `advance()` adds load x elapsed time to the total and to the TOU period of the local
    Asia/Shanghai hour, split at hour boundaries. Internally exact (fractions); registers
    show energy and balance rounded down to the profile's scale.

    Faults, settable at any time from any thread: `silent` (no answer), `slow_ms`
    (answer that much later), `garbage` (answer with a frame that fails its check),
    `refuse_writes` (a Modbus exception code, e.g. 2: every write is answered with that
    exception response and changes nothing; reads are answered as usual).
    """

    def __init__(self, profile: Profile | str, device_id: int, *, load_kw: Decimal | int | str = 0,
                 total: Decimal | int | str = 0, tou: dict[str, Decimal] | None = None,
                 supply_on: bool = True, balance_fen: Decimal | int | str = 0, purchase_count: int = 0,
                 meter_side: bool = False, price_fen: Decimal | int | str = 60,
                 clock: Callable[[], datetime] = utc_now, tou_period: Callable[[int], str] = default_tou_period,
                 voltage: Decimal | str = "220.0", power_factor: Decimal | str = "1.000",
                 refuse_writes: int | None = None) -> None:
        self.profile = load_profile(profile) if isinstance(profile, str) else profile
        if not 1 <= int(device_id) <= 247:
            raise ValueError(f"device_id must be 1..247, got {device_id}")
        self.device_id = int(device_id)
        self.clock = clock
        self.tou_period = tou_period
        self.meter_side = meter_side
        self.price_fen = Decimal(str(price_fen))  # fen per kWh (water: per m3)
        self.voltage = Decimal(str(voltage))
        self.power_factor = Decimal(str(power_factor))
        self.purchase_count = int(purchase_count)
        self.silent = False
        self.slow_ms: float = 0
        self.garbage = False
        self.refuse_writes = _exception_code(refuse_writes)
        # name -> value (Decimal in the register's unit, or a state string) overriding the model
        self.fixed: dict[str, Decimal | int | str] = {}
        self.written: dict[int, int] = {}  # words last written at command addresses
        self._lock = threading.RLock()
        self._load = _frac(load_kw)
        self._total = _frac(total)
        if tou is None:  # a real meter's total is the sum of its TOU registers: book the opening total as flat
            tou = {"flat": total} if "flat" in self.profile.registers else {}
        self._tou = {n: _frac(tou.get(n, 0)) for n in TOU_NAMES}
        self._balance = _frac(balance_fen)
        self._supply_on = bool(supply_on)
        self._last = _aware(clock())

    # ---- state -------------------------------------------------------------------------
    @property
    def total(self) -> Decimal:
        with self._lock:
            return _to_decimal(self._total)

    @property
    def tou(self) -> dict[str, Decimal]:
        with self._lock:
            return {n: _to_decimal(v) for n, v in self._tou.items()}

    @property
    def balance_fen(self) -> Decimal:
        with self._lock:
            return _to_decimal(self._balance)

    @balance_fen.setter
    def balance_fen(self, value: Decimal | int | str) -> None:
        with self._lock:
            self.advance()
            self._balance = _frac(value)

    @property
    def load_kw(self) -> Decimal:
        return _to_decimal(self._load)

    @load_kw.setter
    def load_kw(self, value: Decimal | int | str) -> None:
        with self._lock:
            self.advance()  # energy so far at the old load
            self._load = _frac(value)

    @property
    def supply_on(self) -> bool:
        with self._lock:
            return self._supply_on

    @supply_on.setter
    def supply_on(self, on: bool) -> None:
        with self._lock:
            self.advance()
            self._supply_on = bool(on)

    def set_faults(self, *, silent: bool = False, slow_ms: float = 0, garbage: bool = False,
                   refuse_writes: int | None = None) -> None:
        self.silent, self.slow_ms, self.garbage = silent, slow_ms, garbage
        self.refuse_writes = _exception_code(refuse_writes)

    def clear_faults(self) -> None:
        self.set_faults()

    def advance(self, now: datetime | None = None) -> None:
        """Add the energy used since the last update (a clock going backwards adds nothing)."""
        with self._lock:
            now = _aware(now or self.clock())
            t = self._last
            price = _frac(self.price_fen)
            while t < now and self._supply_on and self._load > 0:
                hour_start = t.astimezone(SHANGHAI).replace(minute=0, second=0, microsecond=0)
                seg_end = min(now, hour_start + timedelta(hours=1))
                energy = self._load * Fraction((seg_end - t) // timedelta(microseconds=1), _US_PER_HOUR)
                trip = False
                if self.meter_side and price > 0 and energy * price >= self._balance:
                    energy, trip = max(self._balance / price, Fraction(0)), True
                self._total += energy
                period = self.tou_period(hour_start.hour)
                if period in self._tou:
                    self._tou[period] += energy
                if self.meter_side:
                    self._balance -= energy * price
                if trip:
                    self._supply_on = False
                t = seg_end
            if self.meter_side and self._balance <= 0:
                self._supply_on = False
            self._last = max(self._last, now)

    # ---- registers ---------------------------------------------------------------------
    def _supply_text(self, on: bool) -> str:
        if on:
            return self.profile.supply_on
        trip = (self.profile.commands.get("TRIP") or {}).get("verify") or {}
        if trip.get("register") == self.profile.supply_register and "equals" in trip:
            return str(trip["equals"])
        reg = self.profile.registers[self.profile.supply_register]
        return next(v for v in reg.values.values() if v != self.profile.supply_on)

    def _value(self, reg: Register) -> Fraction | str | None:
        """Model value of a register in its unit (or state text); None if not modelled."""
        name = reg.name
        if name in self.fixed:
            v = self.fixed[name]
            return v if isinstance(v, str) else _frac(v)
        if name == self.profile.supply_register:
            return self._supply_text(self._supply_on)
        if name == "total":
            return self._total
        if name in self._tou:
            return self._tou[name]
        if name == "balance":
            return self._balance
        if name == "purchase_count":
            return Fraction(self.purchase_count)
        power = self._load if self._supply_on else Fraction(0)
        if name == "power":
            return power
        if name == "voltage":
            return _frac(self.voltage)
        if name == "power_factor":
            return _frac(self.power_factor)
        if name == "current":
            phases = 3 if self.profile.kind.endswith("3p") else 1
            volt_pf = _frac(self.voltage) * _frac(self.power_factor) * phases
            return power * 1000 / volt_pf if volt_pf else Fraction(0)
        return None

    @staticmethod
    def _raw(reg: Register, value: Fraction | str) -> int:
        if isinstance(value, str):
            reverse = {text: raw for raw, text in reg.values.items()}
            return reverse.get(value, 0)
        scaled = value / _frac(reg.scale)
        if reg.name in ("total", "balance", *TOU_NAMES):
            return scaled.numerator // scaled.denominator  # money and energy: round down
        return int(_to_decimal(scaled).to_integral_value(ROUND_HALF_UP))

    def register_words(self) -> dict[int, int]:
        """Address -> 16-bit word for everything this meter answers with now."""
        with self._lock:
            self.advance()
            words = dict(self.written)
            for reg in self.profile.registers.values():
                value = self._value(reg)
                if value is None:
                    continue
                raw = self._raw(reg, value) & ((1 << (16 * reg.width)) - 1)
                if reg.width == 2:
                    words[reg.address], words[reg.address + 1] = raw >> 16, raw & 0xFFFF
                else:
                    words[reg.address] = raw
            return words

    def read(self, address: int, count: int) -> list[int]:
        words = self.register_words()
        return [words.get(a, 0) for a in range(address, address + count)]

    def write(self, address: int, words: list[int]) -> ExcCodes | None:
        """Apply a write as the meter would; an exception code if it refuses the request."""
        if self.refuse_writes:
            return ExcCodes(self.refuse_writes)
        specs = [(op, spec) for op, spec in self.profile.commands.items()
                 if int(spec["write"]["address"]) == address]
        if not specs:
            return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            self.advance()
            for op, spec in specs:
                w = spec["write"]
                if "values" in w:
                    if [int(v) for v in w["values"]] != list(words):
                        continue
                    self._apply_fixed(op, spec)
                elif len(words) == sum(WIDTH[f["type"]] for f in w["fields"]):
                    self._apply_fields(op, w["fields"], words)
                else:
                    continue
                for i, word in enumerate(words):
                    self.written[address + i] = word
                return None
        return ExcCodes.ILLEGAL_VALUE

    def _apply_fixed(self, op: str, spec: dict) -> None:
        verify = spec.get("verify") or {}
        if verify.get("register") == self.profile.supply_register and "equals" in verify:
            self._supply_on = str(verify["equals"]) == self.profile.supply_on
        elif op in ("TRIP", "CLOSE"):
            self._supply_on = op == "CLOSE"
        if self.meter_side and self._balance <= 0:
            self._supply_on = False

    def _apply_fields(self, op: str, fields: list[dict], words: list[int]) -> None:
        args: dict[str, int] = {}
        i = 0
        for f in fields:
            width = WIDTH[f["type"]]
            raw = (words[i] << 16) | words[i + 1] if width == 2 else words[i]
            if f["type"].startswith("int") and raw >= 1 << (16 * width - 1):
                raw -= 1 << (16 * width)
            args[f["arg"]] = raw
            i += width
        if op == "RECHARGE" and args.get("purchase_count") == self.purchase_count + 1:
            self._balance += int(args.get("amount", 0))
            self.purchase_count = args["purchase_count"]
        elif op != "RECHARGE":
            log.warning("simulator: command %s with fields is not modelled, ignored", op)

    def __repr__(self) -> str:
        return (f"SimMeter({self.profile.model}, id={self.device_id}, total={self.total}, "
                f"supply_on={self.supply_on}, balance_fen={self.balance_fen}, count={self.purchase_count})")


# ---- Modbus server ---------------------------------------------------------------------
def _rtu_len(pdu: ModbusPDU) -> int:
    """Bytes of the pdu as an RTU frame: address + function + data + CRC."""
    return 4 + len(pdu.encode())


def _corrupt(frame: bytes, framer: FramerType) -> bytes:
    """A frame the client must reject: RTU with a wrong CRC, Modbus/TCP with a bad protocol id."""
    if framer == FramerType.RTU:
        return frame[:-1] + bytes([frame[-1] ^ 0xA5])
    return frame[:2] + b"\xde\xad" + frame[4:]


class _BusRequestHandler(ServerRequestHandler):
    """One client connection. Replaces pymodbus' handle_request so the bus can serialise
    requests, add line timing, apply faults, and address the answer to the request it
    answers (pymodbus reads `last_pdu` again after awaiting the datastore, which a
    request arriving meanwhile would have replaced)."""

    async def handle_request(self) -> None:
        request, addr = self.last_pdu, self.last_addr
        if request is None:
            return
        try:
            await self.server.sim_bus._serve(self, request, addr)
        except Exception:  # a coroutine run by pymodbus' call_soon: nobody else would see it
            log.exception("simulator: request from %s failed", addr)


class _SimServer(ModbusTcpServer):
    def __init__(self, sim_bus: SimBus, devices: list[SimDevice], **kwargs: Any) -> None:
        super().__init__(devices, **kwargs)
        self.sim_bus = sim_bus

    def callback_new_connection(self) -> _BusRequestHandler:
        return _BusRequestHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class SimBus:
    """One Modbus server (one RS485 line) serving `meters` by device id.

    framer "rtu" (default) is RTU framing over TCP, as a serial server on a TCP port
    (pymodbus client: `framer=FramerType.RTU`, or a serial client on `socket://host:port`);
    "socket" is Modbus/TCP. With `baud`, each exchange takes the wire time of both frames
    at 11 bits per character plus a 3.5-character gap after each frame, plus
    `turnaround_ms` (meter think time) before the answer; requests are always served one
    at a time per bus.
    """

    def __init__(self, meters: Iterable[SimMeter], *, host: str = "127.0.0.1", port: int = 0,
                 framer: str | FramerType = "rtu", baud: int | None = None, turnaround_ms: float = 0) -> None:
        self.meters: dict[int, SimMeter] = {}
        for m in meters:
            if m.device_id in self.meters:
                raise ValueError(f"device id {m.device_id} used twice on one bus")
            self.meters[m.device_id] = m
        if not self.meters:
            raise ValueError("a bus needs at least one meter")
        self.host = host
        self.port = port
        self.framer = FramerType(framer)
        if self.framer not in (FramerType.RTU, FramerType.SOCKET):
            raise ValueError("framer must be 'rtu' or 'socket'")
        self.baud = baud
        self.turnaround_ms = turnaround_ms
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _SimServer | None = None
        self._line: asyncio.Lock | None = None

    def meter(self, device_id: int) -> SimMeter:
        return self.meters[device_id]

    def wire_seconds(self, *frame_lengths: int) -> float:
        """Line time of these frames at the bus' baud rate (0 without baud)."""
        if not self.baud:
            return 0.0
        chars = sum(n + FRAME_GAP_CHARS for n in frame_lengths)
        return float(chars * BITS_PER_CHAR / self.baud)

    # ---- serving (runs in the bus thread) ------------------------------------------------
    async def _action(self, meter: SimMeter, function_code: int, start_address: int, address: int,
                      count: int, registers: list[int], set_values: list[int] | list[bool] | None
                      ) -> ExcCodes | None:
        if set_values is not None:
            if function_code not in (6, 16):
                return ExcCodes.ILLEGAL_FUNCTION
            return meter.write(address, [int(v) for v in set_values])
        if function_code not in (3, 4, 6, 16):
            return ExcCodes.ILLEGAL_FUNCTION
        registers[address - start_address: address - start_address + count] = meter.read(address, count)
        return None

    async def _serve(self, handler: _BusRequestHandler, request: ModbusPDU, addr: Any) -> None:
        assert self._line is not None and self._server is not None
        loop = asyncio.get_running_loop()
        meter = self.meters.get(request.dev_id)
        async with self._line:
            start = loop.time()
            request_len = _rtu_len(request)
            if meter is None or meter.silent:
                await asyncio.sleep(self.wire_seconds(request_len))  # the line is busy all the same
                return
            try:
                response = await request.datastore_update(self._server.context, request.dev_id)
            except Exception:
                log.exception("simulator: device %s failed on %s", request.dev_id, request)
                response = ExceptionResponse(request.function_code, ExcCodes.DEVICE_FAILURE)
            response.transaction_id = request.transaction_id
            response.dev_id = request.dev_id
            frame = handler.framer.buildFrame(response)
            delay = (self.wire_seconds(request_len, _rtu_len(response))
                     + (self.turnaround_ms + meter.slow_ms) / 1000)
            if (wait := start + delay - loop.time()) > 0:
                await asyncio.sleep(wait)
            if meter.garbage:
                frame = _corrupt(frame, self.framer)
            handler.send(frame, addr=addr)

    def _devices(self) -> list[SimDevice]:
        devices = []
        for dev_id, meter in self.meters.items():
            async def action(fc, start, address, count, registers, values, _meter=meter):
                return await self._action(_meter, fc, start, address, count, registers, values)
            # every address 0x0000..0xFFFF is valid; values come from the action at request time
            devices.append(SimDevice(dev_id, simdata=SimData(0, count=0x10000, datatype=DataType.REGISTERS),
                                     action=action))
        return devices

    async def _astart(self) -> None:
        self._line = asyncio.Lock()
        self._server = _SimServer(self, self._devices(), framer=self.framer, address=(self.host, self.port),
                                  ignore_missing_devices=True)
        await self._server.serve_forever(background=True)
        self.port = self._server.transport.sockets[0].getsockname()[1]

    # ---- start / stop from synchronous code ----------------------------------------------
    def start(self) -> SimBus:
        if self._thread:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                tasks = asyncio.all_tasks(loop)
                for task in tasks:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name=f"simbus-{self.host}:{self.port}", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure or not ready.is_set():
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"simulator bus did not start on {self.host}:{self.port}") from (
                failure[0] if failure else None)
        return self

    def stop(self) -> None:
        if not self._thread or not self._loop:
            return
        loop = self._loop
        if self._server is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._server.shutdown(), loop).result(5)
            except Exception:
                log.exception("simulator: shutdown failed")
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = self._loop = self._server = None

    def __enter__(self) -> SimBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- command line ----------------------------------------------------------------------
def bus_from_yaml(path: str | Path) -> SimBus:
    """A bus from YAML: host, port, framer, baud, turnaround_ms and meters
    (model, device_id, load, and optionally total, balance_fen, purchase_count, meter_side, price_fen,
    refuse_writes: a Modbus exception code every write is answered with)."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    meters = [SimMeter(m["model"], m["device_id"], load_kw=str(m.get("load", 0)), total=str(m.get("total", 0)),
                       balance_fen=str(m.get("balance_fen", 0)), purchase_count=int(m.get("purchase_count", 0)),
                       meter_side=bool(m.get("meter_side", False)), price_fen=str(m.get("price_fen", 60)),
                       refuse_writes=m.get("refuse_writes"))
              for m in doc.get("meters") or []]
    return SimBus(meters, host=doc.get("host", "127.0.0.1"), port=int(doc.get("port", 0)),
                  framer=doc.get("framer", "rtu"), baud=doc.get("baud"), turnaround_ms=float(doc.get("turnaround_ms", 0)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bridge.simulator", description="Serve simulated meters over Modbus.")
    parser.add_argument("--bus", required=True, help="bus YAML: port, baud, turnaround_ms, meters")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop cleanly on TERM as on Ctrl-C
    bus = bus_from_yaml(args.bus).start()
    print(f"simulator: {bus.framer.value} on {bus.host}:{bus.port}, device ids {sorted(bus.meters)}", flush=True)
    try:
        threading.Event().wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        bus.stop()


if __name__ == "__main__":
    main()
