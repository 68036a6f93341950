"""Run rankers over judgments and report metrics with bootstrap intervals and paired tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rex_search.evaluate.judgments import QueryJudgments
from rex_search.evaluate.metrics import MetricSpec, ReliabilityBin, calibration, compute
from rex_search.evaluate.rankers import EvalRanker
from rex_search.evaluate.stats import Comparison, Interval, bootstrap_ci, paired_bootstrap
from rex_search.onnx_session import machine


@dataclass
class RankerReport:
    name: str
    per_query: dict[str, dict[str, float | None]] = field(default_factory=dict)
    summary: dict[str, Interval] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)  # queries with nothing to find
    ece: float | None = None
    reliability: list[ReliabilityBin] = field(default_factory=list)
    seconds: float = 0.0
    unjudged_in_top: dict[int, int] = field(default_factory=dict)  # end-to-end only


@dataclass
class EvalReport:
    mode: str
    metrics: list[str]
    queries: int
    judgments: int
    rankers: list[RankerReport]
    comparisons: list[tuple[str, str, str, Comparison]]
    resamples: int
    seed: int

    def to_dict(self, per_query: bool = False) -> dict[str, object]:
        return {
            "mode": self.mode, "metrics": self.metrics, "queries": self.queries,
            "measured_on": machine(),
            "judgments": self.judgments, "bootstrap": {"resamples": self.resamples,
                                                       "seed": self.seed, "level": 0.95},
            "rankers": {
                r.name: {
                    "metrics": {m: vars(i) for m, i in r.summary.items()},
                    "excluded_queries": r.excluded, "ece": r.ece,
                    "reliability": [vars(b) for b in r.reliability],
                    "seconds": round(r.seconds, 3),
                    **({"unjudged_in_top_k": r.unjudged_in_top} if r.unjudged_in_top else {}),
                    **({"per_query": r.per_query} if per_query else {}),
                } for r in self.rankers
            },
            "comparisons": [{"a": a, "b": b, "metric": m, **vars(c)}
                            for a, b, m, c in self.comparisons],
        }


def evaluate_rerank(judgments: Sequence[QueryJudgments], rankers: Sequence[EvalRanker],
                    metrics: Sequence[MetricSpec], threshold: float = 0.5,
                    resamples: int = 1000, seed: int = 0,
                    progress: Callable[[str], None] | None = None) -> EvalReport:
    """Each ranker orders exactly each query's judged candidates (ties broken by parent_asin);
    ``progress(ranker name)`` is called after each query."""
    reports = []
    for ranker in rankers:
        report = RankerReport(ranker.name)
        started = time.perf_counter()
        all_scores, all_rel = rank_judged(ranker, judgments, metrics, report, threshold,
                                          progress)
        report.seconds = time.perf_counter() - started
        if ranker.unit_scores and all_scores:
            report.ece, report.reliability = calibration(all_scores, all_rel)
        reports.append(report)
    return summarise("rerank", judgments, reports, metrics, resamples, seed)


def rank_judged(ranker: EvalRanker, judgments: Sequence[QueryJudgments],
                metrics: Sequence[MetricSpec], report: RankerReport,
                threshold: float = 0.5, progress: Callable[[str], None] | None = None
                ) -> tuple[list[float], list[float]]:
    """Order each query's judged candidates by score (ties by parent_asin) and record its
    metrics in ``report.per_query``; returns all (scores, relevances) for calibration."""
    all_scores: list[float] = []
    all_rel: list[float] = []
    for q in judgments:
        scores = ranker.score(q.query_id, q.query, q.docs)
        order = sorted(range(len(q.docs)), key=lambda i: (-scores[i], q.docs[i].parent_asin))
        ranked = [q.docs[i].relevance for i in order]
        judged = [d.relevance for d in q.docs]
        report.per_query[q.query_id] = {str(m): compute(m, ranked, judged, threshold)
                                        for m in metrics}
        if progress is not None:
            progress(ranker.name)
        all_scores += scores
        all_rel += judged
    return all_scores, all_rel


def evaluate_end_to_end(judgments: Sequence[QueryJudgments], pipeline, name: str,
                        metrics: Sequence[MetricSpec], threshold: float = 0.5,
                        resamples: int = 1000, seed: int = 0,
                        progress: Callable[[str], None] | None = None) -> EvalReport:
    """The full pipeline against its index: judged products it does not retrieve are misses,
    retrieved products nobody judged count as gain 0 (and are counted, per k)."""
    depth = max(m.k for m in metrics)
    report = RankerReport(name)
    started = time.perf_counter()
    for q in judgments:
        gains = {d.parent_asin: d.relevance for d in q.docs}
        hits = pipeline.search(q.query, size=depth).hits
        ranked = [gains.get(h.parent_asin, 0.0) for h in hits]
        report.per_query[q.query_id] = {str(m): compute(m, ranked, list(gains.values()), threshold)
                                        for m in metrics}
        for k in sorted({m.k for m in metrics}):
            unjudged = sum(h.parent_asin not in gains for h in hits[:k])
            report.unjudged_in_top[k] = report.unjudged_in_top.get(k, 0) + unjudged
        if progress is not None:
            progress(name)
    report.seconds = time.perf_counter() - started
    return summarise("end-to-end", judgments, [report], metrics, resamples, seed)


def summarise(mode: str, judgments: Sequence[QueryJudgments], reports: list[RankerReport],
               metrics: Sequence[MetricSpec], resamples: int, seed: int) -> EvalReport:
    names = [str(m) for m in metrics]
    for report in reports:
        for m in names:
            values = [x for v in report.per_query.values() if (x := v[m]) is not None]
            report.excluded[m] = len(report.per_query) - len(values)
            report.summary[m] = bootstrap_ci(values, resamples, seed)
    comparisons = []
    for a, b in itertools.combinations(reports, 2):
        for m in names:
            shared = [q for q, values in a.per_query.items()
                      if values[m] is not None and b.per_query.get(q, {}).get(m) is not None]
            comparisons.append((a.name, b.name, m, paired_bootstrap(
                [float(a.per_query[q][m] or 0.0) for q in shared],
                [float(b.per_query[q][m] or 0.0) for q in shared], resamples, seed)))
    return EvalReport(mode, names, len(judgments), sum(len(q.docs) for q in judgments),
                      reports, comparisons, resamples, seed)


def format_report(report: EvalReport, alpha: float = 0.05) -> str:
    """Rankers x metrics with 95% intervals, then the paired comparisons with verdicts."""
    lines = [f"mode {report.mode}: {report.queries} queries, {report.judgments} judgments; "
             f"mean [95% bootstrap CI over queries, {report.resamples} resamples, "
             f"seed {report.seed}]"]
    width = max(len(r.name) for r in report.rankers)
    lines.append(" " * width + "  " + "  ".join(f"{m:<22}" for m in report.metrics)
                 + "  ECE")
    for r in report.rankers:
        cells = [f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]" for i in
                 (r.summary[m] for m in report.metrics)]
        ece = f"{r.ece:.3f}" if r.ece is not None else "n/a  "
        lines.append(f"{r.name:<{width}}  " + "  ".join(f"{c:<22}" for c in cells)
                     + f"  {ece}")
    excluded = {m: n for m, n in report.rankers[0].excluded.items() if n}
    if excluded:
        lines.append("queries excluded (no judged product relevant for the metric): "
                     + ", ".join(f"{m} {n}" for m, n in excluded.items()))
    for r in report.rankers:
        if r.unjudged_in_top:
            lines.append(f"{r.name}: unjudged products in the top k (gain 0), summed over "
                         "queries: " + ", ".join(f"top {k}: {n}"
                                                 for k, n in r.unjudged_in_top.items()))
    if report.comparisons:
        lines.append(f"paired bootstrap, A - B (significant when p < {alpha}):")
        for a, b, m, c in report.comparisons:
            verdict = (f"{a} better" if c.diff > 0 else f"{b} better") if c.p_value < alpha \
                else "no significant difference"
            lines.append(f"  {a} - {b}  {m:<12} {c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}]  "
                         f"p{_p(c.p_value, report.resamples)}  {verdict}")
    lines.append("timings (s, vary run to run): "
                 + ", ".join(f"{r.name} {r.seconds:.1f}" for r in report.rankers))
    where = machine()
    lines.append(f"measured on: {where['cpu']} ({where['cpu_flags'] or 'no AVX2'}); "
                 f"onnxruntime {where['onnxruntime']} (int8 scores vary slightly by CPU)")
    return "\n".join(lines)


def _p(p: float, resamples: int) -> str:
    """A bootstrap p-value cannot resolve below 1/resamples: say so instead of printing 0."""
    return f"<{1 / resamples:.3f}" if p < 1 / resamples else f"={p:.3f}"
