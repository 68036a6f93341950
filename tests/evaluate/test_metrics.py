"""Metrics on hand-worked cases, and against an independent textbook implementation."""

from __future__ import annotations

import math
import random

import pytest

from rex_search.evaluate.metrics import (
    calibration,
    compute,
    dcg,
    mrr,
    ndcg,
    ndcg_topk,
    parse_metric,
    recall,
)

LOG2 = math.log2


def test_dcg_and_ndcg_hand_worked_with_fractional_gains():
    ranked = [0.1, 1.0, 0.0, 0.01]
    assert dcg(ranked, 3) == pytest.approx(0.1 / 1 + 1.0 / LOG2(3) + 0.0)
    judged = [1.0, 1.0, 0.1, 0.01, 0.0]  # one exact product was not ranked in the top 4
    ideal = 1.0 + 1.0 / LOG2(3) + 0.1 / 2.0
    assert ndcg(ranked, judged, 3) == pytest.approx((0.1 + 1.0 / LOG2(3)) / ideal)


def test_ideal_uses_all_judged_candidates_not_just_the_top_k():
    ranked = [0.1, 0.0, 0.0]
    judged = [1.0, 0.1, 0.0, 0.0]
    assert ndcg(ranked, judged, 2) == pytest.approx(0.1 / (1.0 + 0.1 / LOG2(3)))
    # The RexRerankers-script variant normalises by the top k it returned: inflated to 1.0.
    assert ndcg_topk(ranked, 2) == pytest.approx(1.0)


def test_exponential_gain():
    assert ndcg([0.5, 1.0], [1.0, 0.5], 2, exponential=True) == pytest.approx(
        ((2 ** 0.5 - 1) + 1 / LOG2(3)) / (1 + (2 ** 0.5 - 1) / LOG2(3)))


def test_ties_in_judgments_and_perfect_order():
    assert ndcg([1.0, 1.0, 0.0], [1.0, 0.0, 1.0], 3) == pytest.approx(1.0)
    assert ndcg([0.0, 1.0, 1.0], [1.0, 0.0, 1.0], 1) == 0.0


def test_queries_with_nothing_to_find_are_none_not_zero():
    assert ndcg([0.0, 0.0], [0.0, 0.0], 5) is None
    assert ndcg([], [], 5) is None
    assert mrr([0.1], [0.1], 5, threshold=0.5) is None
    assert recall([0.1], [0.1], 5, threshold=0.5) is None
    assert compute(parse_metric("ndcg_topk@5"), [0.0], [0.0]) is None


def test_mrr_and_recall_with_threshold():
    ranked = [0.1, 0.0, 1.0, 1.0]
    judged = [1.0, 1.0, 1.0, 0.1, 0.0]
    assert mrr(ranked, judged, 10, 0.5) == pytest.approx(1 / 3)
    assert mrr(ranked, judged, 2, 0.5) == 0.0
    assert mrr(ranked, judged, 10, 0.1) == 1.0
    assert recall(ranked, judged, 3, 0.5) == pytest.approx(1 / 3)
    assert recall(ranked, judged, 4, 0.5) == pytest.approx(2 / 3)


def test_metric_specs():
    assert str(parse_metric("ndcg@5")) == "ndcg@5"
    assert parse_metric("recall@10").k == 10
    for bad in ("ndcg", "ndcg@0", "map@5", "ndcg@x"):
        with pytest.raises(ValueError, match="expected KIND@K"):
            parse_metric(bad)


def reference_ndcg(ranked: list[float], judged: list[float], k: int) -> float:
    """Textbook nDCG, written independently: DCG = sum rel_i / log2(i + 1), i from 1."""
    def _dcg(gains):
        total = 0.0
        for i in range(1, min(k, len(gains)) + 1):
            total += gains[i - 1] / math.log(i + 1, 2)
        return total
    return _dcg(ranked) / _dcg(sorted(judged)[::-1])


def test_ndcg_agrees_with_an_independent_implementation():
    rng = random.Random(3)
    for _ in range(300):
        size = rng.randint(1, 30)
        judged = [rng.choice([0.0, 0.01, 0.1, 1.0, rng.random()]) for _ in range(size)]
        if not any(judged):
            continue
        ranked = rng.sample(judged, rng.randint(0, len(judged)))
        k = rng.randint(1, 12)
        assert ndcg(ranked, judged, k) == pytest.approx(reference_ndcg(ranked, judged, k))


def test_calibration_hand_worked():
    ece, table = calibration([0.05, 0.15, 0.95, 1.0], [0.0, 1.0, 1.0, 1.0])
    # bins: [0,.1): 0.05 vs 0 -> .05 ; [.1,.2): .15 vs 1 -> .85 ; [.9,1]: .975 vs 1 -> .025 (x2)
    assert ece == pytest.approx(0.25 * 0.05 + 0.25 * 0.85 + 0.5 * 0.025)
    assert [(b.low, b.count) for b in table] == [(0.0, 1), (0.1, 1), (0.9, 2)]
    with pytest.raises(ValueError, match="scores in \\[0, 1\\]"):
        calibration([1.5], [1.0])
