"""The real bridge in its own process for bench/pay_to_power.py (not a benchmark itself), as on a site PC: it only
notes, as JSON lines on stdout, when a command arrives, when its result is in the outbox
and when that result left for the cloud. It stops when its standard input closes.

    python -m testkit.timed_bridge CONFIG.json
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from bridge.config import parse_config
from bridge.runtime import Bridge

_out = threading.Lock()


def note(event: str, **fields) -> None:
    with _out:
        sys.stdout.write(json.dumps({"ev": event, "t": time.time(), **fields}) + "\n")
        sys.stdout.flush()


class TimedBridge(Bridge):
    def accept(self, body: str, receipt: str | None) -> str:
        t = time.time()
        outcome = super().accept(body, receipt)
        note("accepted", at=t, command=json.loads(body))
        return outcome

    def put(self, kind: str, **kw) -> None:
        super().put(kind, **kw)
        if kind == "command_result":
            note("result", command_id=kw["command_id"])

    def send_once(self) -> int:
        rows = self.outbox.peek(self.config.send_batch)
        n = super().send_once()
        for _, kind, body in rows[:n]:
            if kind == "command_result":
                note("sent", command_id=json.loads(body)["command_id"])
        return n


def main() -> int:
    config = parse_config(json.loads(Path(sys.argv[1]).read_text()))
    bridge = TimedBridge(config)
    thread = bridge.run_in_thread()
    note("started")
    sys.stdin.read()  # until the bench closes our input
    bridge.stop()
    thread.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
