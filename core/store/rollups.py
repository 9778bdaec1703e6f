"""Report rollups (table `rollups`, docs/reports.md): each room's figures per month and day,
copied from its account's summary (the usage table's items, core/store/usage.py), and each
building's totals, partitioned per (property, building) so that a building's month is one
small Query.

Key formats (known only here): room chunks: `scope` = `<property>#<building>#<period>`, `sk` =
`CM#<YYYY-MM>#<n>` | `CD#<YYYY-MM-DD>#<n>` (the rooms whose account id hashes to n of CHUNKS,
as one JSON document `rooms` = {account_id: {ids, names, figures (`_doc`)}}, and `rev`): a
period's chunks are a partition of their own, so reading a month touches nothing else;
totals: `scope` = `<property>#<building>`, `sk` = `TM#<YYYY-MM>` | `TD#<YYYY-MM-DD>`
(q#<utility>, f#<utility>, m#<category>, b#<category>, rooms).
One JSON document per chunk rather than an item or a map per room: DynamoDB bills a Query by
size either way, and the emulator's time goes by attribute values (500 rooms: 2.4 s as
items or maps, 0.03-0.06 s as one string, measured on the loaded bench machine). The
document is stored zlib-compressed (binary `z`: DynamoDB bills a Query by size, and the
bench's 62-room chunk is 14.9 KB as JSON, 1.0 KB compressed); chunks written before as JSON
text `rooms` are read as they are and compressed when they next change.

**Exact and idempotent.** A room's figures carry `v`, the version of the summary they were
copied from (the summary's own counter, ADDed by every write). Applying changes to a chunk
reads it, keeps for each room the newer of what is stored and what arrives (a redelivered or
out-of-order change is older: skipped), and writes the chunk conditioned on the `rev` it
read, in one transaction with the ADD of the difference (new − stored) to the building's
totals; a refused condition (another consumer got there first) reads again and retries.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from pynamodb.attributes import BinaryAttribute
from pynamodb.expressions.operand import Path, Value

from core.domain.reports import Figures, totals_delta
from core.domain.usage import BANDS
from core.store.models import RollupItem, UsageItem
from core.store.tx import Tx
from core.store.usage import _NUMBER

CHUNKS = 8  # chunks per building and period: 500 rooms ~ 15 KB of JSON each, a few KB compressed
MAX_CHUNK_BYTES = 380_000  # DynamoDB's item limit is 400 KB
ATTEMPTS = 20
_BINARY = BinaryAttribute(legacy_encoding=False)


def scope_of(property_id: str, building_id: str) -> str:
    return f"{property_id}#{building_id}"


def chunk_scope(property_id: str, building_id: str, period: str) -> str:
    return f"{property_id}#{building_id}#{period}"


def chunk_of(account_id: str) -> int:
    return zlib.crc32(account_id.encode()) % CHUNKS


def chunk_sk(period: str, n: int | str = "") -> str:
    return f"{'CD' if len(period) == 10 else 'CM'}#{period}#{n}"


def totals_sk(period: str) -> str:
    return f"{'TD' if len(period) == 10 else 'TM'}#{period}"


@dataclass(frozen=True)
class Change:
    """A room's figures for one period, as its summary now holds them (`new`)."""

    property_id: str
    building_id: str
    room_id: str
    account_id: str
    room_name: str
    tenant_name: str
    period: str  # "YYYY-MM" | "YYYY-MM-DD"
    new: Figures

    @property
    def scope(self) -> str:
        return scope_of(self.property_id, self.building_id)

    @property
    def chunk_scope(self) -> str:
        return chunk_scope(self.property_id, self.building_id, self.period)

    @property
    def sk(self) -> str:
        return chunk_sk(self.period, chunk_of(self.account_id))


# --- raw values -------------------------------------------------------------------------------


def plain(item: Mapping[str, dict]) -> dict[str, Decimal | str]:
    """A raw DynamoDB item (or stream image) as names -> Decimal (numbers) or str."""
    out: dict[str, Decimal | str] = {}
    for name, av in item.items():
        if "N" in av:
            out[name] = Decimal(av["N"])
        elif "S" in av:
            out[name] = av["S"]
    return out


def _num(value: Decimal | int) -> Value:
    return Value(Decimal(value), attribute=_NUMBER)


def figures(doc: Mapping) -> Figures:
    """A stored room's figures (doc keys q, c, m, b, ob, cb, v: see `_doc`)."""
    return Figures(
        {(u, b): Decimal(q) for u, bands in doc.get("q", {}).items() for b, q in bands.items()},
        {(u, b): int(f) for u, bands in doc.get("c", {}).items() for b, f in bands.items()},
        dict(doc.get("m", {})), dict(doc.get("bl", {})), doc.get("ob"), doc.get("cb"), int(doc.get("v", 0)))


def _doc(c: Change) -> dict:
    """A room as its chunk keeps it: ids and names, then its figures nested by utility and
    band (bands in their order; quantities as exact decimal strings, fen as integers), so a
    report reads it without parsing names (core/services/reports.py)."""
    f = c.new
    order = {b: i for i, b in enumerate(BANDS)}
    q: dict[str, dict[str, str]] = {}
    cost: dict[str, dict[str, int]] = {}
    for (u, b), v in sorted(f.quantity.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][1])):
        q.setdefault(u, {})[b] = format(v.normalize(), "f")
    for (u, b), v in sorted(f.cost.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9), kv[0][1])):
        cost.setdefault(u, {})[b] = int(v)
    doc = {"b": c.building_id, "r": c.room_id, "a": c.account_id, "rn": c.room_name, "tn": c.tenant_name,
           "q": q, "c": cost, "m": {k: int(v) for k, v in f.posted.items() if v},
           "bl": {k: int(v) for k, v in f.billed.items() if v}, "v": f.version}
    if f.opening is not None:
        doc["ob"] = f.opening
    if f.closing is not None:
        doc["cb"] = f.closing
    return doc


