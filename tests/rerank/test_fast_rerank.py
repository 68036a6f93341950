"""ONNX Runtime path, agreement check, cache, dedupe, batching and deadlines, on the real
MiniLM architecture (seeded untrained head: mechanics and agreement, not quality)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rex_search.config import RerankConfig, RulesConfig
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.rerank.cross_encoder import CrossEncoderReranker, OnnxCrossEncoder
from rex_search.rerank.export import check_agreement, export_onnx, spearman
from tests.conftest import cosine_reranker
from tests.rerank.test_rerankers import make_model

QUERY = "running shoes"
TEXTS = ["Title: Nike running shoe\nDescription: mesh upper", "Title: shoe laces\nDescription: x",
         "Title: cast iron skillet\nDescription: " + "heavy pan " * 60,
         "Title: trail running shoes\nDescription: grippy", "Title: socks\nDescription: wool"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    source = make_model(tmp_path_factory, 1)
    out = tmp_path_factory.mktemp("onnx")
    export_onnx(str(source), out, quantize=True)
    return source, out


def test_onnx_scores_match_pytorch_and_need_no_torch_model(exported):
    source, out = exported
    torch_scores = CrossEncoderReranker(str(source), cache_entries=0).score_texts(QUERY, TEXTS)
    onnx = load_reranker(str(out))
    assert isinstance(onnx, OnnxCrossEncoder) and onnx.runtime == "onnx"
    assert onnx.score_texts(QUERY, TEXTS) == pytest.approx(torch_scores, abs=1e-5)


def test_the_int8_export_quantizes_weights_to_seven_bits(exported):
    from tests.rerank.test_bundled import int8_weight_range

    low, high = int8_weight_range(exported[1] / "model.int8.onnx")
    assert low >= -64 and high <= 64 and high - low > 64  # reduced range, yet used


def test_agreement_check_keeps_or_refuses_variants(exported):
    source, out = exported
    pairs = [(QUERY, t) for t in TEXTS] + [("skillet", t) for t in TEXTS]
    results = {a.variant: a for a in check_agreement(str(source), out, pairs, min_spearman=0.99)}
    assert results["fp32"].accepted and results["fp32"].spearman == pytest.approx(1.0)
    assert results["fp32"].max_abs_diff < 1e-5
    assert (out / "agreement.json").exists()
    strict = check_agreement(str(source), out, pairs, min_spearman=1.01)  # nothing can pass
    assert not any(a.accepted for a in strict)
    assert not (out / "model.onnx").exists()  # a refused variant is removed


def test_spearman_hand_worked():
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254, abs=1e-6)


def test_cache_dedupe_and_token_budget(tmp_path_factory):
    source = make_model(tmp_path_factory, 11)
    scorer = CrossEncoderReranker(str(source), batch_size=32, max_batch_tokens=64)
    first = scorer.score_texts(QUERY, TEXTS + TEXTS[:2])  # two duplicates
    assert first[5:] == first[:2]
    processed = scorer.tokens_processed
    assert scorer.cache.hit_rate == 0.0 and len(scorer.cache) == 5
    again = scorer.score_texts(QUERY, TEXTS)
    assert again == first[:5]
    assert scorer.tokens_processed == processed  # all from the cache
    assert scorer.cache.hit_rate == pytest.approx(5 / 10)
    lone = CrossEncoderReranker(str(source), max_batch_tokens=64, cache_entries=0)
    batches = []
    original = lone._logits
    lone._logits = lambda batch: (batches.append(batch["input_ids"].shape), original(batch))[1]
    lone.score_texts(QUERY, TEXTS)
    assert all(rows * width <= 64 or rows == 1 for rows, width in batches)
    assert len(batches) > 1


class SlowReranker:
    """A real reranker made slow (fault injection): 40 ms more per call."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.kind = inner, "slow " + inner.name, inner.kind

    def score(self, query, products):
        time.sleep(0.04)
        return self.inner.score(query, products)


def test_deadline_reranks_best_first_and_keeps_fused_order_below(small_index, embedder):
    reranker = SlowReranker(cosine_reranker(small_index, embedder))
    pipeline = SearchPipeline(small_index, embedder, reranker,
                              rerank=RerankConfig(window=100, deadline_batch=8),
                              rules=RulesConfig(collapse="off"))  # every scored hit shown
    # Retrieval alone, timed warm (the first call also embeds the query and loads caches), so
    # neither a cold start nor a busy machine decides the outcome: scoring all 13 batches takes
    # >= 520 ms, the budget leaves ~200 ms for it.
    pipeline.search("laptop bag", size=100, rerank=False)
    started = time.perf_counter()  # another cache key (budget), the same retrieval work
    pipeline.search("laptop bag", size=100, rerank=False, budget_ms=600_000)
    retrieval_ms = (time.perf_counter() - started) * 1000
    result = pipeline.search("laptop bag", size=100, budget_ms=retrieval_ms + 200)
    assert result.degraded and 0 < result.reranked < 100
    assert result.degraded_reason == (f"latency budget spent: reranked {result.reranked} of "
                                      "100 candidates")
    scored = [h for h in result.hits if h.explanation.rerank_score is not None]
    assert len(scored) == result.reranked
    assert {h.explanation.fused_rank for h in scored} == set(range(1, result.reranked + 1))
    tail = [h.explanation.fused_rank for h in result.hits if h.explanation.rerank_score is None]
    assert tail == sorted(tail)
    full = pipeline.search("laptop bag", size=10)
    assert not full.degraded and full.reranked == 100
