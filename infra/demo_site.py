"""The demo's site: every seeded meter turns with a load, reports readings on the real
uplink queue and obeys the commands on its down queue (until bridge/ takes over)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal

from core.integrations.queues import uplink_url
from core.services import directory
from infra import seed
from infra.sitesim import SimMeter, SimSite, hours


def build(info: dict) -> SimSite:
    site = SimSite(info["site"], info["secret"], info["down_queue"], uplink_url())
    for b in directory.property_overview(info["property_id"])["buildings"]:
        for row in b["rooms"]:
            for a in row["accounts"]:
                for m in directory.meters_of_account(info["property_id"], a.account_id):
                    n = sum(map(ord, m.meter_id))
                    if m.kind == "water":
                        site.add(SimMeter(m.meter_id, load_kw=Decimal("0.06"), total=Decimal("30.00")))
                    elif m.kind == "electric_3p":  # shops: TOU registers, heavier loads
                        site.add(SimMeter(m.meter_id, load_kw=Decimal(8 + n % 12), total=Decimal(5000 + n),
                                          registers={"sharp": Decimal(0), "peak": Decimal(0),
                                                     "flat": Decimal(5000 + n), "valley": Decimal(0)}))
                    else:
                        site.add(SimMeter(m.meter_id, load_kw=Decimal(1 + n % 4), total=Decimal(1000 + n)))
    return site


class SiteLoop:
    def __init__(self, site: SimSite, every: float) -> None:
        self.site, self.every = site, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SiteLoop:
        self.thread.start()
        return self

    def _run(self) -> None:
        last = datetime.now(UTC)
        self.site.poll_all(last)
        while not self.stop.wait(self.every):
            now = datetime.now(UTC)
            try:
                self.site.advance(hours(last, now), now)
                self.site.poll_all(now)
                self.site.take_commands()
            except Exception as e:  # keep the demo going through a hiccup
                print(f"demo site: {e!r}", flush=True)
            last = now

    def shutdown(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


__all__ = ["build", "SiteLoop", "seed"]
