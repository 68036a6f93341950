"""One ranking everywhere: /search, /rerank and the Python `rank` agree, rules included, with
the bundled reranker on the rules fixture catalog (the OpenSearch pipeline's agreement is in
tests/backends/test_opensearch_pipeline.py, on the real node)."""

from __future__ import annotations

import httpx
import pytest

from rex_search import DocumentError, Product, rank
from rex_search.backends.base import StockRecord
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.catalog.schema import brand_key
from rex_search.model_files import BUNDLED_RERANKER
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.service import create_app
from tests.service_server import running

QUERY = "running shoes no nike"


@pytest.fixture(scope="module")
def service(fixture_index_dir, embedder, tmp_path_factory):
    import shutil

    copy = tmp_path_factory.mktemp("one-ranking") / "fx"
    shutil.copytree(fixture_index_dir, copy)
    backend = EmbeddedBackend(copy)
    pipeline = SearchPipeline(backend, embedder, load_reranker(BUNDLED_RERANKER))
    with running(create_app(pipeline)) as base:
        yield pipeline, base
    backend.close()


def _documents(pipeline: SearchPipeline) -> list[dict]:
    """Every fixture product as a /rerank document object, with its stock."""
    stored = pipeline.backend.get([f"FX{i:04d}" for i in range(1, 100)])
    return [{**item.product.to_dict(), "in_stock": item.in_stock, "quantity": item.quantity}
            for item in stored.values()]


def test_search_rerank_and_rank_give_the_same_top_10(service):
    pipeline, base = service
    top = [h["parent_asin"] for h in httpx.post(f"{base}/search", json={
        "query": QUERY, "size": 10}, timeout=60).json()["hits"]]
    docs = _documents(pipeline)
    reranked = httpx.post(f"{base}/v2/rerank", json={"query": QUERY, "documents": docs,
                                                     "top_n": 10}, timeout=60).json()
    assert [docs[r["index"]]["parent_asin"] for r in reranked["results"]] == top
    ranked = rank(QUERY, docs, top_k=10)
    assert [r.document["parent_asin"] for r in ranked] == top
    assert len(top) == 10
    nikes = {d["parent_asin"] for d in docs if brand_key(d["brand"]) == "nike"}
    assert nikes and not nikes & set(top)
    # excluded, and said so: in meta.removed and Ranking.removed, never silently
    removed = {docs[r["index"]]["parent_asin"] for r in reranked["meta"]["removed"]}
    assert removed >= nikes
    assert {docs[r.index]["parent_asin"] for r in ranked.removed} >= nikes
    assert reranked["meta"]["understood"]["model_text"] == "running shoes"
    scores = [r["relevance_score"] for r in reranked["results"]]
    assert scores == sorted(scores, reverse=True)  # best-first, rules included


def test_out_of_stock_is_demoted_on_rerank_as_on_search(service, tmp_path):
    pipeline, base = service
    docs = _documents(pipeline)
    first = httpx.post(f"{base}/v2/rerank", json={"query": "running shoes",
                                                  "documents": docs}).json()["results"][0]
    docs[first["index"]]["in_stock"] = False
    after = httpx.post(f"{base}/v2/rerank", json={"query": "running shoes",
                                                  "documents": docs}).json()["results"]
    moved = next(r for r in after if r["index"] == first["index"])
    assert after.index(moved) > 0
    assert any(e["rule"] == "availability" and e["action"] == "demoted" for e in moved["rules"])
    pipeline.backend.update_inventory([StockRecord(docs[first["index"]]["parent_asin"], False,
                                                   0)])
    try:
        hits = pipeline.search("running shoes", size=50).hits
        assert [h.parent_asin for h in hits][:10] == \
            [docs[r["index"]]["parent_asin"] for r in after][:10]
    finally:  # the module's index copy: back in stock for the tests after this one
        pipeline.backend.update_inventory([StockRecord(docs[first["index"]]["parent_asin"],
                                                       True, 5)])


