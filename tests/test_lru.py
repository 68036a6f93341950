"""The one bounded LRU cache."""

from __future__ import annotations

import pytest

from rex_search.lru import LruCache


def test_the_least_recently_used_entry_goes_first():
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert (cache.get("b"), cache.get("a"), cache.get("c")) == (None, 1, 3)


def test_zero_entries_is_a_cache_turned_off_and_negative_is_refused():
    off: LruCache[str, int] = LruCache(0)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    with pytest.raises(ValueError, match="max_entries must be >= 0, got -1"):
        LruCache(-1)
