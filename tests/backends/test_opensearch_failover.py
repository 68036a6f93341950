"""Outgrowing one machine (issue #24, part 2), on a real three-node cluster: an index with
three shards and one replica, embedded by the cluster's ingest pipeline, keeps every product
when a data node is killed (SIGKILL) mid-bulk, and keeps answering, completely, when one is
killed mid-query; an index without replicas that loses a shard answers degraded, saying so,
instead of failing."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest
from opensearchpy import OpenSearch

from rex_search.backends.connection import parse_target
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import embedding_text
from rex_search.indexer.indexer import index_catalog
from rex_search.integrations.opensearch_pipeline import install
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import cosine_reranker

# slow: killing and restarting real nodes takes ~3 minutes on 2 cores (CI runs it).
pytestmark = [pytest.mark.opensearch, pytest.mark.slow]
NAME = "rex-failover"
QUERIES = ("running shoes", "cast iron skillet", "wireless earbuds", "laptop bag", "yoga mat")


@pytest.fixture(scope="module", params=["processes", "containers"])
def cluster(request):
    """(a three-node cluster, the rex-search service its models call): node processes and an
    in-process service, or docker/compose.yml's containers."""
    if request.param == "processes":
        return (request.getfixturevalue("opensearch_cluster"),
                request.getfixturevalue("embedding_service"))
    compose = request.getfixturevalue("compose_cluster")
    return compose, compose.service_url


def _url(cluster, alias: str, options: str) -> str:
    return (f"opensearch://127.0.0.1:{cluster.nodes[0].port}/{alias}?knn_engine=lucene"
            f"&hosts={cluster.hosts()}&timeout=60&{options}")


def _shard_nodes(client: OpenSearch, index: str) -> dict[str, set[str]]:
    """Node name -> the shard copies it holds of ``index`` ("0p", "2r", ...)."""
    out: dict[str, set[str]] = {}
    for row in client.cat.shards(index=index, format="json"):
        if row.get("node"):
            out.setdefault(row["node"], set()).add(f"{row['shard']}{row['prirep']}")
    return out


def _whole(cluster) -> None:
    """Every node running (an earlier test may have left one killed): quorum for the next."""
    for i, node in enumerate(cluster.nodes):
        if not node.running():
            cluster.restart(i)


def test_a_node_killed_mid_bulk_or_mid_query_loses_nothing(cluster, small_catalog, embedder):
    cluster, embedding_service = cluster
    _whole(cluster)
    client = OpenSearch(hosts=[n.url for n in cluster.nodes], timeout=60, max_retries=3,
                        retry_on_timeout=True)
    install(client, embedding_service, NAME, embed=True)
    alias = f"failover-{uuid.uuid4().hex[:8]}"
    url = _url(cluster, alias, f"embed=cluster&embed_pipeline={NAME}-embed&shards=3&replicas=1")
    backend = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id,
                                chunk_size=20)
    products = [p for batch in read_catalog(small_catalog) for p in batch.products]

    # Mid-bulk: once some products are in, SIGKILL a node (every node holds shards of it).
    victim = 1
    seen_at_kill: list[int] = []

    def kill_when_some_are_in() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                count = client.count(index=alias)["count"]
            except Exception:  # noqa: BLE001 -- the index may not exist yet
                count = 0
            if count >= 40:
                seen_at_kill.append(count)
                cluster.kill(victim)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_when_some_are_in)
    killer.start()
    summary = index_catalog(small_catalog, backend, embedder)
    killer.join()
    assert seen_at_kill and 40 <= seen_at_kill[0] < len(products), seen_at_kill
    assert summary.indexed == len(products) and not summary.failed
    health = cluster.wait_for(2, "yellow", 120)
    assert health["status"] in ("yellow", "green")
    assert backend.health()["status"] in ("yellow", "green")
    # Nothing lost: every product once, each with the vector the client side would make.
    assert backend.count() == len(products)
    stored = backend.vectors([p.parent_asin for p in products])
    assert set(stored) == {p.parent_asin for p in products}
    sample = products[::25]
    for product, expected in zip(sample, embedder.encode([embedding_text(p) for p in sample]),
                                 strict=True):
        assert float(stored[product.parent_asin] @ expected) > 0.9999, product.parent_asin

    cluster.restart(victim)
    # Mid-query: the answers while a node dies equal the answers before it did.
    pipeline = SearchPipeline(backend, embedder, cosine_reranker(backend, embedder))
    before = {q: [h.parent_asin for h in pipeline.search(q).hits] for q in QUERIES}
    assert all(before.values())
    during: list[tuple[str, list[str], bool]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def query_until_stopped() -> None:
        while not stop.is_set():
            for query in QUERIES:
                try:
                    result = pipeline.search(query)
                except BaseException as exc:  # noqa: BLE001 -- reported by the test below
                    errors.append(exc)
                    return
                during.append((query, [h.parent_asin for h in result.hits], result.degraded))

    searcher = threading.Thread(target=query_until_stopped)
    searcher.start()
    time.sleep(1.0)
    cluster.kill(2)
    time.sleep(3.0)
    stop.set()
    searcher.join(timeout=120)
    assert not searcher.is_alive() and not errors, errors
    assert len(during) > len(QUERIES)
    for query, hits, degraded in during:
        assert hits == before[query] or degraded, query
    cluster.wait_for(2, "yellow", 120)
    for query in QUERIES:
        result = pipeline.search(query)
        assert [h.parent_asin for h in result.hits] == before[query]
        assert not result.degraded, result.degraded_reason
    backend.close()
    client.close()


def test_a_lost_shard_is_reported_not_raised(cluster, small_catalog, embedder):
    """No replicas, one node gone: its shard's products are missing until it returns. The
    search answers with what the other shards hold, marked degraded with the reason, and
    `info` says the cluster is red and what that means."""
    cluster, _ = cluster
    _whole(cluster)
    alias = f"noreplica-{uuid.uuid4().hex[:8]}"
    backend = OpenSearchBackend(parse_target(_url(cluster, alias, "shards=3&replicas=0")),
                                embedder.dim, embedder.model_id)
    index_catalog(small_catalog, backend, embedder)
    client = OpenSearch(hosts=[n.url for n in cluster.nodes if n.running()], timeout=60)
    pipeline = SearchPipeline(backend, embedder, cosine_reranker(backend, embedder))
    assert not pipeline.search("running shoes").degraded
    holders = _shard_nodes(client, backend.write_index)
    cluster.kill(next(i for i, n in enumerate(cluster.nodes)
                      if i and n.running() and holders.get(n.name)))
    deadline = time.monotonic() + 60
    while backend.health()["status"] != "red" and time.monotonic() < deadline:
        time.sleep(0.5)
    health = backend.health()
    assert health["status"] == "red" and "degraded" in str(health["meaning"])
    result = pipeline.search("trail running shoes")  # not one answered (and kept) before
    assert result.degraded and "shards did not answer" in str(result.degraded_reason)
    assert result.hits  # the shards that answered still rank
    assert np.isfinite([h.score for h in result.hits]).all()
    backend.close()
    client.close()
