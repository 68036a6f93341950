"""The Elasticsearch backend against a real Elasticsearch 8 node (Maven Central's minimal
distribution), through the elasticsearch 9 client the project installs.

That distribution has no ``english`` analyzer (its analysis-common module is not published),
so the test creates the index the backend would create with the standard analyzer instead;
everything after creation -- bulk, BM25, k-NN with filters, mget, counts -- is the backend's
own code against the real server.
"""

from __future__ import annotations

import elasticsearch
import numpy as np
import pytest
from elasticsearch import Elasticsearch

from rex_search.backends.base import Filters
from rex_search.backends.cluster_bodies import text_mappings
from rex_search.backends.connection import parse_target
from rex_search.backends.elasticsearch import ElasticsearchBackend
from rex_search.backends.embedded import SCHEMA_VERSION
from rex_search.indexer.indexer import index_catalog
from tests.conftest import RULES_FIXTURE

pytestmark = [pytest.mark.slow, pytest.mark.opensearch]


def _create_like_the_backend(client: Elasticsearch, alias: str, dim: int, model: str) -> None:
    properties = text_mappings()
    for field in properties.values():
        if field.get("analyzer") == "english":
            field["analyzer"] = "standard"
    backend = ElasticsearchBackend.__new__(ElasticsearchBackend)
    properties["embedding"] = backend._vector_mapping(dim)
    client.indices.create(index=f"{alias}-1", settings={"number_of_shards": 1}, mappings={
        "_meta": {"schema_version": SCHEMA_VERSION, "embedding_model": model, "dim": dim},
        "properties": properties})
    client.indices.put_alias(index=f"{alias}-1", name=alias)


def test_the_9_client_alone_is_refused_by_an_8_server(elasticsearch_node):
    assert elasticsearch.__versionstr__.startswith("9.")
    plain = Elasticsearch(elasticsearch_node.url)
    with pytest.raises(elasticsearch.BadRequestError):
        plain.indices.exists_alias(name="anything")
    plain.close()


def test_backend_indexes_and_searches_an_elasticsearch_8_server(elasticsearch_node, embedder):
    target = parse_target(f"elasticsearch://127.0.0.1:{elasticsearch_node.port}/products")
    backend_client = ElasticsearchBackend.__new__(ElasticsearchBackend)
    backend_client.target = target
    client = backend_client._connect()
    assert client.transport.server_major is None  # not asked before the first request
    _create_like_the_backend(client, "products", embedder.dim, embedder.model_id)
    assert client.transport.server_major == 8
    backend = ElasticsearchBackend(target, embedder.dim, embedder.model_id, client=client)
    summary = index_catalog(RULES_FIXTURE, backend, embedder)
    assert (summary.indexed, summary.failed) == (36, [])
    assert backend.count() == 36
    vector = embedder.encode_queries(["usb c charger"])[0]
    no_apple = Filters(exclude_brands=("Apple",))
    for hits in (backend.bm25("usb c charger", 5, no_apple), backend.knn(vector, 5, no_apple)):
        products = backend.get([h.parent_asin for h in hits])
        assert len(hits) == 5 and "Apple" not in {p.product.brand for p in products.values()}
    top = backend.knn(vector, 3)
    stored = backend.vectors([h.parent_asin for h in top])
    for hit in top:  # the cosine, not dot_product's (1 + dot) / 2
        assert hit.score == pytest.approx(float(np.dot(vector, stored[hit.parent_asin])),
                                          abs=1e-3)
    again = index_catalog(RULES_FIXTURE, backend, embedder)
    assert again.unchanged == 36  # content hashes read back through mget
