"""The evaluation's ``pipeline`` ranker and `SearchPipeline.search` share one implementation:
same understood query, same reranking, same rules, so the same order for the same candidates."""

from __future__ import annotations

import pytest

from rex_search.config import RerankConfig
from rex_search.evaluate.judgments import JudgedDoc
from rex_search.evaluate.rankers import PipelineRanker
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker


@pytest.mark.parametrize("query", ["running shoes no nike", "nike shoes",
                                   "laptop bag 16 inch"])
def test_eval_pipeline_ranker_orders_candidates_as_the_search_does(small_index, embedder,
                                                                   query):
    reranker = load_reranker("rex-reranker-bge-small", embedder)
    config = RerankConfig(window=1000)  # every candidate reranked in both
    pipeline = SearchPipeline(small_index, embedder, reranker, rerank=config)
    result = pipeline.search(query, size=1000)
    removed = [asin for asin, _ in result.removed]
    if "no nike" in query:  # retrieval filtered Nike out; judged lists may still hold Nike
        removed += [h.parent_asin for h in pipeline.search("nike", size=5).hits
                    if (h.brand or "").lower() == "nike"]
    docs = [JudgedDoc(h.parent_asin, h.title, "", 0.0) for h in result.hits] + [
        JudgedDoc(asin, "?", "", 0.0) for asin in removed]
    ranker = PipelineRanker(embedder, reranker, pipeline.rules, config,
                            pipeline.known_brands(), small_index.get)
    scores = ranker.score("q", query, docs)
    kept = sorted((s, d.parent_asin) for s, d in zip(scores, docs, strict=True) if s >= 0)
    assert [asin for _, asin in reversed(kept)] == [h.parent_asin for h in result.hits]
    assert all(s == -1 for s, d in zip(scores, docs, strict=True) if d.parent_asin in removed)
    if "no nike" in query:
        assert removed, "Nike products to exclude"
