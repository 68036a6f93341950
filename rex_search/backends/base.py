"""The protocol every index backend implements, and the values it exchanges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rex_search.catalog.schema import Product


@dataclass(frozen=True)
class Filters:
    """Hard constraints pushed into retrieval. Brands are compared by `brand_key`."""

    brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool | None = None  # True: only products known to be in stock
    exclude_out_of_stock: bool = False  # drop products known to be out of stock, keep unknown

    def is_empty(self) -> bool:
        return self == Filters()


@dataclass(frozen=True)
class ScoredId:
    """One retrieval hit: the product id and the source's raw score."""

    parent_asin: str
    score: float


@dataclass(frozen=True)
class IndexedProduct:
    """A product as stored, with its inventory state (None = unknown)."""

    product: Product
    in_stock: bool | None = None
    quantity: int | None = None


@dataclass(frozen=True)
class StockRecord:
    parent_asin: str
    in_stock: bool
    quantity: int | None = None
    price: float | None = None


class Backend(Protocol):
    """What the indexer and the pipelines need from an index."""

    def upsert(self, products: Sequence[Product], vectors: np.ndarray) -> list[tuple[str, str]]:
        """Insert or replace products by parent_asin (idempotent); visible after `commit`.
        Returns the (parent_asin, reason) of items the backend refused after its retries."""

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored content hashes of the committed products among ``ids``."""

    def commit(self) -> None:
        """Make every upsert since the last commit durable and searchable."""

    def bm25(self, query: str, k: int, filters: Filters | None = None) -> list[ScoredId]:
        """Lexical top-k."""

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[ScoredId]:
        """Dense top-k by inner product with a unit-length query vector."""

    def get(self, ids: Sequence[str]) -> dict[str, IndexedProduct]:
        """Stored products by id; unknown ids are absent from the result."""

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored embedding vectors by id."""

    def update_inventory(self, records: Sequence[StockRecord]) -> list[str]:
        """Set stock (and optionally price) without re-embedding; returns the unknown ids."""

    def brands(self) -> dict[str, str]:
        """Known brands: brand_key -> display name."""

    def generation(self) -> str:
        """Changes whenever the searchable content changes (keys result caches)."""

    def delete(self, ids: Sequence[str]) -> int:
        """Remove products; returns how many existed."""

    def count(self) -> int:
        """Number of committed products."""

    def info(self) -> dict[str, object]:
        """What is in the index (for `rex-search info`); never includes credentials."""

    def close(self) -> None:
        """Release files and connections."""
