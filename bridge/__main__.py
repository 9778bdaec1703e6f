"""The bridge's command line.

    python -m bridge run --config bridge.yaml            run until stopped (SIGTERM / Ctrl-C)
    python -m bridge check-config --config bridge.yaml   validate the file and exit
    python -m bridge probe --config bridge.yaml METER    read one meter once and show its registers decoded
    python -m bridge status --config bridge.yaml         buses, meters online, outbox depth, last send
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

from bridge.config import ConfigError, load_config


class JsonFormatter(logging.Formatter):
    SKIP = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
               "message": record.getMessage(), "logger": record.name}
        out.update({k: v for k, v in record.__dict__.items() if k not in self.SKIP})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)


def parser() -> argparse.ArgumentParser:
    """`--config` is accepted before or after the command and anywhere among a command's
    arguments (`probe --config FILE METER` and `probe METER --config FILE` alike)."""
    config = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's own default must not overwrite a --config given before it
    config.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE", help="the bridge's YAML configuration")
    p = argparse.ArgumentParser(prog="python -m bridge", description="Feikong on-prem bridge", parents=[config])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[config], help="run until stopped (SIGTERM / Ctrl-C)")
    sub.add_parser("check-config", parents=[config], help="validate the file and exit")
    probe = sub.add_parser("probe", parents=[config], help="read one meter once and show its registers decoded")
    probe.add_argument("meter", metavar="METER", help="the meter_id as in the configuration")
    sub.add_parser("status", parents=[config], help="buses, meters online, outbox depth, last send")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not getattr(args, "config", None):
        p.error("the following arguments are required: --config")
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        n = sum(len(b.meters) for b in config.buses)
        print(f"ok: site {config.site_id}, {len(config.buses)} bus(es), {n} meter(s)")
        return 0
    from bridge.outbox import Outbox
    from bridge.profiles import load_profile
    from bridge.runtime import Bridge, read_once

    if args.command == "status":
        outbox = Outbox(config.state_dir / "outbox.sqlite3", config.outbox_capacity)
        health = json.loads(outbox.get("health", "{}"))
        print(json.dumps({"site_id": config.site_id, "outbox_depth": outbox.depth(), **{
            k: health.get(k) for k in ("buses", "meters", "meters_online", "last_send", "send_error")}},
            ensure_ascii=False, indent=2))
        return 0
    if args.command == "probe":
        matches = [(b, m) for b, m in config.meters() if m.meter_id == args.meter]
        if not matches:
            print(f"no meter {args.meter} in {args.config}", file=sys.stderr)
            return 2
        bus, meter = matches[0]

        values = asyncio.run(read_once(bus, meter))
        if values is None:
            print(f"{meter.meter_id} (address {meter.address} on {bus.name}) did not answer", file=sys.stderr)
            return 1
        profile = load_profile(meter.model)
        for name, value in values.items():
            reg = profile.registers[name]
            flag = "  (guessed register)" if reg.guessed else ""
            print(f"{name:<16} 0x{reg.address:04X}  {value} {reg.unit}{flag}")
        return 0
    _logging()
    bridge = Bridge(config)
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await bridge.main(stop)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
