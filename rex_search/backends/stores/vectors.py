"""Exact inner-product vectors keyed by int64 ids, persisted as append-only segments.

A vector folder holds numbered segment files::

    00000007.base.npz    every live vector as of some commit (ids, vectors)
    00000008.delta.npz   what one later commit changed (ids and vectors upserted; ids deleted)

A commit writes one delta with only what changed since the previous commit, so a 100k-product
run that commits 25 times writes each vector about once instead of rewriting the whole store 25
times. When the segments hold as many superseded rows as live ones (a re-index), or there are
more than ``MAX_DELTAS`` deltas, the commit writes one base instead and removes the older files.
Every file is written aside and renamed into place: a crash leaves the previous commit intact,
and a reader never sees half a file. The in-memory index is a faiss ``IndexIDMap2`` over
``IndexFlatIP``, so search is exact.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
import zipfile
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from rex_search.errors import BackendError

MAX_DELTAS = 64
_SEGMENT = re.compile(r"(\d{8})\.(base|delta)\.npz")
Compaction = Literal["auto", "always"]


class _Superseded(Exception):
    """A listed segment was removed while reading: a compaction replaced it."""


class VectorStore:
    """Vectors by id in ``folder``. ``legacy_file``: a single-file faiss index written by an
    older rex-search, read as the first base and removed at the next compaction.
    ``compaction="always"`` writes a full base at every commit (how stores worked before
    segments; kept for the benchmark that compares the two)."""

    def __init__(self, folder: str | Path, dim: int, legacy_file: Path | None = None,
                 compaction: Compaction = "auto", repair_hint: str = "",
                 repair: bool = False) -> None:
        self.folder = Path(folder)
        self.dim = dim
        self.legacy_file = legacy_file
        self.compaction = compaction
        self._hint = repair_hint
        self._repair = repair  # set damaged segments aside instead of refusing to open
        self.set_aside: list[Path] = []
        self._lock = threading.RLock()
        self.bytes_written = 0  # by this object's commits: what the benchmark reports
        self.reload()

    # -- state on disk ------------------------------------------------------------------------
    def _segments(self) -> list[tuple[int, str, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), m.group(2), p) for p in self.folder.iterdir()
                 if (m := _SEGMENT.fullmatch(p.name))]
        return sorted(found)

    @property
    def on_disk(self) -> bool:
        """Whether any commit was ever saved (a lost folder with products recorded is damage)."""
        return bool(self._segments()) or bool(self.legacy_file and self.legacy_file.exists())

    def reload(self) -> None:
        """Read the committed state, dropping uncommitted changes. A segment that vanishes
        while it is read was superseded by a compaction that just finished: not damage, so
        the folder is listed again (a few times) instead of reporting it."""
        for attempt in range(3):
            try:
                self._load()
                return
            except _Superseded:
                if attempt == 2:
                    raise BackendError(f"{self.folder} kept changing while it was read (a "
                                       "compaction in a loop?); try again") from None

    def _load(self) -> None:
        with self._lock:
            # Any: faiss's SWIG stubs do not describe the numpy overloads this code uses.
            self._index: Any = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
            self._upserted: dict[int, np.ndarray] = {}
            self._deleted: set[int] = set()
            segments = self._segments()
            bases = [s for s in segments if s[1] == "base"]
            start = bases[-1][0] if bases else -1
            self._rows_on_disk, self._deltas = 0, 0
            if not bases and self.legacy_file is not None and self.legacy_file.exists():
                self._load_legacy(self.legacy_file)
            for seq, kind, path in segments:
                if seq < start:
                    continue
                if not path.exists():
                    raise _Superseded(path)
                try:
                    ids, vectors, deleted = self._read(path)
                except BackendError:
                    if not path.exists():
                        raise _Superseded(path) from None
                    if not self._repair:
                        raise
                    # --repair: set the damaged file aside; the repair re-adds its products
                    aside = path.with_name(path.name + ".damaged")
                    path.replace(aside)
                    self.set_aside.append(aside)
                    continue
                self._apply(ids, vectors, deleted)
                self._rows_on_disk += len(ids)
                self._deltas += kind == "delta"
            self._seq = segments[-1][0] if segments else 0

    def _load_legacy(self, file: Path) -> None:
        try:
            index = faiss.read_index(str(file))
        except RuntimeError:
            raise BackendError(f"{file} is unreadable (truncated or corrupt){self._hint}") \
                from None
        self._check_dim(index.d, file)
        self._index = index
        self._rows_on_disk = int(index.ntotal)

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            with path.open("rb") as handle, np.load(handle) as data:
                ids, vectors, deleted = data["ids"], data["vectors"], data["deleted"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            raise BackendError(f"{path} is unreadable (truncated or corrupt){self._hint}") \
                from None
        self._check_dim(vectors.shape[1] if vectors.ndim == 2 else -1, path)
        if len(ids) != len(vectors):
            raise BackendError(f"{path} holds {len(ids)} ids for {len(vectors)} vectors"
                               f"{self._hint}")
        return ids.astype(np.int64), vectors.astype(np.float32), deleted.astype(np.int64)

    def _check_dim(self, found: int, where: Path) -> None:
        if found != self.dim:
            raise BackendError(f"{where} holds {found}-dimensional vectors, the index has "
                               f"{self.dim}{self._hint}")

    def _apply(self, ids: np.ndarray, vectors: np.ndarray, deleted: np.ndarray) -> None:
        gone = np.concatenate([ids, deleted])
        if len(gone):
            self._index.remove_ids(gone)
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors), ids)

    # -- writes -------------------------------------------------------------------------------
    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            self._apply(ids, vectors, np.empty(0, dtype=np.int64))
            for doc_id, vector in zip(ids.tolist(), vectors, strict=True):
                self._upserted[doc_id] = vector
                self._deleted.discard(doc_id)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            self._index.remove_ids(ids)
            for doc_id in ids.tolist():
                self._upserted.pop(doc_id, None)
                self._deleted.add(doc_id)

    def save(self) -> None:
        """Commit: one delta with the changes, or one base when compaction is due."""
        with self._lock:
            if not self._upserted and not self._deleted:
                return
            superseded = self._rows_on_disk + len(self._upserted) - self.ntotal
            if self.compaction == "always" or self._deltas >= MAX_DELTAS \
                    or superseded >= max(1, self.ntotal):
                ids, vectors = self.matrix()
                self._write("base", ids, vectors, np.empty(0, dtype=np.int64))
                for seq, _, path in self._segments():
                    if seq < self._seq:
                        path.unlink()
                if self.legacy_file is not None and self.legacy_file.exists():
                    self.legacy_file.unlink()
                self._rows_on_disk, self._deltas = len(ids), 0
            else:
                ids = np.fromiter(self._upserted, dtype=np.int64, count=len(self._upserted))
                vectors = np.stack(list(self._upserted.values())) if len(ids) else \
                    np.empty((0, self.dim), dtype=np.float32)
                self._write("delta", ids, vectors,
                            np.fromiter(self._deleted, dtype=np.int64, count=len(self._deleted)))
                self._rows_on_disk += len(ids)
                self._deltas += 1
            self._upserted, self._deleted = {}, set()

    def _write(self, kind: str, ids: np.ndarray, vectors: np.ndarray,
               deleted: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        path = self.folder / f"{self._seq:08d}.{kind}.npz"
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, vectors=vectors.astype(np.float32), deleted=deleted)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buffer.getbuffer())
        os.replace(tmp, path)
        self.bytes_written += buffer.getbuffer().nbytes

    def move_to(self, folder: Path) -> None:
        """Rename the store's folder (a cluster's alias swap), replacing what was there."""
        with self._lock:
            if folder.exists():
                aside = folder.with_name(folder.name + ".old")
                shutil.rmtree(aside, ignore_errors=True)
                os.replace(folder, aside)
                os.replace(self.folder, folder)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.replace(self.folder, folder)
            self.folder = folder

    # -- reads --------------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def ids(self) -> set[int]:
        with self._lock:
            return {int(i) for i in faiss.vector_to_array(self._index.id_map)}

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of every live vector, in storage order."""
        with self._lock:
            n = self.ntotal
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            if n == 0:
                return ids, np.empty((0, self.dim), dtype=np.float32)
            flat: Any = faiss.downcast_index(self._index.index)
            return ids, faiss.rev_swig_ptr(flat.get_xb(), n * self.dim).reshape(
                n, self.dim).copy()

    def reconstruct(self, doc_id: int) -> np.ndarray | None:
        with self._lock:
            try:
                return self._index.reconstruct(doc_id)
            except RuntimeError:
                return None

    def search(self, vector: np.ndarray, k: int,
               allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Exact top-``k`` (id, inner product), only among ``allowed`` ids when given."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            if self.ntotal == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
                return []
            params = None if allowed is None else \
                faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))  # type: ignore[call-arg]
            scores, ids = self._index.search(query, min(k, self.ntotal), params=params)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]
