"""Pinning a bundled reranker's file hashes in the code that verifies them."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from rex_search import model_files
from rex_search.train.bundle import pin_hashes


def pinned_table(source: Path) -> dict[str, dict[str, str]]:
    """BUNDLED_RERANKERS_SHA256 as the rewritten module defines it (parsed: the module must
    still be valid Python)."""
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == \
                "BUNDLED_RERANKERS_SHA256":
            return ast.literal_eval(node.value)
    raise AssertionError(f"{source} no longer defines BUNDLED_RERANKERS_SHA256")


def test_a_rebuilt_model_replaces_only_its_own_entry(tmp_path: Path):
    source = tmp_path / "model_files.py"
    shutil.copy(model_files.__file__, source)
    pin_hashes(model_files.FULL_RERANKER, {"model.int8.onnx": "ab" * 32}, source)
    table = pinned_table(source)
    assert table[model_files.FULL_RERANKER] == {"model.int8.onnx": "ab" * 32}
    assert table[model_files.STUDENT_RERANKER] == \
        model_files.BUNDLED_RERANKERS_SHA256[model_files.STUDENT_RERANKER]


def test_a_new_model_is_added_and_the_rest_of_the_module_is_kept(tmp_path: Path):
    source = tmp_path / "model_files.py"
    shutil.copy(model_files.__file__, source)
    pin_hashes("rex-reranker-new", {"model.int8.onnx": "cd" * 32, "config.json": "ef" * 32},
               source)
    table = pinned_table(source)
    assert list(table) == [*model_files.BUNDLED_RERANKERS_SHA256, "rex-reranker-new"]
    assert table["rex-reranker-new"] == {"model.int8.onnx": "cd" * 32, "config.json": "ef" * 32}
    original = Path(model_files.__file__).read_text()
    rewritten = source.read_text()
    table_start = original.index("BUNDLED_RERANKERS_SHA256 = {")
    assert rewritten[:table_start] == original[:table_start]
    assert rewritten.endswith(original[original.index("\n}\n", table_start):])
