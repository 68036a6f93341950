"""The default backend: everything in one local directory, no server.

Layout of an index directory:
    manifest.json   schema version, embedding model and dimension, counts, catalog fingerprints
    products.sqlite products (JSON), content hashes and inventory; the source of truth
    bm25/           tantivy index (title boosted; brand/category/price/stock filter fields)
    vectors.faiss   exact inner-product index (IndexIDMap2 over IndexFlatIP)
    vectors.hnsw    optional HNSW copy for large catalogs, rebuilt by `finalize`

Every product gets a deterministic 63-bit `doc_id` derived from its parent_asin, so every write
is an upsert by that id in all three stores. A commit writes tantivy, then faiss, then sqlite:
sqlite is the record of what is done, so a run that dies mid-way redoes only the uncommitted
products, and redoing them replaces rather than duplicates.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import tantivy

from rex_search.backends.base import Filters, IndexedProduct, ScoredId, StockRecord
from rex_search.catalog.schema import Product, brand_key, embedding_text
from rex_search.errors import BackendError

SCHEMA_VERSION = 1
TEXT_FIELDS = ("title", "brand", "categories", "features", "description")
FIELD_BOOSTS = {"title": 3.0, "brand": 1.5, "categories": 1.0, "features": 0.7, "description": 0.5}
# Word tokens only, split as tantivy's default tokenizer splits ("men's" -> men, s): an
# apostrophe or dot inside a token is query syntax to tantivy's parser.
_TOKEN = re.compile(r"[^\W_]+")
MAX_QUERY_TOKENS = 64


def doc_id_of(parent_asin: str) -> int:
    """Deterministic positive int63 id (faiss and tantivy need integers)."""
    digest = hashlib.blake2b(parent_asin.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def _bm25_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("doc_id", stored=True, indexed=True, fast=True)
    for name in TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name="en_stem")
    builder.add_text_field("brand_key", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("category_key", tokenizer_name="raw", index_option="basic")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_integer_field("in_stock", indexed=True, fast=True)
    return builder.build()


class EmbeddedBackend:
    """tantivy BM25 + faiss vectors + sqlite records in one directory (see module docstring)."""

    def __init__(self, path: str | Path, dim: int | None = None, model_id: str | None = None,
                 vector_index: str = "flat", repair: bool = False) -> None:
        """``repair``: open a damaged index (lost or short stores) so :meth:`repair` can fix it."""
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
        self.dim = int(manifest["dim"])
        self.model_id = str(manifest["embedding_model"])
        self._lock = threading.RLock()
        created = not (self.path / "products.sqlite").exists()
        self._db = _open_sqlite(self.path / "products.sqlite", create=created)
        if created or repair:
            (self.path / "bm25").mkdir(exist_ok=True)
        self._index = _open_bm25(self.path)
        self._writer: tantivy.IndexWriter | None = None
        self._write_lock: WriteLock | None = None
        self._vectors = self._load_vectors(required=not created)
        self._hnsw = self._load_hnsw()
        self._dirty = False
        self._generation = 0
        problems = self.check_counts()
        if problems and not repair:
            raise BackendError(f"index {self.path} is damaged: {'; '.join(problems)}. "
                               f"Repair it with `rex-search index --repair --index {self.path}`")

    # -- manifest -------------------------------------------------------------------------
    def _read_manifest(self) -> dict[str, object] | None:
        if not self._manifest_path.exists():
            return None
        try:
            return json.loads(self._manifest_path.read_text())
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

    def record_catalog(self, entry: dict[str, object]) -> None:
        """Remember a catalog that was indexed (fingerprint and counts) in the manifest."""
        with self._lock:
            catalogs = [c for c in self.manifest["catalogs"]  # type: ignore[union-attr]
                        if c.get("sha256") != entry.get("sha256")]
            self.manifest["catalogs"] = [*catalogs, entry]
            self._write_manifest()

    def _write_manifest(self) -> None:
        self.manifest["document_count"] = self.count()
        self.manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        _atomic_write(self._manifest_path, json.dumps(self.manifest, indent=2).encode())

    # -- vectors --------------------------------------------------------------------------
    def _load_vectors(self, required: bool = True) -> faiss.Index:
        """The vector store; an index with products but no vector file is damaged, not new."""
        file = self.path / "vectors.faiss"
        if not file.exists():
            if required and self._stored_count() > 0:
                return _MISSING_VECTORS
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        try:
            index = faiss.read_index(str(file))
        except RuntimeError:
            raise BackendError(f"{file} is unreadable (truncated or corrupt): repair with "
                               f"`rex-search index --repair --index {self.path}`") from None
        if index.d != self.dim:
            raise BackendError(f"{file} holds {index.d}-dimensional vectors, the manifest says "
                               f"{self.dim}: repair with `rex-search index --repair --index "
                               f"{self.path}`")
        return index

    def _stored_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM products").fetchone()[0])

    # -- consistency ------------------------------------------------------------------------
    def check_counts(self) -> list[str]:
        """Problems found by comparing the three stores' counts (cheap; done at every open).

        A store may hold *more* than sqlite after a run was killed mid-commit (the next run
        redoes those products); holding fewer means data is missing."""
        stored = self._stored_count()
        problems = []
        if self._vectors is _MISSING_VECTORS:
            problems.append(f"vectors.faiss is missing but {stored} products are recorded")
        elif self._vectors.ntotal < stored:
            problems.append(f"vectors.faiss holds {self._vectors.ntotal} vectors for {stored} "
                            "recorded products")
        bm25_docs = self._index.searcher().num_docs
        if bm25_docs < stored:
            problems.append(f"bm25/ holds {bm25_docs} documents for {stored} recorded products")
        return problems

    def verify(self) -> dict[str, list[str]]:
        """Ids recorded in sqlite but missing from a store, and ids a store has in excess."""
        with self._lock:
            recorded = dict(self._db.execute("SELECT doc_id, parent_asin FROM products"))
            vector_ids = set() if self._vectors is _MISSING_VECTORS else set(
                int(i) for i in faiss.vector_to_array(self._vectors.id_map))
            searcher = self._index.searcher()
            hits = searcher.search(tantivy.Query.all_query(), limit=max(1, searcher.num_docs),
                                   count=False).hits
            bm25_ids = set(searcher.fast_field_values("doc_id", [a for _, a in hits]))
        return {"missing_vectors": sorted(recorded[i] for i in set(recorded) - vector_ids),
                "missing_bm25": sorted(recorded[i] for i in set(recorded) - bm25_ids),
                "extra_vectors": sorted(str(i) for i in vector_ids - set(recorded)),
                "extra_bm25": sorted(str(i) for i in bm25_ids - set(recorded))}

    def repair(self, embedder) -> dict[str, int]:
        """Make the vector and BM25 stores match the sqlite records (the source of truth):
        re-embed and re-add what is missing, drop what no record has."""
        with self._lock:
            self._acquire_write_lock()
            if self._vectors is _MISSING_VECTORS:
                self._vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            found = self.verify()
            missing = sorted(set(found["missing_vectors"]) | set(found["missing_bm25"]))
            items = self.get(missing)
            writer = self._get_writer()
            for extra in found["extra_bm25"]:
                writer.delete_documents_by_term("doc_id", int(extra))
            if found["extra_vectors"]:
                self._vectors.remove_ids(np.array([int(i) for i in found["extra_vectors"]],
                                                  dtype=np.int64))
            for start in range(0, len(missing), 256):
                chunk = [items[a] for a in missing[start:start + 256] if a in items]
                ids = np.array([doc_id_of(i.product.parent_asin) for i in chunk], dtype=np.int64)
                vectors = embedder.encode([embedding_text(i.product) for i in chunk])
                self._vectors.remove_ids(ids)
                self._vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
                for doc_id, item in zip(ids, chunk, strict=True):
                    writer.delete_documents_by_term("doc_id", int(doc_id))
                    writer.add_document(_bm25_document(
                        int(doc_id), item.product,
                        None if item.in_stock is None else int(item.in_stock)))
            self._dirty = True
            self.commit()
            self.finalize()
            return {"reembedded": len(missing), "extra_removed": len(found["extra_vectors"])
                    + len(found["extra_bm25"])}

    def _load_hnsw(self) -> faiss.Index | None:
        file = self.path / "vectors.hnsw"
        if self.manifest.get("vector_index") == "hnsw" and file.exists():
            return faiss.read_index(str(file))
        return None

    # -- writes ---------------------------------------------------------------------------
    def upsert(self, products: Sequence[Product], vectors: np.ndarray) -> list[tuple[str, str]]:
        """Upsert by parent_asin; local writes either succeed or raise, so no per-item failures."""
        if len(products) != len(vectors):
            raise BackendError(f"{len(products)} products but {len(vectors)} vectors")
        if not products:
            return []
        ids = np.array([doc_id_of(p.parent_asin) for p in products], dtype=np.int64)
        with self._lock:
            writer = self._get_writer()
            if self._vectors is _MISSING_VECTORS:
                raise BackendError(f"index {self.path} has lost vectors.faiss: repair it with "
                                   f"`rex-search index --repair --index {self.path}`")
            # Keep known stock in the BM25 filter field: one query for the batch, not per row.
            stock = dict(self._select("SELECT doc_id, in_stock FROM products WHERE doc_id IN "
                                      "({})", [int(i) for i in ids]))
            for doc_id, product in zip(ids, products, strict=True):
                writer.delete_documents_by_term("doc_id", int(doc_id))
                writer.add_document(_bm25_document(int(doc_id), product,
                                                   stock.get(int(doc_id))))
            self._vectors.remove_ids(ids)
            self._vectors.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
            self._db.executemany(
                "INSERT INTO products (doc_id, parent_asin, content_hash, brand_key, brand, "
                "product) VALUES (?,?,?,?,?,?) ON CONFLICT(doc_id) DO UPDATE SET "
                "content_hash=excluded.content_hash, brand_key=excluded.brand_key, "
                "brand=excluded.brand, product=excluded.product",
                [(int(i), p.parent_asin, p.content_hash(), brand_key(p.brand), p.brand,
                  json.dumps(p.to_dict(), ensure_ascii=False)) for i, p in zip(ids, products,
                                                                               strict=True)],
            )
            self._dirty = True
            return []

    def _acquire_write_lock(self) -> None:
        """One writer per index (a lock file held until close). Taken at the first write, after
        which the vectors are re-read: another run may have committed since this one opened,
        and writing back a stale copy would drop its vectors."""
        if self._write_lock is not None:
            return
        self._write_lock = WriteLock.acquire(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")  # indexes made before WAL switch now
        if self._vectors is not _MISSING_VECTORS:
            self._vectors = self._load_vectors()
        self._index.reload()

    def _get_writer(self) -> tantivy.IndexWriter:
        self._acquire_write_lock()
        if self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=64_000_000, num_threads=1)
            except ValueError as exc:  # tantivy's own lock: a writer outside rex-search
                raise BackendError(f"index {self.path} is being written by another process "
                                   f"({exc})") from None
        return self._writer

    def commit(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            if self._writer is not None:
                self._writer.commit()
                self._writer.wait_merging_threads()
                self._writer = None
            _atomic_write_index(self._vectors, self.path / "vectors.faiss")
            self._db.commit()  # last: sqlite records what is durably done
            self._index.reload()
            self._write_manifest()
            self._dirty = False
            self._generation += 1

    def generation(self) -> str:
        return f"{self.manifest.get('updated_at')}/{self._generation}"

    def update_inventory(self, records: Sequence[StockRecord]) -> list[str]:
        """Update stock and price in sqlite and the BM25 filter fields; vectors are untouched."""
        with self._lock:
            stored = self.get([r.parent_asin for r in records])
            unknown = [r.parent_asin for r in records if r.parent_asin not in stored]
            writer = self._get_writer()
            for record in records:
                item = stored.get(record.parent_asin)
                if item is None:
                    continue
                product = item.product
                if record.price is not None and record.price != product.price:
                    product = Product.from_dict({**product.to_dict(), "price": record.price})
                    self._db.execute(
                        "UPDATE products SET product=? WHERE parent_asin=?",
                        (json.dumps(product.to_dict(), ensure_ascii=False), record.parent_asin))
                self._db.execute(
                    "UPDATE products SET in_stock=?, quantity=? WHERE parent_asin=?",
                    (int(record.in_stock), record.quantity, record.parent_asin))
                doc_id = doc_id_of(record.parent_asin)
                writer.delete_documents_by_term("doc_id", doc_id)
                writer.add_document(_bm25_document(doc_id, product, int(record.in_stock)))
            self._dirty = True
            self.commit()
            return unknown

    def finalize(self) -> None:
        """After a run: rebuild the HNSW copy when the index uses one."""
        with self._lock:
            if self.manifest.get("vector_index") != "hnsw" or self._vectors.ntotal == 0:
                return
            n = self._vectors.ntotal
            ids = faiss.vector_to_array(self._vectors.id_map).astype(np.int64)
            flat = faiss.downcast_index(self._vectors.index)
            matrix = faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(n, self.dim).copy()
            graph = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efSearch = 256
            hnsw = faiss.IndexIDMap2(graph)
            hnsw.add_with_ids(matrix, ids)
            _atomic_write_index(hnsw, self.path / "vectors.hnsw")
            self._hnsw = hnsw

    def delete(self, ids: Sequence[str]) -> int:
        doc_ids = [doc_id_of(i) for i in ids]
        with self._lock:
            existing = self._db.execute(
                f"SELECT COUNT(*) FROM products WHERE doc_id IN ({','.join('?' * len(doc_ids))})",
                doc_ids,
            ).fetchone()[0] if doc_ids else 0
            writer = self._get_writer()
            for doc_id in doc_ids:
                writer.delete_documents_by_term("doc_id", doc_id)
            self._vectors.remove_ids(np.array(doc_ids, dtype=np.int64))
            self._db.executemany("DELETE FROM products WHERE doc_id=?", [(d,) for d in doc_ids])
            self._dirty = True
            self.commit()
            return int(existing)

    # -- reads ----------------------------------------------------------------------------
    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        with self._lock:
            rows = self._select("SELECT parent_asin, content_hash FROM products WHERE "
                                "parent_asin IN ({})", list(ids))
        return dict(rows)

    def _select(self, sql: str, values: list[object]) -> list[tuple]:
        out: list[tuple] = []
        for start in range(0, len(values), 900):  # sqlite's bound-parameter limit
            chunk = values[start:start + 900]
            out += self._db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    def count(self) -> int:
        with self._lock:
            return self._stored_count()

    def get(self, ids: Sequence[str]) -> dict[str, IndexedProduct]:
        with self._lock:
            rows = self._select("SELECT parent_asin, product, in_stock, quantity FROM products "
                                "WHERE parent_asin IN ({})", list(ids))
        return {
            asin: IndexedProduct(Product.from_dict(json.loads(blob)),
                                 None if stock is None else bool(stock), quantity)
            for asin, blob, stock, quantity in rows
        }

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for asin in ids:
                try:
                    out[asin] = self._vectors.reconstruct(doc_id_of(asin))
                except RuntimeError:
                    continue
        return out

    def brands(self) -> dict[str, str]:
        """Known brands: brand_key -> most common display name (for query understanding)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT brand_key, brand, COUNT(*) AS n FROM products WHERE brand_key != '' "
                "GROUP BY brand_key, brand ORDER BY n ASC"
            ).fetchall()
        return {key: brand for key, brand, _ in rows}

    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[ScoredId]:
        tokens = list(dict.fromkeys(_TOKEN.findall(query.lower())))[:MAX_QUERY_TOKENS]
        if not tokens or k <= 0:
            return []
        # Only word tokens reach the parser, lower-cased, so user text cannot inject query
        # syntax (field:, -, quotes, AND/OR/NOT).
        text_query = self._index.parse_query(" ".join(tokens), list(TEXT_FIELDS), FIELD_BOOSTS)
        searcher = self._index.searcher()
        query_obj = _with_filters(text_query, self._index.schema, filters)
        hits = searcher.search(query_obj, limit=k, count=False).hits
        return self._resolve(searcher, hits)

    def _resolve(self, searcher: tantivy.Searcher, hits: list) -> list[ScoredId]:
        doc_ids = searcher.fast_field_values("doc_id", [address for _, address in hits])
        names = self._names(doc_ids)
        return [ScoredId(names[d], float(score))
                for (score, _), d in zip(hits, doc_ids, strict=True) if d in names]

    def _names(self, doc_ids: Sequence[int]) -> dict[int, str]:
        with self._lock:
            rows = self._select("SELECT doc_id, parent_asin FROM products WHERE doc_id IN ({})",
                                list(doc_ids))
        return dict(rows)

    def _allowed_ids(self, filters: Filters) -> np.ndarray:
        searcher = self._index.searcher()
        query = _with_filters(tantivy.Query.all_query(), self._index.schema, filters)
        hits = searcher.search(query, limit=max(1, searcher.num_docs), count=False).hits
        return np.array(searcher.fast_field_values("doc_id", [a for _, a in hits]), dtype=np.int64)

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredId]:
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            index = self._hnsw if self._hnsw is not None else self._vectors
            if index.ntotal == 0 or k <= 0:
                return []
            params = None
            if filters is not None and not filters.is_empty():
                allowed = self._allowed_ids(filters)
                if len(allowed) == 0:
                    return []
                # Exact search over the allowed ids: the filter is applied inside faiss, so the
                # top-k is complete even when the filter is selective.
                index = self._vectors
                params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
            scores, ids = index.search(query, min(k, index.ntotal), params=params)
        names = self._names([int(i) for i in ids[0] if i >= 0])
        return [ScoredId(names[int(i)], float(s))
                for s, i in zip(scores[0], ids[0], strict=True) if int(i) in names]

    def info(self) -> dict[str, object]:
        return {"backend": "embedded", "path": str(self.path), **self.manifest,
                "document_count": self.count()}

    def close(self) -> None:
        with self._lock:
            self.commit()
            self._db.close()
            if self._write_lock is not None:
                self._write_lock.release()
                self._write_lock = None


