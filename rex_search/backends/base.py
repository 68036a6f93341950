"""The protocol every index backend implements, and the values it exchanges."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rex_search.catalog.schema import Product, StockRecord
from rex_search.errors import FilterError


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

    def __post_init__(self) -> None:
        """Validated once for every caller (Python API, CLI, service): lists become tuples,
        a bare string is an error (it would be read letter by letter), prices are numbers."""
        for name in ("brands", "exclude_brands", "categories"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, list | tuple) or not all(
                    isinstance(v, str) for v in value):
                raise FilterError(f"filters.{name} must be a list of strings, e.g. "
                                  f'["Nike"], got {value!r:.60}')
            object.__setattr__(self, name, tuple(value))
        for name in ("min_price", "max_price"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, int | float) or not math.isfinite(value) or value < 0):
                raise FilterError(f"filters.{name} must be a number >= 0 or null, "
                                  f"got {value!r:.60}")
        if self.min_price is not None and self.max_price is not None \
                and self.min_price > self.max_price:
            raise FilterError(f"filters.min_price ({self.min_price}) is above max_price "
                              f"({self.max_price})")
        if self.in_stock is not None and not isinstance(self.in_stock, bool):
            raise FilterError(f"filters.in_stock must be true, false or null, got "
                              f"{self.in_stock!r:.60}")
        if not isinstance(self.exclude_out_of_stock, bool):
            raise FilterError("filters.exclude_out_of_stock must be true or false")

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


class Backend(Protocol):
    """What the indexer and the pipelines need from an index."""

    model_id: str  # the embedding model its vectors came from
    dim: int

    @property
    def location(self) -> str:
        """Where the index lives, for messages: a directory or a redacted cluster URL."""

    @property
    def local_dir(self) -> Path | None:
        """A local directory reports may be written beside (None for a cluster)."""

    def finalize(self) -> None:
        """After an indexing run: build what is built once (an HNSW copy, an alias swap)."""

    def record_catalog(self, entry: dict[str, object]) -> None:
        """Remember a catalog that was indexed (name, sha256, counts), where the backend can."""

    @property
    def embeds_documents(self) -> bool:
        """True when the backend embeds products itself (an OpenSearch ingest pipeline,
        ``?embed=cluster``): the indexer then sends no vectors (``vectors`` has 0 columns)."""

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

    def embed_query(self, text: str) -> np.ndarray | None:
        """The query's vector where the backend embeds queries itself (``?embed=cluster``: the
        cluster's query model); None: the caller embeds it with the index's embedder."""

    def get(self, ids: Sequence[str]) -> dict[str, IndexedProduct]:
        """Stored products by id; unknown ids are absent from the result."""

    def products(self, limit: int) -> list[Product]:
        """Up to ``limit`` stored products, in no promised order: what a service warms its
        per-product caches with (a split reranker's product states)."""

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

    def retrieval_warning(self) -> str | None:
        """Why this thread's searches since the last call may have missed documents (a
        cluster's shards that did not answer); None when they were complete. Clears it."""

    def info(self) -> dict[str, object]:
        """What is in the index (for `rex-search info`); never includes credentials."""

    def close(self) -> None:
        """Release files and connections."""
