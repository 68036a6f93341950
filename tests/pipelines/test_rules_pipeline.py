"""Business rules end to end: real model, real index (the real sample slice where it has the
case, the hand-written fixture catalog for the rest)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rex_search.backends.base import StockRecord
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.catalog.schema import brand_key
from rex_search.config import RulesConfig
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import cosine_reranker


def make(backend, embedder, **rules) -> SearchPipeline:
    return SearchPipeline(backend, embedder, cosine_reranker(backend, embedder),
                          rules=RulesConfig(**rules))


@pytest.fixture
def fixture_backend(fixture_index_dir: Path, tmp_path: Path):
    copy = tmp_path / "fx"
    shutil.copytree(fixture_index_dir, copy)
    backend = EmbeddedBackend(copy)
    yield backend
    backend.close()


def test_no_nike_on_the_real_sample_fills_the_page(small_index, embedder):
    result = make(small_index, embedder).search("running shoes no nike", size=10)
    assert len(result.hits) == 10
    assert all(brand_key(h.brand) != "nike" for h in result.hits)
    assert result.constraints["exclude_brands"] == ["Nike"]
    assert sum("running" in h.title.lower() for h in result.hits[:5]) >= 4


def test_usb_c_charger_not_apple_keeps_anker(fixture_backend, embedder):
    hits = make(fixture_backend, embedder).search("usb c charger not apple", size=10).hits
    brands = [h.brand for h in hits]
    assert "Apple" not in brands
    assert "Anker" in brands[:5]


def test_no_hp_drops_hp_family_not_hp_compatible_products(fixture_backend, embedder):
    hits = make(fixture_backend, embedder).search("usb c charger no hp", size=20).hits
    brands = {h.brand for h in hits}
    assert not brands & {"HP", "HP Inc."}
    assert "Kuncan" in brands  # "for HP Chromebook" in its title, but another brand


def test_non_branded_prefers_generic(fixture_backend, embedder):
    # collapse off: the fixture's generic cases are colour variants of one another
    plain = make(fixture_backend, embedder, collapse="off").search("phone case", size=7).hits
    generic = make(fixture_backend, embedder, collapse="off").search(
        "non-branded phone case", size=7).hits

    def generic_ranks(hits):
        return [h.rank for h in hits if brand_key(h.brand) in ("generic", "unbranded", "")]

    # bge-small already ranks generic cases first for "phone case"; the intent never does worse
    assert sum(generic_ranks(generic)[:3]) <= sum(generic_ranks(plain)[:3])
    assert generic_ranks(generic)[:2] == [1, 2]


def test_16_inch_laptop_bag_surfaces_compatible_sizes(fixture_backend, embedder):
    hits = make(fixture_backend, embedder).search("16 inch laptop bag", size=5).hits
    assert [h.parent_asin for h in hits[:2]] == ["FX0030", "FX0031"]  # 16" and 15.6-inch
    assert any(e.rule == "size_match" for e in hits[1].explanation.rules)


def test_out_of_stock_moves_below_similar_in_stock(fixture_backend, embedder):
    # collapse off: with it, an in-stock variant of the demoted shoe is shown in its place
    pipeline = make(fixture_backend, embedder, diversity="off", collapse="off")
    before = [h.parent_asin for h in pipeline.search("running shoes", size=10).hits]
    fixture_backend.update_inventory([StockRecord(before[0], False, 0)] +
                                     [StockRecord(a, True, 5) for a in before[1:]])
    after = pipeline.search("running shoes", size=50).hits  # new generation: not the cache
    assert after[0].parent_asin == before[1]
    moved = next(h for h in after if h.parent_asin == before[0])
    assert moved.rank > 1 and moved.in_stock is False
    assert moved.explanation.rules[0].action == "demoted"
    filtered = make(fixture_backend, embedder, availability="filter").search("running shoes")
    assert before[0] not in [h.parent_asin for h in filtered.hits]


def test_brand_cap_holds_in_the_first_page(fixture_backend, embedder):
    hits = make(fixture_backend, embedder).search("running shoes", size=10).hits
    top = [brand_key(h.brand) for h in hits]
    assert len(hits) == 10
    assert top[:8].count("nike") == 3  # other brands within the relevance drop fill 4..8
    # The fixture runs out of close alternatives: a 4th Nike is shown rather than burying it
    # under a much worse product, and the relaxation is on record.
    fourth = [h for h in hits if brand_key(h.brand) == "nike"][3]
    assert fourth.explanation.rules[-1].action == "cap relaxed"


def test_pages_are_disjoint_and_equal_the_top_20(small_index, embedder):
    pipeline = make(small_index, embedder)
    page1 = pipeline.search("shoes", size=10, page=1)
    page2 = pipeline.search("shoes", size=10, page=2)
    top20 = pipeline.search("shoes", size=20)
    ids1, ids2 = [h.parent_asin for h in page1.hits], [h.parent_asin for h in page2.hits]
    assert not set(ids1) & set(ids2)
    assert ids1 + ids2 == [h.parent_asin for h in top20.hits]
    assert page2.timings_ms.get("cached") == 1.0  # ranked once, paged from the cache


def test_price_limit_is_pushed_down(small_index, embedder):
    hits = make(small_index, embedder).search("shoes under $30", size=10).hits
    assert hits and all(h.price is not None and h.price <= 30 for h in hits)


def test_compliance_list_and_pins_from_config(fixture_backend, embedder):
    pipeline = make(fixture_backend, embedder, always_exclude_brands=("Belkin",),
                    pins={"usb c charger": ["FX0018"]})
    hits = pipeline.search("USB C  charger", size=10).hits
    assert hits[0].parent_asin == "FX0018"
    assert "Belkin" not in [h.brand for h in hits]
