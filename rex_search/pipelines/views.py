"""What the search page shows beside the hits: what the query's own filters hid, and the
retrieval order beside the final one."""

from __future__ import annotations

from collections import Counter

import numpy as np

from rex_search.backends.base import Backend, Filters
from rex_search.catalog.schema import brand_key
from rex_search.config import RetrievalConfig
from rex_search.pipelines.retrieve import retrieve
from rex_search.results import Hidden, Movement, RuleEffect
from rex_search.rules.base import Ranked


def hidden_by_filters(backend: Backend, text: str, vector: np.ndarray,
                      config: RetrievalConfig, caller: Filters, pushed: Filters,
                      shown: set[str], excluded_names: tuple[str, ...] = ()
                      ) -> tuple[Hidden, ...]:
    """Candidates that the filters the pipeline added (from the query or the configuration:
    excluded brands, a price, stock) kept out. Retrieval runs again with the caller's own
    filters only; each candidate it finds that the real run did not is counted under the first
    added filter that rejects it. Counts are of candidates, not of the whole catalog. Reasons
    read after a count ("157 have no price"); ``excluded_names`` name the excluded brands."""
    if pushed == caller:
        return ()
    found = retrieve(backend, text, vector, config, caller)
    extra = [c.parent_asin for c in found.candidates if c.parent_asin not in shown]
    items = backend.get(extra)
    excluded = {brand_key(b) for b in pushed.exclude_brands} - \
        {brand_key(b) for b in caller.exclude_brands}
    counts: Counter[tuple[str, str]] = Counter()
    for asin in extra:
        item = items.get(asin)
        if item is None:
            continue
        product = item.product
        if excluded and brand_key(product.brand) in excluded:
            counts["exclude_brands", f"are {' or '.join(excluded_names)}" if excluded_names
                   else "are of an excluded brand"] += 1
        elif pushed.max_price is not None and caller.max_price is None and \
                (product.price is None or product.price > pushed.max_price):
            counts["max_price", "have no price" if product.price is None
                   else f"cost more than ${pushed.max_price:g}"] += 1
        elif pushed.min_price is not None and caller.min_price is None and \
                (product.price is None or product.price < pushed.min_price):
            counts["min_price", "have no price" if product.price is None
                   else f"cost less than ${pushed.min_price:g}"] += 1
        elif (pushed.in_stock and not caller.in_stock and item.in_stock is not True) or \
                (pushed.exclude_out_of_stock and item.in_stock is False):
            counts["in_stock", "are out of stock" if item.in_stock is False
                   else "have unknown stock"] += 1
    return tuple(Hidden(f, reason, n) for (f, reason), n in counts.most_common())


def movements(ranked: list[Ranked], removed: list[tuple[Ranked, RuleEffect]],
              limit: int) -> tuple[Movement, ...]:
    """The first ``limit`` products in retrieval (fused) order, each with its final rank or
    the rule that removed it."""
    final = {r.parent_asin: i for i, r in enumerate(ranked, start=1)}
    dropped = {r.parent_asin: effect.rule for r, effect in removed}
    every = sorted([*ranked, *(r for r, _ in removed)], key=lambda r: r.candidate.fused_rank)
    return tuple(Movement(r.parent_asin, r.item.product.title, r.item.product.brand,
                          r.candidate.fused_rank, final.get(r.parent_asin),
                          dropped.get(r.parent_asin)) for r in every[:limit])
