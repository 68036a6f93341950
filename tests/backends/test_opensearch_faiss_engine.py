"""The faiss engine inside the cluster (issue #24, part 3): on a node that loads k-NN's JNI
library built from public source (tools/build_knn_native.sh), an index with
``knn_engine=faiss`` finds the nearest neighbours (at least 9 of the exact top 10, as the
lucene engine must), with their cosines, with and without filters. Skips, saying how to
build it, where the library is not in its cache."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from rex_search.backends.base import Filters
from rex_search.backends.connection import parse_target
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.catalog.reader import read_catalog
from rex_search.indexer.indexer import index_catalog
from tests.conftest import RULES_FIXTURE

pytestmark = pytest.mark.opensearch
QUERIES = ("running shoes", "cast iron skillet", "wireless earbuds", "laptop bag")


def test_the_faiss_engine_finds_what_lucene_finds(opensearch_node, embedder):
    if opensearch_node.knn_libs is None:
        pytest.skip("no k-NN JNI library: the Maven Central k-NN zip has none; build it with "
                    "tools/build_knn_native.sh K_NN_SOURCE FAISS_SOURCE (see its header)")
    backends = {}
    for engine in ("faiss", "lucene"):
        url = (f"opensearch://127.0.0.1:{opensearch_node.port}/"
               f"{engine}-{uuid.uuid4().hex[:8]}?knn_engine={engine}")
        backends[engine] = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id)
        assert index_catalog(RULES_FIXTURE, backends[engine], embedder).indexed > 0
    mapping = opensearch_node.request("GET", f"/{backends['faiss'].write_index}/_mapping")
    method = next(iter(mapping.values()))["mappings"]["properties"]["embedding"]["method"]
    assert method["engine"] == "faiss"
    products = [p for batch in read_catalog(RULES_FIXTURE) for p in batch.products]
    stored = backends["lucene"].vectors([p.parent_asin for p in products])
    for query in QUERIES:
        vector = embedder.encode_queries([query])[0]
        for filters in (None, Filters(max_price=50.0)):
            allowed = [p.parent_asin for p in products if filters is None or
                       (p.price is not None and p.price <= 50.0)]
            exact = sorted((float(stored[i] @ vector) for i in allowed), reverse=True)[:10]
            for engine, backend in backends.items():
                hits = backend.knn(vector, 10, filters)
                # HNSW is approximate (either engine may miss a tail neighbour): at least 9
                # of the exact top 10, each with its own cosine.
                found = sum(h.score >= exact[-1] - 1e-4 for h in hits)
                assert len(hits) == len(exact) and found >= len(exact) - 1, (engine, query)
                assert all(h.parent_asin in allowed for h in hits)
                assert np.allclose([h.score for h in hits],
                                   [float(stored[h.parent_asin] @ vector) for h in hits],
                                   atol=1e-4)
    for backend in backends.values():
        backend.close()
