"""Sites and their bridges as the console shows them (站点网关, docs/console.md "Sites").

A bridge sends a `heartbeat` with its health figures every `heartbeat_seconds` (60 by
default; bridge/runtime.py `health()`). The cloud keeps the last one per site
(`Heartbeat`): when it arrived, when the bridge sent it, and the figures, bounded here so
a confused bridge cannot fill the table. A site is online while its last heartbeat is
younger than ONLINE_WINDOW (three missed heartbeats at the default interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

ONLINE_WINDOW = timedelta(minutes=3)
MAX_BUSES = 32
MAX_NAME = 64
MAX_TEXT = 200

ACTION_SITE_REGISTERED = "site_registered"
ACTION_SECRET_ROTATED = "site_secret_rotated"
ACTION_SECRET_FINISHED = "site_secret_finished"


@dataclass(frozen=True)
class BusHealth:
    polls: int = 0
    failures: int = 0
    cycles: int = 0
    last_cycle_seconds: float = 0.0

    @property
    def failure_rate(self) -> float | None:
        """Failed polls / polls since the bridge started (None before the first poll)."""
        return self.failures / self.polls if self.polls else None


@dataclass(frozen=True)
class Heartbeat:
    received_at: datetime  # the cloud's clock when the uplink consumer took it
    sent_at: datetime  # the bridge's clock (orders heartbeats: an older one never overwrites)
    outbox_depth: int = 0
    outbox_dropped: int = 0
    meters: int = 0
    meters_online: int = 0
    buses: dict[str, BusHealth] = field(default_factory=dict)
    send_error: str = ""
    last_send: str = ""

    def figures(self) -> dict:
        """The figures as stored (JSON-ready)."""
        return {
            "outbox_depth": self.outbox_depth, "outbox_dropped": self.outbox_dropped, "meters": self.meters,
            "meters_online": self.meters_online, "send_error": self.send_error, "last_send": self.last_send,
            "buses": {name: {"polls": b.polls, "failures": b.failures, "cycles": b.cycles,
                             "last_cycle_seconds": b.last_cycle_seconds} for name, b in self.buses.items()},
        }


def _count(value: object) -> int:
    """A non-negative integer figure; anything else counts as 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, min(int(value), 10**12))


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return round(max(0.0, min(float(value), 86_400.0)), 3)


def _text(value: object) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def heartbeat_from_figures(received_at: datetime, sent_at: datetime, figures: dict) -> Heartbeat:
    """A heartbeat from a bridge's message body (or a stored record): unknown or bad
    figures read as 0, at most MAX_BUSES buses with names cut to MAX_NAME characters."""
    buses: dict[str, BusHealth] = {}
    raw = figures.get("buses")
    if isinstance(raw, dict):
        for name, stats in list(raw.items())[:MAX_BUSES]:
            if not isinstance(stats, dict):
                stats = {}
            buses[str(name)[:MAX_NAME]] = BusHealth(
                _count(stats.get("polls")), _count(stats.get("failures")), _count(stats.get("cycles")),
                _seconds(stats.get("last_cycle_seconds")))
    return Heartbeat(
        received_at=received_at, sent_at=sent_at,
        outbox_depth=_count(figures.get("outbox_depth")), outbox_dropped=_count(figures.get("outbox_dropped")),
        meters=_count(figures.get("meters")), meters_online=_count(figures.get("meters_online")),
        buses=buses, send_error=_text(figures.get("send_error")), last_send=_text(figures.get("last_send")),
    )


def online(heartbeat: Heartbeat | None, now: datetime) -> bool:
    return heartbeat is not None and now - heartbeat.received_at <= ONLINE_WINDOW


@dataclass(frozen=True)
class BusView:
    """One bus of a site: the meters the directory places on it, and the bridge's
    figures for it (None before a heartbeat names it)."""

    name: str
    meter_ids: tuple[str, ...]
    health: BusHealth | None = None


def buses_of(meters: list[tuple[str, str]], heartbeat: Heartbeat | None) -> list[BusView]:
    """Meters per bus: `meters` are (meter_id, bus) of the site's meters in service; a bus
    the bridge reports without meters in the directory is listed too."""
    by_bus: dict[str, list[str]] = {}
    for meter_id, bus in meters:
        by_bus.setdefault(bus, []).append(meter_id)
    reported = heartbeat.buses if heartbeat else {}
    names = sorted(set(by_bus) | set(reported))
    return [BusView(n, tuple(sorted(by_bus.get(n, []))), reported.get(n)) for n in names]


# labels of the commands in flight an admin reads
OP_NAMES = {"TRIP": "拉闸", "CLOSE": "合闸", "SET_TARIFF": "下发电价", "RECHARGE": "充值到表", "SET_ALARM": "下发告警",
            "READ_NOW": "立即抄表"}
COMMAND_STATE_NAMES = {"queued": "排队中", "sent": "已下发"}