_MISSING_VECTORS = faiss.IndexIDMap2(faiss.IndexFlatIP(1))  # marker: file gone, products recorded


class WriteLock:
    """An exclusive ``flock`` on ``write.lock`` in the index directory, holding the owner's pid
    (released by the OS if the process dies, so a kill -9 never leaves a stale lock)."""

    def __init__(self, handle) -> None:
        self._handle = handle

    @classmethod
    def acquire(cls, directory: Path) -> WriteLock:
        import fcntl

        handle = open(directory / "write.lock", "a+")  # noqa: SIM115 (held until release)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise BackendError(f"index {directory} is being written by process {owner}; wait "
                               "for it to finish (readers are not affected)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        import fcntl

        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _open_sqlite(file: Path, create: bool) -> sqlite3.Connection:
    """WAL journal: readers keep reading the last commit while a writer works."""
    try:
        db = sqlite3.connect(file, check_same_thread=False, isolation_level="DEFERRED",
                             timeout=5.0)
        if create:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS products (doc_id INTEGER PRIMARY KEY, "
                "parent_asin TEXT UNIQUE NOT NULL, content_hash TEXT NOT NULL, brand_key TEXT, "
                "brand TEXT, product TEXT NOT NULL, in_stock INTEGER, quantity INTEGER)")
            db.commit()
        db.execute("SELECT COUNT(*) FROM products").fetchone()
        return db
    except sqlite3.DatabaseError as exc:
        raise BackendError(f"{file} is unreadable ({exc}): the records are the source of "
                           "truth, so re-index the catalog into a new --index") from None