def test_rerank_reads_no_skechers_from_bare_text_and_rules_false_is_the_model_alone(service):
    _, base = service
    docs = ["Skechers Men's Go Run Max Road running shoes", "ASICS Gel-Nimbus running shoes",
            "Garden hose, 50 ft"]
    ruled = httpx.post(f"{base}/v2/rerank", json={"query": "running shoes no skechers",
                                                  "documents": docs}).json()
    assert [r["index"] for r in ruled["results"]] == [1, 2]
    assert ruled["meta"]["removed"][0]["index"] == 0
    assert "first words" in ruled["meta"]["removed"][0]["reason"]
    alone = httpx.post(f"{base}/v2/rerank", json={"query": "running shoes no skechers",
                                                  "documents": docs, "rules": False}).json()
    assert sorted(r["index"] for r in alone["results"]) == [0, 1, 2]
    assert "removed" not in alone["meta"]


@pytest.mark.parametrize(("extra", "status", "message"), [
    ({"max_tokens_per_doc": 16}, 422, "max_tokens_per_doc: this model reads up to"),
    ({"max_tokens_per_doc": 100_000}, 200, ""),
    ({"documents": [{"title": "a", "price": "cheap"}]}, 422, "documents[0].price: expected"),
    ({"documents": [{"title": "a", "in_stock": "yes"}]}, 422, "documents[0].in_stock"),
    ({"documents": [{"title": "a", "colour": "red"}]}, 422, "unknown field(s) colour"),
    ({"documents": [{"id": "x", "title": "a"}, {"id": "x", "title": "b"}]}, 422,
     "documents[1].id repeats documents[0]"),
])
def test_rerank_parameters_are_honoured_or_refused(service, extra, status, message):
    _, base = service
    body = {"query": "running shoes", "documents": ["Nike running shoes"], **extra}
    response = httpx.post(f"{base}/v2/rerank", json=body, timeout=60)
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["error"]["message"]


def test_rank_takes_products_and_refuses_bad_documents():
    products = [Product("a", "Nike Pegasus running shoes", brand="Nike"),
                Product("b", "Brooks Ghost running shoes", brand="Brooks")]
    ranked = rank("running shoes no nike", products)
    assert [r.document.parent_asin for r in ranked] == ["b"]
    assert ranked.removed[0].rule == "brand_exclusion"
    assert ranked.understood["exclude_brands"] == ["Nike"]
    alone = rank("running shoes no nike", products, rules=False)
    assert {r.index for r in alone} == {0, 1} and alone.removed == ()
    with pytest.raises(DocumentError, match=r"documents\[1\]\.price"):
        rank("q", ["fine", {"title": "t", "price": [1]}])
    with pytest.raises(DocumentError, match="not one string"):
        rank("q", "a single string")  # type: ignore[arg-type]


def test_the_cluster_rank_endpoint_scores_every_hit_in_order_and_names_bad_ones(service):
    """What the OpenSearch pipeline's response processor calls (the real node's test is in
    tests/backends/test_opensearch_pipeline.py): one score per hit in the order sent, the
    hits a rule removed at 0 with the reason; a malformed hit is a 422 naming it."""
    import json

    pipeline, base = service
    stored = pipeline.backend.get([f"FX{i:04d}" for i in range(1, 100)])
    ids = list(stored)
    products = [json.dumps(stored[a].product.to_dict()) for a in ids]
    stocks = [json.dumps({"in_stock": stored[a].in_stock, "quantity": stored[a].quantity})
              for a in ids]
    body = {"query": QUERY, "ids": ids, "products": products, "stocks": stocks}
    answer = httpx.post(f"{base}/opensearch/rank", json=body, timeout=60).json()
    assert len(answer["scores"]) == len(ids) == len(answer["explanations"])
    for asin, score, why in zip(ids, answer["scores"], answer["explanations"], strict=True):
        if brand_key(stored[asin].product.brand) == "nike":
            assert score == 0 and why["removed"]["rule"] == "brand_exclusion"
    top = [a for _, a in sorted(zip(answer["scores"], ids, strict=True), reverse=True)][:10]
    assert top == [h.parent_asin for h in pipeline.search(QUERY, size=10).hits]
    bad = httpx.post(f"{base}/opensearch/rank", json={**body, "products": ["{}", *products[1:]]})
    assert bad.status_code == 422 and "hit 0" in bad.json()["error"]["message"]
    short = httpx.post(f"{base}/opensearch/rank", json={**body, "stocks": stocks[1:]})
    assert short.status_code == 422 and "as long as each other" in short.json()["error"]["message"]
