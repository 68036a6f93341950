"""The interim default scorer: cosine between query and product embeddings.

This is NOT a cross-encoder. No trained e-commerce cross-encoder weights can be obtained offline
on this project's machines (see README, "The default reranker"), and an untrained
classification head would rank at random. Until the project ships its own trained reranker this
bi-encoder scorer is the honest default, and every result names it as ``embedding-cosine``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from rex_search.catalog.schema import Product, embedding_text
from rex_search.indexer.embed import Embedder


class EmbeddingCosineReranker:
    kind = "embedding-cosine"

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.name = f"embedding-cosine({embedder.model_id})"
        # Deadline-aware reranking calls score() once per small batch: embed each query once.
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _query_vector(self, query: str) -> np.ndarray:
        with self._lock:
            if query in self._queries:
                self._queries.move_to_end(query)
                return self._queries[query]
        vector = self._embedder.encode([query])[0]
        with self._lock:
            self._queries[query] = vector
            while len(self._queries) > 256:
                self._queries.popitem(last=False)
        return vector

    def score(self, query: str, products: Sequence[Product],
              vectors: Sequence[np.ndarray | None] | None = None) -> list[float]:
        """Cosine in [-1, 1]; reuses stored vectors and embeds only products without one."""
        if not products:
            return []
        known = list(vectors) if vectors is not None else [None] * len(products)
        missing = [i for i, v in enumerate(known) if v is None]
        if missing:
            fresh = self._embedder.encode([embedding_text(products[i]) for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                known[i] = vector
        matrix = np.stack(known).astype(np.float32)  # type: ignore[arg-type]
        return [float(s) for s in matrix @ self._query_vector(query)]