# --- writing ----------------------------------------------------------------------------------


def _encode(rooms: dict) -> bytes:
    body = json.dumps(rooms, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return zlib.compress(body.encode(), 6)


def _decode(item: Mapping[str, dict]) -> dict:
    """A chunk's rooms: `z` (zlib-compressed JSON, binary), or `rooms` (JSON text, as chunks
    were written before; rewritten compressed by their next change)."""
    if "z" in item:
        return json.loads(zlib.decompress(item["z"]["B"]))
    return json.loads(item.get("rooms", {}).get("S", "{}"))


def _read_chunk(scope: str, sk: str) -> tuple[dict, int | None]:
    answer = RollupItem._get_connection().get_item(scope, sk, consistent_read=True)
    item = answer.get("Item")
    if not item:
        return {}, None
    return _decode(item), int(item.get("rev", {}).get("N", "0"))


def _apply_chunk(scope: str, sk: str, period: str, changes: list[Change], stats: dict[str, int]) -> None:
    totals_scope = changes[0].scope
    for _ in range(ATTEMPTS):
        rooms, rev = _read_chunk(scope, sk)
        delta: dict[str, Decimal | int] = {}
        applied = 0
        for c in changes:
            current = rooms.get(c.account_id)
            before = figures(current) if current else None
            if before is not None and before.version >= c.new.version:
                continue  # what is stored is as new or newer: a redelivery
            for k, v in totals_delta(before, c.new).items():
                delta[k] = delta.get(k, 0) + v
            doc = _doc(c)
            if current and not doc["tn"]:
                doc["tn"] = current.get("tn", "")
            rooms[c.account_id] = doc
            applied += 1
        if not applied:
            stats["skipped"] += len(changes)
            return
        body = _encode(rooms)
        if len(body) > MAX_CHUNK_BYTES:
            raise RuntimeError(f"rollup chunk {scope} {sk} would exceed {MAX_CHUNK_BYTES} bytes")
        tx = Tx()
        cond = RollupItem.sk.does_not_exist() if rev is None else Path(["rev"]) == _num(rev)
        tx.update(RollupItem(scope, sk), [Path(["z"]).set(Value(body, attribute=_BINARY)), Path(["rooms"]).remove(),
                                          Path(["rev"]).set(_num((rev or 0) + 1))],
                  cond, tag="chunk")
        delta = {k: v for k, v in delta.items() if v}
        if delta:
            tx.update(RollupItem(totals_scope, totals_sk(period)),
                      [Path([k]).add(_num(v)) for k, v in sorted(delta.items())],
                      tag="totals")
        stats["transactions"] += 1
        if tx.commit() is None:
            stats["applied"] += applied
            stats["skipped"] += len(changes) - applied
            return
        stats["conflicts"] += 1
    raise RuntimeError(f"rollup chunk {scope} {sk} kept moving")


def apply(changes: Iterable[Change]) -> dict[str, int]:
    """Apply changes (in stream order): per chunk, one read and one conditioned transaction
    (see the module's docstring). Returns counts: applied, skipped (stored was as new),
    transactions, conflicts (retried)."""
    stats = {"applied": 0, "skipped": 0, "transactions": 0, "conflicts": 0}
    groups: dict[tuple[str, str, str], list[Change]] = {}
    for c in changes:
        groups.setdefault((c.chunk_scope, c.sk, c.period), []).append(c)
    for (scope, sk, period), group in groups.items():
        _apply_chunk(scope, sk, period, group, stats)
    return stats


# --- reading ----------------------------------------------------------------------------------


def _query(scope: str, low: str, high: str) -> list[dict]:
    conn, start, out = RollupItem._get_connection(), None, []
    while True:
        page = conn.query(scope, range_key_condition=RollupItem.sk.between(low, high), exclusive_start_key=start)
        out += page.get("Items", ())
        start = page.get("LastEvaluatedKey")
        if not start:
            return out


def rooms(property_id: str, building_id: str, period: str) -> list[dict]:
    """Every room of a building for one month or day (docs: see `_doc`): one Query."""
    prefix = chunk_sk(period)
    out: list[dict] = []
    for item in _query(chunk_scope(property_id, building_id, period), prefix, prefix + "\uffff"):
        out += _decode(item).values()
    return out


def totals(property_id: str, building_id: str, first: str, last: str) -> list[dict[str, Decimal | str]]:
    """A building's totals items from period first to last (both days or both months),
    with their `sk`: one Query."""
    return [plain(i) for i in _query(scope_of(property_id, building_id), totals_sk(first), totals_sk(last))]


def period_of(sk: str) -> str:
    return sk.split("#")[1]


# --- the summaries (backfill) -----------------------------------------------------------------


def summaries(account_id: str) -> list[tuple[str, dict[str, Decimal | str]]]:
    """Every summary item of an account: (period "YYYY-MM" | "YYYY-MM-DD", attributes)."""
    conn, start, out = UsageItem._get_connection(), None, []
    while True:
        page = conn.query(account_id, exclusive_start_key=start, consistent_read=True)
        for i in page.get("Items", ()):
            out.append((i["period"]["S"].split("#", 1)[1], plain(i)))
        start = page.get("LastEvaluatedKey")
        if not start:
            return out
