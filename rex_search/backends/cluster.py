"""Shared logic of the OpenSearch and Elasticsearch backends.

Documents use ``parent_asin`` as ``_id`` (so every write is an idempotent upsert) and keep the
full product as JSON in a stored, unindexed field. Reads and searches go through the alias
named in the URL; a full re-index (``reindex=True``) writes a new concrete index and swaps the
alias atomically in `finalize`, so searches never see a half-built index. Bulk writes go
through `backends/bulk.py`; the request bodies are built in `backends/cluster_bodies.py`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rex_search.backends.base import Filters, IndexedProduct, ScoredId
from rex_search.backends.bulk import (
    BulkError,
    Failure,
    Operation,
    backoff_delay,
    equal_jitter,
    streaming_bulk,
)
from rex_search.backends.cluster_bodies import (
    EMBED_SUFFIX,
    bm25_body,
    filter_clauses,
    ml_names,
    ml_search_body,
    source_of,
    stock_field,
    text_mappings,
)
from rex_search.backends.connection import ClusterTarget, redact
from rex_search.backends.embedded import SCHEMA_VERSION, doc_id_of
from rex_search.backends.stores.vectors import VectorStore
from rex_search.catalog.schema import Product, StockRecord, brand_key
from rex_search.errors import BackendError, IndexMissing

logger = logging.getLogger(__name__)


PENDING_HASH = "pending-vector-save"


class ClusterBackend:
    """Backend protocol over a search cluster; engines subclass and supply the client calls."""

    engine = "cluster"

    def __init__(self, target: ClusterTarget, dim: int | None = None,
                 model_id: str | None = None, reindex: bool = False, chunk_size: int = 500,
                 max_retries: int = 5, backoff: float = 0.5, max_backoff: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep, client: Any = None,
                 jitter: Callable[[float], float] = equal_jitter) -> None:
        self.target = target
        self.alias = target.index
        self.chunk_size, self.max_retries = chunk_size, max_retries
        self.backoff, self.max_backoff, self._sleep = backoff, max_backoff, sleep
        self._jitter = jitter
        self.client = client if client is not None else self._connect()
        self._generation = 0
        self._query_model: str | None = None  # embed=cluster: found on the first query
        self._partial = threading.local()  # this thread's searches that missed shards
        # faiss-local: real content hashes of documents sent since the last vector save. They
        # go to the cluster as PENDING_HASH and are confirmed only after the vector file is
        # saved, so a run killed in between re-embeds them instead of calling them unchanged.
        self._unconfirmed: dict[str, str] = {}
        self._old_indices: list[str] = []
        existing = self._alias_indices()
        if not existing and dim is None:
            raise IndexMissing(f"no index {target.display}: build one first with "
                               f"`rex-search index CATALOG --index {target.display}`")
        meta = self._meta(existing[0]) if existing else {}
        if existing and model_id is not None and meta.get("embedding_model") != model_id:
            raise BackendError(f"{target.display} was embedded with "
                               f"{meta.get('embedding_model')!r}, not {model_id!r}")
        self.dim = int(meta.get("dim", dim or 0))
        self.model_id = str(meta.get("embedding_model", model_id))
        self.write_index = self.alias
        if not existing or reindex:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
            self.write_index = f"{self.alias}-{stamp}-{uuid.uuid4().hex[:6]}"
            self._create(self.write_index, self.dim, self.model_id)
            if not existing:
                self._call(self._put_alias, self.write_index, self.alias)
            else:
                self._old_indices = existing
        self.local = None
        if target.dense == "faiss-local":
            folder = Path(target.faiss_dir or Path("rex-vectors") / self.alias)
            stem = self.write_index if reindex else self.alias
            self.local = VectorStore(folder / f"{stem}.vectors", self.dim,
                                     legacy_file=folder / f"{stem}.faiss")

    # -- engine hooks ---------------------------------------------------------------------
    def _connect(self) -> Any:
        raise NotImplementedError

    def _vector_mapping(self, dim: int) -> dict[str, Any]:
        raise NotImplementedError

    def _knn_body(self, vector: list[float], k: int, filters: Filters | None) -> dict[str, Any]:
        raise NotImplementedError

    def _create_index(self, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        raise NotImplementedError

    def _search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _bulk_request(self, operations: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def _mget(self, index: str, ids: list[str], source: list[str] | None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def _swap_alias(self, remove: list[str], add: str) -> None:
        raise NotImplementedError

    def _get_alias(self) -> dict[str, Any]:
        raise NotImplementedError

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def _cosine(self, score: float) -> float:
        """The engine's k-NN ``_score`` back to the cosine it was computed from, so dense
        scores read the same whatever the backend (explanations, combine weights)."""
        return score

    # Calls whose signature is the same in opensearch-py and the elasticsearch client.
    def _put_alias(self, index: str, alias: str) -> None:
        self.client.indices.put_alias(index=index, name=alias)

    def _get_meta(self, index: str) -> dict[str, Any]:
        return self.client.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})

    def _refresh(self, index: str) -> None:
        self.client.indices.refresh(index=index)

    def _count(self, index: str) -> int:
        return self.client.count(index=index)["count"]

    def _delete_index(self, index: str) -> None:
        self.client.indices.delete(index=index)

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a client call; errors become BackendError with credentials redacted."""
        try:
            return fn(*args)
        except BackendError:
            raise
        except Exception as exc:  # client libraries raise many types; all mean "cluster said no"
            raise BackendError(f"{self.engine} {self.target.display}: "
                               f"{redact(str(exc))}") from None

    def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        """An idempotent call (mget, refresh), retried on connection errors with the bulk
        path's capped backoff: a node that drops or restarts must not end an indexing run."""
        for attempt in range(self.max_retries + 1):
            try:
                return fn(*args)
            except self._connection_errors() as exc:
                if attempt == self.max_retries:
                    raise BackendError(f"{self.engine} {self.target.display}: gave up after "
                                       f"{self.max_retries} retries: {redact(str(exc))}") from None
                self._sleep(backoff_delay(attempt, self.backoff, self.max_backoff, self._jitter))
            except BackendError:
                raise
            except Exception as exc:  # noqa: BLE001 (as in _call)
                raise BackendError(f"{self.engine} {self.target.display}: "
                                   f"{redact(str(exc))}") from None
        raise AssertionError("unreachable")

    def _alias_indices(self) -> list[str]:
        if not self._read(lambda: bool(self.client.indices.exists_alias(name=self.alias))):
            return []
        return sorted(self._read(self._get_alias))

    def _meta(self, index: str) -> dict[str, Any]:
        meta = self._read(self._get_meta, index) or {}
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise BackendError(f"{self.target.display} was not created by this rex-search "
                               f"(schema_version {meta.get('schema_version')!r}); use a new index")
        return meta

    def _create(self, name: str, dim: int, model_id: str) -> None:
        mappings = {"_meta": {"schema_version": SCHEMA_VERSION, "embedding_model": model_id,
                              "dim": dim}, "properties": text_mappings()}
        settings: dict[str, Any] = {"index": {"number_of_shards": self.target.shards}}
        if self.target.replicas is not None:
            settings["index"]["number_of_replicas"] = self.target.replicas
        if self.target.dense == "knn":
            mappings["properties"]["embedding"] = self._vector_mapping(dim)
            settings = self._knn_settings(settings)
        if self.target.embed_pipeline is not None:
            self._check_ingest_pipeline(self.target.embed_pipeline)
            settings["index"]["default_pipeline"] = self.target.embed_pipeline
        self._call(self._create_index, name, settings, mappings)

    def _knn_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        return settings

    def _check_ingest_pipeline(self, name: str) -> None:
        """embed=cluster: the ingest pipeline must exist before an index names it (else every
        document would be refused, one by one, with the same error)."""
        try:
            self.client.transport.perform_request("GET", f"/_ingest/pipeline/{name}")
        except Exception:  # noqa: BLE001 -- 404 and every connection error alike
            raise BackendError(
                f"{self.target.display}?embed=cluster: the cluster has no ingest pipeline "
                f"{name!r}; install it first with `rex-search opensearch install-pipeline "
                f"--embed --service URL` (name it with --name; embed_pipeline=NAME-embed)"
            ) from None

    def bulk(self, operations: list[Operation]) -> list[Failure]:
        """Send (action, source) pairs in chunks with retries; returns (id, reason) failures."""
        return streaming_bulk(self._bulk_request, operations, self.chunk_size,
                              self.max_retries, self.backoff, self.max_backoff,
                              self._connection_errors(), self._sleep, self._jitter)

    # -- writes ---------------------------------------------------------------------------
    @property
    def embeds_documents(self) -> bool:
        return self.target.embed_pipeline is not None

    def upsert(self, products: Sequence[Product], vectors: np.ndarray) -> list[tuple[str, str]]:
        """Bulk-index the products; with ``embed=cluster`` without vectors: the index's
        default ingest pipeline embeds each document's ``embed_text``."""
        stock = {a: (i.in_stock, i.quantity) for a, i in
                 self.get([p.parent_asin for p in products], index=self.write_index).items()}
        send_vectors = self.local is None and not self.embeds_documents
        sources = [source_of(p, v if send_vectors else None,
                             stock.get(p.parent_asin, (None, None)))
                   for p, v in zip(products, vectors, strict=True)]
        if self.local is not None:
            for source in sources:
                self._unconfirmed[source["parent_asin"]] = source["content_hash"]
                source["content_hash"] = PENDING_HASH
        operations: list[Operation] = [
            ({"index": {"_index": self.write_index, "_id": p.parent_asin}}, source)
            for p, source in zip(products, sources, strict=True)]
        failures = self.bulk(operations)
        if self.local is not None:
            failed = {asin for asin, _ in failures}
            keep = [i for i, p in enumerate(products) if p.parent_asin not in failed]
            ids = np.array([doc_id_of(products[i].parent_asin) for i in keep], dtype=np.int64)
            self.local.upsert(ids, vectors[keep])
            for asin in failed:
                self._unconfirmed.pop(asin, None)
        return failures

    def commit(self) -> None:
        if self.local is not None:
            self.local.save()
            self._confirm_hashes()
        self._read(self._refresh, self.write_index)
        self._generation += 1

    def _confirm_hashes(self) -> None:
        """After the vectors are on disk: the documents' real content hashes."""
        if not self._unconfirmed:
            return
        failures = self.bulk([({"update": {"_index": self.write_index, "_id": asin}},
                               {"doc": {"content_hash": digest}})
                              for asin, digest in self._unconfirmed.items()])
        if failures:  # left pending: the next run re-embeds them, nothing is lost
            logger.warning("could not confirm %d content hash(es): %s", len(failures),
                           failures[:3])
        self._unconfirmed = {}

    @property
    def location(self) -> str:
        return self.target.display

    @property
    def local_dir(self) -> None:
        return None

    def record_catalog(self, entry: dict[str, object]) -> None:
        """Catalog fingerprints stay with the indexer's log: a cluster index's metadata is
        shared by every writer, and rewriting its mapping for each run is not worth it."""

    def finalize(self) -> None:
        """After a full re-index: point the alias at the new index in one atomic step."""
        if self.write_index == self.alias:
            return
        self.commit()
        if self._old_indices:
            self._call(self._swap_alias, self._old_indices, self.write_index)
            for old in self._old_indices:
                self._call(self._delete_index, old)
            if self.local is not None:
                folder = self.local.folder.parent
                self.local.move_to(folder / f"{self.alias}.vectors")
                # An older rex-search's single file for the alias now describes the old index.
                (folder / f"{self.alias}.faiss").unlink(missing_ok=True)
            self._old_indices = []
        self.write_index = self.alias

    def delete(self, ids: Sequence[str]) -> int:
        existing = self.get(list(ids))
        operations: list[Operation] = [
            ({"delete": {"_index": self.write_index, "_id": i}}, None) for i in existing]
        # A 404 means already gone, as asked; anything else leaves the product there.
        failures = [f for f in self.bulk(operations) if not f[1].startswith("404")]
        failed = {asin for asin, _ in failures}
        if self.local is not None:
            self.local.remove(np.array([doc_id_of(i) for i in existing if i not in failed],
                                       dtype=np.int64))
        self.commit()
        if failures:  # the others are deleted; these are still there
            raise BulkError(failures)
        return len(existing)

    def update_inventory(self, records: Sequence[StockRecord]) -> list[str]:
        priced = self.get([r.parent_asin for r in records if r.price is not None])
        operations: list[Operation] = []
        for r in records:
            doc: dict[str, Any] = {"in_stock": r.in_stock, "quantity": r.quantity,
                                   "stock": stock_field(r.in_stock, r.quantity)}
            if r.parent_asin in priced and r.price is not None:
                product = Product.from_dict({**priced[r.parent_asin].product.to_dict(),
                                             "price": r.price})
                doc.update(price=r.price, product=json.dumps(product.to_dict()))
            operations.append(({"update": {"_index": self.write_index, "_id": r.parent_asin}},
                               {"doc": doc}))
        failures = self.bulk(operations)
        self.commit()
        unknown = [asin for asin, reason in failures if reason.startswith("404")]
        others = [f for f in failures if not f[1].startswith("404")]
        if others:  # the others are updated
            raise BulkError(others)
        return unknown

    # -- reads ----------------------------------------------------------------------------
    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        docs = self._read(self._mget, self.write_index, list(ids), ["content_hash"]) if ids else []
        return {d["_id"]: d["_source"]["content_hash"] for d in docs if d.get("found")}

    def get(self, ids: Sequence[str], index: str | None = None) -> dict[str, IndexedProduct]:
        if not ids:
            return {}
        docs = self._read(self._mget, index or self.alias, list(ids),
                          ["product", "in_stock", "quantity"])
        return {d["_id"]: IndexedProduct(Product.from_dict(json.loads(d["_source"]["product"])),
                                         d["_source"].get("in_stock"),
                                         d["_source"].get("quantity"))
                for d in docs if d.get("found")}

    def products(self, limit: int) -> list[Product]:
        # one page: a search's window (index.max_result_window) is 10,000 by default
        body = {"size": max(0, min(limit, 10_000)), "query": {"match_all": {}},
                "_source": ["product"]}
        hits = self._search_alias(body)["hits"]["hits"]
        return [Product.from_dict(json.loads(h["_source"]["product"])) for h in hits]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if self.local is not None:
            out = {i: self.local.reconstruct(doc_id_of(i)) for i in ids}
            return {i: v for i, v in out.items() if v is not None}
        docs = self._read(self._mget, self.alias, list(ids), ["embedding"]) if ids else []
        return {d["_id"]: np.asarray(d["_source"]["embedding"], dtype=np.float32)
                for d in docs if d.get("found") and "embedding" in d["_source"]}

    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[ScoredId]:
        if not query.strip() or k <= 0:
            return []
        hits = self._search_alias(bm25_body(query, k, filters))
        return [ScoredId(h["_id"], float(h["_score"])) for h in hits["hits"]["hits"]]

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredId]:
        if k <= 0:
            return []
        if self.local is None:
            body = self._knn_body([float(x) for x in vector], k, filters)
            hits = self._search_alias(body)
            return [ScoredId(h["_id"], self._cosine(float(h["_score"])))
                    for h in hits["hits"]["hits"]]
        return self._local_knn(vector, k, filters)

    def _search_alias(self, body: dict[str, Any]) -> dict[str, Any]:
        """A search through the alias: retried on another node when one is down, and a
        partial answer (shards that did not answer: a node died and no copy took over yet)
        is noted for `retrieval_warning` instead of passing as complete."""
        answer = self._read(self._search, self.alias, body)
        shards = answer.get("_shards", {})
        # Shards without any copy count in ``total`` and ``failed`` but not in ``failures``.
        missed = max(int(shards.get("failed", 0)), int(shards.get("total", 0)) -
                     int(shards.get("successful", 0)) - int(shards.get("skipped", 0)))
        if missed:
            reasons = sorted({str(f.get("reason", {}).get("type", "unknown"))
                              for f in shards.get("failures", [])}) or ["no copy assigned"]
            self._partial.warning = (
                f"{self.target.display}: {missed} of {shards.get('total')} shards did not "
                f"answer ({', '.join(reasons)}); results may be incomplete until the "
                "cluster recovers (check `rex-search info`)")
        return answer

    def retrieval_warning(self) -> str | None:
        warning = getattr(self._partial, "warning", None)
        self._partial.warning = None
        return warning

    def embed_query(self, text: str) -> np.ndarray | None:
        """``embed=cluster``: the cluster embeds the query (ml-commons ``_predict`` on the
        ``embed-query`` model `install-pipeline --embed` registered), so queries and documents
        are embedded where the index says. None where that model is not installed."""
        if self.target.embed_pipeline is None:
            return None
        if self._query_model is None:
            self._query_model = self._find_query_model()
        if self._query_model is None:
            return None
        try:
            return self._predict(self._query_model, text)
        except BackendError:  # a reinstall replaced the model: look it up again, once
            self._query_model = self._find_query_model()
            if self._query_model is None:
                raise
            return self._predict(self._query_model, text)

    def _predict(self, model: str, text: str) -> np.ndarray:
        path, body = f"/_plugins/_ml/models/{model}/_predict", {"parameters": {"texts": [text]}}
        answer = self._read(lambda: self.client.transport.perform_request("POST", path,
                                                                          body=body))
        try:
            return np.asarray(answer["inference_results"][0]["output"][0]["data"],
                              dtype=np.float32)
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{self.target.display}: the query model {model} answered "
                               f"without an embedding: {str(answer)[:200]}") from None

    def _find_query_model(self) -> str | None:
        """The ``embed-query`` model of the pipeline whose ingest pipeline the index embeds
        with (``NAME-embed`` -> NAME), found by the name install-pipeline gave it."""
        ingest = self.target.embed_pipeline or ""
        if not ingest.endswith(EMBED_SUFFIX):
            return None
        name = ml_names(ingest[:-len(EMBED_SUFFIX)], "embed-query")[1]
        try:
            found = self._read(lambda: self.client.transport.perform_request(
                "POST", "/_plugins/_ml/models/_search", body=ml_search_body(name)))
        except BackendError:  # no model index: nothing installed
            return None
        hits = found.get("hits", {}).get("hits", [])
        return str(hits[0]["_id"]) if hits else None

    def _local_knn(self, vector: np.ndarray, k: int, filters: Filters | None) -> list[ScoredId]:
        """faiss-local: over-fetch from the local file, then let the cluster map ids to products
        and apply the filters; widen until k pass or the file is exhausted."""
        assert self.local is not None
        fetch = k if filters is None or filters.is_empty() else 4 * k
        while True:
            found = self.local.search(vector, fetch)
            scores = dict(found)
            keep, drop = filter_clauses(filters)
            body = {"size": len(found), "_source": ["parent_asin", "doc_id"], "query": {"bool": {
                "filter": [{"terms": {"doc_id": list(scores)}}, *keep], "must_not": drop}}}
            hits = self._search_alias(body)["hits"]["hits"] if found else []
            out = sorted((ScoredId(h["_id"], scores[int(h["_source"]["doc_id"])]) for h in hits),
                         key=lambda s: (-s.score, s.parent_asin))
            if len(out) >= k or fetch >= self.local.ntotal:
                return out[:k]
            fetch *= 4

    def count(self) -> int:
        return int(self._read(self._count, self.alias))

    def brands(self) -> dict[str, str]:
        body = {"size": 0, "aggs": {"brands": {"terms": {"field": "brand.raw", "size": 65000}}}}
        buckets = self._search_alias(body)["aggregations"]["brands"]["buckets"]
        out: dict[str, str] = {}
        for bucket in sorted(buckets, key=lambda b: b["doc_count"]):
            if brand_key(bucket["key"]):
                out[brand_key(bucket["key"])] = bucket["key"]
        return out

    def generation(self) -> str:
        return str(self._generation)

    def info(self) -> dict[str, object]:
        return {"backend": self.engine, "target": self.target.display,
                "indices": self._alias_indices(), "embedding_model": self.model_id,
                "dim": self.dim, "dense": self.target.dense, "document_count": self.count(),
                "cluster": self.health()}

    def health(self) -> dict[str, object]:
        """The health of the alias's indexes, and in words what a non-green status means."""
        raw = dict(self._read(lambda: self.client.cluster.health(index=self.alias)))
        out: dict[str, object] = {key: raw.get(key) for key in (
            "status", "number_of_nodes", "number_of_data_nodes", "active_shards",
            "unassigned_shards", "relocating_shards", "initializing_shards")}
        out["meaning"] = {
            "green": "every shard and replica is assigned",
            "yellow": ("degraded: every shard answers, but some replicas are unassigned (a node "
                       "is down or missing); one more failure can lose shards"),
            "red": ("degraded: some primary shards are unassigned; searches miss their "
                    "documents and writes to them fail until their node returns"),
        }.get(str(raw.get("status")), "unknown")
        return out

    def close(self) -> None:
        if self.local is not None:
            self.local.save()
