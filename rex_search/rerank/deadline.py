"""Scoring under a deadline: best-first (input order) in small batches while time remains."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from rex_search.catalog.schema import Product
from rex_search.rerank.base import Reranker


def score_within_budget(reranker: Reranker, query: str, products: Sequence[Product],
                        vectors: Sequence[np.ndarray | None] | None, deadline: float | None,
                        step: int) -> tuple[list[float], str | None]:
    """Scores for a prefix of ``products`` (all of them without a deadline).

    A batch starts only if the previous batch's duration still fits before ``deadline``
    (a ``time.perf_counter`` value). Returns (scores of the prefix, why it stopped early).
    """
    step = len(products) if deadline is None else max(1, step)
    scores: list[float] = []
    last = 0.0
    while len(scores) < len(products):
        now = time.perf_counter()
        if deadline is not None and now + last > deadline:
            return scores, (f"latency budget spent: reranked {len(scores)} of "
                            f"{len(products)} candidates")
        part = products[len(scores):len(scores) + step]
        part_vectors = vectors[len(scores):len(scores) + step] if vectors else None
        scores += reranker.score(query, part, part_vectors)
        last = time.perf_counter() - now
    return scores, None
