from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    assert "reranker embedding-cosine(all-MiniLM-L6-v2)" in table.output
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


def test_info_describes_the_index(small_index_dir: Path):
    result = CliRunner().invoke(cli, ["info", "--index", str(small_index_dir), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["embedding_model"] == "all-MiniLM-L6-v2"


def test_index_command_reports_rejections(tmp_path: Path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"parent_asin": "A1", "title": "Blue mug"}\n'
                       '{"parent_asin": "A2", "title": "", "price": "3"}\n')
    result = CliRunner().invoke(cli, ["index", str(catalog), "--index", str(tmp_path / "i")])
    assert result.exit_code == 0, result.output
    assert "2 rows read, 1 indexed, 0 unchanged, 1 rejected" in result.output
    assert "rejected row 2 (parent_asin=A2): title: expected a non-empty string" in result.output
    again = CliRunner().invoke(cli, ["index", str(catalog), "--index", str(tmp_path / "i"),
                                     "--json"])
    summary = json.loads(again.output)
    assert (summary["indexed"], summary["unchanged"]) == (0, 1)


@pytest.mark.parametrize(("args", "message"), [
    (["query", "shoes", "--index", "/nonexistent/idx"],
     "Error: no index at /nonexistent/idx: run `rex-search index CATALOG` first"),
    (["index", "/nonexistent/c.parquet"], "Error: catalog file not found: /nonexistent/c.parquet"),
    (["query", "   ", "--index", "/tmp"], "Error: the query is empty"),
    (["--config", "/nonexistent/c.toml", "info"], "Error: config file not found"),
])
def test_errors_exit_1_without_traceback(args: list[str], message: str):
    result = run(*args)
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


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
