"""Rerank a fused candidate list and apply the business rules: the one implementation that
`SearchPipeline.search` and the evaluation's ``pipeline`` ranker both call."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rex_search.config import RerankConfig
from rex_search.pipelines.timing import elapsed_ms
from rex_search.rerank.base import Reranker
from rex_search.rerank.combine import combine, is_rerank_only
from rex_search.rerank.deadline import score_within_budget
from rex_search.results import RuleEffect
from rex_search.rules.base import Ranked, Rule, RuleContext

logger = logging.getLogger(__name__)

DenseScores = Callable[[list[Ranked]], list[float]]


@dataclass
class RankOutcome:
    ranked: list[Ranked]
    removed: list[tuple[Ranked, RuleEffect]] = field(default_factory=list)
    reranked: int = 0
    degraded_reason: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


def rank_candidates(model_query: str, ranked: list[Ranked], reranker: Reranker | None,
                    config: RerankConfig, rules: Sequence[Rule], context: RuleContext,
                    dense: DenseScores, deadline: float | None = None) -> RankOutcome:
    """Rerank the first ``config.window`` of ``ranked`` (fused order) for ``model_query`` (the
    understood query text), combine with first-stage signals as ``config.combine`` says, then
    run ``rules`` in order. ``reranker=None`` keeps retrieval order (rules still run)."""
    reranked, reason = 0, None
    started = time.perf_counter()
    if reranker is not None:
        reranked, reason = _rerank(model_query, ranked, reranker, config, dense, deadline)
    outcome = RankOutcome(ranked, [], reranked, reason, {"rerank": elapsed_ms(started)})
    started = time.perf_counter()
    for rule in rules:
        result = rule.apply(outcome.ranked, context)
        outcome.ranked = result.kept
        outcome.removed.extend(result.removed)
    outcome.timings_ms["rules"] = elapsed_ms(started)
    return outcome



def _rerank(query: str, ranked: list[Ranked], reranker: Reranker, config: RerankConfig,
            dense: DenseScores, deadline: float | None) -> tuple[int, str | None]:
    """Score the window best-first; scored ones lead in final-score order, the rest keep fused
    order. Returns (how many were scored, why degraded or None)."""
    window = ranked[: config.window]
    if not window:
        return 0, None
    try:
        scores, reason = score_within_budget(
            reranker, query, [r.item.product for r in window], deadline,
            config.deadline_batch)
    except Exception as exc:  # any model failure: serve retrieval order, say why
        logger.warning("reranker failed, serving fused order: %s", exc)
        return 0, f"reranker failed ({type(exc).__name__}); fused order served"
    scored = window[: len(scores)]
    final = combine(_signals(scored, scores, config.combine, dense), config.combine)
    for r, model_score, combined in zip(scored, scores, final, strict=True):
        r.rerank_score = model_score
        r.score = combined.score
        r.contributions = combined.contributions
    order = sorted(range(len(scored)), key=lambda i: (-scored[i].score, i))
    for rank, i in enumerate(order, start=1):
        scored[i].rerank_rank = rank
    ranked[: len(scored)] = [scored[i] for i in order]
    return len(scored), reason


def _signals(scored: list[Ranked], scores: list[float], weights: dict[str, float],
             dense: DenseScores) -> dict[str, list[float]]:
    signals: dict[str, list[float]] = {"rerank": list(scores)}
    if is_rerank_only(weights):
        return signals
    if weights.get("dense"):
        signals["dense"] = dense(scored)
    if weights.get("bm25"):
        signals["bm25"] = [r.candidate.sources["bm25"].score if "bm25" in r.candidate.sources
                           else 0.0 for r in scored]
    if weights.get("fused"):
        signals["fused"] = [r.candidate.fused_score for r in scored]
    return signals
