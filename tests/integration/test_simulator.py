"""The meter simulator over real Modbus: RTU framing over TCP, read with pymodbus clients."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from bridge.profiles import load_profile
from bridge.simulator import SimBus, SimMeter, bus_from_yaml, default_tou_period

ACREL = load_profile("acrel-ddsy1352")
WATER = load_profile("generic-valve-water")
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def client(bus: SimBus, timeout: float = 2.0, framer: FramerType = FramerType.RTU) -> ModbusTcpClient:
    c = ModbusTcpClient(bus.host, port=bus.port, framer=framer, timeout=timeout, retries=0)
    assert c.connect()
    return c


def read(c: ModbusTcpClient, profile, names, device_id: int) -> dict:
    out: dict = {}
    for block in profile.blocks(names):
        r = c.read_holding_registers(block.start, count=block.count, device_id=device_id)
        assert not r.isError(), r
        out.update(block.decode(r.registers))
    return out


def command(c: ModbusTcpClient, profile, op: str, device_id: int, **args):
    address, words = profile.write_words(op, args)
    r = c.write_registers(address, words, device_id=device_id) if len(words) > 1 else \
        c.write_register(address, words[0], device_id=device_id)
    assert not r.isError(), r
    return r


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 5, 6, 9, 0, tzinfo=SHANGHAI))  # 09:00 local: peak


@pytest.fixture
def bus(clock):
    meters = [SimMeter(ACREL, 1, load_kw=Decimal("2"), total=Decimal("1234.56"), clock=clock),
              SimMeter(ACREL, 2, load_kw=Decimal("1"), balance_fen=100, meter_side=True, price_fen=60, clock=clock),
              SimMeter(WATER, 3, load_kw=Decimal("0.5"), total=Decimal("12.34"), clock=clock)]
    with SimBus(meters) as b:
        yield b


def test_tou_default_map():
    assert [default_tou_period(h) for h in (0, 7, 8, 10, 11, 12, 13, 17, 18, 20, 21, 23)] == [
        "valley", "valley", "peak", "peak", "sharp", "sharp", "flat", "flat", "peak", "peak", "flat", "flat"]


def test_async_client_reads_the_poll_block_exactly(bus):
    block = ACREL.blocks(ACREL.poll)
    assert (block[0].start, block[0].count) == (0, 17)

    async def go():
        c = AsyncModbusTcpClient(bus.host, port=bus.port, framer=FramerType.RTU, timeout=2, retries=0)
        await c.connect()
        try:
            r = await c.read_holding_registers(0, count=17, device_id=1)
            return block[0].decode(r.registers)
        finally:
            c.close()

    values = asyncio.run(go())
    assert values["total"] == Decimal("1234.56")
    assert values["flat"] == Decimal("1234.56")  # opening total is booked as flat
    assert (values["sharp"], values["peak"], values["valley"]) == (0, 0, 0)
    assert values["voltage"] == Decimal("220.0")
    assert values["power"] == Decimal("2.000")
    assert values["current"] == Decimal("9.09")
    assert values["power_factor"] == Decimal("1.000")


def test_energy_follows_the_clock_and_the_tou_hour(bus, clock):
    c = client(bus)
    names = ("total", "sharp", "peak", "flat", "valley")
    before = read(c, ACREL, names, 1)
    clock.tick(hours=1)  # 09:00 -> 10:00, peak
    after = read(c, ACREL, names, 1)
    assert after["total"] - before["total"] == Decimal("2.00")
    assert after["peak"] - before["peak"] == Decimal("2.00")
    clock.tick(hours=1, minutes=30)  # 10:00 -> 11:30: 1 h peak, 30 min sharp
    later = read(c, ACREL, names, 1)
    assert later["peak"] - after["peak"] == Decimal("2.00")
    assert later["sharp"] - after["sharp"] == Decimal("1.00")
    assert later["total"] == Decimal("1234.56") + Decimal("5.00")
    for _ in range(3):  # thirds of an hour stay exact
        clock.tick(minutes=20)
        bus.meter(1).advance()
    assert read(c, ACREL, ("total",), 1)["total"] == Decimal("1241.56")
    c.close()


def test_trip_close_and_recharge(bus, clock):
    c = client(bus)
    assert read(c, ACREL, ("relay_state",), 1)["relay_state"] == "closed"
    command(c, ACREL, "TRIP", 1)
    assert read(c, ACREL, ("relay_state", "power"), 1) == {"relay_state": "open", "power": Decimal(0)}
    total = read(c, ACREL, ("total",), 1)["total"]
    clock.tick(hours=2)
    assert read(c, ACREL, ("total",), 1)["total"] == total
    command(c, ACREL, "CLOSE", 1)
    assert read(c, ACREL, ("relay_state",), 1)["relay_state"] == "closed"
    clock.tick(hours=1)
    assert read(c, ACREL, ("total",), 1)["total"] == total + 2

    assert read(c, ACREL, ("balance", "purchase_count"), 1) == {"balance": 0, "purchase_count": 0}
    command(c, ACREL, "RECHARGE", 1, amount=5000, purchase_count=1)
    assert read(c, ACREL, ("balance", "purchase_count"), 1) == {"balance": 5000, "purchase_count": 1}
    command(c, ACREL, "RECHARGE", 1, amount=5000, purchase_count=1)  # replay: refused, no error
    command(c, ACREL, "RECHARGE", 1, amount=5000, purchase_count=3)  # skipped count: refused
    assert read(c, ACREL, ("balance", "purchase_count"), 1) == {"balance": 5000, "purchase_count": 1}
    command(c, ACREL, "RECHARGE", 1, amount=-200, purchase_count=2)  # int32: a negative amount decodes
    assert read(c, ACREL, ("balance", "purchase_count"), 1) == {"balance": 4800, "purchase_count": 2}
    c.close()


def test_meter_side_balance_trips_the_relay(bus, clock):
    c = client(bus)
    assert read(c, ACREL, ("balance", "relay_state"), 2) == {"balance": 100, "relay_state": "closed"}
    clock.tick(hours=1)  # 1 kWh at 60 fen
    assert read(c, ACREL, ("balance", "total", "relay_state"), 2) == {
        "balance": 40, "total": Decimal("1.00"), "relay_state": "closed"}
    clock.tick(hours=1)  # only 40/60 kWh is affordable: the relay trips at 0
    assert read(c, ACREL, ("balance", "total", "relay_state"), 2) == {
        "balance": 0, "total": Decimal("1.66"), "relay_state": "open"}
    command(c, ACREL, "CLOSE", 2)  # still no credit: stays open
    assert read(c, ACREL, ("relay_state",), 2)["relay_state"] == "open"
    command(c, ACREL, "RECHARGE", 2, amount=600, purchase_count=1)
    command(c, ACREL, "CLOSE", 2)
    clock.tick(minutes=30)
    assert read(c, ACREL, ("balance", "relay_state"), 2) == {"balance": 570, "relay_state": "closed"}
    c.close()


def test_water_valve(bus, clock):
    c = client(bus)
    assert read(c, WATER, WATER.poll, 3) == {"total": Decimal("12.34"), "valve_state": "open"}
    command(c, WATER, "TRIP", 3)  # single word: function 0x06
    clock.tick(hours=2)
    assert read(c, WATER, WATER.poll, 3) == {"total": Decimal("12.34"), "valve_state": "closed"}
    command(c, WATER, "CLOSE", 3)
    clock.tick(hours=2)
    assert read(c, WATER, WATER.poll, 3) == {"total": Decimal("13.34"), "valve_state": "open"}
    c.close()


def test_unmapped_reads_are_zero_and_other_writes_are_refused(bus):
    c = client(bus)
    assert c.read_holding_registers(0x1000, count=4, device_id=1).registers == [0, 0, 0, 0]
    r = c.write_registers(0x0058, [1, 1], device_id=1)
    assert r.isError() and r.exception_code == 2
    r = c.write_registers(0x0057, [2, 2], device_id=1)  # command address, unknown words
    assert r.isError() and r.exception_code == 3
    assert bus.meter(1).supply_on
    c.close()


def test_a_meter_can_refuse_every_write_with_a_chosen_exception(bus, tmp_path):
    bus.meter(1).set_faults(refuse_writes=4)
    c = client(bus)
    address, words = ACREL.write_words("TRIP", {})
    r = c.write_registers(address, words, device_id=1)  # a valid TRIP, refused all the same
    assert r.isError() and r.exception_code == 4
    assert bus.meter(1).supply_on  # nothing changed
    assert read(c, ACREL, ("relay_state",), 1) == {"relay_state": "closed"}  # reads are answered
    assert not c.write_registers(address, words, device_id=2).isError()  # only that meter refuses
    bus.meter(1).clear_faults()
    command(c, ACREL, "TRIP", 1)
    assert not bus.meter(1).supply_on
    c.close()
    with pytest.raises(ValueError):  # only the codes the Modbus spec defines
        SimMeter(ACREL, 4, refuse_writes=9)
    path = tmp_path / "bus.yaml"
    path.write_text("meters:\n  - {model: acrel-ddsy1352, device_id: 5, refuse_writes: 2}\n")
    with bus_from_yaml(path) as b:
        c = client(b)
        r = c.write_registers(address, words, device_id=5)
        assert r.isError() and r.exception_code == 2
        c.close()


def test_silent_meter_times_out_while_its_neighbour_answers(bus):
    bus.meter(1).silent = True
    c = client(bus, timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(ModbusException):
        c.read_holding_registers(0, count=2, device_id=1)
    assert time.monotonic() - t0 >= 0.25
    assert not c.read_holding_registers(0, count=2, device_id=2).isError()
    with pytest.raises(ModbusException):  # unknown device ids are silent too
        c.read_holding_registers(0, count=2, device_id=9)
    bus.meter(1).silent = False
    assert c.read_holding_registers(0, count=2, device_id=1).registers == [1, 57920]
    c.close()


def test_slow_meter_answers_late(bus):
    bus.meter(1).slow_ms = 300
    c = client(bus, timeout=2)
    t0 = time.monotonic()
    r = c.read_holding_registers(0, count=2, device_id=1)
    elapsed = time.monotonic() - t0
    assert r.registers == [1, 57920]
    assert 0.29 <= elapsed < 1.5
    c.close()


def test_garbage_fails_the_crc_and_the_next_request_succeeds(bus):
    bus.meter(1).garbage = True
    c = client(bus, timeout=0.3)
    with pytest.raises(ModbusException):
        c.read_holding_registers(0, count=2, device_id=1)
    assert not c.read_holding_registers(0, count=2, device_id=3).isError()
    bus.meter(1).clear_faults()
    assert c.read_holding_registers(0, count=2, device_id=1).registers == [1, 57920]
    c.close()


def test_serial_timing_at_9600_baud(clock):
    meter = SimMeter(ACREL, 1, load_kw=1, clock=clock)
    with SimBus([meter], baud=9600, turnaround_ms=50) as b:
        assert b.wire_seconds(8, 9) == pytest.approx(0.0275, abs=1e-4)  # REFERENCE.md table
        assert b.wire_seconds(8, 39) == pytest.approx(0.0619, abs=1e-4)
        assert b.wire_seconds(13, 8) == pytest.approx(0.0321, abs=1e-4)
        c = client(b)
        c.read_holding_registers(0, count=2, device_id=1)  # warm up
        expected = b.wire_seconds(8, 9) + 0.050
        t0 = time.monotonic()
        for _ in range(3):
            assert not c.read_holding_registers(0, count=2, device_id=1).isError()
        each = (time.monotonic() - t0) / 3
        assert expected * 0.95 <= each < 3 * expected

        # two clients on one bus are served one at a time
        c2 = client(b)
        t0 = time.monotonic()

        async def both():
            await asyncio.gather(asyncio.to_thread(c.read_holding_registers, 0, count=2, device_id=1),
                                 asyncio.to_thread(c2.read_holding_registers, 0, count=2, device_id=1))

        asyncio.run(both())
        assert time.monotonic() - t0 >= 2 * expected * 0.95
        c.close()
        c2.close()


def test_socket_framer_and_yaml_bus(tmp_path):
    path = tmp_path / "bus.yaml"
    path.write_text("framer: socket\nturnaround_ms: 0\nmeters:\n"
                    "  - {model: acrel-dtsy1352, device_id: 7, load: 3, total: 10}\n")
    with bus_from_yaml(path) as b:
        c = client(b, framer=FramerType.SOCKET)
        values = read(c, b.meter(7).profile, ("total", "power", "relay_state"), 7)
        assert values == {"total": Decimal("10.00"), "power": Decimal("3.000"), "relay_state": "closed"}
        b.meter(7).garbage = True
        c.comm_params.timeout_connect = 0.3
        with pytest.raises(ModbusException):
            c.read_holding_registers(0, count=2, device_id=7)
        c.close()
