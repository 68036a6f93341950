"""The split cross-encoder (PreTTR): segments apart in the first layers, trained, exported as two
int8 graphs and scored with product states kept -- a real (small) model end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rex_search.evaluate.judgments import JudgedDoc, QueryJudgments
from rex_search.rerank.split_inputs import (
    SplitShape,
    joined_batch,
    plain_tokenizer,
    product_ids,
    query_ids,
    segment_feed,
)

TEXTS = ["Title: Nike running shoe\nDescription: mesh upper, size 10",
         "Title: leather shoe laces\nDescription: 120 cm cord",
         "Title: cast iron skillet\nDescription: 12 inch pan, pre-seasoned",
         "Title: trail running shoe\nDescription: " + "grippy sole " * 40]


@pytest.fixture(scope="module")
def split_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 3-layer model whose first 2 layers run apart, trained briefly, and its int8 export."""
    from rex_search.rerank.export import export_onnx
    from rex_search.train.recipe import TrainConfig, train

    docs = (JudgedDoc("A", "Nike running shoe", "mesh", 1.0),
            JudgedDoc("B", "leather shoe laces", "cord", 0.1),
            JudgedDoc("C", "cast iron skillet", "pan", 0.0))
    queries = [QueryJudgments(f"q{i}", "running shoes", docs) for i in range(4)]
    root = tmp_path_factory.mktemp("split")
    train(queries, TrainConfig(layers=3, split_layers=2, query_tokens=8, product_tokens=24,
                               epochs=1, batch_size=4, head_lr=5e-3),
          out=root / "model", log=lambda _: None)
    export_onnx(root / "model", root / "onnx", quantize=True)
    return root / "model", root / "onnx"


def test_segments_are_cut_to_their_budgets_and_the_product_starts_at_a_fixed_position():
    from rex_search.model_files import BUNDLED_RERANKER, resolve_model

    tokenizer = plain_tokenizer(str(Path(resolve_model(BUNDLED_RERANKER)) / "tokenizer.json"))
    shape = SplitShape(split_layers=2, query_tokens=6, product_tokens=10)
    short, long = (query_ids(tokenizer, q, shape) for q in ("tent", "a very long query " * 5))
    assert len(short) < 6 and len(long) == 6
    assert tokenizer.id_to_token(long[0]) == "[CLS]" and tokenizer.id_to_token(long[-1]) == "[SEP]"
    products = product_ids(tokenizer, TEXTS, shape)
    assert max(len(p) for p in products) == 10
    assert all(tokenizer.id_to_token(p[-1]) == "[SEP]" and tokenizer.id_to_token(p[0]) != "[CLS]"
               for p in products)
    batch = joined_batch([short, long], products[:2], shape)
    # the product's first token sits at position query_tokens whatever the query's length
    for row, query in enumerate((short, long)):
        assert batch["position_ids"][row, len(query)] == 6
        assert batch["token_type_ids"][row, len(query) - 1] == 0
        assert batch["token_type_ids"][row, len(query)] == 1
    assert segment_feed(products[0], 1, shape)["position_ids"][0, 0] == 6


def test_the_first_layers_see_one_segment_only(split_model: tuple[Path, Path]):
    """States of the joined pair after the split layers equal each segment run alone: what
    lets a product's states be computed once for every query."""
    import torch
    from transformers import AutoTokenizer

    from rex_search.rerank.pooled import PooledCrossEncoder

    model = PooledCrossEncoder.from_pretrained(split_model[0])
    shape = SplitShape.of(model.config)
    assert shape is not None
    tokenizer = plain_tokenizer(AutoTokenizer.from_pretrained(split_model[0]))
    query = query_ids(tokenizer, "running shoes", shape)
    products = product_ids(tokenizer, TEXTS[:2], shape)

    def run(feed: dict[str, np.ndarray]) -> torch.Tensor:
        tensors = {k: torch.from_numpy(v) for k, v in feed.items()}
        with torch.inference_mode():
            return model.split_forward(**tensors, last=shape.split_layers)

    joined = run(joined_batch([query, query], products, shape))
    alone_query = run(segment_feed(query, 0, shape))[0]
    for row, product in enumerate(products):
        alone = run(segment_feed(product, 1, shape))[0]
        assert torch.allclose(joined[row, :len(query)], alone_query, atol=1e-5)
        assert torch.allclose(joined[row, len(query):len(query) + len(product)], alone,
                              atol=1e-5)


