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
