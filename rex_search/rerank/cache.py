"""LRU cache of reranker scores keyed by (model, query, product text hash), with a hit rate."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict


class ScoreCache:
    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(model: str, query: str, text: str) -> tuple[str, str, str]:
        return model, query, hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()

    def get(self, key: tuple[str, str, str]) -> float | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple[str, str, str], value: float) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def __len__(self) -> int:
        return len(self._entries)
