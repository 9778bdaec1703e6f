"""The demo's site: every seeded meter is a simulated meter on a Modbus bus, polled and
switched by the real bridge, which talks to the cloud through the real queues."""

from __future__ import annotations

from core.integrations.queues import uplink_url
from core.services import directory
from infra.demo import seed


class DemoBridge:
    """The demo's site on the real path: simulated meters (bridge/simulator.py) on one
    Modbus bus per demo bus, and the bridge (bridge/runtime.py) polling them, relaying
    readings to the uplink queue and executing the commands from the site's down queue."""

    def __init__(self, info: dict, state_dir, poll_seconds: float) -> None:
        import os
        from decimal import Decimal as D

        from bridge.config import parse_config
        from bridge.runtime import Bridge
        from bridge.simulator import SimBus, SimMeter

        buses: dict[str, list] = {}
        for b in directory.property_overview(info["property_id"])["buildings"]:
            for row in b["rooms"]:
                for a in row["accounts"]:
                    for m in directory.meters_of_account(info["property_id"], a.account_id):
                        n = sum(map(ord, m.meter_id))
                        load = "0.06" if m.kind == "water" else str(8 + n % 12) if m.kind == "electric_3p" else \
                            str(1 + n % 4)
                        if a.account_id == info["crossing"]["account"] and m.kind != "water":
                            load = "40"  # a shop with its air conditioning on: across its line in seconds
                        total = "30.00" if m.kind == "water" else str(5000 + n % 997) if m.kind == "electric_3p" \
                            else str(1000 + n % 991)
                        buses.setdefault(m.bus, []).append((m, SimMeter(m.model, m.address, load_kw=D(load),
                                                                         total=D(total))))
        self.sims = {name: SimBus([s for _, s in ms]).start() for name, ms in buses.items()}
        config = parse_config({
            "site_id": info["site"], "secret": info["secret"], "state_dir": str(state_dir), "heartbeat_seconds": 60,
            "cloud": {"region": os.environ["AWS_REGION"], "uplink_queue_url": uplink_url(),
                      "down_queue_url": info["down_queue"], "endpoint_url": os.environ["AWS_ENDPOINT_URL"]},
            "buses": [{"name": name, "type": "tcp", "host": "127.0.0.1", "port": self.sims[name].port,
                       "framing": "rtu", "timeout": 0.3,
                       "meters": [{"meter_id": m.meter_id, "address": m.address, "model": m.model,
                                   "poll_seconds": poll_seconds} for m, _ in ms]}
                      for name, ms in buses.items()],
        })
        self.bridge = Bridge(config)
        self.thread = self.bridge.run_in_thread()

    def shutdown(self) -> None:
        self.bridge.stop()
        self.thread.join(timeout=10)
        for bus in self.sims.values():
            bus.stop()


__all__ = ["DemoBridge", "seed"]
