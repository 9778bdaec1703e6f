"""Meter profiles: register maps and commands as data (bridge/profiles/*.yaml).

A profile names each register's address, type and scale, which registers a poll reads,
how supply state is read, and how each command is written and verified. Reads of
neighbouring registers are merged into as few requests as the profile allows
(`max_registers_per_read`, bridging gaps of at most `merge_gap` unused registers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import yaml

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"
WIDTH = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2}


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    type: str
    scale: Decimal = Decimal(1)
    unit: str = ""
    guessed: bool = False
    values: dict[int, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return WIDTH[self.type]

    def decode(self, words: list[int]) -> Decimal | str:
        raw = words[0] if self.width == 1 else (words[0] << 16) | words[1]
        if self.type.startswith("int"):
            bits = 16 * self.width
            if raw >= 1 << (bits - 1):
                raw -= 1 << bits
        if self.values:
            return self.values.get(raw, f"unknown:{raw}")
        return Decimal(raw) * self.scale


@dataclass(frozen=True)
class Block:
    start: int
    count: int
    registers: tuple[Register, ...]

    def decode(self, words: list[int]) -> dict[str, Decimal | str]:
        return {r.name: r.decode(words[r.address - self.start: r.address - self.start + r.width])
                for r in self.registers}


@dataclass(frozen=True)
class Profile:
    model: str
    name: str
    kind: str
    registers: dict[str, Register]
    poll: tuple[str, ...]
    poll_meter_side: tuple[str, ...]
    supply_register: str
    supply_on: str
    commands: dict[str, dict]
    max_registers_per_read: int = 40
    merge_gap: int = 4

    def blocks(self, names: tuple[str, ...] | list[str]) -> list[Block]:
        """Merge the registers into as few reads as the profile allows."""
        regs = sorted((self.registers[n] for n in names), key=lambda r: r.address)
        out: list[Block] = []
        group: list[Register] = []
        for r in regs:
            if group:
                start = group[0].address
                end = max(g.address + g.width for g in group)
                if r.address - end <= self.merge_gap and r.address + r.width - start <= self.max_registers_per_read:
                    group.append(r)
                    continue
                out.append(Block(start, end - start, tuple(group)))
            group = [r]
        if group:
            start = group[0].address
            out.append(Block(start, max(g.address + g.width for g in group) - start, tuple(group)))
        return out

    def supply(self, decoded: dict) -> str | None:
        """The cloud's relay state: "closed" (supply on) / "open" (cut), from a poll."""
        value = decoded.get(self.supply_register)
        if value is None or str(value).startswith("unknown"):
            return None
        return "closed" if value == self.supply_on else "open"

    def write_words(self, op: str, args: dict) -> tuple[int, list[int]]:
        spec = self.commands.get(op)
        if spec is None:
            raise ProfileError(f"{self.model} has no command {op}")
        w = spec["write"]
        if "values" in w:
            return int(w["address"]), [int(v) for v in w["values"]]
        words: list[int] = []
        for f in w["fields"]:
            value = int(args[f["arg"]])
            width = WIDTH[f["type"]]
            if width == 2:
                value &= 0xFFFFFFFF
                words += [value >> 16, value & 0xFFFF]
            else:
                words.append(value & 0xFFFF)
        return int(w["address"]), words


def _register(name: str, spec: dict, where: str) -> Register:
    if not isinstance(spec, dict) or spec.get("type") not in WIDTH:
        raise ProfileError(f"{where}.registers.{name}: type must be one of {', '.join(WIDTH)}")
    address = spec.get("address")
    if not isinstance(address, int) or not 0 <= address <= 0xFFFF:
        raise ProfileError(f"{where}.registers.{name}.address: must be 0..65535")
    return Register(name, address, spec["type"], Decimal(str(spec.get("scale", "1"))), spec.get("unit", ""),
                    bool(spec.get("guessed", False)), {int(k): str(v) for k, v in (spec.get("values") or {}).items()})


def parse_profile(doc: dict, where: str = "profile") -> Profile:
    if not isinstance(doc, dict):
        raise ProfileError(f"{where}: not a mapping")
    for key in ("model", "name", "kind", "registers", "poll", "supply", "commands"):
        if key not in doc:
            raise ProfileError(f"{where}.{key}: missing")
    regs = {n: _register(n, s, where) for n, s in doc["registers"].items()}
    for key in ("poll", "poll_meter_side"):
        for n in doc.get(key) or []:
            if n not in regs:
                raise ProfileError(f"{where}.{key}: unknown register {n}")
    supply = doc["supply"]
    if supply.get("register") not in regs:
        raise ProfileError(f"{where}.supply.register: unknown register")
    for op, spec in doc["commands"].items():
        w = (spec or {}).get("write") or {}
        if "address" not in w or not ("values" in w or "fields" in w):
            raise ProfileError(f"{where}.commands.{op}.write: needs address and values or fields")
        if (spec.get("verify") or {}).get("register") not in regs:
            raise ProfileError(f"{where}.commands.{op}.verify.register: unknown register")
    return Profile(doc["model"], doc["name"], doc["kind"], regs, tuple(doc["poll"]),
                   tuple(doc.get("poll_meter_side") or ()), supply["register"], str(supply["on_value"]), doc["commands"],
                   int(doc.get("max_registers_per_read", 40)), int(doc.get("merge_gap", 4)))


def load_profile(model: str, directory: Path = PROFILE_DIR) -> Profile:
    path = directory / f"{model}.yaml"
    if not path.exists():
        raise ProfileError(f"no profile for model {model} in {directory}")
    return parse_profile(yaml.safe_load(path.read_text()), path.name)


def all_profiles(directory: Path = PROFILE_DIR) -> dict[str, Profile]:
    return {p.stem: load_profile(p.stem, directory) for p in sorted(directory.glob("*.yaml"))}
