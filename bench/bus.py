"""One RS485 bus at its physical limit: 32 simulated Acrel meters on a bus emulated at
9600 baud with a 50 ms meter turnaround (the simulator in its own process, speaking RTU
over TCP), polled by the bridge's bus worker as fast as the line allows. Prints the
measured full poll cycle next to the theoretical wire-limited minimum for the same
requests (REFERENCE.md: 11 bits per character, request 8 bytes, answer 5 + 2N, plus the
3.5-character frame gaps and the turnaround), their ratio, and the bridge's CPU time per
meter poll (the simulator's CPU is in the other process).

    .venv/bin/python bench/bus.py [--meters 32] [--cycles 3]

Targets: ratio <= 1.1; no failed poll. No AWS emulator is needed (the bridge's sender is
never started). The last line is one JSON object (bench/report.py); the exit code is 3
when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import finish  # noqa: E402
from bridge.config import parse_config  # noqa: E402
from bridge.profiles import load_profile  # noqa: E402
from bridge.runtime import Bridge, BusWorker  # noqa: E402

BAUD, TURNAROUND_MS, BITS, GAP_CHARS = 9600, 50, 11, 3.5


def theoretical_cycle(meters: int, blocks: list[int]) -> float:
    per_meter = 0.0
    for n in blocks:
        chars = (8 + GAP_CHARS) + (5 + 2 * n + GAP_CHARS)
        per_meter += chars * BITS / BAUD + TURNAROUND_MS / 1000
    return meters * per_meter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--meters", type=int, default=32)
    parser.add_argument("--cycles", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="feikong-bus-"))
    from infra.local.stack import free_port

    port = free_port()
    (tmp / "bus.yaml").write_text(yaml.safe_dump({
        "port": port, "baud": BAUD, "turnaround_ms": TURNAROUND_MS,
        "meters": [{"model": "acrel-ddsy1352", "device_id": i + 1, "load": 2, "total": 100} for i in range(args.meters)],
    }))
    sim = subprocess.Popen([sys.executable, "-m", "bridge.simulator", "--bus", str(tmp / "bus.yaml")], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        while True:
            line = sim.stdout.readline()
            seen.append(line)
            if "simulator:" in line:
                break
            if not line or len(seen) > 50:
                raise SystemExit(f"simulator did not start: {''.join(seen)}")
        config = parse_config({
            "site_id": "bench-site", "secret": "b" * 40, "state_dir": str(tmp / "state"),
            "cloud": {"region": "cn-north-1", "uplink_queue_url": "http://127.0.0.1:9/q",
                      "down_queue_url": "http://127.0.0.1:9/q.fifo", "endpoint_url": "http://127.0.0.1:9"},
            "buses": [{"name": "bus", "type": "tcp", "host": "127.0.0.1", "port": port, "framing": "rtu",
                       "timeout": 0.5, "meters": [{"meter_id": f"m{i + 1}", "address": i + 1, "model": "acrel-ddsy1352",
                                                   "poll_seconds": 0.1} for i in range(args.meters)]}],
        })
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        bridge = Bridge(config)  # its sender is never started: the outbox only fills
        worker = BusWorker(bridge, config.buses[0])
        cycles: list[float] = []

        async def run() -> tuple[float, int]:
            stop = asyncio.Event()
            task = asyncio.create_task(worker.run(stop))
            await asyncio.sleep(0)
            cpu0, polls0 = None, 0
            while len(cycles) < args.cycles + 1:  # the first cycle connects: not counted
                seen = worker.stats["cycles"]
                while worker.stats["cycles"] == seen:
                    await asyncio.sleep(0.01)
                if worker.stats["polls"] >= args.meters:
                    cycles.append(worker.stats["last_cycle_seconds"])
                    if cpu0 is None:
                        cpu0, polls0 = time.process_time(), worker.stats["polls"]
            stop.set()
            await task
            return time.process_time() - cpu0, worker.stats["polls"] - polls0

        cpu, polls = asyncio.run(run())
        failures = worker.stats["failures"]
    finally:
        sim.terminate()
        sim.wait(10)
    blocks = [b.count for b in load_profile("acrel-ddsy1352").blocks(load_profile("acrel-ddsy1352").poll)]
    minimum = theoretical_cycle(args.meters, blocks)
    measured = sorted(cycles[1:])[len(cycles[1:]) // 2]  # median of the counted cycles
    ratio = measured / minimum
    cpu_ms = cpu / max(polls, 1) * 1000
    print(f"meters: {args.meters}, requests per poll: {len(blocks)} ({'+'.join(map(str, blocks))} registers), "
          f"{BAUD} baud, turnaround {TURNAROUND_MS} ms")
    print(f"theoretical minimum cycle: {minimum * 1000:8.1f} ms")
    print(f"measured cycle (median):   {measured * 1000:8.1f} ms   ({', '.join(f'{c * 1000:.0f}' for c in cycles[1:])})")
    print(f"ratio measured/minimum:    {ratio:.3f}  (target <= 1.1)")
    print(f"bridge CPU per meter poll: {cpu_ms:.2f} ms   failures: {failures}")
    # last line: the figures with "targets", "missed" and "pass": false on a miss (exit 3), via bench/report.py
    return finish({"bench": "bus", "ratio": round(ratio, 3), "cpu_ms_per_poll": round(cpu_ms, 3),
                   "cycle_ms": round(measured * 1000, 1), "minimum_ms": round(minimum * 1000, 1),
                   "meters": args.meters, "failures": failures},
                  {"ratio": ("<= 1.1", ratio <= 1.1), "failures": ("0", failures == 0)})


if __name__ == "__main__":
    sys.exit(main())
