"""Product records in sqlite: the product JSON, its content hash, brand and stock. The source
of truth of an embedded index: committed last, so it lists only what every store holds."""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from rex_search.backends.base import IndexedProduct
from rex_search.catalog.schema import Product, brand_key
from rex_search.errors import BackendError

_MAX_PARAMS = 900  # sqlite's bound-parameter limit, with room to spare

P = ParamSpec("P")
R = TypeVar("R")


def _damage_named(method: Callable[Concatenate[RecordStore, P], R]
                  ) -> Callable[Concatenate[RecordStore, P], R]:
    """A damaged page met mid-query (sqlite reads pages lazily, so an open can succeed over
    one) becomes one clear error naming the file, not a traceback. Busy/locked/I-O errors
    (OperationalError) keep their own meaning."""
    def named(self: RecordStore, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            raise BackendError(f"{self.file} is damaged ({exc}): the records are the source "
                               "of truth, so re-index the catalog into a new --index") from None
    return functools.update_wrapper(named, method)  # type: ignore[return-value]


class RecordStore:
    def __init__(self, file: Path, create: bool) -> None:
        """WAL journal: readers keep reading the last commit while a writer works."""
        try:
            db = sqlite3.connect(file, check_same_thread=False, isolation_level="DEFERRED",
                                 timeout=5.0)
            if create:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS products (doc_id INTEGER PRIMARY KEY, "
                    "parent_asin TEXT UNIQUE NOT NULL, content_hash TEXT NOT NULL, "
                    "brand_key TEXT, brand TEXT, product TEXT NOT NULL, in_stock INTEGER, "
                    "quantity INTEGER)")
                db.commit()
            db.execute("SELECT COUNT(*) FROM products").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackendError(f"{file} is unreadable ({exc}): the records are the source of "
                               "truth, so re-index the catalog into a new --index") from None
        self._db = db
        self.file = file

    def use_wal(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")  # indexes made before WAL switch now

    def _select(self, sql: str, values: Sequence[object]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for start in range(0, len(values), _MAX_PARAMS):
            chunk = list(values[start:start + _MAX_PARAMS])
            out += self._db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return out

    def damage(self) -> list[str]:
        """What sqlite's page-by-page check finds wrong (empty when intact); reads every page,
        the write-ahead log's included, so it is for --verify, not for every open."""
        try:
            rows = self._db.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return [str(exc)]
        return [] if rows == [("ok",)] else [str(r[0]) for r in rows]

    # -- reads --------------------------------------------------------------------------------
    @_damage_named
    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM products").fetchone()[0])

    @_damage_named
    def stock(self, doc_ids: Sequence[int]) -> dict[int, int | None]:
        return dict(self._select("SELECT doc_id, in_stock FROM products WHERE doc_id IN ({})",
                                 doc_ids))

    @_damage_named
    def names(self, doc_ids: Sequence[int]) -> dict[int, str]:
        """doc_id -> parent_asin of the recorded ones."""
        return dict(self._select("SELECT doc_id, parent_asin FROM products WHERE doc_id IN "
                                 "({})", doc_ids))

    @_damage_named
    def all_names(self) -> dict[int, str]:
        return dict(self._db.execute("SELECT doc_id, parent_asin FROM products"))

    @_damage_named
    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return dict(self._select("SELECT parent_asin, content_hash FROM products WHERE "
                                 "parent_asin IN ({})", ids))

    @_damage_named
    def get(self, ids: Sequence[str]) -> dict[str, IndexedProduct]:
        rows = self._select("SELECT parent_asin, product, in_stock, quantity FROM products "
                            "WHERE parent_asin IN ({})", ids)
        return {asin: IndexedProduct(Product.from_dict(json.loads(blob)),
                                     None if stock is None else bool(stock), quantity)
                for asin, blob, stock, quantity in rows}

    @_damage_named
    def products(self, limit: int) -> list[Product]:
        rows = self._db.execute("SELECT product FROM products LIMIT ?", (max(0, limit),))
        return [Product.from_dict(json.loads(blob)) for (blob,) in rows]

    @_damage_named
    def brands(self) -> dict[str, str]:
        """brand_key -> most common display name."""
        rows = self._db.execute(
            "SELECT brand_key, brand, COUNT(*) AS n FROM products WHERE brand_key != '' "
            "GROUP BY brand_key, brand ORDER BY n ASC").fetchall()
        return {key: brand for key, brand, _ in rows}

    # -- writes (uncommitted until commit) --------------------------------------------------
    @_damage_named
    def upsert(self, doc_ids: Sequence[int], products: Sequence[Product]) -> None:
        self._db.executemany(
            "INSERT INTO products (doc_id, parent_asin, content_hash, brand_key, brand, "
            "product) VALUES (?,?,?,?,?,?) ON CONFLICT(doc_id) DO UPDATE SET "
            "content_hash=excluded.content_hash, brand_key=excluded.brand_key, "
            "brand=excluded.brand, product=excluded.product",
            [(int(i), p.parent_asin, p.content_hash(), brand_key(p.brand), p.brand,
              json.dumps(p.to_dict(), ensure_ascii=False))
             for i, p in zip(doc_ids, products, strict=True)])

    @_damage_named
    def set_product(self, product: Product) -> None:
        self._db.execute("UPDATE products SET product=? WHERE parent_asin=?",
                         (json.dumps(product.to_dict(), ensure_ascii=False),
                          product.parent_asin))

    @_damage_named
    def set_stock(self, parent_asin: str, in_stock: bool, quantity: int | None) -> None:
        self._db.execute("UPDATE products SET in_stock=?, quantity=? WHERE parent_asin=?",
                         (int(in_stock), quantity, parent_asin))

    @_damage_named
    def delete(self, doc_ids: Sequence[int]) -> int:
        """Delete; returns how many of ``doc_ids`` were recorded."""
        existing = len(self.names(doc_ids))
        self._db.executemany("DELETE FROM products WHERE doc_id=?", [(d,) for d in doc_ids])
        return existing

    @_damage_named
    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.close()
