"""The default backend: everything in one local directory, no server.

Layout of an index directory (each store in ``backends/stores/``):
    manifest.json   schema version, embedding model and dimension, counts, catalog fingerprints
    products.sqlite records: products (JSON), content hashes and inventory; the source of truth
    bm25/           tantivy BM25 index (title boosted; brand/category/price/stock filter fields)
    vectors/        exact inner-product vectors in append-only segments (a commit adds a delta)
    vectors.hnsw    optional HNSW copy for large catalogs, rebuilt by `finalize`
    write.lock, commit.lock, manifest.lock   one writer; readers never load a half-done commit

Every product gets a deterministic 63-bit `doc_id` derived from its parent_asin, so every write
is an upsert by that id in all three stores. A commit writes BM25, then vectors, then records:
the records say what is done, so a run that dies mid-way redoes only the uncommitted products,
and redoing them replaces rather than duplicates. (An index written before vector segments has
one ``vectors.faiss`` file; it is read as the first segment and replaced at a compaction.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import faiss
import numpy as np

from rex_search.backends.base import Filters, IndexedProduct, ScoredId
from rex_search.backends.stores.bm25 import Bm25Store
from rex_search.backends.stores.locks import WriteLock, committing, reading_a_snapshot
from rex_search.backends.stores.records import RecordStore
from rex_search.backends.stores.vectors import Compaction, VectorStore
from rex_search.catalog.schema import Product, StockRecord, embedding_text
from rex_search.errors import BackendError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:  # only its type: the embedder lives above the backends
    from rex_search.indexer.embed import Encoder

SCHEMA_VERSION = 1


def doc_id_of(parent_asin: str) -> int:
    """Deterministic positive int63 id (faiss and tantivy need integers)."""
    digest = hashlib.blake2b(parent_asin.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


class EmbeddedBackend:
    """BM25, vector and record stores in one directory (see module docstring)."""

    def __init__(self, path: str | Path, dim: int | None = None, model_id: str | None = None,
                 vector_index: str = "flat", repair: bool = False,
                 compaction: Compaction = "auto", set_aside_damaged: bool = False) -> None:
        """``repair``: open a damaged index (lost or short stores) so :meth:`repair` can fix it;
        ``set_aside_damaged``: also rename unreadable vector segments to ``*.damaged`` (their
        products are then re-embedded by :meth:`repair`) instead of refusing to open.
        ``compaction``: see :class:`VectorStore` (``always`` only to benchmark the old way)."""
        self.path = Path(path)
        if vector_index not in ("flat", "hnsw"):
            raise BackendError(f"vector_index must be 'flat' or 'hnsw', got {vector_index!r}")
        self._manifest_path = self.path / "manifest.json"
        manifest = self._read_manifest()
        if manifest is None:
            if dim is None or model_id is None:
                raise BackendError(
                    f"no index at {self.path}: build one first with `rex-search index CATALOG "
                    f"--index {self.path}`"
                )
            self.path.mkdir(parents=True, exist_ok=True)
            manifest = {"schema_version": SCHEMA_VERSION, "embedding_model": model_id,
                        "dim": dim, "vector_index": vector_index, "catalogs": []}
        self._check_manifest(manifest, dim, model_id)
        self.manifest = manifest
        self.dim = int(manifest["dim"])  # type: ignore[call-overload]  # checked just above
        self.model_id = str(manifest["embedding_model"])
        self._lock = threading.RLock()
        hint = f": repair it with `rex-search index --repair --index {self.path}`"
        created = not (self.path / "products.sqlite").exists()
        with reading_a_snapshot(self.path):  # all stores from the same commit
            self._records = RecordStore(self.path / "products.sqlite", create=created)
            self._bm25 = Bm25Store(self.path / "bm25", create=created or repair, hint=hint)
            self._vectors = VectorStore(self.path / "vectors", self.dim,
                                        legacy_file=self.path / "vectors.faiss",
                                        compaction=compaction, repair_hint=hint,
                                        repair=set_aside_damaged)
            self._check_vectors_kept()
            self._hnsw = self._load_hnsw()
            self._manifest_stamp = self._stamp()
            problems = self.check_counts()
        self._write_lock: WriteLock | None = None
        self._dirty = False
        self._generation = 0
        if problems and not repair:
            raise BackendError(f"index {self.path} is damaged: {'; '.join(problems)}. "
                               f"Repair it with `rex-search index --repair --index {self.path}`")

    # -- manifest -------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, object] | None:
        if not self._manifest_path.exists():
            return None
        try:
            manifest: dict[str, object] = json.loads(self._manifest_path.read_text())
            return manifest
        except json.JSONDecodeError as exc:
            raise BackendError(f"{self._manifest_path} is corrupt: {exc}") from exc

    def _check_manifest(self, manifest: dict[str, object], dim: int | None,
                        model_id: str | None) -> None:
        if not isinstance(manifest, dict) or not isinstance(manifest.get("dim"), int) \
                or not isinstance(manifest.get("embedding_model"), str) \
                or not isinstance(manifest.get("catalogs", []), list):
            raise BackendError(f"{self._manifest_path} is damaged (needs an integer dim, a "
                               "model name and a catalog list): re-index into a new --index")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise BackendError(
                f"index {self.path} has schema version {manifest.get('schema_version')}, this "
                f"rex-search reads version {SCHEMA_VERSION}: re-index into a new directory"
            )
        if model_id is not None and manifest["embedding_model"] != model_id:
            raise BackendError(
                f"index {self.path} was embedded with {manifest['embedding_model']!r}, not "
                f"{model_id!r}: vectors from different models cannot be mixed; use a new --index"
            )
        if dim is not None and manifest["dim"] != dim:
            raise BackendError(f"index {self.path} has dimension {manifest['dim']}, not {dim}")

    @property
    def damaged_segments(self) -> list[Path]:
        """Vector segments set aside as unreadable when opened with ``set_aside_damaged``."""
        return list(self._vectors.set_aside)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def local_dir(self) -> Path:
        return self.path

    def record_catalog(self, entry: dict[str, object]) -> None:
        """Remember a catalog that was indexed (fingerprint and counts) in the manifest."""
        def add(manifest: dict[str, object]) -> None:
            known: list[dict[str, object]] = manifest.get("catalogs") or []  # type: ignore[assignment]
            catalogs = [c for c in known if c.get("sha256") != entry.get("sha256")]
            manifest["catalogs"] = [*catalogs, entry]

        with self._lock:
            self._write_manifest(add)

    def _write_manifest(self, change: Callable[[dict[str, object]], None] | None = None
                        ) -> None:
        """Read-modify-write of the manifest under ``manifest.lock``: the copy read when this
        backend opened may be stale (another run may have recorded its catalog since), so the
        file is re-read under the lock and only this run's ``change`` is applied to it."""
        import fcntl

        with open(self.path / "manifest.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # held for milliseconds: blocking is fine
            current = self._read_manifest() or self.manifest
            if change is not None:
                change(current)
            current["document_count"] = self.count()
            # What readers compare: updated_at has one-second steps, commits come faster.
            current["commit_seq"] = int(current.get("commit_seq", 0)) + 1  # type: ignore[call-overload]
            current["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            _atomic_write(self._manifest_path, json.dumps(current, indent=2).encode())
            self.manifest = current

    # -- consistency ------------------------------------------------------------------------
    def _check_vectors_kept(self) -> None:
        """An index with committed products but no vector files is damaged, not new."""
        self._vectors_lost = not self._vectors.on_disk and self._records.count() > 0

    def check_counts(self) -> list[str]:
        """Problems found by comparing the three stores' counts (cheap; done at every open).

        A store may hold *more* than the records after a run was killed mid-commit (the next
        run redoes those products); holding fewer means data is missing."""
        stored = self._records.count()
        problems = []
        if self._vectors_lost:
            problems.append(f"vectors/ is missing but {stored} products are recorded")
        elif self._vectors.ntotal < stored:
            problems.append(f"vectors/ holds {self._vectors.ntotal} vectors for {stored} "
                            "recorded products")
        bm25_docs = self._bm25.num_docs
        if bm25_docs < stored:
            problems.append(f"bm25/ holds {bm25_docs} documents for {stored} recorded products")
        return problems

    def verify(self) -> dict[str, list[str]]:
        """Ids recorded but missing from a store, ids a store has in excess, and damage sqlite
        finds in the records themselves (``damaged_records``: not repairable from them)."""
        with self._lock:
            damaged = self._records.damage()
            if damaged:
                return {"damaged_records": damaged}
            recorded = self._records.all_names()
            vector_ids = self._vectors.ids()
            bm25_ids = {int(i) for i in self._bm25.matching_ids()}
        return {"missing_vectors": sorted(recorded[i] for i in set(recorded) - vector_ids),
                "missing_bm25": sorted(recorded[i] for i in set(recorded) - bm25_ids),
                "extra_vectors": sorted(str(i) for i in vector_ids - set(recorded)),
                "extra_bm25": sorted(str(i) for i in bm25_ids - set(recorded))}

    def repair(self, embedder: Encoder) -> dict[str, int]:
        """Make the vector and BM25 stores match the records (the source of truth):
        re-embed and re-add what is missing, drop what no record has."""
        with self._lock:
            self._acquire_write_lock()
            self._vectors_lost = False
            found = self.verify()
            if "damaged_records" in found:
                raise BackendError(f"the records of {self.path} (products.sqlite, the source of "
                                   "truth) are damaged, so nothing can be repaired from them: "
                                   "re-index the catalog into a new --index")
            missing = sorted(set(found["missing_vectors"]) | set(found["missing_bm25"]))
            items = self.get(missing)
            for extra in found["extra_bm25"]:
                self._bm25.delete(int(extra))
            if found["extra_vectors"]:
                self._vectors.remove(np.array([int(i) for i in found["extra_vectors"]],
                                              dtype=np.int64))
            for start in range(0, len(missing), 256):
                chunk = [items[a] for a in missing[start:start + 256] if a in items]
                ids = np.array([doc_id_of(i.product.parent_asin) for i in chunk], dtype=np.int64)
                self._vectors.upsert(ids, embedder.encode([embedding_text(i.product)
                                                           for i in chunk]))
                for doc_id, item in zip(ids, chunk, strict=True):
                    self._bm25.put(int(doc_id), item.product,
                                   None if item.in_stock is None else int(item.in_stock))
            self._dirty = True
            self.commit()
            self.finalize()
            return {"reembedded": len(missing), "extra_removed": len(found["extra_vectors"])
                    + len(found["extra_bm25"])}

    def _stamp(self) -> int | None:
        try:
            return self._manifest_path.stat().st_mtime_ns
        except OSError:
            return None

    def _load_hnsw(self) -> faiss.Index | None:
        file = self.path / "vectors.hnsw"
        if self.manifest.get("vector_index") == "hnsw" and file.exists():
            return faiss.read_index(str(file))
        return None

    # -- writes ---------------------------------------------------------------------------
    @property
    def embeds_documents(self) -> bool:
        return False

    def upsert(self, products: Sequence[Product], vectors: np.ndarray) -> list[tuple[str, str]]:
        """Upsert by parent_asin; local writes either succeed or raise, so no per-item failures."""
        if len(products) != len(vectors):
            raise BackendError(f"{len(products)} products but {len(vectors)} vectors")
        if not products:
            return []
        ids = np.array([doc_id_of(p.parent_asin) for p in products], dtype=np.int64)
        with self._lock:
            self._acquire_write_lock()
            if self._vectors_lost:
                raise BackendError(f"index {self.path} has lost vectors/: repair it with "
                                   f"`rex-search index --repair --index {self.path}`")
            # Keep known stock in the BM25 filter field: one query for the batch, not per row.
            stock = self._records.stock([int(i) for i in ids])
            for doc_id, product in zip(ids, products, strict=True):
                self._bm25.put(int(doc_id), product, stock.get(int(doc_id)))
            self._vectors.upsert(ids, vectors)
            self._records.upsert(ids.tolist(), products)
            self._dirty = True
            return []

    def _acquire_write_lock(self) -> None:
        """One writer per index (a lock file held until close). Taken at the first write, after
        which the stores are re-read: another run may have committed since this one opened,
        and writing on a stale copy would drop its vectors."""
        if self._write_lock is not None:
            return
        self._write_lock = WriteLock.acquire(self.path)
        self._records.use_wal()
        self._vectors.reload()
        self._check_vectors_kept()
        self._bm25.reload()

    def commit(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            with committing(self.path):  # readers load before or after, never in between
                self._bm25.commit()
                self._vectors.save()
                self._records.commit()  # last: the records say what is durably done
                self._write_manifest()
            self._dirty = False
            self._generation += 1

    def generation(self) -> str:
        """What the index holds now, as a cache key; a reader first picks up what another
        process committed since (a served index sees `index` and `inventory update` runs)."""
        self.refresh()
        return f"{self.manifest.get('updated_at')}/{self._generation}"

    def refresh(self) -> bool:
        """Reload the stores when another process committed (the manifest, written last in
        every commit, changed on disk). A writer never reloads: it holds the newest state. A
        reload waits for no commit: while one is under way, or if loading fails, the previous
        state is kept and the reload is tried again at the next call."""
        with self._lock:
            if self._write_lock is not None or self._dirty:
                return False
            try:
                stamp = self._manifest_path.stat().st_mtime_ns
            except OSError:
                return False
            if stamp == self._manifest_stamp:
                return False
            try:
                with reading_a_snapshot(self.path, wait=False) as safe:
                    if not safe:  # a commit is under way: answer from the previous state
                        return False
                    manifest = self._read_manifest()
                    if manifest is None or _commit_of(manifest) == _commit_of(self.manifest):
                        self._manifest_stamp = stamp
                        return False
                    self._vectors.reload()
                    self._bm25.reload()
                    self._hnsw = self._load_hnsw()
            except (BackendError, OSError, RuntimeError, ValueError) as exc:
                logger.warning("index %s changed on disk but could not be reloaded yet (%s); "
                               "answering from the previous state", self.path, exc)
                return False
            self.manifest, self._manifest_stamp = manifest, stamp
            self._generation += 1
            return True

    def update_inventory(self, records: Sequence[StockRecord]) -> list[str]:
        """Update stock and price in the records and BM25 filter fields; vectors untouched."""
        with self._lock:
            self._acquire_write_lock()
            stored = self.get([r.parent_asin for r in records])
            unknown = [r.parent_asin for r in records if r.parent_asin not in stored]
            for record in records:
                item = stored.get(record.parent_asin)
                if item is None:
                    continue
                product = item.product
                if record.price is not None and record.price != product.price:
                    product = Product.from_dict({**product.to_dict(), "price": record.price})
                    self._records.set_product(product)
                self._records.set_stock(record.parent_asin, record.in_stock, record.quantity)
                self._bm25.put(doc_id_of(record.parent_asin), product, int(record.in_stock))
            self._dirty = True
            self.commit()
            return unknown

    def finalize(self) -> None:
        """After a run: rebuild the HNSW copy when the index uses one."""
        with self._lock:
            if self.manifest.get("vector_index") != "hnsw" or self._vectors.ntotal == 0:
                return
            ids, matrix = self._vectors.matrix()
            graph = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efSearch = 256
            hnsw = faiss.IndexIDMap2(graph)
            hnsw.add_with_ids(matrix, ids)
            tmp = self.path / f"vectors.hnsw.{os.getpid()}.tmp"
            faiss.write_index(hnsw, str(tmp))
            os.replace(tmp, self.path / "vectors.hnsw")
            self._hnsw = hnsw

    def delete(self, ids: Sequence[str]) -> int:
        doc_ids = [doc_id_of(i) for i in ids]
        with self._lock:
            self._acquire_write_lock()
            for doc_id in doc_ids:
                self._bm25.delete(doc_id)
            self._vectors.remove(np.array(doc_ids, dtype=np.int64))
            existing = self._records.delete(doc_ids)
            self._dirty = True
            self.commit()
            return existing

    # -- reads ----------------------------------------------------------------------------
    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return self._records.content_hashes(list(ids))

    def count(self) -> int:
        with self._lock:
            return self._records.count()

    def get(self, ids: Sequence[str]) -> dict[str, IndexedProduct]:
        with self._lock:
            return self._records.get(list(ids))

    def products(self, limit: int) -> list[Product]:
        with self._lock:
            return self._records.products(limit)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = {asin: self._vectors.reconstruct(doc_id_of(asin)) for asin in ids}
        return {asin: v for asin, v in found.items() if v is not None}

    def brands(self) -> dict[str, str]:
        """Known brands: brand_key -> most common display name (for query understanding)."""
        with self._lock:
            return self._records.brands()

    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[ScoredId]:
        return self._named(self._bm25.search(query, k, filters))

    def _named(self, hits: list[tuple[int, float]]) -> list[ScoredId]:
        """Hits as parent_asins; ids without a record (a killed run's leftovers) are dropped."""
        with self._lock:
            names = self._records.names([d for d, _ in hits])
        return [ScoredId(names[d], score) for d, score in hits if d in names]

    def embed_query(self, text: str) -> np.ndarray | None:
        return None

    def retrieval_warning(self) -> str | None:
        return None  # local stores answer whole or raise

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredId]:
        with self._lock:
            if filters is not None and not filters.is_empty():
                # Exact search over the allowed ids: the filter is applied inside faiss, so the
                # top-k is complete even when the filter is selective.
                return self._named(self._vectors.search(
                    vector, k, allowed=self._bm25.matching_ids(filters)))
            if self._hnsw is None:
                return self._named(self._vectors.search(vector, k))
            if self._hnsw.ntotal == 0 or k <= 0:
                return []
            query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
            scores, ids = self._hnsw.search(query, min(k, self._hnsw.ntotal))
        return self._named([(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True)
                            if i >= 0])

    def info(self) -> dict[str, object]:
        return {"backend": "embedded", "path": str(self.path), **self.manifest,
                "document_count": self.count()}

    def close(self) -> None:
        with self._lock:
            self.commit()
            self._records.close()
            if self._write_lock is not None:
                self._write_lock.release()
                self._write_lock = None


def _commit_of(manifest: dict[str, object]) -> tuple[object, object]:
    return manifest.get("commit_seq"), manifest.get("updated_at")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a per-process temporary file, flush it to disk, then rename it over
    ``path`` (a crash leaves the old file or the new one, never a torn one)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
