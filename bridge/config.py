"""The bridge's configuration file (YAML; docs/bridge.md has an example).

A wrong configuration is refused at start with a message that names the bad field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

from bridge.profiles import PROFILE_DIR, ProfileError, load_profile
from core.protocol.ids import id_problem


class ConfigError(ValueError):
    """A configuration problem; the message names the field."""


@dataclass(frozen=True)
class MeterConfig:
    meter_id: str
    address: int
    model: str
    poll_seconds: float
    meter_side: bool = False


@dataclass(frozen=True)
class BusConfig:
    name: str
    kind: str  # "serial" | "tcp"
    port: str = ""  # serial device, or a pyserial URL such as socket://host:port
    baudrate: int = 9600
    parity: str = "N"
    host: str = ""
    tcp_port: int = 502
    framing: str = "rtu"  # rtu (RTU, also RTU over TCP) | tcp (Modbus TCP)
    timeout: float = 0.5  # per request: a silent meter costs at most this per cycle
    meters: tuple[MeterConfig, ...] = ()


@dataclass(frozen=True)
class Config:
    site_id: str
    secret: str  # signs what the bridge sends; verifies commands
    region: str
    uplink_queue_url: str
    down_queue_url: str
    state_dir: Path
    buses: tuple[BusConfig, ...]
    endpoint_url: str | None = None
    heartbeat_seconds: float = 60.0
    # a silent meter's back-off never asks it less often than this (or its own poll
    # interval, if longer): its return is seen within this long
    silent_recheck_seconds: float = 120.0
    outbox_capacity: int = 100_000
    send_batch: int = 10
    profile_dir: Path = PROFILE_DIR
    extra: dict = field(default_factory=dict, compare=False)
    previous_secret: str = ""  # during a key rotation: still verifies commands signed before it

    def keys(self) -> tuple[str, ...]:
        """The keys a command may be signed with, current first."""
        return tuple(k for k in (self.secret, self.previous_secret) if k)

    def meters(self) -> list[tuple[BusConfig, MeterConfig]]:
        return [(b, m) for b in self.buses for m in b.meters]


def _need(d: dict, key: str, where: str, kind: type | tuple = str):
    if key not in d or d[key] in (None, ""):
        raise ConfigError(f"{where}.{key}: required")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}.{key}: must be {kind.__name__ if isinstance(kind, type) else kind}")
    return value


def _url(value: str, where: str) -> str:
    u = urlparse(value)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise ConfigError(f"{where}: must be an http(s) URL")
    return value


def _number(d: dict, key: str, where: str, default: float, lo: float, hi: float) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise ConfigError(f"{where}.{key}: must be a number between {lo} and {hi}")
    return float(value)


def parse_config(doc: object, base_dir: Path = Path(".")) -> Config:
    if not isinstance(doc, dict):
        raise ConfigError("config: must be a YAML mapping")
    site_id = _need(doc, "site_id", "config")
    if id_problem(site_id):  # the cloud's one id rule
        raise ConfigError("config.site_id: 1-64 letters, digits and _ . : @ - (starting with a letter or digit)")
    secret = _need(doc, "secret", "config")
    if len(secret) < 32:
        raise ConfigError("config.secret: must be the site's secret (32+ characters)")
    previous = doc.get("previous_secret") or ""
    if not isinstance(previous, str) or previous and len(previous) < 32:
        raise ConfigError("config.previous_secret: must be the site's previous secret (32+ characters), or absent")
    if previous == secret:
        raise ConfigError("config.previous_secret: must differ from config.secret")
    cloud = doc.get("cloud")
    if not isinstance(cloud, dict):
        raise ConfigError("config.cloud: required (region, uplink_queue_url, down_queue_url)")
    region = _need(cloud, "region", "config.cloud")
    uplink = _url(_need(cloud, "uplink_queue_url", "config.cloud"), "config.cloud.uplink_queue_url")
    down = _url(_need(cloud, "down_queue_url", "config.cloud"), "config.cloud.down_queue_url")
    if not down.endswith(".fifo"):
        raise ConfigError("config.cloud.down_queue_url: must be the site's FIFO queue (.fifo)")
    endpoint = cloud.get("endpoint_url")
    if endpoint is not None:
        _url(endpoint, "config.cloud.endpoint_url")
    state_dir = Path(doc.get("state_dir", "state"))
    if not state_dir.is_absolute():
        state_dir = base_dir / state_dir
    raw_buses = doc.get("buses")
    if not isinstance(raw_buses, list) or not raw_buses:
        raise ConfigError("config.buses: at least one bus is required")
    buses, seen_meters, seen_buses = [], set(), set()
    for i, b in enumerate(raw_buses):
        buses.append(_bus(b, f"config.buses[{i}]", seen_meters, seen_buses))
    return Config(
        site_id=site_id, secret=secret, previous_secret=previous, region=region, uplink_queue_url=uplink, down_queue_url=down,
        state_dir=state_dir, buses=tuple(buses), endpoint_url=endpoint,
        heartbeat_seconds=_number(doc, "heartbeat_seconds", "config", 60, 1, 3600),
        silent_recheck_seconds=_number(doc, "silent_recheck_seconds", "config", 120, 1, 3600),
        outbox_capacity=int(_number(doc, "outbox_capacity", "config", 100_000, 100, 10_000_000)),
        send_batch=int(_number(doc, "send_batch", "config", 10, 1, 10)),
    )


def _bus(b: object, where: str, seen_meters: set, seen_buses: set) -> BusConfig:
    if not isinstance(b, dict):
        raise ConfigError(f"{where}: must be a mapping")
    name = _need(b, "name", where)
    if name in seen_buses:
        raise ConfigError(f"{where}.name: duplicate bus {name}")
    seen_buses.add(name)
    kind = b.get("type")
    if kind == "serial":
        port = _need(b, "port", where)
        baud = int(_number(b, "baudrate", where, 9600, 1200, 115200))
        if baud not in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200):
            raise ConfigError(f"{where}.baudrate: not a standard rate")
        parity = b.get("parity", "N")
        if parity not in ("N", "E", "O"):
            raise ConfigError(f"{where}.parity: N, E or O")
        common = {"port": port, "baudrate": baud, "parity": parity, "framing": "rtu"}
    elif kind == "tcp":
        host = _need(b, "host", where)
        tcp_port = int(_number(b, "port", where, 502, 1, 65535))
        framing = b.get("framing", "rtu")
        if framing not in ("rtu", "tcp"):
            raise ConfigError(f"{where}.framing: rtu (RTU over TCP) or tcp (Modbus TCP)")
        common = {"host": host, "tcp_port": tcp_port, "framing": framing}
    else:
        raise ConfigError(f"{where}.type: serial or tcp")
    timeout = _number(b, "timeout", where, 0.5, 0.05, 10)
    raw_meters = b.get("meters")
    if not isinstance(raw_meters, list) or not raw_meters:
        raise ConfigError(f"{where}.meters: at least one meter is required")
    meters, addresses = [], set()
    for j, m in enumerate(raw_meters):
        mw = f"{where}.meters[{j}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{mw}: must be a mapping")
        meter_id = _need(m, "meter_id", mw)
        if meter_id in seen_meters:
            raise ConfigError(f"{mw}.meter_id: duplicate meter {meter_id}")
        seen_meters.add(meter_id)
        address = m.get("address")
        if isinstance(address, bool) or not isinstance(address, int) or not 1 <= address <= 247:
            raise ConfigError(f"{mw}.address: Modbus address 1..247")
        if address in addresses:
            raise ConfigError(f"{mw}.address: {address} is used twice on bus {name}")
        addresses.add(address)
        model = _need(m, "model", mw)
        try:
            load_profile(model)
        except ProfileError as e:
            raise ConfigError(f"{mw}.model: {e}") from None
        meters.append(MeterConfig(meter_id, address, model, _number(m, "poll_seconds", mw, 60, 0.1, 86400),
                                  bool(m.get("meter_side", False))))
    return BusConfig(name=name, kind=kind, timeout=timeout, meters=tuple(meters), **common)


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    return parse_config(doc, path.parent)
