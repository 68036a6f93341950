from __future__ import annotations

import threading

import pytest

from rex_search.backends.base import Filters
from rex_search.config import RerankConfig
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import cosine_reranker

SHOE_LACE = "B08P6VWLBQ"


@pytest.fixture
def pipeline(small_index, embedder) -> SearchPipeline:
    return SearchPipeline(small_index, embedder, cosine_reranker(small_index, embedder))


def test_running_shoes_top5_are_running_shoes(pipeline: SearchPipeline):
    result = pipeline.search("running shoes", size=10)
    top5 = [h.title.lower() for h in result.hits[:5]]
    assert all("running" in t and "shoe" in t for t in top5), top5
    assert SHOE_LACE not in [h.parent_asin for h in result.hits[:5]]


def test_hits_carry_their_whole_story(pipeline: SearchPipeline):
    result = pipeline.search("usb c charger", size=5)
    assert result.reranker == "embedding-cosine(bge-small-en-v1.5)"
    assert result.reranked == RerankConfig().window and result.total_candidates > 100
    assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)
    for hit in result.hits:
        e = hit.explanation
        assert set(e.retrieval) <= {"bm25", "dense"} and e.retrieval
        assert e.rerank_score == hit.score
        assert e.rerank_rank == hit.rank
        assert 1 <= e.fused_rank <= result.total_candidates
    assert set(result.timings_ms) >= {"embed_query", "bm25", "dense", "fuse", "rerank", "total"}


def test_candidates_outside_the_window_keep_fused_order(small_index, embedder):
    pipeline = SearchPipeline(small_index, embedder, cosine_reranker(small_index, embedder),
                              rerank=RerankConfig(window=5))
    result = pipeline.search("laptop bag", size=10)
    assert result.reranked == 5
    tail = [h.explanation for h in result.hits[5:]]
    assert all(e.rerank_score is None for e in tail)
    assert [e.fused_rank for e in tail] == sorted(e.fused_rank for e in tail)
    assert all(e.fused_rank > 5 for e in tail)


def test_filters_and_pages(pipeline: SearchPipeline):
    result = pipeline.search("running shoes", filters=Filters(exclude_brands=("Nike",)), size=10)
    assert len(result.hits) == 10
    assert all((h.brand or "").lower() != "nike" for h in result.hits)
    page1 = pipeline.search("laptop", size=10, page=1)
    page2 = pipeline.search("laptop", size=10, page=2)
    top20 = pipeline.search("laptop", size=20)
    assert [h.parent_asin for h in page1.hits + page2.hits] == [h.parent_asin for h in top20.hits]
    assert [h.rank for h in page2.hits] == list(range(11, 21))
    with pytest.raises(ValueError, match="page and size must be >= 1"):
        pipeline.search("laptop", page=0)


def test_concurrent_searches_agree_with_serial_ones(pipeline: SearchPipeline):
    queries = ["running shoes", "laptop bag", "usb c charger", "shoe laces"]
    serial = {q: [h.parent_asin for h in pipeline.search(q).hits] for q in queries}
    results: dict[str, list[str]] = {}

    def run(q: str) -> None:
        results[q] = [h.parent_asin for h in pipeline.search(q).hits]

    threads = [threading.Thread(target=run, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == serial


def test_rerank_candidates_the_app_retrieved_itself(pipeline: SearchPipeline):
    """A host app's own candidates: reranked, business rules applied, every drop explained."""
    from rex_search.catalog.schema import Product

    found = pipeline.search("running shoes", size=8, rerank=False).hits
    nike = pipeline.search("nike running shoes", size=20).hits
    nike_id = next(h.parent_asin for h in nike if (h.brand or "").lower() == "nike"
                   and h.parent_asin not in {f.parent_asin for f in found})
    own = Product(parent_asin="APP-1", title="Trail running shoes for men, lightweight mesh")
    repeat = next(h.parent_asin for h in found if (h.brand or "").lower() != "nike")
    candidates = [*(h.parent_asin for h in reversed(found)), nike_id, "NOT-IN-INDEX",
                  repeat, own]
    result = pipeline.rerank("running shoes no nike", candidates)
    ids = [h.parent_asin for h in result.hits]
    assert nike_id not in ids and "APP-1" in ids
    removed = dict(result.removed)
    assert removed["NOT-IN-INDEX"].detail == "not in the index"
    assert removed[repeat].detail == "repeats an earlier candidate"
    assert removed[nike_id].rule == "brand_exclusion"
    scores = [h.explanation.rerank_score for h in result.hits]
    assert None not in scores
    assert result.reranked == 10  # every distinct known candidate, before the rules ran
    assert len(ids) + sum(1 for _, e in result.removed if e.rule != "input") == 10
    assert all(h.explanation.retrieval["given"].rank >= 1 for h in result.hits)
    unruled = pipeline.rerank("running shoes no nike", candidates, apply_rules=False)
    assert nike_id in {h.parent_asin for h in unruled.hits}  # only the rules removed it
    first3 = pipeline.rerank("running shoes no nike", candidates, apply_rules=False, size=3)
    assert [h.parent_asin for h in first3.hits] == [h.parent_asin for h in unruled.hits[:3]]
