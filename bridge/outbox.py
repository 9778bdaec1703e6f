"""Store-and-forward: everything the bridge sends goes first into a local SQLite outbox
(WAL, synchronous=FULL: a row that was put survives power loss) and is sent in order.

Bounded: at `capacity` rows the oldest readings and heartbeats are dropped first —
readings carry cumulative registers, so a dropped intermediate reading loses detail,
not consumption; command results and meter events are never dropped (a full outbox of
those refuses new ones loudly). At 80% an `outbox_high` meter event is queued once.

The same database keeps the bridge's own state: the next reading seq of every meter and
the commands already executed (so a redelivered command is answered, not re-run).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

DROPPABLE = ("readings", "heartbeat")
HIGH_WATER = 0.8


class OutboxFull(Exception):
    pass


class Outbox:
    def __init__(self, path: Path, capacity: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.capacity = path, capacity
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL,
                    created_at REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS commands (
                    command_id TEXT PRIMARY KEY, meter_id TEXT NOT NULL, result TEXT NOT NULL, at REAL NOT NULL);
                """
            )
        self.dropped = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- the queue ---------------------------------------------------------------------

    def put(self, kind: str, body: dict, *, seq_updates: dict[str, int] | None = None,
            command: tuple[str, str, dict] | None = None) -> int:
        """Append one message, atomically with the state it depends on (reading seqs, an
        executed command's result). Returns the row id."""
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
                if depth >= self.capacity:
                    depth -= self._make_room(depth - self.capacity + 1)
                    if depth >= self.capacity:
                        raise OutboxFull(f"outbox holds {depth} messages that must not be dropped")
                cur = self._db.execute("INSERT INTO outbox (kind, body, created_at) VALUES (?, ?, ?)",
                                       (kind, text, time.time()))
                for key, value in (seq_updates or {}).items():
                    self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (f"seq:{key}",
                                                                                               str(value)))
                if command is not None:
                    command_id, meter_id, result = command
                    self._db.execute("INSERT OR REPLACE INTO commands VALUES (?, ?, ?, ?)",
                                     (command_id, meter_id, json.dumps(result), time.time()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return cur.lastrowid

    def _make_room(self, n: int) -> int:
        ids = [r[0] for r in self._db.execute(
            f"SELECT id FROM outbox WHERE kind IN ({','.join('?' * len(DROPPABLE))}) ORDER BY id LIMIT ?",
            (*DROPPABLE, n))]
        if ids:
            self._db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(ids))})", ids)
            self.dropped += len(ids)
        return len(ids)

    def peek(self, n: int) -> list[tuple[int, str, str]]:
        """The oldest n messages: (row id, kind, body text), in order."""
        with self._lock:
            return list(self._db.execute("SELECT id, kind, body FROM outbox ORDER BY id LIMIT ?", (n,)))

    def ack(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock:
            self._db.execute(f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(ids))})", ids)

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def high(self) -> bool:
        return self.depth() >= HIGH_WATER * self.capacity

    # -- state -------------------------------------------------------------------------

    def get(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))

    def next_seq(self, meter_id: str) -> int:
        return int(self.get(f"seq:{meter_id}", "0")) + 1

    def command_done(self, command_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM commands WHERE command_id = ?", (command_id,)).fetchone()
        return json.loads(row[0]) if row else None
