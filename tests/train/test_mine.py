"""`train-data mine`: real queries with their first-stage candidates from a real index, in the
order the pipeline retrieves them, ready for `train-data relabel`."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from click.testing import CliRunner

from rex_search.backends.embedded import EmbeddedBackend
from rex_search.cli import cli
from rex_search.pipelines.pipeline import SearchPipeline
from tests.conftest import cosine_reranker

QUERIES = ["running shoes for men", "laptop bag 15 inch", "usb c charger"]


def test_mined_pairs_follow_retrieval_order(small_index_dir: Path, embedder,
                                            tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("\n".join([*QUERIES, "", QUERIES[0]]) + "\n")  # blank and repeat skipped
    out = tmp_path / "mined.parquet"
    result = CliRunner().invoke(cli, ["train-data", "mine", "--index", str(small_index_dir),
                                      "--queries", str(queries), "--k", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pylist()
    backend = EmbeddedBackend(small_index_dir)
    pipeline = SearchPipeline(backend, embedder, cosine_reranker(backend, embedder),
                              cache_size=0)
    for query in QUERIES:
        expected = [h.parent_asin for h in pipeline.search(query, size=6, rerank=False).hits]
        assert len(expected) == 6
        assert [r["parent_asin"] for r in rows if r["query_string"] == query] == expected
    assert len(rows) == 18
    stored = backend.get([r["parent_asin"] for r in rows])
    assert all(r["title"] == stored[r["parent_asin"]].product.title for r in rows)
    assert {r["relevance_score"] for r in rows} == {0.0}
    assert {r["label_raw"] for r in rows} == {"mined"}
    # text forms are drawn per pair: some titles only (empty description), some with text
    assert any(r["description"] == "" for r in rows)
    assert any(r["description"] for r in rows)
    backend.close()


def test_mine_names_a_missing_index(tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_text("running shoes\n")
    missing = tmp_path / "no-index"
    result = CliRunner().invoke(cli, ["train-data", "mine", "--index", str(missing), "--queries",
                                      str(queries), "--out", str(tmp_path / "out.parquet")])
    assert result.exit_code != 0
    assert f"no index at {missing}" in str(result.exception)
    assert not (tmp_path / "out.parquet").exists()
