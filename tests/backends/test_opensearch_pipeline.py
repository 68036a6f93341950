"""OpenSearch's own search pipeline reranking through `rex-search serve`'s /rerank, on the real
node (ml-commons remote connector -> neural-search `rerank` processor -> our service)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from opensearchpy import OpenSearch

from rex_search.backends.connection import parse_target
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.catalog.prompt import parse_product_text, product_text
from rex_search.catalog.schema import Product
from rex_search.errors import BackendError
from rex_search.indexer.indexer import index_catalog
from rex_search.integrations.opensearch_pipeline import (
    TRUSTED,
    MlCommons,
    check_index,
    install,
    plan,
    trusted_regex,
    uninstall,
)
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.service import create_app
from tests.conftest import RULES_FIXTURE
from tests.service_server import running

pytestmark = pytest.mark.opensearch
QUERY = "usb c charger for my phone"


@pytest.fixture(scope="module")
def reranker():
    return load_reranker("rex-reranker-bge-small")


@pytest.fixture(scope="module")
def service(fixture_index_dir, embedder, reranker):
    backend = EmbeddedBackend(fixture_index_dir)
    with running(create_app(SearchPipeline(backend, embedder, reranker))) as base:
        yield base
    backend.close()


@pytest.fixture(scope="module")
def cluster(opensearch_node, embedder):
    """The rules fixture indexed on the real node; (client, alias)."""
    alias = f"pipeline-{uuid.uuid4().hex[:8]}"
    backend = OpenSearchBackend(parse_target(f"opensearch://127.0.0.1:{opensearch_node.port}/"
                                             f"{alias}?knn_engine=lucene"),
                                embedder.dim, embedder.model_id)
    index_catalog(RULES_FIXTURE, backend, embedder)
    client = OpenSearch(hosts=[opensearch_node.url], timeout=60)
    yield client, alias
    client.close()


def _connectors_and_models(client, pipeline):
    def count(kind, name):
        body = {"query": {"term": {"name.keyword": name}}}
        return client.transport.perform_request("POST", f"/_plugins/_ml/{kind}/_search",
                                                body=body)["hits"]["total"]["value"]
    return (count("connectors", f"rex-search reranker ({pipeline})"),
            count("models", f"rex-search-reranker-{pipeline}"))


def test_opensearch_returns_rex_search_order_and_scores(cluster, service, reranker):
    client, alias = cluster
    existing = "^https://search\\.internal\\.example/.*$"
    client.cluster.put_settings(body={"persistent": {TRUSTED: [existing]}})
    check_index(client, alias)
    created = install(client, service, "rex-rerank-test")
    assert created["private_ip_enabled"] == "true"  # the service listens on 127.0.0.1
    trusted = client.cluster.get_settings()["persistent"]["plugins"]["ml_commons"][
        "trusted_connector_endpoints_regex"]
    assert trusted == [existing, trusted_regex(service)]  # appended, not overwritten

    body = {"size": 10, "_source": ["rerank_text", "title"],
            "query": {"multi_match": {"query": QUERY, "fields": ["title", "description"]}}}
    plain = client.search(index=alias, body=body)["hits"]["hits"]
    reranked = client.search(index=alias, params={"search_pipeline": "rex-rerank-test"}, body={
        **body, "ext": {"rerank": {"query_context": {"query_text": QUERY}}}})["hits"]["hits"]
    assert len(plain) == len(reranked) == 10
    # What our reranker says of the same ten products, in the RexReranker product format.
    texts = [h["_source"]["rerank_text"] for h in plain]
    products = [parse_product_text(t) for t in texts]
    assert all(products)
    by_service = httpx.post(f"{service}/rerank", json={"query": QUERY, "documents": texts},
                            timeout=60).json()["results"]
    expected = [plain[r["index"]]["_id"] for r in by_service]
    assert [h["_id"] for h in reranked] == expected
    scores = {plain[r["index"]]["_id"]: r["relevance_score"] for r in by_service}
    for hit in reranked:
        assert hit["_score"] == pytest.approx(scores[hit["_id"]], abs=1e-5)
    assert expected != [h["_id"] for h in plain]  # the pipeline did reorder BM25's list


def test_the_model_sees_exactly_the_product_text(cluster):
    client, alias = cluster
    hit = client.search(index=alias, body={"size": 1, "_source": ["rerank_text", "product"],
                                           "query": {"match": {"title": "charger"}}})
    source = hit["hits"]["hits"][0]["_source"]
    product = Product.from_dict(json.loads(source["product"]))
    assert source["rerank_text"] == product_text(product)
    title, description = parse_product_text(source["rerank_text"])
    assert product_text(Product(parent_asin="x", title=title, description=description)) == \
        source["rerank_text"]  # /rerank rebuilds the very same model input


def test_install_twice_updates_in_place_and_uninstall_removes_everything(cluster, service):
    client, alias = cluster
    first = install(client, service, "rex-twice")
    second = install(client, service, "rex-twice")
    assert (second["connector_id"], second["model_id"]) == (first["connector_id"],
                                                            first["model_id"])
    assert _connectors_and_models(client, "rex-twice") == (1, 1)
    trusted = client.cluster.get_settings()["persistent"]["plugins"]["ml_commons"][
        "trusted_connector_endpoints_regex"]
    assert trusted.count(trusted_regex(service)) == 1
    removed = uninstall(client, service, "rex-twice")
    assert removed["model_id"] == first["model_id"]
    assert removed["connector_id"] == first["connector_id"]
    assert _connectors_and_models(client, "rex-twice") == (0, 0)
    with pytest.raises(Exception, match="404|not_found|missing"):
        client.transport.perform_request("GET", "/_search/pipeline/rex-twice")
    again = uninstall(client, service, "rex-twice")  # nothing left: nothing to do
    assert again == {"search_pipeline": None, "model_id": None, "connector_id": None,
                     "trusted_endpoint": None}


def test_a_connector_update_refused_while_its_model_is_live_undeploys_and_retries(cluster,
                                                                                   service):
    """The race CI met: the node still held the model when the connector update came. Here the
    model is plainly deployed, so the first update is refused for the same reason."""
    client, _ = cluster
    ids = install(client, service, "rex-live")
    live = MlCommons(client)
    assert live.call("read", "GET", f"/_plugins/_ml/models/{ids['model_id']}")[
        "model_state"] == "DEPLOYED"
    body = plan(service, "rex-live")[1].body
    live.update_connector(ids["connector_id"], body, ids["model_id"])
    assert live.call("read", "GET", f"/_plugins/_ml/models/{ids['model_id']}")[
        "model_state"] != "DEPLOYED"
    live.deploy(ids["model_id"])
    with pytest.raises(BackendError, match="still using this connector"):
        live.update_connector(ids["connector_id"], body, None, attempts=2)  # nothing undeploys
    uninstall(client, service, "rex-live")


def test_an_index_without_the_prepared_field_is_refused(cluster):
    client, _ = cluster
    client.indices.create(index="legacy-rex", body={"mappings": {"properties": {
        "title": {"type": "text"}}}})
    with pytest.raises(BackendError, match="no rerank_text field.*--reindex"):
        check_index(client, "legacy-rex")
