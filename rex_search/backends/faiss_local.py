"""A FAISS vector file kept by rex-search beside a cluster without the k-NN plugin."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import faiss
import numpy as np


class LocalVectors:
    """Exact inner-product vectors keyed by int64 ids, persisted to one file (atomic writes)."""

    def __init__(self, path: str | Path, dim: int) -> None:
        self.path = Path(path)
        self.dim = dim
        self._lock = threading.Lock()
        if self.path.exists():
            self._index = faiss.read_index(str(self.path))
        else:
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with self._lock:
            self._index.remove_ids(ids)
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)

    def remove(self, ids: np.ndarray) -> None:
        with self._lock:
            self._index.remove_ids(ids)

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            faiss.write_index(self._index, str(tmp))
            os.replace(tmp, self.path)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self._lock:
            if self.ntotal == 0 or k <= 0:
                return []
            scores, ids = self._index.search(
                np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1), min(k, self.ntotal))
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]

    def reconstruct(self, doc_id: int) -> np.ndarray | None:
        with self._lock:
            try:
                return self._index.reconstruct(doc_id)
            except RuntimeError:
                return None