def _open_bm25(path: Path) -> tantivy.Index:
    directory = path / "bm25"
    if not directory.is_dir():
        raise BackendError(f"index {path} has lost its bm25/ directory: repair it with "
                           f"`rex-search index --repair --index {path}`")
    try:
        index = tantivy.Index(_bm25_schema(), path=str(directory), reuse=True)
        index.searcher()
        return index
    except ValueError as exc:
        raise BackendError(f"{directory} is unreadable ({exc}): repair it with `rex-search "
                           f"index --repair --index {path}`") from None


def _bm25_document(doc_id: int, product: Product, in_stock: int | None) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_integer("doc_id", doc_id)
    doc.add_text("title", product.title)
    if product.brand:
        doc.add_text("brand", product.brand)
        doc.add_text("brand_key", brand_key(product.brand))
    for category in product.categories:
        doc.add_text("categories", category)
        doc.add_text("category_key", category.lower())
    if product.main_category:
        doc.add_text("category_key", product.main_category.lower())
    for feature in product.features:
        doc.add_text("features", feature)
    if product.description:
        doc.add_text("description", product.description)
    if product.price is not None:
        doc.add_float("price", product.price)
    if in_stock is not None:
        doc.add_integer("in_stock", int(in_stock))
    return doc


def _with_filters(query: tantivy.Query, schema: tantivy.Schema,
                  filters: Filters | None) -> tantivy.Query:
    if filters is None or filters.is_empty():
        return query
    must = tantivy.Occur.Must
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = [(must, query)]
    if filters.brands:
        keys = [brand_key(b) for b in filters.brands]
        clauses.append((must, tantivy.Query.term_set_query(schema, "brand_key", keys)))
    if filters.exclude_brands:
        keys = [brand_key(b) for b in filters.exclude_brands]
        clauses.append((tantivy.Occur.MustNot,
                        tantivy.Query.term_set_query(schema, "brand_key", keys)))
    if filters.categories:
        values = [c.lower() for c in filters.categories]
        clauses.append((must, tantivy.Query.term_set_query(schema, "category_key", values)))
    if filters.min_price is not None or filters.max_price is not None:
        clauses.append((must, tantivy.Query.range_query(
            schema, "price", tantivy.FieldType.Float, filters.min_price, filters.max_price)))
    if filters.exclude_out_of_stock:
        clauses.append((tantivy.Occur.MustNot,
                        tantivy.Query.term_query(schema, "in_stock", 0)))
    if filters.in_stock is not None:
        clauses.append((must, tantivy.Query.term_query(schema, "in_stock",
                                                       int(filters.in_stock))))
    return tantivy.Query.boolean_query(clauses)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_write_index(index: faiss.Index, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
