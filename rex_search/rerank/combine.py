"""Score combination: the reranker's score blended with first-stage signals, per query.

The same idea as OpenSearch's normalization processor, Elasticsearch's ``linear`` retriever
and its rescorer's ``query_weight``/``rescore_query_weight``: each signal is min-max
normalised over the query's scored candidates, then

    final(d) = sum over signals s of w_s * norm_s(d),   weights summing to 1,

so the final score stays in [0, 1] (the rules' margins keep their meaning). Signals:
``rerank`` (the reranker's score), ``dense`` (embedding cosine), ``bm25`` (BM25 score, 0 for a
candidate BM25 did not retrieve) and ``fused`` (the retrieval fusion score). With weight only
on ``rerank`` the reranker's own score is used unnormalised: no combination at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rex_search.errors import ConfigError

SIGNALS = ("rerank", "dense", "bm25", "fused")


@dataclass(frozen=True)
class Combined:
    score: float
    contributions: dict[str, float]  # signal -> w_s * norm_s(d); they add up to ``score``


def check_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Validated weights normalised to sum 1; unknown signals and negative weights are errors."""
    unknown = sorted(set(weights) - set(SIGNALS))
    if unknown:
        raise ConfigError(f"[rerank] combine: unknown signal(s) {', '.join(unknown)}; "
                          f"valid: {', '.join(SIGNALS)}")
    bad = {k: v for k, v in weights.items()
           if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v)
           or v < 0}
    if bad:
        raise ConfigError(f"[rerank] combine: weights must be finite numbers >= 0, got {bad}")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ConfigError("[rerank] combine: at least one weight must be > 0, e.g. "
                          "{rerank = 1.0}")
    return {k: float(v) / total for k, v in weights.items() if v > 0}


def is_rerank_only(weights: Mapping[str, float]) -> bool:
    return set(check_weights(weights)) == {"rerank"}


def combine(signals: Mapping[str, Sequence[float]],
            weights: Mapping[str, float]) -> list[Combined]:
    """One :class:`Combined` per candidate; ``signals`` holds a list per weighted signal."""
    weights = check_weights(weights)
    missing = [s for s in weights if s not in signals]
    if missing:
        raise ValueError(f"combination needs signal(s) {', '.join(missing)}")
    count = len(signals[next(iter(weights))])
    if set(weights) == {"rerank"}:
        return [Combined(float(s), {"rerank": float(s)}) for s in signals["rerank"]]
    normalised = {name: _minmax(signals[name]) for name in weights}
    out = []
    for i in range(count):
        parts = {name: weights[name] * normalised[name][i] for name in weights}
        out.append(Combined(sum(parts.values()), parts))
    return out


def _minmax(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    low, high = min(values), max(values)
    span = high - low
    return [(v - low) / span if span > 0 else 1.0 for v in values]
