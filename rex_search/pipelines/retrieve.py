"""Candidate generation: BM25 top-N and dense top-N from the backend, fused."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rex_search.backends.base import Backend, Filters
from rex_search.config import RetrievalConfig
from rex_search.pipelines.fusion import fuse
from rex_search.pipelines.timing import elapsed_ms
from rex_search.results import Candidate


@dataclass(frozen=True)
class Retrieved:
    candidates: list[Candidate]
    timings_ms: dict[str, float]


def retrieve(backend: Backend, query: str, query_vector: np.ndarray, config: RetrievalConfig,
             filters: Filters | None = None,
             extra: dict[str, Filters] | None = None) -> Retrieved:
    """Both sources with the same filters, fused by ``config.fusion``; per-source ranks kept.

    ``extra`` adds restricted sources (e.g. ``{"generic": Filters(brands=...)}`` for a
    non-branded query, so generic products are candidates even when branded ones dominate the
    unrestricted top-N); each becomes ``bm25:NAME`` and ``dense:NAME`` in the fusion.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    bm25 = backend.bm25(query, config.bm25_k, filters)
    timings["bm25"] = elapsed_ms(started)
    started = time.perf_counter()
    dense = backend.knn(query_vector, config.dense_k, filters)
    timings["dense"] = elapsed_ms(started)
    lists = {"bm25": bm25, "dense": dense}
    started = time.perf_counter()
    for name, restricted in (extra or {}).items():
        lists[f"bm25:{name}"] = backend.bm25(query, config.bm25_k // 4, restricted)
        lists[f"dense:{name}"] = backend.knn(query_vector, config.dense_k // 4, restricted)
    if extra:
        timings["extra_sources"] = elapsed_ms(started)
    started = time.perf_counter()
    candidates = fuse(lists, config.fusion, config.rrf_k, config.weights)
    timings["fuse"] = elapsed_ms(started)
    return Retrieved(candidates, timings)

