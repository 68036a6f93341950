from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from rex_search.backends.base import Filters
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.catalog.schema import brand_key
from rex_search.errors import BackendError


def test_products_lists_what_is_stored(small_index: EmbeddedBackend):
    """What a service warms its per-product caches with: stored products, as `get` has them."""
    some = small_index.products(3)
    assert len(some) == 3
    stored = small_index.get([p.parent_asin for p in some])
    assert all(stored[p.parent_asin].product == p for p in some)
    assert len(small_index.products(100_000)) == small_index.count()
    assert small_index.products(0) == []


def test_bm25_finds_running_shoes_and_ignores_query_syntax(small_index: EmbeddedBackend):
    hits = small_index.bm25("running shoes", 10)
    products = small_index.get([h.parent_asin for h in hits])
    assert all("running" in products[h.parent_asin].product.title.lower() for h in hits[:5])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    # Query-language characters are not syntax: same hits as the plain words.
    assert small_index.bm25('title:running AND "shoes" -nike', 5) == \
        small_index.bm25("title running and shoes nike", 5)
    assert small_index.bm25("!!! ???", 5) == []


def test_dense_search_returns_semantic_neighbours(small_index: EmbeddedBackend, embedder):
    vector = embedder.encode_queries(["sneakers for jogging"])[0]
    hits = small_index.knn(vector, 10)
    found = small_index.get([h.parent_asin for h in hits])
    titles = [p.product.title.lower() for p in found.values()]
    assert sum("shoe" in t or "sneaker" in t for t in titles) >= 8
    assert hits[0].score == pytest.approx(max(h.score for h in hits))


def test_filters_are_pushed_into_both_sources(small_index: EmbeddedBackend, embedder):
    vector = embedder.encode_queries(["running shoes"])[0]
    no_nike = Filters(exclude_brands=("NIKE",))
    only_nike = Filters(brands=("nike",))
    cheap = Filters(max_price=40.0)
    for hits in (small_index.bm25("running shoes", 50, no_nike),
                 small_index.knn(vector, 50, no_nike)):
        brands = {brand_key(p.product.brand) for p in small_index.get(
            [h.parent_asin for h in hits]).values()}
        assert "nike" not in brands
        assert len(hits) == 50  # the filter runs inside retrieval, so the list still fills
    nike = small_index.get([h.parent_asin for h in small_index.knn(vector, 20, only_nike)])
    assert nike and {brand_key(p.product.brand) for p in nike.values()} == {"nike"}
    priced = small_index.get([h.parent_asin for h in small_index.bm25("shoes", 50, cheap)])
    assert priced and all(p.product.price is not None and p.product.price <= 40
                          for p in priced.values())


def test_delete_removes_from_every_store(writable_index: Path):
    backend = EmbeddedBackend(writable_index)
    victim = backend.bm25("running shoes", 1)[0].parent_asin
    count = backend.count()
    assert backend.delete([victim, "NOT-THERE"]) == 1
    assert backend.count() == count - 1
    assert victim not in backend.get([victim])
    assert victim not in [h.parent_asin for h in backend.bm25("running shoes", 100)]
    assert backend.vectors([victim]) == {}
    backend.close()


@pytest.mark.slow  # builds an HNSW graph over the sample: ~30 s on 2 cores
def test_hnsw_option_agrees_with_exact_search(tmp_path: Path, small_catalog: Path, embedder):
    from rex_search.indexer.indexer import index_catalog

    backend = EmbeddedBackend(tmp_path / "h", dim=embedder.dim, model_id=embedder.model_id,
                              vector_index="hnsw")
    index_catalog(small_catalog, backend, embedder)
    assert (tmp_path / "h" / "vectors.hnsw").exists()
    vector = embedder.encode_queries(["laptop bag"])[0]
    approx = [h.parent_asin for h in backend.knn(vector, 20)]
    backend._hnsw, hnsw = None, backend._hnsw
    exact = [h.parent_asin for h in backend.knn(vector, 20)]
    assert hnsw is not None
    assert len(set(approx) & set(exact)) >= 18
    backend.close()


def test_model_mismatch_and_missing_index_are_clear_errors(small_index_dir: Path, tmp_path: Path):
    with pytest.raises(BackendError, match=re.escape(
            "was embedded with 'bge-small-en-v1.5', not 'other-model'")):
        EmbeddedBackend(small_index_dir, dim=384, model_id="other-model")
    with pytest.raises(BackendError, match="no index at .*: build one first"):
        EmbeddedBackend(tmp_path / "missing")


def test_manifest_describes_the_index(small_index: EmbeddedBackend):
    info = small_index.info()
    assert info["embedding_model"] == "bge-small-en-v1.5"
    assert info["dim"] == 384
    assert info["document_count"] == small_index.count() > 800
    assert len(info["catalogs"][0]["sha256"]) == 64
    vector = small_index.vectors([small_index.bm25("laptop", 1)[0].parent_asin])
    assert np.linalg.norm(next(iter(vector.values()))) == pytest.approx(1.0, abs=1e-5)


def test_reindexing_a_changed_product_keeps_its_stock_filter(writable_index: Path, embedder):
    from rex_search.backends.base import StockRecord

    backend = EmbeddedBackend(writable_index)
    asin = backend.bm25("running shoes", 1)[0].parent_asin
    backend.update_inventory([StockRecord(asin, False, 0)])
    product = backend.get([asin])[asin].product
    changed = type(product).from_dict({**product.to_dict(), "title": product.title + " v2"})
    backend.upsert([changed], embedder.encode([changed.title]))
    backend.commit()
    in_stock_only = Filters(exclude_out_of_stock=True)
    assert asin not in [h.parent_asin for h in backend.bm25("running shoes", 100, in_stock_only)]
    assert asin in [h.parent_asin for h in backend.bm25("running shoes", 100)]
    backend.close()


def test_a_reader_picks_up_what_another_process_commits(writable_index: Path, tmp_path: Path,
                                                       embedder):
    """A served index is read by one process while another indexes and updates stock: the
    reader's next search sees both (the vector store used to be loaded once, so new products
    were found by BM25 and never by vector search, and the cached answer never changed)."""
    import subprocess
    import sys

    from rex_search.pipelines.pipeline import SearchPipeline
    from tests.conftest import REPO, cosine_reranker

    reader = EmbeddedBackend(writable_index)
    pipeline = SearchPipeline(reader, embedder, cosine_reranker(reader, embedder))
    top = pipeline.search("running shoes", size=1).hits[0]
    assert top.in_stock is not False
    before = reader.count()
    catalog = tmp_path / "new.jsonl"
    catalog.write_text('{"parent_asin": "NEW1", "title": "Zorblax hovercraft toy propeller"}\n')
    feed = tmp_path / "stock.csv"
    feed.write_text(f"parent_asin,in_stock\n{top.parent_asin},false\n")
    for args in (["index", str(catalog)], ["inventory", "update", str(feed)]):
        done = subprocess.run([sys.executable, "-m", "rex_search", *args, "--index",
                               str(writable_index)], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    again = pipeline.search("running shoes", size=100).hits  # a new answer, not the cached one
    assert again[0].parent_asin != top.parent_asin  # demoted: out of stock now
    assert top.parent_asin not in [h.parent_asin for h in again if h.in_stock is not False]
    assert reader.count() == before + 1
    vector = embedder.encode_queries(["zorblax hovercraft toy"])[0]
    assert reader.knn(vector, 1)[0].parent_asin == "NEW1"  # found by vector search too
    reader.close()
