"""The segmented vector store: commits append deltas, compaction bounds what is kept, and
every state read back equals what was written."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from rex_search.backends.stores.vectors import MAX_DELTAS, VectorStore
from rex_search.errors import BackendError

DIM = 8


def unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def state(store: VectorStore) -> dict[int, list[float]]:
    ids, matrix = store.matrix()
    return {int(i): [round(float(x), 6) for x in row] for i, row in zip(ids, matrix, strict=True)}


def test_each_commit_writes_only_what_changed(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM)
    for batch in range(5):
        store.upsert(np.arange(batch * 100, batch * 100 + 100), unit(100, batch))
        store.save()
    files = sorted(p.name for p in (tmp_path / "v").iterdir())
    assert files == [f"{i:08d}.delta.npz" for i in range(1, 6)]
    # Five commits of 100 vectors wrote about 500 rows' worth, not 100+200+...+500.
    assert store.bytes_written < 500 * (DIM * 4 + 8) * 1.2
    assert state(VectorStore(tmp_path / "v", DIM)) == state(store)


def test_updates_and_deletes_read_back_exactly(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM)
    store.upsert(np.arange(10), unit(10, 0))
    store.save()
    store.upsert(np.array([3, 4]), unit(2, 1))
    store.remove(np.array([5, 6]))
    store.upsert(np.array([6]), unit(1, 2))  # deleted then re-added in one commit: kept
    store.remove(np.array([11]))  # never existed: nothing happens
    store.save()
    reread = VectorStore(tmp_path / "v", DIM)
    assert state(reread) == state(store)
    assert sorted(reread.ids()) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert reread.reconstruct(3) == pytest.approx(unit(2, 1)[0])
    assert reread.reconstruct(5) is None


def test_a_full_rewrite_compacts_into_one_base(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM)
    store.upsert(np.arange(50), unit(50, 0))
    store.save()
    store.upsert(np.arange(50), unit(50, 1))  # every vector superseded: compaction is due
    store.save()
    assert [p.name for p in (tmp_path / "v").iterdir()] == ["00000002.base.npz"]
    assert state(VectorStore(tmp_path / "v", DIM)) == state(store)


def test_many_small_commits_are_compacted(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM)
    for i in range(MAX_DELTAS + 1):
        store.upsert(np.array([i]), unit(1, i))
        store.save()
    names = sorted(p.name for p in (tmp_path / "v").iterdir())
    assert names == [f"{MAX_DELTAS + 1:08d}.base.npz"]
    assert VectorStore(tmp_path / "v", DIM).ntotal == MAX_DELTAS + 1


def test_an_interrupted_write_leaves_the_last_commit(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM)
    store.upsert(np.arange(5), unit(5, 0))
    store.save()
    (tmp_path / "v" / "00000002.delta.npz.tmp").write_bytes(b"half a file")
    assert state(VectorStore(tmp_path / "v", DIM)) == state(store)


def test_a_truncated_segment_is_a_clear_error(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM)
    store.upsert(np.arange(5), unit(5, 0))
    store.save()
    segment = tmp_path / "v" / "00000001.delta.npz"
    segment.write_bytes(segment.read_bytes()[:40])
    with pytest.raises(BackendError, match="00000001.delta.npz is unreadable"):
        VectorStore(tmp_path / "v", DIM, repair_hint=": repair it")


def test_an_older_single_file_is_read_then_replaced_at_compaction(tmp_path: Path):
    legacy = tmp_path / "vectors.faiss"
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    index.add_with_ids(unit(20, 0), np.arange(20, dtype=np.int64))
    faiss.write_index(index, str(legacy))
    store = VectorStore(tmp_path / "vectors", DIM, legacy_file=legacy)
    assert store.ntotal == 20 and store.on_disk
    store.upsert(np.array([100]), unit(1, 1))
    store.save()  # a delta on top of the old file
    assert VectorStore(tmp_path / "vectors", DIM, legacy_file=legacy).ntotal == 21
    store.upsert(np.append(np.arange(20), 100), unit(21, 2))
    store.save()  # as many superseded rows as live ones: one base, the old file gone
    assert not legacy.exists()
    assert state(VectorStore(tmp_path / "vectors", DIM, legacy_file=legacy)) == state(store)


def test_always_compacting_rewrites_everything_each_commit(tmp_path: Path):
    store = VectorStore(tmp_path / "v", DIM, compaction="always")
    for batch in range(3):
        store.upsert(np.arange(batch * 10, batch * 10 + 10), unit(10, batch))
        store.save()
    assert [p.name for p in (tmp_path / "v").iterdir()] == ["00000003.base.npz"]
    assert store.bytes_written > (10 + 20 + 30) * DIM * 4
