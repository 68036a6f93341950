"""The bi-encoder scorer: cosine between query and product embeddings.

Not a cross-encoder: it is the baseline the shipped reranker must beat, the `dense` signal of
``[rerank] combine``, and a reranker of its own (``embedding-cosine``) where no cross-encoder is
wanted. Its ``score`` is ``(1 + cosine) / 2``, in [0, 1] like every reranker's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rex_search.catalog.schema import Product, embedding_text
from rex_search.indexer.embed import Encoder
from rex_search.lru import LruCache

StoredVectors = Callable[[Sequence[str]], Mapping[str, np.ndarray]]
"""Product id -> the vector an index already holds (e.g. a backend's ``vectors``)."""


class EmbeddingCosineReranker:
    kind = "embedding-cosine"

    def __init__(self, embedder: Encoder, stored_vectors: StoredVectors | None = None) -> None:
        self._embedder = embedder
        self._stored = stored_vectors
        self.name = f"embedding-cosine({embedder.model_id})"
        # Deadline-aware reranking calls score() once per small batch: embed each query once.
        self._queries: LruCache[str, np.ndarray] = LruCache(256)

    def _query_vector(self, query: str) -> np.ndarray:
        vector = self._queries.get(query)
        if vector is None:
            vector = self._embedder.encode_queries([query])[0]
            self._queries.put(query, vector)
        return vector

    def remember_query(self, query: str, vector: np.ndarray) -> None:
        """Use ``vector`` for ``query`` (one another component embedded, e.g. the cluster)."""
        self._queries.put(query, vector)

    def cosines(self, query: str, products: Sequence[Product]) -> list[float]:
        """Cosine in [-1, 1]; reuses stored vectors and embeds only products without one."""
        if not products:
            return []
        stored = self._stored([p.parent_asin for p in products]) if self._stored else {}
        known: list[np.ndarray | None] = [stored.get(p.parent_asin) for p in products]
        missing = [i for i, v in enumerate(known) if v is None]
        if missing:
            fresh = self._embedder.encode([embedding_text(products[i]) for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                known[i] = vector
        matrix = np.stack([v for v in known if v is not None]).astype(np.float32)
        return [float(s) for s in matrix @ self._query_vector(query)]

    def score(self, query: str, products: Sequence[Product]) -> list[float]:
        """``(1 + cosine) / 2``: the cosine's order on the [0, 1] scale every reranker uses."""
        return [(1.0 + c) / 2.0 for c in self.cosines(query, products)]
