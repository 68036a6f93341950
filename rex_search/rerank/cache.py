"""Reranker scores keyed by (model, query, product text hash), in a bounded LRU cache."""

from __future__ import annotations

import hashlib

from rex_search.lru import LruCache

ScoreKey = tuple[str, str, str]


def text_digest(text: str) -> str:
    """A short, stable key for a (possibly long) product text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class ScoreCache(LruCache[ScoreKey, float]):
    def __init__(self, max_entries: int = 100_000) -> None:
        super().__init__(max_entries)

    @staticmethod
    def key(model: str, query: str, text: str) -> ScoreKey:
        return model, query, text_digest(text)
