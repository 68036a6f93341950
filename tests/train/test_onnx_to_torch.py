"""The ONNX -> PyTorch converter reproduces the bundled bge-small-en-v1.5 graph exactly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rex_search.catalog.reader import read_catalog
from rex_search.catalog.schema import embedding_text
from rex_search.model_files import bundled_embedder
from tests.conftest import SAMPLE_CATALOG

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rex_search.train.onnx_to_torch import convert

    return convert(bundled_embedder("bge-small-en-v1.5"), tmp_path_factory.mktemp("bge") / "torch")


@pytest.mark.slow  # needs torch and 200 forward passes on both runtimes: ~25 s
def test_converted_weights_agree_with_the_onnx_graph_on_200_catalog_texts(converted: Path):
    from rex_search.train.onnx_to_torch import MAX_ABS_DIFF, agreement

    products = [p for b in read_catalog(SAMPLE_CATALOG) for p in b.products]
    random.Random(0).shuffle(products)
    texts = [embedding_text(p) for p in products[:200]]
    result = agreement(bundled_embedder("bge-small-en-v1.5"), converted, texts)
    assert result["texts"] == 200
    assert result["max_abs_diff"] <= MAX_ABS_DIFF, result


def test_a_converted_folder_trains_as_a_cross_encoder_base_and_keeps_chosen_layers(
        converted: Path):
    from rex_search.rerank.pooled import PooledCrossEncoder

    model = PooledCrossEncoder.from_base(str(converted), 11, layers=(0, 2, 4))
    assert model.config.num_hidden_layers == 3
    import torch

    from rex_search.rerank.pooled import _encoder

    full = _encoder(str(converted))
    kept = model.encoder.encoder.layer
    for mine, theirs in zip(kept, [full.encoder.layer[i] for i in (0, 2, 4)], strict=True):
        assert torch.equal(mine.output.dense.weight, theirs.output.dense.weight)
    with pytest.raises(ValueError, match="has 12 layers; asked for layer 12"):
        PooledCrossEncoder.from_base(str(converted), 11, layers=(0, 12))
