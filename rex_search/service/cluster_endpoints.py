"""The two calls an OpenSearch search pipeline makes to rex-search (installed by
`rex-search opensearch install-pipeline`, see `integrations/opensearch_pipeline.py`):

- ``POST /opensearch/understand`` {query, size?} -> {query, size}: before the search, the query
  understood (the model text without "no nike"; excluded brands, price bounds, availability
  as filters) and turned into rex-search's retrieval as one ``hybrid`` query (BM25 + kNN with
  the query's vector, the same filters on both), over the rerank window;
- ``POST /opensearch/rank`` {query, ids, products, stocks} -> {scores, explanations}: after the
  search, the window's hits reranked and the rules applied, exactly as `SearchPipeline.rerank`
  does; one score per hit in the order given, so the pipeline can sort by it. Kept hits score
  (n - position) / n, best 1.0; hits a rule removed score 0 (OpenSearch's response processors
  cannot drop a hit: they sink below every kept one) and say why in their explanation.
"""

from __future__ import annotations

import json
from typing import Any

from rex_search.backends.base import IndexedProduct
from rex_search.backends.cluster_bodies import hybrid_query
from rex_search.pipelines.documents import DocumentError, read_document
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.results import Hit

MAX_PRODUCT_CHARS = 1_000_000  # an indexed product's title and description together


class HitError(ValueError):
    """A hit the pipeline sent is not a rex-search document; the message names it."""


def understood_search(pipeline: SearchPipeline, query: str, size: int) -> dict[str, Any]:
    parsed, pushed = pipeline.understand(query)
    vector = pipeline.embedder.encode_queries([parsed.text])[0]
    retrieval = pipeline.retrieval
    return {"query": hybrid_query(parsed.text, vector, pushed, retrieval.bm25_k,
                                  retrieval.dense_k),
            "size": max(size, pipeline.rerank_config.window)}


def read_hits(ids: list[str], products: list[str], stocks: list[str]) -> list[IndexedProduct]:
    if not len(ids) == len(products) == len(stocks):
        raise HitError(f"ids, products and stocks must be as long as each other, got "
                       f"{len(ids)}, {len(products)} and {len(stocks)} (an index built before "
                       f"the stock field existed: rebuild it with --reindex)")
    items = []
    for i, (asin, product, stock) in enumerate(zip(ids, products, stocks, strict=True)):
        try:  # the product and stock JSON checked as /rerank checks a document object
            fields, state = json.loads(product), json.loads(stock)
            if not isinstance(fields, dict) or not isinstance(state, dict):
                raise DocumentError("expected JSON objects")
            item = read_document(i, {**fields, **state}, MAX_PRODUCT_CHARS)
        except (ValueError, RecursionError) as exc:  # DocumentError is a ValueError
            raise HitError(f"hit {i} ({asin[:100]!r}): its product or stock field is not what "
                           f"rex-search indexes ({str(exc)[:300]})") from None
        if item.product.parent_asin != asin:
            raise HitError(f"hit {i}: parent_asin {asin[:100]!r} differs from its product's")
        items.append(item)
    return items


def ranked_hits(pipeline: SearchPipeline, query: str,
                items: list[IndexedProduct]) -> dict[str, Any]:
    result = pipeline.rerank(query, items)
    n = len(result.hits)
    place = {h.parent_asin: (i, h) for i, h in enumerate(result.hits)}
    why = {asin: effect for asin, effect in result.removed}
    scores: list[float] = []
    explanations: list[dict[str, Any]] = []
    for item in items:
        asin = item.product.parent_asin
        if asin in place:
            position, hit = place[asin]
            scores.append((n - position) / n)
            explanations.append(_explained(hit, result.constraints))
            if result.degraded:  # the cluster's order, rules applied: said on every hit
                explanations[-1]["degraded"] = result.degraded_reason
        else:
            effect = why.get(asin)
            scores.append(0.0)
            explanations.append({"removed": {"rule": effect.rule if effect else "input",
                                             "reason": (effect.detail or effect.action)
                                             if effect else "not ranked"},
                                 "understood": result.constraints})
    return {"scores": scores, "explanations": explanations}


def _explained(hit: Hit, understood: dict[str, object]) -> dict[str, Any]:
    explanation = hit.explanation
    return {"rank": hit.rank, "rerank_score": explanation.rerank_score,
            "calibrated_score": explanation.calibrated_score, "weak": hit.weak,
            "retrieval_rank": explanation.fused_rank,
            "rules": [{"rule": e.rule, "action": e.action, "detail": e.detail}
                      for e in explanation.rules],
            "understood": understood}
