from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner

from rex_search.cli import cli


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed console entry point, as a user runs it."""
    return subprocess.run([sys.executable, "-c", "from rex_search.cli import main; main()", *args],
                          capture_output=True, text=True, env=env)


def test_query_prints_a_table_and_json(small_index_dir: Path):
    runner = CliRunner()
    table = runner.invoke(cli, ["query", "running shoes", "--index", str(small_index_dir),
                                "-n", "3"])
    assert table.exit_code == 0, table.output
    assert "reranker rex-reranker-bge-small-6l (distributional-11, onnx-int8)" in table.output
    assert len([line for line in table.output.splitlines() if line[:3].strip().isdigit()]) == 3
    assert "timings" not in table.output
    out = runner.invoke(cli, ["query", "running shoes", "--index", str(small_index_dir),
                              "-n", "3", "--json"])
    data = json.loads(out.output)
    assert len(data["hits"]) == 3
    assert set(data["hits"][0]["explanation"]) >= {"retrieval", "rerank_score", "rules"}
    explained = runner.invoke(cli, ["query", "running shoes", "--index", str(small_index_dir),
                                    "-n", "2", "--explain"])
    assert "retrieved by bm25 rank" in explained.output
    assert "timings (ms):" in explained.output


def test_the_default_output_says_how_a_negation_was_read(small_index_dir: Path):
    runner = CliRunner()
    typo = runner.invoke(cli, ["query", "running shoes no skechrs", "--index",
                               str(small_index_dir), "-n", "10", "--reranker",
                               "embedding-cosine"])
    assert typo.exit_code == 0, typo.output
    assert "note: 'skechrs' read as the brand Skechers: excluded" in typo.output
    assert "Skechers" not in "\n".join(line for line in typo.output.splitlines()
                                       if line[:3].strip().isdigit())
    laces = runner.invoke(cli, ["query", "running shoes no laces", "--index",
                                str(small_index_dir), "-n", "3", "--reranker",
                                "embedding-cosine"])
    assert ("note: 'laces' after a negation is not a brand in this catalog: ignored, nothing "
            "excluded") in laces.output


def test_info_describes_the_index(small_index_dir: Path):
    result = CliRunner().invoke(cli, ["info", "--index", str(small_index_dir), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["embedding_model"] == "bge-small-en-v1.5"


def test_index_command_reports_rejections(tmp_path: Path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"parent_asin": "A1", "title": "Blue mug"}\n'
                       '{"parent_asin": "A2", "title": "", "price": "3"}\n')
    result = CliRunner().invoke(cli, ["index", str(catalog), "--index", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert "2 rows read, 1 indexed, 0 unchanged, 1 rejected, 0 failed" in result.output
    assert "rejected row 2 (parent_asin=A2): title: expected a non-empty string" in result.output
    again = CliRunner().invoke(cli, ["index", str(catalog), "--index", str(tmp_path / "i"),
                                     "--json"])
    summary = json.loads(again.output)
    assert (summary["indexed"], summary["unchanged"]) == (0, 1)


def test_an_index_built_with_another_model_is_updated_and_queried_with_that_model(
        tmp_path: Path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"parent_asin": "A1", "title": "Blue coffee mug"}\n')
    config = tmp_path / "old.toml"
    config.write_text('[index]\nembedding_model = "all-MiniLM-L6-v2"\n')
    index = str(tmp_path / "i")
    first = CliRunner().invoke(cli, ["--config", str(config), "index", str(catalog),
                                     "--index", index])
    assert first.exit_code == 0, first.output
    catalog.write_text('{"parent_asin": "A1", "title": "Blue coffee mug"}\n'
                       '{"parent_asin": "A2", "title": "Red tea cup"}\n')
    again = CliRunner().invoke(cli, ["index", str(catalog), "--index", index])  # default model
    assert again.exit_code == 0, again.output
    assert (f"note: index {index} was embedded with all-MiniLM-L6-v2; updating it with "
            "all-MiniLM-L6-v2, not the configured bge-small-en-v1.5") in again.output
    assert "1 indexed, 1 unchanged" in again.output
    info = CliRunner().invoke(cli, ["info", "--index", index, "--json"])
    assert json.loads(info.output)["embedding_model"] == "all-MiniLM-L6-v2"
    found = CliRunner().invoke(cli, ["query", "tea cup", "--index", index, "--json"])
    assert found.exit_code == 0, found.output


@pytest.mark.parametrize(("args", "code", "message"), [
    (["query", "shoes", "--index", "/nonexistent/idx"], 1,
     "Error: no index at /nonexistent/idx: run `rex-search index CATALOG` first"),
    (["index", "/nonexistent/c.parquet"], 1,
     "Error: catalog file not found: /nonexistent/c.parquet"),
    # What was asked is invalid: exit 2, as click's usage errors do.
    (["query", "   ", "--index", "/tmp"], 2, "Error: the query is empty"),
    (["--config", "/nonexistent/c.toml", "info"], 2, "Error: config file not found"),
    # A URL's password is never printed, and a broken URL is an error, not a traceback.
    (["index", "--verify", "--index", "opensearch://admin:s3cret@localhost:9200/p"], 1,
     "Error: no embedded index at opensearch://***@localhost:9200/p"),
    (["query", "shoes", "--index", "opensearch://admin:s3cret@[::1/p"], 2,
     "Error: backend URL 'opensearch://***@[::1/p' cannot be parsed"),
])
def test_errors_exit_with_their_code_without_traceback(args: list[str], code: int,
                                                        message: str):
    result = run(*args)
    assert result.returncode == code
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_bad_catalog_column_is_an_error_not_a_traceback(tmp_path: Path):
    catalog = tmp_path / "c.csv"
    catalog.write_text("id,name\n1,x\n")
    result = run("index", str(catalog), "--index", str(tmp_path / "i"))
    assert result.returncode == 1
    assert "Error: c.csv lacks required column(s) parent_asin, title" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2():
    result = run("query")
    assert result.returncode == 2
    assert "Missing argument 'TEXT'" in result.stderr


@pytest.fixture(scope="module")
def few_judgments(tmp_path_factory) -> Path:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from tests.conftest import DEV_JUDGMENTS

    table = pq.read_table(DEV_JUDGMENTS)
    first = sorted(set(table["query_id"].to_pylist()))[:4]
    path = tmp_path_factory.mktemp("judgments") / "few.parquet"
    pq.write_table(table.filter(pc.is_in(table["query_id"], pa.array(first))), path)
    return path


def test_eval_rerank_mode_prints_intervals_and_is_deterministic(few_judgments: Path):
    args = ["eval", str(few_judgments), "--ranker", "bm25", "--ranker", "random",
            "--ranker", "rerank", "--metric", "ndcg@5", "--bootstrap", "200"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("mode rerank: 4 queries")
    assert re.search(r"^bm25\s+\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", first.output, re.M)
    assert "bm25 - random  ndcg@5" in first.output
    second = CliRunner().invoke(cli, args).output
    # Everything but the wall-clock timings line is identical run to run.
    assert second.splitlines()[:-2] == first.output.splitlines()[:-2]
    assert second.splitlines()[-2].startswith("timings (s, vary run to run): bm25 ")
    assert second.splitlines()[-1].startswith("measured on: ")
    assert "onnxruntime 1." in second.splitlines()[-1]
    data = json.loads(CliRunner().invoke(cli, [*args, "--json", "--per-query"]).output)
    assert set(data["rankers"]) == {"bm25", "random", "rerank"}
    assert len(data["rankers"]["bm25"]["per_query"]) == 4


def test_eval_end_to_end_counts_unjudged(few_judgments: Path, small_index_dir: Path):
    result = CliRunner().invoke(cli, ["eval", str(few_judgments), "--mode", "end-to-end",
                                      "--index", str(small_index_dir), "--metric", "ndcg@10",
                                      "--bootstrap", "100", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["rankers"]["pipeline"]
    assert 0 <= data["metrics"]["ndcg@10"]["mean"] <= 1
    assert 0 <= data["unjudged_in_top_k"]["10"] <= 40


def test_eval_bad_options_are_usage_errors(few_judgments: Path):
    result = run("eval", str(few_judgments), "--metric", "ndcg@zero")
    assert result.returncode == 2 and "expected KIND@K" in result.stderr
    result = run("eval", str(few_judgments), "--ranker", "bm99")
    assert result.returncode == 2 and "valid: random, bm25, dense" in result.stderr


def test_inventory_update_reports_unknown_and_rejected(small_index_dir: Path, tmp_path: Path):
    import shutil

    index = tmp_path / "idx"
    shutil.copytree(small_index_dir, index)
    from rex_search.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(index)
    asin = backend.bm25("running shoes", 1)[0].parent_asin
    vectors_before = backend._vectors.ntotal
    backend.close()
    feed = tmp_path / "stock.csv"
    feed.write_text("parent_asin,in_stock,quantity,price\n"
                    f"{asin},false,0,12.50\n"
                    "NOPE000001,true,3,\n"
                    f"{asin},maybe,,\n")
    result = CliRunner().invoke(cli, ["inventory", "update", str(feed), "--index", str(index)])
    assert result.exit_code == 0, result.output
    assert "3 rows, 1 products updated, 1 not in the index, 1 rejected" in result.output
    assert "not in the index: NOPE000001" in result.output
    assert "rejected row 3 (parent_asin=" in result.output
    assert "in_stock: expected true/false, got 'maybe'" in result.output
    backend = EmbeddedBackend(index)
    item = backend.get([asin])[asin]
    assert (item.in_stock, item.quantity, item.product.price) == (False, 0, 12.5)
    assert backend._vectors.ntotal == vectors_before  # no re-embedding, nothing duplicated
    assert backend._bm25.num_docs == backend.count()
    from rex_search.backends.base import Filters

    assert asin not in [h.parent_asin for h in backend.bm25(
        "running shoes", 50, Filters(exclude_out_of_stock=True))]
    backend.close()


def test_version_and_python_dash_m():
    from importlib.metadata import version

    assert run("--version").stdout.strip() == f"rex-search, version {version('rex-search')}"
    as_module = subprocess.run([sys.executable, "-m", "rex_search", "--help"],
                               capture_output=True, text=True)
    assert as_module.returncode == 0
    assert as_module.stdout.startswith("Usage: rex-search [OPTIONS] COMMAND")


def test_a_feed_that_applies_nothing_fails_and_a_judgments_file_is_not_a_catalog(
        small_index_dir: Path, tmp_path: Path):
    import shutil

    index = tmp_path / "idx"
    shutil.copytree(small_index_dir, index)
    feed = tmp_path / "stock.csv"
    feed.write_text("parent_asin,in_stock\nNOPE1,maybe\nNOPE2,true\n")
    result = CliRunner().invoke(cli, ["inventory", "update", str(feed), "--index", str(index)])
    assert result.exit_code == 1
    assert "nothing was applied (1 rejected, 1 not in the index)" in str(result.exception)
    judgments = tmp_path / "judged.jsonl"
    judgments.write_text(json.dumps({"query_string": "mug", "parent_asin": "A1",
                                     "title": "Mug", "relevance_score": 1.0}) + "\n")
    refused = CliRunner().invoke(cli, ["index", str(judgments), "--index", str(index)])
    assert refused.exit_code == 1
    assert ("judged.jsonl is a judgments file (it has query and relevance_score columns), not "
            "a catalog") in str(refused.exception)
