"""The search page's views: facets over the candidates, what the query's filters hid, the
retrieval order beside the final one, and the literal search that undoes interpretation."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from rex_search.backends.base import Filters
from rex_search.catalog.schema import brand_key
from rex_search.config import RulesConfig
from rex_search.errors import QueryError
from rex_search.pipelines.facets import FacetSelection, price_band
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import cosine_reranker


@pytest.fixture
def pipeline(small_index, embedder) -> SearchPipeline:
    """Collapse off: the views' counts are checked by hand against plain retrieval."""
    reranker = cosine_reranker(small_index, embedder)
    return SearchPipeline(small_index, embedder, reranker,
                          rules=RulesConfig(collapse="off"))


def test_facet_counts_cover_every_candidate(pipeline: SearchPipeline):
    everything = pipeline.search("running shoes", size=1000, views=True)
    assert everything.matching == everything.total_candidates == len(everything.hits)
    prices = Counter(price_band(h.price) for h in everything.hits)
    assert {v.value: v.count for v in everything.facets["price"]} == dict(prices)
    # Brands are one value whatever their case or punctuation ("adidas" and "Adidas").
    brands = Counter(brand_key(h.brand) for h in everything.hits if h.brand)
    shown = {brand_key(v.value): v.count for v in everything.facets["brand"]}
    assert len(shown) == len(everything.facets["brand"])  # no key twice
    assert all(brands[b] == n for b, n in shown.items())
    assert list(shown.values()) == sorted(shown.values(), reverse=True)


def test_a_facet_selection_narrows_hits_not_counts(pipeline: SearchPipeline):
    everything = pipeline.search("running shoes", size=1000, views=True)
    chosen = FacetSelection(brand=("adidas", "Skechers"), price=("no price",))
    narrowed = pipeline.search("running shoes", size=1000, views=True, facets=chosen)
    expected = [h.parent_asin for h in everything.hits
                if h.brand and brand_key(h.brand) in ("adidas", "skechers") and h.price is None]
    assert [h.parent_asin for h in narrowed.hits] == expected and expected
    assert narrowed.matching == len(expected)
    assert [h.rank for h in narrowed.hits] == list(range(1, len(expected) + 1))
    assert narrowed.facets["brand"] == tuple(
        v.__class__(v.value, v.count, brand_key(v.value) in ("adidas", "skechers"))
        for v in everything.facets["brand"])
    with pytest.raises(QueryError, match=re.escape("unknown price facet value(s) 'cheap'; "
                                                   "valid: 'under $25'")):
        FacetSelection(price=("cheap",))


def test_hidden_counts_what_the_query_filters_kept_out(pipeline: SearchPipeline, small_index):
    result = pipeline.search("running shoes no nike under $80", size=1000, views=True)
    hidden = {h.reason: h.count for h in result.hidden}
    assert hidden["have no price"] > 0 and hidden["are Nike"] > 0
    # Recount by hand: retrieval with no filters, minus what the filtered run found.
    unfiltered = pipeline.search("running shoes", size=1000, rerank=False)
    shown = {h.parent_asin for h in result.hits} | {asin for asin, _ in result.removed}
    items = small_index.get([h.parent_asin for h in unfiltered.hits
                             if h.parent_asin not in shown])
    nike = sum(1 for i in items.values() if (i.product.brand or "").lower() == "nike")
    assert hidden["are Nike"] == nike
    no_price = sum(1 for i in items.values()
                   if (i.product.brand or "").lower() != "nike" and i.product.price is None)
    assert hidden["have no price"] == no_price
    assert pipeline.search("running shoes", views=True).hidden == ()


def test_a_caller_filter_is_not_reported_as_hidden(pipeline: SearchPipeline):
    result = pipeline.search("running shoes", views=True, filters=Filters(max_price=80))
    assert result.hidden == ()


def test_before_lists_retrieval_order_with_final_ranks(pipeline: SearchPipeline):
    result = pipeline.search("running shoes", size=1000, views=True)
    final = {h.parent_asin: h.rank for h in result.hits}
    assert [m.retrieval_rank for m in result.before] == list(range(1, len(result.hits) + 1))
    assert len(pipeline.search("running shoes", size=5, views=True).before) == 20
    for m in result.before:
        assert m.final_rank == final[m.parent_asin] and m.removed_by is None
    assert any(m.retrieval_rank != m.final_rank for m in result.before)
    excluded = pipeline.search("running shoes", size=1000, views=True,
                               filters=Filters(exclude_brands=("Skechers",)))
    assert all(m.final_rank is not None for m in excluded.before)  # filtered in retrieval


def test_a_literal_search_understands_nothing(pipeline: SearchPipeline):
    understood = pipeline.search("running shoes no nike under $80")
    literal = pipeline.search("running shoes no nike under $80", interpret=False)
    assert understood.constraints["exclude_brands"] == ["Nike"]
    assert literal.constraints == {"model_text": "running shoes no nike under $80"}
    assert {h.parent_asin for h in literal.hits} != {h.parent_asin for h in understood.hits}


def test_views_reuse_the_cached_ranking(pipeline: SearchPipeline):
    plain = pipeline.search("running shoes no nike under $80")
    viewed = pipeline.search("running shoes no nike under $80", views=True)
    assert "cached" in viewed.timings_ms and "hidden" in viewed.timings_ms  # not reranked again
    assert [h.parent_asin for h in viewed.hits] == [h.parent_asin for h in plain.hits]
    assert viewed.hidden and pipeline.search("running shoes no nike under $80").hidden == ()


def test_views_are_off_unless_asked(pipeline: SearchPipeline):
    result = pipeline.search("running shoes")
    assert (result.facets, result.hidden, result.before) == ({}, (), ())
    assert result.matching == result.total_candidates
