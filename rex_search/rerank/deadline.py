"""Scoring under a deadline: best-first (input order) in small batches while time remains."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from rex_search.catalog.schema import Product
from rex_search.rerank.base import Reranker

_cost: dict[str, float] = {}  # reranker name -> smoothed seconds per scored item
_cost_lock = threading.Lock()


def score_within_budget(reranker: Reranker, query: str, products: Sequence[Product],
                        deadline: float | None, step: int) -> tuple[list[float], str | None]:
    """Scores for a prefix of ``products`` (all of them without a deadline).

    Each batch holds at most ``step`` items and only as many as the time left allows at the
    reranker's measured cost per item (smoothed over past calls), so the budget is not
    overrun by a batch that cannot finish in time. Returns (prefix scores, why it stopped).
    """
    step = len(products) if deadline is None else max(1, step)
    scores: list[float] = []
    while len(scores) < len(products):
        now = time.perf_counter()
        size = step
        if deadline is not None:
            per_item = _cost.get(reranker.name, 0.0)
            fits = int((deadline - now) / per_item) if per_item > 0 else step
            size = min(step, fits)
            if size < 1 or now >= deadline:
                return scores, (f"latency budget spent: reranked {len(scores)} of "
                                f"{len(products)} candidates")
        part = products[len(scores):len(scores) + size]
        scores += reranker.score(query, part)
        _learn(reranker.name, (time.perf_counter() - now) / len(part))
    return scores, None


def _learn(name: str, seconds_per_item: float) -> None:
    with _cost_lock:
        old = _cost.get(name)
        _cost[name] = seconds_per_item if old is None else 0.7 * old + 0.3 * seconds_per_item
