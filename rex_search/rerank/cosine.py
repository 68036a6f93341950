"""The interim default scorer: cosine between query and product embeddings.

This is NOT a cross-encoder. No trained e-commerce cross-encoder weights can be obtained offline
on this project's machines (see README, "The default reranker"), and an untrained
classification head would rank at random. Until the project ships its own trained reranker this
bi-encoder scorer is the honest default, and every result names it as ``embedding-cosine``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rex_search.catalog.schema import Product, embedding_text
from rex_search.indexer.embed import Embedder


class EmbeddingCosineReranker:
    kind = "embedding-cosine"

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.name = f"embedding-cosine({embedder.model_id})"

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
        q = self._embedder.encode([query])[0]
        return [float(s) for s in matrix @ q]
