"""Hostile and malformed input is refused with a clear message, never a traceback: queries,
catalog files, model folders (real reader, real pipeline, real models)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rex_search.catalog.reader import read_catalog
from rex_search.cli import cli
from rex_search.errors import ModelError, QueryError
from rex_search.query import check_query, parse_query


def test_a_zero_denominator_is_not_a_size():
    parsed = parse_query("1/0 inch pipe")
    assert parsed.sizes == () and "pipe" in parsed.text
    assert parse_query("1/2 inch pipe").sizes[0].value == 0.5


@pytest.mark.parametrize(("query", "message"), [
    ("", "non-empty string"), ("   ", "non-empty string"), ("x" * 513, "at most 512"),
    ("shoes \udcff", "not valid Unicode text"), (None, "non-empty string")])
def test_unsearchable_queries_are_refused(query, message):
    with pytest.raises(QueryError, match=message):
        check_query(query)


def test_many_negations_parse_in_linear_time():
    started = time.perf_counter()
    parsed = parse_query(" ".join(["no red"] * 85))  # 510 characters, 85 negations
    assert time.perf_counter() - started < 2.0  # was ~20 s at 2,000 characters (quadratic)
    assert parsed.ignored_negations.count("red") == 85


def test_cli_refuses_undecodable_query_bytes(small_index_dir):
    result = CliRunner().invoke(cli, ["query", "shoes \udcff", "--index", str(small_index_dir),
                                      "--reranker", "embedding-cosine"])
    assert result.exit_code != 0
    assert "not valid Unicode text" in str(result.exception)


def test_long_query_is_reranked_not_degraded(small_index_dir, embedder):
    from rex_search.backends.embedded import EmbeddedBackend
    from rex_search.pipelines.pipeline import SearchPipeline
    from rex_search.rerank.base import load_reranker

    backend = EmbeddedBackend(small_index_dir)
    pipeline = SearchPipeline(backend, embedder, load_reranker("rex-reranker-bge-small", embedder))
    long_query = " ".join(["comfortable lightweight breathable running shoes"] * 20)[:500]
    result = pipeline.search(long_query, size=5)
    backend.close()
    assert not result.degraded and result.reranked > 0


def rows(path: Path) -> tuple[list, list]:
    products, rejected = [], []
    for batch in read_catalog(path):
        products += batch.products
        rejected += batch.rejected
    return products, rejected


def test_jsonl_with_invalid_utf8_and_surrogates_loses_only_those_rows(tmp_path: Path):
    path = tmp_path / "c.jsonl"
    good = json.dumps({"parent_asin": "A", "title": "Mug"}).encode()
    lines = [good, b'{"parent_asin": "B", "title": "Caf\xe9"}',
             b'{"parent_asin": "C", "title": "bad \\ud800 title"}',
             json.dumps({"parent_asin": "D", "title": "Cup", "average_rating": "inf"}).encode(),
             json.dumps({"parent_asin": "E", "title": "Pan", "price": 1e308}).encode(),
             json.dumps({"parent_asin": "F", "title": "Pot"}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    products, rejected = rows(path)
    assert [p.parent_asin for p in products] == ["A", "F"]
    reasons = {r.row: f"{r.field}: {r.reason}" for r in rejected}
    assert "not valid UTF-8" in reasons[2]
    assert reasons[3].startswith("title: not valid Unicode text")
    assert reasons[4].startswith("average_rating: expected a number between 0 and 5")
    assert reasons[5].startswith("price: expected a price between 0 and")


def test_a_bad_csv_row_after_the_first_block_keeps_every_valid_row(tmp_path: Path):
    path = tmp_path / "c.csv"
    body = "".join(f'P{i},"Product {i} {"x" * 300}"\n' for i in range(5000))  # ~1.5 MB
    path.write_text("parent_asin,title\n" + body + 'BAD,"one",too,many\n' + "Z,Last\n")
    products, rejected = rows(path)
    assert len(products) == 5001 and products[-1].parent_asin == "Z"
    assert len(rejected) == 1 and "malformed CSV" in rejected[0].reason


def test_a_corrupt_parquet_row_group_loses_only_its_rows(tmp_path: Path):
    path = tmp_path / "c.parquet"
    table = pa.table({"parent_asin": [f"P{i}" for i in range(300)],
                      "title": [f"Product number {i} " * 5 for i in range(300)]})
    pq.write_table(table, path, row_group_size=100, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(1).column(1)
    data = bytearray(path.read_bytes())
    start = column.data_page_offset + 20
    data[start:start + 200] = b"\xff" * 200  # smash the second group's title page
    path.write_bytes(bytes(data))
    products, rejected = rows(path)
    assert len(products) == 200 and len(rejected) == 100
    assert "unreadable parquet data in row group 1" in rejected[0].reason


def test_index_command_refusals(tmp_path: Path, small_catalog: Path):
    runner = CliRunner()
    file_index = tmp_path / "a-file"
    file_index.write_text("not a directory")
    result = runner.invoke(cli, ["index", str(small_catalog), "--index", str(file_index)])
    assert result.exit_code != 0 and "is a file, not a directory" in str(result.exception)
    result = runner.invoke(cli, ["index", str(tmp_path), "--index", str(tmp_path / "ix")])
    assert "is a directory" in str(result.exception)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = runner.invoke(cli, ["index", str(empty), "--index", str(tmp_path / "ix2")])
    assert result.exit_code != 0 and "has no rows" in str(result.exception)


def test_a_failed_run_keeps_the_previous_rejection_report(tmp_path: Path, embedder):
    from rex_search.backends.embedded import EmbeddedBackend
    from rex_search.indexer.indexer import index_catalog

    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"parent_asin": "A", "title": "Mug"}\n{"parent_asin": "B"}\n'
                       '{"parent_asin": "A", "title": "Mug v2"}\n')
    backend = EmbeddedBackend(tmp_path / "ix", dim=embedder.dim, model_id=embedder.model_id)
    summary = index_catalog(catalog, backend, embedder, report_dir=backend.path)
    assert summary.duplicates == 1 and summary.indexed == 1 and summary.rejected == 1
    report = (backend.path / "rejected-rows.jsonl").read_text()

    class Broken:  # an embedder that dies mid-run
        model_id, dim = embedder.model_id, embedder.dim

        def encode(self, texts, progress=None):
            raise RuntimeError("killed")

    catalog.write_text('{"parent_asin": "C", "title": "Cup"}\n{"parent_asin": "D"}\n')
    with pytest.raises(RuntimeError):
        index_catalog(catalog, backend, Broken(), report_dir=backend.path)
    backend.close()
    assert (backend.path / "rejected-rows.jsonl").read_text() == report


def test_bundled_reranker_loads_only_its_verified_file(tmp_path: Path, embedder, monkeypatch):
    from rex_search import model_files
    from rex_search.rerank.base import load_reranker

    copy = tmp_path / model_files.FULL_RERANKER
    shutil.copytree(model_files.bundled_reranker(model_files.FULL_RERANKER), copy)
    (copy / "model.onnx").write_bytes(b"not a model")  # planted beside the verified file
    monkeypatch.setattr(model_files, "_MODELS_DIR", tmp_path)
    model_files._verified.discard(copy)
    reranker = load_reranker("rex-reranker-bge-small", embedder)
    assert reranker.runtime == "onnx-int8"
    card = json.loads((copy / "model_card.json").read_text())
    card["files_sha256"] = {}
    (copy / "model_card.json").write_text(json.dumps(card))
    model_files._verified.discard(copy)
    with pytest.raises(ModelError, match="was altered"):
        load_reranker("rex-reranker-bge-small", embedder)


def test_a_model_folder_without_its_tokenizer_is_refused(tmp_path: Path, embedder):
    from rex_search import model_files
    from rex_search.rerank.base import load_reranker

    copy = tmp_path / "model"
    shutil.copytree(model_files.bundled_reranker(), copy)
    (copy / "tokenizer.json").unlink()
    (copy / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
    with pytest.raises(ModelError, match="tokenizer of model .* has 5 tokens but the model was "
                                         "built for 30522"):
        load_reranker(str(copy), embedder)


def test_filters_are_validated_once_for_every_caller():
    from rex_search.backends.base import Filters
    from rex_search.errors import FilterError

    filters = Filters(exclude_brands=["Nike"], brands=("Adidas",))
    assert filters.exclude_brands == ("Nike",) and hash(filters)  # lists accepted, hashable
    with pytest.raises(FilterError, match=r"filters.brands must be a list of strings"):
        Filters(brands="adidas")
    with pytest.raises(FilterError, match=r"filters.max_price must be a number >= 0"):
        Filters(max_price=float("inf"))
    with pytest.raises(FilterError, match=r"filters.in_stock must be true, false or null"):
        Filters(in_stock="yes")


def test_catalog_text_cannot_drive_the_terminal(tmp_path: Path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text(json.dumps({"parent_asin": "A", "title": "Mug \x1b]0;pwned\x07 blue",
                                   "store": "Acme\x1b[31m"}) + "\n")
    runner = CliRunner()
    index = str(tmp_path / "ix")
    assert runner.invoke(cli, ["index", str(catalog), "--index", index]).exit_code == 0
    shown = runner.invoke(cli, ["query", "mug", "--index", index, "--reranker",
                                "embedding-cosine"])
    assert shown.exit_code == 0, shown.output
    assert "\x1b" not in shown.output and "\\x1b]0;pwned\\x07" in shown.output
