"""Asymmetric embedders get their own prefixes and pooling (embedding.json)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from rex_search.errors import ModelError
from rex_search.indexer.embed import Embedder, Prompting
from rex_search.model_files import bundled_embedder
from rex_search.onnx_session import open_session
from tests.conftest import REPO

MODELS = REPO / "rex_search" / "models"


def _raw(folder: Path, text: str) -> np.ndarray:
    """The graph's token states for one text, by hand: tokenizer + ONNX Runtime."""
    from tokenizers import Tokenizer

    encoded = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text)
    feed = {"input_ids": np.array([encoded.ids]), "attention_mask":
            np.array([encoded.attention_mask]), "token_type_ids": np.array([encoded.type_ids])}
    return open_session(folder / "model.onnx").run(None, feed)[0][0]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_e5_prefixes_query_and_passage_and_mean_pools():
    if not (MODELS / "e5-small-v2-onnx").is_dir():
        pytest.skip("e5-small-v2 is not shipped and not built here (python "
                    "tools/build_models.py e5-small-v2)")
    folder, embedder = bundled_embedder("e5-small-v2"), Embedder("e5-small-v2")
    query = embedder.encode_queries(["running shoes"])[0]
    passage = embedder.encode(["running shoes"])[0]
    assert np.allclose(query, _unit(_raw(folder, "query: running shoes").mean(0)), atol=1e-5)
    assert np.allclose(passage, _unit(_raw(folder, "passage: running shoes").mean(0)),
                       atol=1e-5)
    assert not np.allclose(query, passage, atol=1e-3)


def test_bge_pools_the_cls_token_and_instructs_only_the_query():
    folder = bundled_embedder("bge-small-en-v1.5")
    embedder = Embedder("BAAI/bge-small-en-v1.5")
    instruction = json.loads((folder / "embedding.json").read_text())["query_prefix"]
    assert np.allclose(embedder.encode_queries(["usb c charger"])[0],
                       _unit(_raw(folder, instruction + "usb c charger")[0]), atol=1e-5)
    assert np.allclose(embedder.encode(["usb c charger"])[0],
                       _unit(_raw(folder, "usb c charger")[0]), atol=1e-5)


def test_a_folder_without_embedding_json_is_mean_pooled_without_prefixes():
    assert Prompting.of_folder(bundled_embedder()) == Prompting("mean", "", "")
    embedder = Embedder("all-MiniLM-L6-v2")
    assert np.allclose(embedder.encode(["laptop bag"]), embedder.encode_queries(["laptop bag"]))


def test_a_local_onnx_folder_runs_without_torch_and_a_bad_embedding_json_is_named(
        tmp_path: Path):
    local = tmp_path / "my-bge"
    shutil.copytree(bundled_embedder("bge-small-en-v1.5"), local)
    embedder = Embedder(str(local))
    assert embedder.runtime == "onnx" and embedder.prompting.pooling == "cls"
    (local / "embedding.json").write_text('{"pooling": "max"}')
    with pytest.raises(ModelError, match=re.escape("pooling must be one of mean, cls, got "
                                                   "'max'")):
        Embedder(str(local))
    (local / "embedding.json").write_text("[1, 2]")
    with pytest.raises(ModelError, match="embedding.json: not a JSON object"):
        Embedder(str(local))
