"""Cascade lever of issue #23: the full reranker on only the top k of a cheap first stage.

For each k, on DEV's judged candidates (rerank mode: each query's judged products are its
candidates): the cheap ranker orders them, the bundled reranker rescores the first k, the rest
keep the cheap order below. Prints nDCG@10 and nDCG@5, the share of the full model's gain over
the best first stage it keeps, and the model's time per query, all measured in this run.

    python benchmarks/cascade.py [--smoke]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from rex_search.evaluate.judgments import read_judgments
from rex_search.evaluate.metrics import ndcg
from rex_search.evaluate.rankers import DenseRanker, FusedRanker
from rex_search.indexer.embed import Embedder
from rex_search.model_files import BUNDLED_RERANKER
from rex_search.rerank.base import load_reranker

DEV = Path(__file__).resolve().parents[1] / "data/esci-sample/dev/eress.parquet"


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="5 queries: checks it runs")
    args = parser.parse_args()
    queries = read_judgments(DEV)[: 5 if args.smoke else None]
    embedder = Embedder()
    reranker = load_reranker(BUNDLED_RERANKER)
    reranker.cache = None  # type: ignore[attr-defined]  # time the model, not its cache
    cheap = {"fused": FusedRanker(embedder), "dense": DenseRanker(embedder)}
    ks = [10, 20, 30, 50, None]
    rows: dict[tuple[str, int | None], list[tuple[float | None, float | None, float]]] = {}
    firsts: dict[str, list[tuple[float | None, float | None]]] = {n: [] for n in cheap}
    for q in queries:
        gains = [d.relevance for d in q.docs]
        for name, ranker in cheap.items():
            scores = ranker.score(q.query_id, q.query, q.docs)
            order = sorted(range(len(q.docs)), key=lambda i: (-scores[i], i))
            ranked = [gains[i] for i in order]
            firsts[name].append((ndcg(ranked, gains, 10), ndcg(ranked, gains, 5)))
            for k in ks:
                top = order[:k] if k else order
                started = time.perf_counter()
                model = reranker.score(q.query, [q.docs[i].as_product() for i in top])
                spent = (time.perf_counter() - started) * 1000
                head = [top[j] for j in sorted(range(len(top)), key=lambda j: (-model[j], j))]
                final = [gains[i] for i in head + order[len(top):]]
                rows.setdefault((name, k), []).append((ndcg(final, gains, 10),
                                                       ndcg(final, gains, 5), spent))
    best_first = max(_mean([a for a, _ in v]) for v in firsts.values())
    full10 = _mean([a for a, _, _ in rows[("fused", None)]])
    full_ms = sorted(t for *_, t in rows[("fused", None)])[len(queries) // 2]
    print(f"CPU: {platform.processor() or platform.machine()}; {len(queries)} DEV queries, "
          f"{sum(len(q.docs) for q in queries) / len(queries):.0f} candidates each; "
          f"reranker {BUNDLED_RERANKER}")
    for name, values in firsts.items():
        print(f"first stage {name}: nDCG@10 {_mean([a for a, _ in values]):.4f}, "
              f"nDCG@5 {_mean([b for _, b in values]):.4f}")
    print("\n| cheap stage | k | nDCG@10 | nDCG@5 | gain kept | model ms p50 | vs full |")
    print("|---|---|---|---|---|---|---|")
    for (name, k), values in rows.items():
        n10, n5 = _mean([a for a, _, _ in values]), _mean([b for _, b, _ in values])
        ms = sorted(t for *_, t in values)[len(values) // 2]
        kept = (n10 - best_first) / (full10 - best_first) if full10 != best_first else 1.0
        print(f"| {name} | {k or 'all'} | {n10:.4f} | {n5:.4f} | {kept:.0%} | {ms:.0f} | "
              f"{ms / full_ms:.2f}x |")


if __name__ == "__main__":
    main()
