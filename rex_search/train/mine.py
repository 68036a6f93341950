"""Candidates as the reranker meets them: real query strings with their first-stage top ``k``.

A student distilled only on synthetic pairs learns the teacher where the pairs are easy to tell
apart (an exact match against an unrelated product); in service it ranks the fused top 20-50 of
a real query, where the candidates are close. Mined pairs put the teacher's scores on exactly
those candidates (``train-data relabel`` adds them), in the catalog text forms the synthetic
pairs use, so the student also sees titles-only and HTML descriptions.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from rex_search.catalog.schema import Product
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.train.synth import Pair
from rex_search.train.text_forms import description_in_form, pick_form


def mined_pairs(pipeline: SearchPipeline, queries: Sequence[str], k: int = 40, seed: int = 0,
                progress: Callable[..., None] | None = None) -> list[Pair]:
    """Each query's first ``k`` candidates in retrieval order (the pipeline's first stage and
    rules, no reranker), a text form drawn per pair; every target is 0.0 until relabelled.
    ``queries``: distinct, stripped strings (`rex_search.train.data.query_strings`)."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for query in queries:
        hits = pipeline.search(query, size=k, rerank=False).hits
        stored = pipeline.backend.get([h.parent_asin for h in hits])
        for hit in hits:
            product: Product = stored[hit.parent_asin].product
            body = description_in_form(product, pick_form(rng), rng)
            pairs.append(Pair(query, product.parent_asin, product.title, body, 0.0, "mined"))
        if progress is not None:
            progress(count=1)
    return pairs