def test_the_exported_split_model_scores_like_pytorch_and_never_by_batch_or_cache(
        split_model: tuple[Path, Path]):
    import torch
    from transformers import AutoTokenizer

    from rex_search.rerank.base import load_reranker
    from rex_search.rerank.cross_encoder import CrossEncoderReranker, scores_from_logits
    from rex_search.rerank.pooled import PooledCrossEncoder
    from rex_search.rerank.split_scorer import SplitOnnxCrossEncoder
    from rex_search.train.recipe import encode_pairs

    model_dir, onnx_dir = split_model
    assert {p.name for p in onnx_dir.glob("*.int8.onnx")} == {"prefix.int8.onnx",
                                                              "suffix.int8.onnx"}
    scorer = load_reranker(str(onnx_dir))
    assert isinstance(scorer, SplitOnnxCrossEncoder) and scorer.cache is not None
    scorer.cache.max_entries = 0  # every score below is computed, none remembered
    model = PooledCrossEncoder.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.inference_mode():
        logits = model(**encode_pairs(model, tokenizer, ["running shoes"] * 4, TEXTS, 64))
    reference = scores_from_logits(logits.numpy())
    torch_scorer = CrossEncoderReranker(str(model_dir), cache_entries=0, batch_size=3)
    assert np.allclose(torch_scorer.score_texts("running shoes", TEXTS), reference, atol=1e-5)
    cold = np.array(scorer.score_texts("running shoes", TEXTS))
    assert np.max(np.abs(cold - reference)) < 0.02  # int8 against fp32
    assert scorer.products.misses == 4 and len(scorer.products) == 4
    warm = scorer.score_texts("running shoes", TEXTS)
    alone = [scorer.score_texts("running shoes", [t])[0] for t in reversed(TEXTS)][::-1]
    assert warm == cold.tolist() == alone  # neither the batch nor the kept states change a score
    assert scorer.products.misses == 4  # the products' states were computed once

    fresh = SplitOnnxCrossEncoder(str(onnx_dir), cache_entries=0)
    assert fresh.prepare(TEXTS + TEXTS[:1]) == 4 and fresh.prepare(TEXTS) == 0
    assert fresh.score_texts("running shoes", TEXTS) == cold.tolist()


def test_a_split_needs_layers_on_both_sides():
    from rex_search.model_files import resolve_model
    from rex_search.rerank.pooled import PooledCrossEncoder

    model = PooledCrossEncoder.from_base(resolve_model("all-MiniLM-L6-v2"), 11, layers=2)
    for bad in (0, 2):
        with pytest.raises(ValueError, match="split layers must be 1..1"):
            model.make_split(bad, 8, 24)


def test_the_export_check_scores_the_split_graphs_against_pytorch(split_model: tuple[Path, Path]):
    from rex_search.rerank.export import check_agreement

    pairs = [("running shoes", t) for t in TEXTS] + [("skillet", t) for t in TEXTS]
    (result,) = check_agreement(str(split_model[0]), split_model[1], pairs, min_spearman=0.9)
    assert result.file == "prefix.int8.onnx+suffix.int8.onnx" and result.pairs == 8
    assert result.accepted and result.spearman > 0.9


def test_a_refused_int8_prefix_falls_back_to_the_fp32_prefix_and_a_refused_pair_is_removed(
        split_model: tuple[Path, Path], tmp_path: Path):
    from rex_search.rerank.base import load_reranker
    from rex_search.rerank.cross_encoder import CrossEncoderReranker
    from rex_search.rerank.export import check_agreement
    from rex_search.rerank.split_scorer import SplitOnnxCrossEncoder

    only_fp32 = tmp_path / "fp32-prefix"
    shutil.copytree(split_model[1], only_fp32)
    (only_fp32 / "prefix.int8.onnx").unlink()
    model = load_reranker(str(only_fp32))
    assert isinstance(model, SplitOnnxCrossEncoder) and model.prefix_file == "prefix.onnx"
    int8_prefix = SplitOnnxCrossEncoder(str(split_model[1]), cache_entries=0)
    assert int8_prefix.prefix_file == "prefix.int8.onnx"
    reference = CrossEncoderReranker(str(split_model[0]), cache_entries=0)
    fp32_gap = np.abs(np.subtract(model.score_texts("running shoes", TEXTS),
                                  reference.score_texts("running shoes", TEXTS)))
    assert fp32_gap.max() < 0.02
    pairs = [("running shoes", t) for t in TEXTS]
    (result,) = check_agreement(str(split_model[0]), only_fp32, pairs, min_spearman=0.9)
    assert result.file == "prefix.onnx+suffix.int8.onnx" and result.accepted

    both = tmp_path / "both"
    shutil.copytree(split_model[1], both)
    results = check_agreement(str(split_model[0]), both, pairs, min_spearman=1.01)
    assert [r.file for r in results] == ["prefix.int8.onnx+suffix.int8.onnx",
                                         "prefix.onnx+suffix.int8.onnx"]
    assert not any(r.accepted for r in results)
    assert not any((both / f).exists() for f in ("prefix.int8.onnx", "suffix.int8.onnx",
                                                 "prefix.onnx"))


def test_a_pipeline_prepares_stored_products_and_ranks_the_same(split_model: tuple[Path, Path],
                                                                 small_index, embedder):
    """`prepare_reranker` (what `serve` runs at startup) fills the product states of stored
    products; a prepared pipeline ranks exactly as one that computes them per query."""
    from rex_search.config import RerankConfig
    from rex_search.pipelines.pipeline import SearchPipeline
    from rex_search.rerank.split_scorer import SplitOnnxCrossEncoder

    def pipeline(entries: int) -> SearchPipeline:
        scorer = SplitOnnxCrossEncoder(str(split_model[1]), cache_entries=0,
                                       product_entries=entries)
        return SearchPipeline(small_index, embedder, scorer, cache_size=0,
                              rerank=RerankConfig(window=20))

    prepared, cold = pipeline(10), pipeline(0)
    assert prepared.prepare_reranker() == 10 and len(prepared.reranker.products) == 10
    assert cold.prepare_reranker() == 0
    for query in ("running shoes", "usb c charger"):
        a, b = prepared.search(query, size=10), cold.search(query, size=10)
        assert [h.parent_asin for h in a.hits] == [h.parent_asin for h in b.hits]
        assert [h.score for h in a.hits] == [h.score for h in b.hits]
