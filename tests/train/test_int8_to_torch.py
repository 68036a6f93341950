"""The int8 -> PyTorch dequantizer gives back the shipped reranker's function: what a student or
a split model is initialised from must score like the model it imitates."""

from __future__ import annotations

from pathlib import Path

import pytest

from rex_search.evaluate.judgments import read_judgments
from rex_search.model_files import FULL_RERANKER, resolve_model
from tests.conftest import DEV_JUDGMENTS

pytest.importorskip("torch")


@pytest.mark.slow  # loads both runtimes and scores 80 pairs on each: ~30 s
def test_the_dequantized_full_model_scores_like_its_int8_graph(tmp_path: Path):
    from rex_search.rerank.pooled import PooledCrossEncoder
    from rex_search.train.int8_to_torch import agreement, convert

    folder = Path(resolve_model(FULL_RERANKER))  # what the students are cut from
    out = convert(folder, tmp_path / "torch")
    model = PooledCrossEncoder.from_pretrained(out)
    assert model.config.num_hidden_layers == 12 and model.head.out_features == 11
    queries = read_judgments(DEV_JUDGMENTS)[:2]
    result = agreement(folder, out, [q.query for q in queries],
                       [[d.as_product() for d in q.docs[:40]] for q in queries])
    assert result["pairs"] == 80
    # int8 against its own dequantized weights: the activations' rounding is all that differs
    assert result["spearman"] >= 0.99 and result["max_abs_diff"] < 0.1, result


def test_a_graph_without_quantized_matmuls_is_refused_by_name(tmp_path: Path):
    from rex_search.model_files import bundled_embedder
    from rex_search.train.int8_to_torch import dequantized_weights

    with pytest.raises(ValueError, match="not a dynamically quantized graph"):
        dequantized_weights(bundled_embedder("bge-small-en-v1.5") / "model.onnx")
