"""Distributional vs BCE vs MSE on the DEV judgments: query-grouped 5-fold cross-validation.

    python benchmarks/cv_losses.py [--folds 5] [--epochs 1] [--layers 6]

Same base (all-MiniLM-L6-v2 encoder, new head), same budget (epochs, batch, token budget,
learning rates, seed) for every loss; each fold trains on 4/5 of the queries and scores the
judged candidates of the held-out 1/5. Per-query values from all folds are pooled, then the
evaluation harness gives bootstrap intervals and paired tests (`rex_search/evaluate`).
Also scores a trained model directory given with --model on all DEV queries (no DEV
training involved), against bm25 and dense, for the "does it beat the baselines" question.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import compute, parse_metric  # noqa: E402
from rex_search.evaluate.rankers import make_rankers  # noqa: E402
from rex_search.evaluate.run import (  # noqa: E402
    RankerReport,
    evaluate_rerank,
    format_report,
    summarise,
)
from rex_search.train.recipe import InMemoryScorer, TrainConfig, train  # noqa: E402

DEV = Path(__file__).resolve().parents[1] / "data" / "esci-sample" / "dev" / "eress.parquet"
METRICS = [parse_metric(m) for m in ("ndcg@5", "ndcg@10")]


def folds(queries, k: int):
    ordered = sorted(queries, key=lambda q: q.query_id)
    return [(  # query-grouped: a query is in exactly one test fold
        [q for i, q in enumerate(ordered) if i % k != f],
        [q for i, q in enumerate(ordered) if i % k == f]) for f in range(k)]


def cross_validate(loss: str, queries, args) -> RankerReport:
    report = RankerReport(loss)
    scores, relevance = [], []
    started = time.perf_counter()
    for train_set, test_set in folds(queries, args.folds):
        config = TrainConfig(loss=loss, epochs=args.epochs, layers=args.layers,  # type: ignore
                             max_tokens=args.max_tokens, seed=0)
        model, tokenizer, _ = train(train_set, config, log=lambda _: None)
        scorer = InMemoryScorer(model, tokenizer, config)
        for q in test_set:
            s = scorer.score(q.query, [d.as_product() for d in q.docs])
            order = sorted(range(len(q.docs)), key=lambda i: (-s[i], q.docs[i].parent_asin))
            ranked = [q.docs[i].relevance for i in order]
            report.per_query[q.query_id] = {str(m): compute(m, ranked, [d.relevance for d in
                                                                       q.docs]) for m in METRICS}
            scores += s
            relevance += [d.relevance for d in q.docs]
    from rex_search.evaluate.metrics import calibration

    report.ece, report.reliability = calibration(scores, relevance)
    report.seconds = time.perf_counter() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--losses", default="distributional,bce,mse")
    parser.add_argument("--model", help="a trained model directory to score on all of DEV")
    args = parser.parse_args()
    queries = read_judgments(DEV)
    if args.model:
        from rex_search.indexer.embed import Embedder
        from rex_search.rerank.base import load_reranker

        embedder = Embedder()
        rankers = make_rankers(["bm25", "dense", "fused", "rerank"], embedder,
                               load_reranker(args.model, embedder))
        print(format_report(evaluate_rerank(queries, rankers, METRICS)))
        return
    reports = [cross_validate(loss, queries, args) for loss in args.losses.split(",")]
    print(f"\n{args.folds}-fold query-grouped CV on DEV ({len(queries)} queries), "
          f"epochs={args.epochs}, layers={args.layers or 6}, max_tokens={args.max_tokens}")
    print(format_report(summarise("cross-validated rerank", queries, reports, METRICS,
                                   1000, 0)))


if __name__ == "__main__":
    main()
