"""Ranking metrics on float gains in [0, 1], and score calibration.

Spec strings name metrics everywhere: ``ndcg@5``, ``ndcg_exp@5``, ``ndcg_topk@5``, ``mrr@10``,
``recall@10``.

nDCG (Järvelin & Kekäläinen, 2002), with ranks i = 1..k:
    DCG@k  = sum_{i<=k} g(rel_i) / log2(i + 1)
    nDCG@k = DCG@k / IDCG@k
where g(r) = r (``ndcg``, linear gain: with ESCI gains this is the ESCI task-1 metric) or
g(r) = 2^r - 1 (``ndcg_exp``), and IDCG@k is the DCG@k of **all judged candidates of the query**
sorted by relevance. ``ndcg_topk`` computes IDCG only over the gains of the predicted top k (as
RexRerankers' released evaluation scripts do); it can only be >= ndcg and is offered so numbers
can be compared with theirs, not as the project's headline metric.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rex_search.errors import ConfigError

METRIC_KINDS = ("ndcg", "ndcg_exp", "ndcg_topk", "mrr", "recall")


@dataclass(frozen=True)
class MetricSpec:
    kind: str
    k: int

    def __str__(self) -> str:
        return f"{self.kind}@{self.k}"


def parse_metric(spec: str) -> MetricSpec:
    kind, _, k = spec.partition("@")
    if kind not in METRIC_KINDS or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"bad metric {spec!r}: expected KIND@K with KIND one of "
                         f"{', '.join(METRIC_KINDS)} and K >= 1, e.g. ndcg@5")
    return MetricSpec(kind, int(k))


def dcg(gains: Sequence[float], k: int, exponential: bool = False) -> float:
    return sum(((2.0 ** g - 1.0) if exponential else g) / math.log2(i + 2)
               for i, g in enumerate(gains[:k]))


def ndcg(ranked: Sequence[float], judged: Sequence[float], k: int,
         exponential: bool = False) -> float | None:
    """nDCG@k of the ranked gains against all judged gains; None when no gain is positive."""
    ideal = dcg(sorted(judged, reverse=True), k, exponential)
    return None if ideal <= 0 else dcg(ranked, k, exponential) / ideal


def ndcg_topk(ranked: Sequence[float], k: int) -> float | None:
    """RexRerankers-script variant: ideal DCG over the predicted top k only (inflated)."""
    ideal = dcg(sorted(ranked[:k], reverse=True), k)
    return None if ideal <= 0 else dcg(ranked, k) / ideal


def mrr(ranked: Sequence[float], judged: Sequence[float], k: int,
        threshold: float) -> float | None:
    """1 / rank of the first gain >= threshold within k (0 if none); None if none is judged so."""
    if not any(g >= threshold for g in judged):
        return None
    return next((1.0 / (i + 1) for i, g in enumerate(ranked[:k]) if g >= threshold), 0.0)


def recall(ranked: Sequence[float], judged: Sequence[float], k: int,
           threshold: float) -> float | None:
    """Share of the judged gains >= threshold that appear in the top k."""
    relevant = sum(g >= threshold for g in judged)
    if relevant == 0:
        return None
    return sum(g >= threshold for g in ranked[:k]) / relevant


def compute(spec: MetricSpec, ranked: Sequence[float], judged: Sequence[float],
            threshold: float = 0.5) -> float | None:
    """One query's value of ``spec``; None when the query has nothing to find for it."""
    if spec.kind == "ndcg":
        return ndcg(ranked, judged, spec.k)
    if spec.kind == "ndcg_exp":
        return ndcg(ranked, judged, spec.k, exponential=True)
    if spec.kind == "ndcg_topk":
        return ndcg_topk(ranked, spec.k) if any(g > 0 for g in judged) else None
    if spec.kind == "mrr":
        return mrr(ranked, judged, spec.k, threshold)
    return recall(ranked, judged, spec.k, threshold)


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_score: float
    mean_relevance: float


def calibration(scores: Sequence[float], relevance: Sequence[float],
                bins: int = 10) -> tuple[float, list[ReliabilityBin]]:
    """Expected calibration error of [0, 1] scores against [0, 1] relevance, equal-width bins.

    ECE = sum_b (n_b / N) * |mean score_b - mean relevance_b|; a score of exactly 1 falls in the
    last bin. Returns (ECE, reliability table of the non-empty bins).
    """
    if len(scores) != len(relevance) or not scores:
        raise ValueError("calibration needs equally many scores and relevance values (>= 1)")
    grouped: list[list[tuple[float, float]]] = [[] for _ in range(bins)]
    for s, r in zip(scores, relevance, strict=True):
        if not 0.0 <= s <= 1.0:
            raise ValueError(f"calibration needs scores in [0, 1], got {s}")
        grouped[min(int(s * bins), bins - 1)].append((s, r))
    table, ece = [], 0.0
    for b, members in enumerate(grouped):
        if not members:
            continue
        mean_s = sum(s for s, _ in members) / len(members)
        mean_r = sum(r for _, r in members) / len(members)
        ece += len(members) / len(scores) * abs(mean_s - mean_r)
        table.append(ReliabilityBin(b / bins, (b + 1) / bins, len(members), mean_s, mean_r))
    return ece, table
