"""The cluster embeds (issue #24, part 1), on the real node: `install-pipeline --embed` puts
rex-search serve's /v1/embed behind two ml-commons remote models (Cohere's connector shape) and
an ingest pipeline; an index opened with ``?embed=cluster`` sends plain documents and the
cluster writes the vectors, and a ``neural`` query lets the cluster embed the query. The
vectors and the neighbours equal the client-side path's."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import numpy as np
import pytest
from opensearchpy import OpenSearch

from rex_search.backends.cluster_bodies import knn_clause, neural_clause
from rex_search.backends.connection import parse_target
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import embedding_text
from rex_search.errors import BackendError
from rex_search.indexer.indexer import index_catalog
from rex_search.integrations.opensearch_pipeline import (
    MlCommons,
    install,
    names,
    uninstall,
)
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import RULES_FIXTURE, cosine_reranker
from tests.service_server import free_port

pytestmark = pytest.mark.opensearch
NAME = "rex-embed-test"


@pytest.fixture(scope="module")
def client(opensearch_node):
    client = OpenSearch(hosts=[opensearch_node.url], timeout=60)
    yield client
    client.close()


def _url(node, alias: str, embed: bool = True) -> str:
    extra = f"&embed=cluster&embed_pipeline={NAME}-embed" if embed else ""
    return f"opensearch://127.0.0.1:{node.port}/{alias}?knn_engine=lucene{extra}"


class CountingEmbedder:
    """The real embedder, counting the queries it embeds (to see who embedded them)."""

    def __init__(self, embedder) -> None:
        self.inner, self.queries = embedder, 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode_queries(self, texts):
        self.queries += len(texts)
        return self.inner.encode_queries(texts)


def _rex_search_query_lets_the_cluster_embed(node, alias: str, backend, embedder) -> None:
    """What `rex-search query` runs: on the embed=cluster index the query vector comes from
    the cluster's query model (none embedded here), and the ranking equals the same index
    searched with a query embedded here."""
    counting = CountingEmbedder(embedder)
    by_cluster = SearchPipeline(backend, counting, cosine_reranker(backend, counting))
    plain = OpenSearchBackend(parse_target(_url(node, alias, embed=False)), embedder.dim,
                              embedder.model_id)
    assert plain.embed_query("anything") is None
    by_client = SearchPipeline(plain, embedder, cosine_reranker(plain, embedder))
    try:
        for query in ("running shoes no nike", "cast iron skillet under $40", "earbuds"):
            vector = backend.embed_query(query)
            assert vector is not None
            assert float(vector @ embedder.encode_queries([query])[0]) > 0.9999
            got, want = by_cluster.search(query), by_client.search(query)
            assert [h.parent_asin for h in got.hits] == [h.parent_asin for h in want.hits]
            assert np.allclose([h.score for h in got.hits], [h.score for h in want.hits],
                               atol=1e-3)
            assert got.hits, query
        assert counting.queries == 0
    finally:
        plain.close()


def test_an_embed_cluster_index_needs_the_ingest_pipeline_first(opensearch_node, embedder):
    with pytest.raises(BackendError, match="install-pipeline --embed"):
        OpenSearchBackend(parse_target(_url(opensearch_node, f"emb-{uuid.uuid4().hex[:8]}")),
                          embedder.dim, embedder.model_id)


def test_the_cluster_embeds_documents_and_queries_as_rex_search_does(opensearch_node, client,
                                                                     embedding_service, embedder):
    first = install(client, embedding_service, NAME, embed=True)
    again = install(client, embedding_service, NAME, embed=True)  # idempotent: replaces, never adds
    cluster = MlCommons(client)
    for role in ("embed-document", "embed-query", "understand", "rank"):
        connector, model = names(NAME, role)
        assert cluster.find_all("connectors", connector) == [again[f"{role}_connector_id"]]
        assert cluster.find_all("models", model) == [again[f"{role}_model_id"]]
    assert first["embed-document_model_id"] != again["embed-document_model_id"]
    alias = f"emb-{uuid.uuid4().hex[:8]}"
    backend = OpenSearchBackend(parse_target(_url(opensearch_node, alias)),
                                embedder.dim, embedder.model_id)
    try:
        assert backend.embeds_documents
        summary = index_catalog(RULES_FIXTURE, backend, embedder)
        products = [p for batch in read_catalog(RULES_FIXTURE) for p in batch.products]
        assert summary.indexed == len(products) and not summary.failed
        # Every document has its vector, written by the cluster; equal to the client side's.
        stored = backend.vectors([p.parent_asin for p in products])
        assert set(stored) == {p.parent_asin for p in products}
        local = embedder.encode([embedding_text(p) for p in products])
        for product, expected in zip(products, local, strict=True):
            assert float(stored[product.parent_asin] @ expected) > 0.9999, product.parent_asin
        # The cluster embeds the query too: the neural query finds the client kNN's neighbours.
        for query in ("running shoes", "cast iron skillet", "wireless earbuds"):
            vector = embedder.encode_queries([query])[0]
            by_client = client.search(index=alias, body={
                "size": 10, "_source": False,
                "query": knn_clause([float(x) for x in vector], 10, None)})["hits"]["hits"]
            by_cluster = client.search(index=alias, body={
                "size": 10, "_source": False,
                "query": neural_clause(query, again["embed-query_model_id"], 10,
                                       None)})["hits"]["hits"]
            assert [h["_id"] for h in by_cluster] == [h["_id"] for h in by_client], query
            assert np.allclose([h["_score"] for h in by_cluster],
                               [h["_score"] for h in by_client], atol=1e-4)
        _rex_search_query_lets_the_cluster_embed(opensearch_node, alias, backend, embedder)
        # Indexing again is idempotent: nothing changed, nothing re-sent.
        assert index_catalog(RULES_FIXTURE, backend, embedder).unchanged == len(products)
    finally:
        backend.close()
        client.indices.delete(index=f"{alias}-*")
    removed = uninstall(client, embedding_service, NAME)
    assert removed["ingest_pipeline"] == f"{NAME}-embed"
    assert len(removed["model_ids"]) == 4
    for role in ("embed-document", "embed-query"):
        assert cluster.find_all("models", names(NAME, role)[1]) == []
    assert uninstall(client, embedding_service, NAME)["ingest_pipeline"] is None


def test_serve_embeds_before_its_cluster_index_exists(opensearch_node, embedder, tmp_path):
    """The cluster builds an ``embed=cluster`` index by calling the service, so `rex-search
    serve` on a cluster index that does not exist yet answers /v1/embed at once, says on
    /health what it waits for, and serves searches once the index appears."""
    alias = f"later-{uuid.uuid4().hex[:8]}"
    url = _url(opensearch_node, alias, embed=False)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "rex_search", "serve", "--index",
                                   url, "--port", str(port)], stdout=out,
                                  stderr=subprocess.STDOUT)
    try:
        health = _poll(base, lambda r: r.json().get("status") == "waiting for the index", log)
        assert health.status_code == 503 and health.json()["index"] == url
        answer = httpx.post(f"{base}/v1/embed", json={"texts": ["running shoes"],
                                                      "input_type": "search_query"}, timeout=30)
        assert answer.status_code == 200, answer.text
        expected = embedder.encode_queries(["running shoes"])[0]
        assert float(np.asarray(answer.json()["embeddings"][0]) @ expected) > 0.9999
        assert httpx.post(f"{base}/search", json={"query": "shoes"}).status_code == 503
        backend = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id)
        index_catalog(RULES_FIXTURE, backend, embedder)
        backend.close()
        _poll(base, lambda r: r.status_code == 200, log)
        found = httpx.post(f"{base}/search", json={"query": "running shoes"}, timeout=30)
        assert found.status_code == 200 and found.json()["hits"]
    finally:
        server.terminate()
        server.wait(30)
        OpenSearch(hosts=[opensearch_node.url]).indices.delete(index=f"{alias}-*")


def _poll(base: str, done, log, timeout: float = 120.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"{base}/health", timeout=5)
            if done(last):
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"/health never got there: {last and last.text}; serve said: "
                         f"{log.read_text()[-1500:]}")
