"""Cloud <-> bridge messages: one versioned definition used by both sides.

Every message is a JSON object with `v` (schema version), `type`, `site_id`,
`message_id`, `sent_at` and a type-specific body, signed with HMAC-SHA256 under the
site's secret over its canonical JSON (sorted keys, no spaces, UTF-8) without `sig`.
A message that does not verify is never acted on.

Down (cloud -> bridge, FIFO queue per site, group = meter, dedup id = command id):
  command:        command_id, meter_id, op, args, issued_at, expires_at
Up (bridge -> cloud, one queue):
  readings:       readings: [{meter_id, seq, read_at, total, registers?, balance?, purchase_count?,
                              relay_state? (read back with the poll: open|closed)}]
  command_result: command_id, meter_id, status (applied|failed), relay_state?, detail?, purchase_count?,
                  modbus_exception? (the Modbus exception code of a refused write)
  heartbeat:      health figures
  meter_event:    meter_id, event, detail
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

VERSION = 1
TYPES = ("command", "readings", "command_result", "heartbeat", "meter_event")


class BadMessage(ValueError):
    """A message (or a reading in it) that does not follow the schema. Plain ValueError:
    the protocol imports nothing of ours; the cloud turns it into its own errors."""

    code = "bad_message"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class MeterReading:
    """One reading as it travels in a `readings` message (core.domain.rating rates it)."""

    meter_id: str
    seq: int
    read_at: datetime  # the meter's own read time
    total: Decimal
    registers: dict[str, Decimal] = field(default_factory=dict)  # TOU registers, when reported
    balance: int | None = None  # meter-side money (fen), when the meter keeps it
    purchase_count: int | None = None
    relay_state: str | None = None  # "open" / "closed" as read back with the reading, when reported

    def values(self) -> tuple:
        return (self.total, tuple(sorted(self.registers.items())))


def canonical(msg: dict) -> bytes:
    body = {k: v for k, v in msg.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(msg: dict, secret: str) -> dict:
    out = dict(msg)
    out["sig"] = hmac.new(secret.encode(), canonical(msg), hashlib.sha256).hexdigest()
    return out


def verify(msg: dict, secret: str) -> bool:
    sig = msg.get("sig")
    if not isinstance(sig, str):
        return False
    expected = hmac.new(secret.encode(), canonical(msg), hashlib.sha256).hexdigest()
    return hmac.compare_digest(sig, expected)


def verify_any(msg: dict, secrets: Iterable[str]) -> bool:
    """Signed with one of `secrets` (a site's current key, and its previous one while a
    key rotation is under way: docs/bridge.md)."""
    return any(verify(msg, s) for s in secrets if s)


def envelope(kind: str, site_id: str, message_id: str, sent_at: datetime, **body: object) -> dict:
    if kind not in TYPES:
        raise BadMessage(f"unknown message type {kind}")
    return {"v": VERSION, "type": kind, "site_id": site_id, "message_id": message_id,
            "sent_at": sent_at.astimezone(UTC).isoformat(), **body}


def decode(text: str) -> dict:
    try:
        msg = json.loads(text)
    except (TypeError, ValueError):
        raise BadMessage("message is not JSON") from None
    if not isinstance(msg, dict) or msg.get("v") != VERSION or msg.get("type") not in TYPES:
        raise BadMessage("unknown message version or type")
    for key in ("site_id", "message_id"):
        if not isinstance(msg.get(key), str) or not msg[key]:
            raise BadMessage(f"message without {key}")
    return msg


def _time(value: object) -> datetime:
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise BadMessage(f"bad time {value!r}") from None
    if t.tzinfo is None:
        raise BadMessage(f"time without zone {value!r}")
    return t.astimezone(UTC)


def _decimal(value: object) -> Decimal:
    if isinstance(value, float | bool):
        raise BadMessage("register values are strings or integers")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise BadMessage(f"bad register value {value!r}") from None
    if not d.is_finite() or d < 0:
        raise BadMessage(f"bad register value {value!r}")
    return d


def parse_reading(r: object) -> MeterReading:
    if not isinstance(r, dict) or not isinstance(r.get("meter_id"), str):
        raise BadMessage("reading without meter_id")
    seq = r.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise BadMessage("reading seq must be a non-negative integer")
    regs = r.get("registers") or {}
    if not isinstance(regs, dict):
        raise BadMessage("registers must be an object")
    balance = r.get("balance")
    count = r.get("purchase_count")
    for name, v in (("balance", balance), ("purchase_count", count)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise BadMessage(f"{name} must be an integer")
    return MeterReading(
        meter_id=r["meter_id"],
        seq=seq,
        read_at=_time(r.get("read_at")),
        total=_decimal(r.get("total")),
        registers={str(k): _decimal(v) for k, v in regs.items()},
        balance=balance,
        purchase_count=count,
        relay_state=relay if (relay := r.get("relay_state")) in ("open", "closed") else None,
    )


def reading_to_wire(r: MeterReading) -> dict:
    out: dict = {"meter_id": r.meter_id, "seq": r.seq, "read_at": r.read_at.isoformat(), "total": str(r.total)}
    if r.registers:
        out["registers"] = {k: str(v) for k, v in r.registers.items()}
    if r.balance is not None:
        out["balance"] = r.balance
    if r.purchase_count is not None:
        out["purchase_count"] = r.purchase_count
    if r.relay_state is not None:
        out["relay_state"] = r.relay_state
    return out
