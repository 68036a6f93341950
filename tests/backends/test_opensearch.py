"""The OpenSearch backend suite, run twice: against a real OpenSearch node assembled from
Maven Central (tests/opensearch_node.py; dense retrieval through the k-NN plugin, lucene
engine) and against osmem-server (an in-process API emulator, fast; no k-NN queries, so
dense is faiss-local there). Where the two disagree, OpenSearch is right.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from rex_search.backends.base import Filters, StockRecord
from rex_search.backends.bulk import BulkError
from rex_search.backends.cluster_bodies import bm25_body
from rex_search.backends.connection import parse_target, redact
from rex_search.backends.opensearch import OpenSearchBackend
from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import embedding_text
from rex_search.errors import BackendError, ConfigError
from rex_search.indexer.indexer import index_catalog
from tests.conftest import RULES_FIXTURE

pytestmark = pytest.mark.opensearch


@dataclass
class Server:
    """Where a test's index lives: osmem (a clone per test) or the session's real node (a
    fresh index name per test)."""

    kind: str
    host: str  # host:port
    suffix: str = ""

    def url(self, tmp_path: Path, index: str = "products") -> str:
        if self.kind == "opensearch":
            return f"opensearch://{self.host}/{index}{self.suffix}?knn_engine=lucene"
        return (f"opensearch://{self.host}/{index}?dense=faiss-local"
                f"&faiss_dir={tmp_path / 'vectors'}")


@pytest.fixture(params=["opensearch", "osmem"])
def server(request) -> Server:
    if request.param == "opensearch":
        node = request.getfixturevalue("opensearch_node")
        return Server("opensearch", f"127.0.0.1:{node.port}", f"-{uuid.uuid4().hex[:8]}")
    return Server("osmem", request.getfixturevalue("osmem_url").split("://", 1)[1])


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from rex_search.cli import main; main()",
                           *args], capture_output=True, text=True)


def test_index_and_query_end_to_end_from_the_cli(server: Server, tmp_path: Path):
    url = server.url(tmp_path)
    first = cli("index", str(RULES_FIXTURE), "--index", url)
    assert first.returncode == 0, first.stderr
    assert "36 rows read, 36 indexed, 0 unchanged, 0 rejected, 0 failed" in first.stdout
    again = cli("index", str(RULES_FIXTURE), "--index", url, "--json")
    assert json.loads(again.stdout)["unchanged"] == 36
    result = cli("query", "usb c charger not apple", "--index", url, "--json")
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["hits"]
    assert hits and "Apple" not in [h["brand"] for h in hits]
    # Seven non-Apple USB-C chargers exist in the fixture: the top five must all be chargers.
    assert all("charger" in h["title"].lower() for h in hits[:5]), [h["title"] for h in hits]
    assert {"bm25", "dense"} <= set(hits[0]["explanation"]["retrieval"])


@pytest.fixture
def backend(server: Server, tmp_path: Path, embedder):
    backend = OpenSearchBackend(parse_target(server.url(tmp_path)), embedder.dim,
                                embedder.model_id)
    index_catalog(RULES_FIXTURE, backend, embedder)
    yield backend
    backend.close()


def test_filters_apply_to_both_sources(backend, embedder):
    no_apple = Filters(exclude_brands=("Apple",))
    vector = embedder.encode_queries(["usb c charger"])[0]
    for hits in (backend.bm25("usb c charger", 10, no_apple), backend.knn(vector, 10, no_apple)):
        brands = {p.product.brand for p in backend.get([h.parent_asin for h in hits]).values()}
        assert hits and "Apple" not in brands
    assert len(backend.knn(vector, 10, no_apple)) == 10  # over-fetch fills k
    cheap = backend.bm25("charger", 20, Filters(max_price=20.0))
    prices = [p.product.price for p in backend.get([h.parent_asin for h in cheap]).values()]
    assert prices and all(p <= 20 for p in prices)
    top = backend.knn(vector, 3)
    assert [h.score for h in top] == sorted((h.score for h in top), reverse=True)
    stored = backend.vectors([h.parent_asin for h in top])
    for hit in top:  # the cosine itself, not the engine's transformed _score
        assert hit.score == pytest.approx(float(np.dot(vector, stored[hit.parent_asin])),
                                          abs=1e-4)


def test_products_lists_what_is_stored(backend):
    """What a service warms its per-product caches with: stored products, as `get` has them."""
    some = backend.products(3)
    assert len(some) == 3
    stored = backend.get([p.parent_asin for p in some])
    assert all(stored[p.parent_asin].product == p for p in some)
    assert len(backend.products(100_000)) == backend.count() and backend.products(0) == []


def test_user_text_is_never_query_syntax(backend):
    body = json.dumps(bm25_body('title:x OR "y" AND -z *', 5, None))
    assert "query_string" not in body
    assert backend.bm25('charger" OR title:*', 5)  # no parse error: plain words
    assert backend.bm25('{"match_all": {}}', 5) == []  # JSON in the text is just words
    assert backend.bm25("*", 5) == []  # no wildcard expansion


def test_inventory_partial_update_without_reembedding(backend):
    asin = backend.bm25("running shoe", 1)[0].parent_asin
    vectors_before = backend.vectors([asin])[asin]
    unknown = backend.update_inventory([StockRecord(asin, False, 0, 9.99),
                                        StockRecord("NOT-THERE", True, 1)])
    assert unknown == ["NOT-THERE"]
    item = backend.get([asin])[asin]
    assert (item.in_stock, item.quantity, item.product.price) == (False, 0, 9.99)
    assert np.array_equal(backend.vectors([asin])[asin], vectors_before)  # not re-embedded
    assert asin not in [h.parent_asin for h in backend.bm25(
        "running shoe", 20, Filters(exclude_out_of_stock=True))]
    # Re-indexing the catalog keeps the stock state (content unchanged -> skipped).
    assert backend.get([asin])[asin].in_stock is False


def test_full_reindex_swaps_the_alias_atomically(server: Server, tmp_path: Path, embedder):
    url = server.url(tmp_path)
    first = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id)
    index_catalog(RULES_FIXTURE, first, embedder)
    old = first.info()["indices"]
    rebuild = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id,
                                reindex=True)
    assert rebuild.write_index != rebuild.alias
    assert first.count() == 36  # searches still see the old index while the new one builds
    index_catalog(RULES_FIXTURE, rebuild, embedder)
    new = rebuild.info()["indices"]
    assert len(old) == 1 and len(new) == 1 and new[0] not in old  # swapped, old one deleted
    assert rebuild.count() == 36
    assert rebuild.knn(embedder.encode_queries(["laptop bag"])[0], 3)


def test_model_mismatch_and_missing_index(server: Server, tmp_path: Path, embedder):
    url = server.url(tmp_path)
    with pytest.raises(BackendError, match="no index opensearch://.*/products.*: build one first"):
        OpenSearchBackend(parse_target(url))
    OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id)
    with pytest.raises(BackendError, match="was embedded with 'bge-small-en-v1.5', not 'other'"):
        OpenSearchBackend(parse_target(url), 384, "other")


class FlakyClient:
    """The real opensearch-py client, with bulk faults injected: 429 bursts for chosen ids
    (those items are not sent), and a node that dies after part of a request."""

    def __init__(self, real: OpenSearch, reject: dict[str, int], die_after: int | None = None,
                 permanent: set[str] = frozenset(), mget_drops: int = 0):
        self.real, self.reject, self.die_after, self.permanent = real, dict(reject), die_after, \
            permanent
        self.calls, self.mget_drops = 0, mget_drops

    def __getattr__(self, name):
        return getattr(self.real, name)

    def mget(self, **kwargs):
        if self.mget_drops > 0:  # the node drops for a moment before the bulk
            self.mget_drops -= 1
            raise OSConnectionError("N/A", "connection refused", None)
        return self.real.mget(**kwargs)

    def bulk(self, body):
        self.calls += 1
        pairs, i = [], 0
        while i < len(body):
            action = body[i]
            has_source = next(iter(action)) in ("index", "update", "create")
            pairs.append((action, body[i + 1] if has_source else None))
            i += 2 if has_source else 1
        if self.die_after is not None:
            sent, self.die_after = pairs[: self.die_after], None
            self.real.bulk(body=[x for a, s in sent for x in (a, s) if x is not None])
            raise OSConnectionError("N/A", "node died mid-bulk", None)
        items, forward = [], []
        for action, source in pairs:
            op = next(iter(action))
            doc_id = action[op]["_id"]
            if doc_id in self.permanent:
                items.append({op: {"_id": doc_id, "status": 400, "error": {
                    "type": "mapper_parsing_exception", "reason": "bad field"}}})
            elif self.reject.get(doc_id, 0) > 0:
                self.reject[doc_id] -= 1
                items.append({op: {"_id": doc_id, "status": 429, "error": {
                    "type": "es_rejected_execution_exception", "reason": "queue full"}}})
            else:
                forward.append((action, source))
                items.append(None)
        if forward:
            real_items = iter(self.real.bulk(body=[x for a, s in forward for x in (a, s)
                                                   if x is not None])["items"])
            items = [item if item is not None else next(real_items) for item in items]
        return {"errors": True, "items": items}


def flaky_backend(server: Server, tmp_path, embedder, **faults):
    target = parse_target(server.url(tmp_path))
    real = OpenSearch(hosts=[target.url])
    sleeps: list[float] = []
    backend = OpenSearchBackend(target, embedder.dim, embedder.model_id, chunk_size=10,
                                max_retries=4, backoff=0.5, max_backoff=2.0,
                                sleep=sleeps.append, client=FlakyClient(real, **faults),
                                jitter=lambda delay: delay)  # exact delays to assert
    return backend, sleeps


def fixture_ids() -> list[str]:
    return [p.parent_asin for b in read_catalog(RULES_FIXTURE) for p in b.products]


def test_429_bursts_are_retried_with_capped_backoff_and_nothing_is_lost(server, tmp_path,
                                                                        embedder):
    ids = fixture_ids()
    backend, sleeps = flaky_backend(server, tmp_path, embedder,
                                    reject={ids[0]: 3, ids[5]: 1, ids[20]: 2})
    summary = index_catalog(RULES_FIXTURE, backend, embedder)
    assert summary.failed == [] and summary.indexed == 36
    assert backend.count() == 36
    assert sleeps == [0.5, 1.0, 2.0, 0.5, 1.0]  # chunk 1: three retries, capped; chunk 3: two
    backend.close()


def test_a_node_dying_mid_bulk_loses_and_duplicates_nothing(server, tmp_path, embedder):
    backend, sleeps = flaky_backend(server, tmp_path, embedder, reject={}, die_after=4)
    summary = index_catalog(RULES_FIXTURE, backend, embedder)
    assert summary.failed == [] and backend.count() == 36
    assert sleeps == [0.5]
    assert set(backend.get(fixture_ids())) == set(fixture_ids())


def test_permanent_failures_are_reported_per_document(server, tmp_path, embedder):
    ids = fixture_ids()
    backend, _ = flaky_backend(server, tmp_path, embedder, reject={ids[1]: 99},
                               permanent={ids[2]})
    summary = index_catalog(RULES_FIXTURE, backend, embedder)
    assert sorted(summary.failed) == sorted([
        (ids[2], "400 mapper_parsing_exception: bad field"),
        (ids[1], "gave up after 4 retries: 429 es_rejected_execution_exception: queue full")])
    assert backend.count() == 34
    # Failed products were not recorded as done: a clean re-run indexes exactly them.
    clean = OpenSearchBackend(backend.target, embedder.dim, embedder.model_id)
    again = index_catalog(RULES_FIXTURE, clean, embedder)
    assert (again.indexed, again.unchanged, again.failed) == (2, 34, [])


def test_a_failed_delete_or_update_raises_one_error_listing_its_items(server, tmp_path,
                                                                       embedder):
    ids = fixture_ids()
    backend, _ = flaky_backend(server, tmp_path, embedder, reject={})
    assert index_catalog(RULES_FIXTURE, backend, embedder).failed == []
    backend.client.permanent = {ids[5]}
    with pytest.raises(BulkError) as error:
        backend.delete([ids[5], ids[6]])
    assert error.value.failures == [(ids[5], "400 mapper_parsing_exception: bad field")]
    assert set(backend.get([ids[5], ids[6]])) == {ids[5]}  # the other delete went through
    with pytest.raises(BulkError, match=re.escape(f"1 document(s) failed ({ids[5]}: 400")):
        backend.update_inventory([StockRecord(ids[5], False), StockRecord(ids[7], False)])
    assert backend.get([ids[7]])[ids[7]].in_stock is False
    backend.close()


def test_connection_settings_and_redaction(monkeypatch):
    target = parse_target("opensearch+https://admin:s3cret@search.example:9243/shop"
                          "?ca_certs=/etc/ca.pem&timeout=5")
    assert (target.url, target.index, target.username, target.verify_certs) == (
        "https://search.example:9243", "shop", "admin", True)
    assert "s3cret" not in repr(target) and "s3cret" not in target.display
    assert redact("failed: https://admin:s3cret@h:1/x") == "failed: https://***@h:1/x"
    monkeypatch.setenv("MY_KEY", "k123")
    assert parse_target("elasticsearch://h/x?api_key_env=MY_KEY").api_key == "k123"
    for bad, message in [("opensearch://h:9200/", "needs one lower-case index name"),
                         ("opensearch://h/x?verify=no", "unknown backend URL option(s) verify"),
                         ("opensearch://h/x?api_key_env=UNSET_VAR_X", "names an unset variable"),
                         ("solr://h/x", "unsupported backend")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            from rex_search.backends.open import open_backend

            open_backend(bad)


def test_more_nodes_shards_and_replicas_come_from_the_url():
    target = parse_target("opensearch+https://u:p@n1:9200/shop?hosts=n2:9201,n3:9202"
                          "&shards=3&replicas=1")
    assert target.urls == ["https://n1:9200", "https://n2:9201", "https://n3:9202"]
    assert (target.shards, target.replicas) == (3, 1)
    plain = parse_target("opensearch://n1/shop")
    assert (plain.urls, plain.shards, plain.replicas) == (["http://n1:9200"], 1, None)


def test_disabling_tls_verification_warns(caplog):
    parse_target("opensearch+https://h:9200/x?verify_certs=false")
    assert "TLS certificate verification is DISABLED" in caplog.text


def test_errors_from_the_cluster_never_show_credentials(tmp_path):
    result = cli("query", "shoes", "--index", "opensearch://user:hunter2@127.0.0.1:1/products")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: opensearch opensearch://127.0.0.1:1/products")
    assert "hunter2" not in result.stderr and "Traceback" not in result.stderr


def test_stored_vectors_round_trip(backend, embedder):
    asin = backend.bm25("skillet vinegar", 1)[0].parent_asin
    product = backend.get([asin])[asin].product
    expected = embedder.encode([embedding_text(product)])[0]
    assert np.allclose(backend.vectors([asin])[asin], expected, atol=1e-5)


def test_a_dropped_mget_is_retried(server, tmp_path, embedder):
    backend, sleeps = flaky_backend(server, tmp_path, embedder, reject={}, mget_drops=2)
    summary = index_catalog(RULES_FIXTURE, backend, embedder)
    assert summary.failed == [] and backend.count() == 36
    assert sleeps[:2] == [0.5, 1.0]


def test_faiss_local_run_killed_before_its_vectors_were_saved_loses_nothing(
        osmem_url, tmp_path, embedder):
    url = Server("osmem", osmem_url.split("://", 1)[1]).url(tmp_path)
    products = [p for b in read_catalog(RULES_FIXTURE) for p in b.products]
    killed = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id)
    vectors = embedder.encode([embedding_text(p) for p in products[:20]])
    killed.upsert(products[:20], vectors)  # documents reached the cluster ...
    killed._refresh(killed.write_index)  # ... and are visible; the vector file never saved
    resumed = OpenSearchBackend(parse_target(url), embedder.dim, embedder.model_id)
    summary = index_catalog(RULES_FIXTURE, resumed, embedder)
    assert (summary.indexed, summary.unchanged) == (36, 0)  # the 20 are redone, not "unchanged"
    ids = [p.parent_asin for p in products]
    assert set(resumed.vectors(ids)) == set(ids)
    again = index_catalog(RULES_FIXTURE, OpenSearchBackend(parse_target(url), embedder.dim,
                                                           embedder.model_id), embedder)
    assert (again.indexed, again.unchanged) == (0, 36)


def test_credentials_with_reserved_characters_are_parsed_and_hidden():
    url = "opensearch+https://admin:p@ss/w0rd@search.example:9243/shop"
    target = parse_target(url)
    assert (target.username, target.password, target.url, target.index) == (
        "admin", "p@ss/w0rd", "https://search.example:9243", "shop")
    shown = redact(f"failed: {url} (timeout)")
    assert "p@ss" not in shown and "w0rd" not in shown and "ss/" not in shown
    for bad, message in [("opensearch://h:92x0/x", "invalid port"),
                         ("opensearch://h:9200/x?timeout=soon", "timeout must be a number"),
                         ("opensearch://h:9200/x?timeout=-1", "timeout must be a number"),
                         ("opensearch://h/x?hosts=n2", "'n2' is not host:port"),
                         ("opensearch://h/x?hosts=n2:99999", "is not host:port"),
                         ("opensearch://h/x?shards=0", "shards must be a whole number"),
                         ("opensearch://h/x?replicas=-1", "replicas must be a whole number")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_target(bad)


@pytest.mark.slow  # ~25 s: a node restart and a few hundred embeddings
def test_a_real_node_killed_mid_bulk_and_restarted_loses_and_duplicates_nothing(
        opensearch_node, small_catalog, tmp_path, embedder):
    """SIGKILL the real node while a catalog is being bulk-indexed, restart it on the same
    data: the run's retries carry it through, and every product is there exactly once."""
    catalog = tmp_path / "catalog.parquet"
    pq.write_table(pq.read_table(small_catalog).slice(0, 240), catalog)
    target = parse_target(f"opensearch://127.0.0.1:{opensearch_node.port}/killed-"
                          f"{uuid.uuid4().hex[:8]}?knn_engine=lucene&timeout=10")
    backend = OpenSearchBackend(target, embedder.dim, embedder.model_id, chunk_size=25,
                                max_retries=12, backoff=0.5, max_backoff=4.0)
    ids = [p.parent_asin for b in read_catalog(catalog) for p in b.products]
    result: dict = {}
    run = threading.Thread(target=lambda: result.update(
        summary=index_catalog(catalog, backend, embedder, batch_size=40)))
    run.start()
    watcher = OpenSearch(hosts=[target.url])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.is_alive():
        try:  # bulk writes have started, the run is not finished: kill now
            if watcher.count(index=backend.write_index)["count"] > 0:
                break
        except Exception:  # noqa: BLE001 -- the index may not be searchable yet
            pass
        time.sleep(0.05)
    assert run.is_alive(), "the run finished before the node could be killed"
    opensearch_node.kill()
    opensearch_node.start()
    run.join(timeout=300)
    summary = result["summary"]
    assert summary.failed == []
    assert summary.indexed + summary.unchanged == len(set(ids))
    assert backend.count() == len(set(ids))  # nothing lost, nothing twice
    assert set(backend.get(ids)) == set(ids)
    assert set(backend.vectors(ids)) == set(ids)
    watcher.close()
