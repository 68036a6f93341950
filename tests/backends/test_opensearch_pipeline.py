"""OpenSearch's own search pipeline running rex-search's whole ranking, on the real node:
a plain client query with ``?search_pipeline=`` is understood, retrieved with its filters,
reranked and ruled by `rex-search serve` (ml-commons remote connectors), and gives the same top
10 as `SearchPipeline.search` over the same index."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from opensearchpy import OpenSearch

from rex_search.backends.base import StockRecord
from rex_search.backends.connection import parse_target
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.catalog.prompt import parse_product_text, product_text
from rex_search.catalog.schema import Product, brand_key
from rex_search.errors import BackendError
from rex_search.indexer.indexer import index_catalog
from rex_search.integrations.opensearch_pipeline import (
    TRUSTED,
    MlCommons,
    check_index,
    connector_body,
    install,
    trusted_regex,
    uninstall,
)
from rex_search.model_files import BUNDLED_RERANKER
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.service import create_app
from tests.conftest import RULES_FIXTURE
from tests.service_server import running

pytestmark = pytest.mark.opensearch
QUERY = "running shoes no nike"
KEY = "pipeline-test-key"


@pytest.fixture(scope="module")
def reranker():
    return load_reranker(BUNDLED_RERANKER)  # the default


@pytest.fixture(scope="module")
def cluster(opensearch_node, embedder):
    """The rules fixture indexed on the real node; (client, alias, backend)."""
    alias = f"pipeline-{uuid.uuid4().hex[:8]}"
    backend = OpenSearchBackend(parse_target(f"opensearch://127.0.0.1:{opensearch_node.port}/"
                                             f"{alias}?knn_engine=lucene"),
                                embedder.dim, embedder.model_id)
    index_catalog(RULES_FIXTURE, backend, embedder)
    client = OpenSearch(hosts=[opensearch_node.url], timeout=60)
    yield client, alias, backend
    client.close()


@pytest.fixture(scope="module")
def rex(cluster, embedder, reranker):
    """`SearchPipeline` over the very index the cluster searches, and its service protected by
    an API key: (pipeline, service URL)."""
    pipeline = SearchPipeline(cluster[2], embedder, reranker)
    with running(create_app(pipeline, api_key=KEY)) as base:
        yield pipeline, base


@pytest.fixture(scope="module")
def installed(cluster, rex):
    client, _, _ = cluster
    existing = "^https://search\\.internal\\.example/.*$"
    client.cluster.put_settings(body={"persistent": {TRUSTED: [existing]}})
    created = install(client, rex[1], "rex-all", api_key=KEY)
    yield created, existing
    uninstall(client, rex[1], "rex-all")


def _search(client, alias, query, size=10, pipeline="rex-all", **extra):
    return client.search(index=alias, params={"search_pipeline": pipeline}, body={
        "size": size, "query": {"multi_match": {"query": query}}, **extra})["hits"]["hits"]


def _connectors_and_models(client, pipeline):
    def count(kind, name):
        body = {"query": {"term": {"name.keyword": name}}}
        return client.transport.perform_request("POST", f"/_plugins/_ml/{kind}/_search",
                                                body=body)["hits"]["total"]["value"]
    return tuple(count(kind, f"rex-search {role} ({pipeline})" if kind == "connectors"
                       else f"rex-search-{role}-{pipeline}")
                 for role in ("understand", "rank") for kind in ("connectors", "models"))


def test_the_pipeline_alone_gives_rex_search_query_top_10_rules_included(cluster, rex,
                                                                         installed):
    client, alias, _ = cluster
    pipeline, _ = rex
    created, existing = installed
    assert created["private_ip_enabled"] == "true"  # the service listens on 127.0.0.1
    assert created["authorization"] == "true"
    trusted = client.cluster.get_settings()["persistent"]["plugins"]["ml_commons"][
        "trusted_connector_endpoints_regex"]
    assert trusted == [existing, trusted_regex(rex[1])]  # appended, not overwritten
    hits = _search(client, alias, QUERY)
    expected = pipeline.search(QUERY, size=10).hits
    assert [h["_id"] for h in hits] == [h.parent_asin for h in expected]
    assert len(hits) == 10
    assert not any(brand_key(h["_source"]["brand"] or "") == "nike" for h in hits)
    first = hits[0]["_source"]["rex_explanation"]
    assert first["understood"]["model_text"] == "running shoes"
    assert first["understood"]["exclude_brands"] == ["Nike"]
    assert first["rerank_score"] == pytest.approx(expected[0].explanation.rerank_score, abs=1e-6)
    assert "embedding" not in hits[0]["_source"]
    # The same query without the pipeline: Nike is there, so the pipeline did the excluding.
    plain = client.search(index=alias, body={"size": 10, "query": {"multi_match": {
        "query": QUERY}}})["hits"]["hits"]
    assert any(brand_key(h["_source"]["brand"] or "") == "nike" for h in plain)


def test_an_out_of_stock_product_is_demoted_as_in_search(cluster, rex, installed):
    client, alias, backend = cluster
    pipeline, _ = rex
    query = "running shoes"
    top = _search(client, alias, query)[0]["_id"]
    backend.update_inventory([StockRecord(top, False, 0)])
    try:
        hits = _search(client, alias, query, size=20)
        expected = pipeline.search(query, size=20).hits
        assert [h["_id"] for h in hits] == [h.parent_asin for h in expected]
        moved = next(h for h in hits if h["_id"] == top)
        assert hits.index(moved) > 0
        assert any(r["rule"] == "availability" and r["action"] == "demoted"
                   for r in moved["_source"]["rex_explanation"]["rules"])
    finally:
        backend.update_inventory([StockRecord(top, None, None)])


def test_a_protected_service_refuses_a_connector_without_its_key(cluster, rex, installed):
    client, alias, _ = cluster
    created, _ = installed
    cluster_calls = MlCommons(client)
    connector = created["rank_connector_id"]
    stored = cluster_calls.call("read", "GET", f"/_plugins/_ml/connectors/{connector}")
    assert stored["actions"][0]["headers"]["Authorization"] == "Bearer ${credential.api_key}"
    assert KEY not in json.dumps(stored)  # the cluster keeps the key encrypted
    response = httpx.post(f"{rex[1]}/opensearch/understand", json={"query": QUERY}, timeout=30)
    assert response.status_code == 401
    body = connector_body("understand", rex[1], "rex-all")
    assert "Authorization" not in body["actions"][0]["headers"]


def test_a_later_page_is_refused_not_answered_with_the_first(cluster, installed):
    client, alias, _ = cluster
    with pytest.raises(Exception, match="from"):
        _search(client, alias, QUERY, **{"from": 10})


def test_the_model_sees_exactly_the_product_text(cluster):
    client, alias, _ = cluster
    hit = client.search(index=alias, body={"size": 1, "_source": ["rerank_text", "product"],
                                           "query": {"match": {"title": "charger"}}})
    source = hit["hits"]["hits"][0]["_source"]
    product = Product.from_dict(json.loads(source["product"]))
    assert source["rerank_text"] == product_text(product)
    title, description = parse_product_text(source["rerank_text"])
    assert product_text(Product(parent_asin="x", title=title, description=description)) == \
        source["rerank_text"]  # /rerank rebuilds the very same model input


def test_a_reinstall_replaces_everything_and_uninstall_removes_everything(cluster, rex):
    """A reinstall creates new connectors and models and removes the previous ones (never
    edits a live connector: ml-commons refuses while a node's cache holds its model)."""
    client, alias, _ = cluster
    service = rex[1]
    first = install(client, service, "rex-twice", api_key=KEY)
    second = install(client, service, "rex-twice", api_key=KEY)
    assert all(second[key] != first[key] for key in first if key.endswith("_id"))
    assert _connectors_and_models(client, "rex-twice") == (1, 1, 1, 1)
    live = MlCommons(client)
    for key in ("understand_model_id", "rank_model_id"):
        with pytest.raises(BackendError, match="404|not_found|not found"):
            live.call("read", "GET", f"/_plugins/_ml/models/{first[key]}")
        assert live.call("read", "GET", f"/_plugins/_ml/models/{second[key]}")[
            "model_state"] == "DEPLOYED"
    assert _search(client, alias, QUERY, pipeline="rex-twice")
    trusted = client.cluster.get_settings()["persistent"]["plugins"]["ml_commons"][
        "trusted_connector_endpoints_regex"]
    assert trusted.count(trusted_regex(service)) == 1
    removed = uninstall(client, service, "rex-twice")
    assert sorted(removed["model_ids"]) == sorted([second["understand_model_id"],
                                                   second["rank_model_id"]])
    assert sorted(removed["connector_ids"]) == sorted([second["understand_connector_id"],
                                                       second["rank_connector_id"]])
    assert _connectors_and_models(client, "rex-twice") == (0, 0, 0, 0)
    with pytest.raises(Exception, match="404|not_found|missing"):
        client.transport.perform_request("GET", "/_search/pipeline/rex-twice")
    again = uninstall(client, service, "rex-twice")  # nothing left: nothing to do
    assert again == {"search_pipeline": None, "ingest_pipeline": None, "model_ids": [],
                     "connector_ids": [], "trusted_endpoint": None}


def test_an_index_without_the_prepared_field_is_refused(cluster):
    client, _, _ = cluster
    client.indices.create(index="legacy-rex", body={"mappings": {"properties": {
        "title": {"type": "text"}}}})
    with pytest.raises(BackendError, match="no rerank_text, product, stock field.*--reindex"):
        check_index(client, "legacy-rex")
