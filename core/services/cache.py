"""Caches for warm Lambda processes: a small read-through cache with a time limit, and
the bounded (least recently used) memories of account and meter states."""

from __future__ import annotations

import threading
import time

from cachetools import LRUCache

from core.settings import Settings, get_settings


class TTLCache:
    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl, self._data, self._lock = ttl, {}, threading.Lock()

    def get(self, key, load):
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
        if hit and now - hit[0] < self.ttl:
            return hit[1]
        value = load(key)
        with self._lock:
            self._data[key] = (now, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


# -- bounded memories of account and meter states ------------------------------------

DEFAULT_STATE_CACHE_SIZE = Settings.state_cache_size  # bench/ingest.py measures the memory


def state_cache_size() -> int:
    """How many states (accounts, meters) a process remembers, each kind apart
    (FEIKONG_STATE_CACHE_SIZE)."""
    return get_settings().state_cache_size


def state_cache(maxsize: int | None = None) -> LRUCache:
    """A least-recently-used map of states. Not thread-safe by itself: its owner guards
    every access with its own lock (a lookup reorders the entries)."""
    return LRUCache(maxsize=maxsize or state_cache_size())
