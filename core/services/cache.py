"""A small read-through cache with a time limit, for warm Lambda processes."""

from __future__ import annotations

import threading
import time


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
