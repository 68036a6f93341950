from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rex_search.backends.embedded import EmbeddedBackend
from rex_search.indexer.indexer import index_catalog
from tests.conftest import REPO


def snapshot(backend: EmbeddedBackend) -> tuple[int, dict, int, list]:
    ids = list(backend._records.all_names().values())
    hashes = backend.content_hashes(ids)
    return (backend.count(), hashes, backend._vectors.ntotal,
            [h.parent_asin for h in backend.bm25("running shoes", 20)])


def test_indexing_the_same_file_twice_leaves_the_same_index(writable_index: Path,
                                                            small_catalog: Path, embedder):
    backend = EmbeddedBackend(writable_index)
    before = snapshot(backend)
    summary = index_catalog(small_catalog, backend, embedder)
    assert summary.indexed == 0
    assert summary.unchanged == summary.rows_read == before[0]
    assert snapshot(backend) == before
    backend.close()


def test_changed_product_is_reembedded_and_replaced(writable_index: Path, tmp_path: Path,
                                                    embedder):
    backend = EmbeddedBackend(writable_index)
    count = backend.count()
    asin = backend.bm25("running shoes", 1)[0].parent_asin
    path = tmp_path / "update.jsonl"
    path.write_text(json.dumps({"parent_asin": asin, "title": "Cast iron skillet 12 inch"}) + "\n")
    summary = index_catalog(path, backend, embedder)
    assert summary.indexed == 1
    assert backend.count() == count
    assert backend._vectors.ntotal == count
    assert backend.get([asin])[asin].product.title == "Cast iron skillet 12 inch"
    assert backend.bm25("skillet", 5)[0].parent_asin == asin
    assert asin not in [h.parent_asin for h in backend.bm25("running shoes", 50)]
    backend.close()


CRASHING_RUN = """
import os, sys
from rex_search.backends.embedded import EmbeddedBackend
from rex_search.indexer.embed import Embedder
from rex_search.indexer.indexer import index_catalog
from tests.conftest import REPO

class CrashingBackend:
    # The real backend; the process dies (no cleanup at all) on the 6th upsert.
    def __init__(self, backend):
        self.backend, self.calls = backend, 0
    def __getattr__(self, name):
        return getattr(self.backend, name)
    def upsert(self, products, vectors):
        self.calls += 1
        if self.calls == 6:
            os._exit(17)
        self.backend.upsert(products, vectors)

embedder = Embedder()
backend = EmbeddedBackend(sys.argv[2], dim=embedder.dim, model_id=embedder.model_id)
index_catalog(sys.argv[1], CrashingBackend(backend), embedder, batch_size=50, commit_every=100)
"""


def test_interrupted_run_resumes_and_loses_nothing(tmp_path: Path, small_catalog: Path,
                                                   embedder):
    table = pq.read_table(small_catalog).slice(0, 300)
    catalog = tmp_path / "c.parquet"
    pq.write_table(table, catalog)
    path = tmp_path / "index"
    died = subprocess.run([sys.executable, "-c", CRASHING_RUN, str(catalog), str(path)],
                          cwd=REPO, capture_output=True, text=True)
    assert died.returncode == 17, died.stderr

    resumed = EmbeddedBackend(path)
    assert resumed.count() == 200  # two commits of 100 landed before the crash
    summary = index_catalog(catalog, resumed, embedder, batch_size=50, commit_every=100)
    assert (summary.unchanged, summary.indexed) == (200, 100)
    assert resumed.count() == 300
    assert resumed._vectors.ntotal == 300
    assert resumed._bm25.num_docs == 300  # no duplicates in BM25 either
    expected = set(table["parent_asin"].to_pylist())
    assert set(resumed.get(list(expected))) == expected
    resumed.close()


def test_rejected_rows_are_counted_and_reported(tmp_path: Path, embedder):
    rows = [{"parent_asin": "A1", "title": "Blue mug", "price": None},
            {"parent_asin": None, "title": "x", "price": "2"},
            {"parent_asin": "A3", "title": "Red mug", "price": "$1 - $2"}]
    catalog = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), catalog)
    backend = EmbeddedBackend(tmp_path / "i", dim=embedder.dim, model_id=embedder.model_id)
    summary = index_catalog(catalog, backend, embedder, report_dir=tmp_path)
    assert (summary.rows_read, summary.indexed, summary.rejected) == (3, 1, 2)
    assert dict(summary.rejected_by_field) == {"parent_asin": 1, "price": 1}
    report = [json.loads(line) for line in (tmp_path / "rejected-rows.jsonl").read_text().split(
        "\n") if line]
    assert [(r["row"], r["parent_asin"], r["field"]) for r in report] == [
        (2, None, "parent_asin"), (3, "A3", "price")]
    assert backend.manifest["catalogs"][0]["rejected"] == 2
    backend.close()


def test_two_overlapping_index_processes_both_finish_and_both_catalogs_are_recorded(
        tmp_path: Path, small_catalog: Path):
    """A long run opens the index first; a short run starts, writes and finishes while the
    long one is still embedding its first batch, then the long one writes. Both exit 0, each
    keeps its own rejected-rows file until it finishes, and the manifest lists both catalogs
    (the long run's stale copy of the manifest used to overwrite the short run's entry)."""
    import time

    long_rows = pq.read_table(small_catalog).slice(0, 400)
    long_catalog = tmp_path / "long.parquet"
    pq.write_table(long_rows, long_catalog)
    short_catalog = tmp_path / "short.jsonl"
    short_catalog.write_text('{"parent_asin": "S1", "title": "Blue enamel camping mug"}\n'
                             '{"parent_asin": "S2", "title": ""}\n')
    index = tmp_path / "index"
    command = [sys.executable, "-m", "rex_search", "index", "--index", str(index)]
    slow = subprocess.Popen([*command, str(long_catalog), "--batch-size", "1000"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    fast = subprocess.run([*command, str(short_catalog)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    slow_out, slow_err = slow.communicate(timeout=300)
    assert fast.returncode == 0, fast.stderr[-2000:]
    assert slow.returncode == 0, slow_err[-2000:]
    assert "Traceback" not in fast.stderr + slow_err
    catalogs = {c["name"] for c in json.loads((index / "manifest.json").read_text())["catalogs"]}
    assert catalogs == {"long.parquet", "short.jsonl"}
    backend = EmbeddedBackend(index)
    assert backend.count() == 401
    backend.close()
    assert (index / "rejected-rows.jsonl").exists()
    assert not list(index.glob("*.tmp"))
