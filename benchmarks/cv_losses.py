"""Distributional vs BCE vs MSE on the DEV judgments: query-grouped 5-fold cross-validation.

    python benchmarks/cv_losses.py [--folds 5] [--epochs 1] [--layers 6]
    python benchmarks/cv_losses.py --pretrained 'runs/synth-{loss}' [--epochs 1]
    python benchmarks/cv_losses.py --model DIR
    python benchmarks/cv_losses.py --smoke    # 6 queries, 2 folds, 1 layer, one loss: seconds

Same base, same budget (epochs, batch, token budget, learning rates, seed) for every loss;
each fold trains on 4/5 of the queries and scores the judged candidates of the held-out 1/5.
The base is all-MiniLM-L6-v2's encoder with a new head, or with --pretrained the model that
loss produced on synthetic data (`rex-search train --loss {loss}`), fine-tuned further; then
the pretrained models are also scored as they are ("{loss}:synth-only", no DEV training).
Per-query values from all folds are pooled, then the evaluation harness gives bootstrap
intervals and paired tests (`rex_search/evaluate`), against bm25 and dense on the same queries.
--model scores one trained directory on all DEV queries (no DEV training involved).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import calibration, parse_metric  # noqa: E402
from rex_search.evaluate.rankers import CachedEmbedder, RerankRanker, make_rankers  # noqa: E402
from rex_search.evaluate.run import (  # noqa: E402
    RankerReport,
    evaluate_rerank,
    format_report,
    rank_judged,
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
    init = args.pretrained.format(loss=loss) if args.pretrained else None
    report = RankerReport(f"{loss}:cv" if init else loss)
    scores, relevance = [], []
    started = time.perf_counter()
    for train_set, test_set in folds(queries, args.folds):
        config = TrainConfig(loss=loss, epochs=args.epochs, layers=args.layers,  # type: ignore
                             max_tokens=args.max_tokens, init=init,
                             backbone_lr=args.backbone_lr, head_lr=args.head_lr, seed=0)
        model, tokenizer, _ = train(train_set, config, log=lambda _: None)
        ranker = RerankRanker(InMemoryScorer(model, tokenizer, config))
        fold_scores, fold_relevance = rank_judged(ranker, test_set, METRICS, report)
        scores += fold_scores
        relevance += fold_relevance
    report.ece, report.reliability = calibration(scores, relevance)  # over all folds pooled
    report.seconds = time.perf_counter() - started
    return report


def as_pretrained(loss: str, queries, args) -> RankerReport:
    """The synthetic-data model of this loss on every DEV query, with no DEV training."""
    from transformers import AutoTokenizer

    from rex_search.rerank.pooled import PooledCrossEncoder

    path = args.pretrained.format(loss=loss)
    config = TrainConfig(loss=loss, max_tokens=args.max_tokens)  # type: ignore[arg-type]
    scorer = InMemoryScorer(PooledCrossEncoder.from_pretrained(path),
                            AutoTokenizer.from_pretrained(path), config)
    report = evaluate_rerank(queries, [RerankRanker(scorer)], METRICS).rankers[0]
    report.name = f"{loss}:synth-only"
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--backbone-lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=1e-3)
    parser.add_argument("--pretrained", help="directory template with {loss}: fine-tune these")
    parser.add_argument("--baselines", default="bm25,dense", help="rerank-mode rankers to add")
    parser.add_argument("--losses", default="distributional,bce,mse")
    parser.add_argument("--model", help="a trained model directory to score on all of DEV")
    parser.add_argument("--runtime", default="auto", help="for --model: auto, torch, onnx, "
                                                             "onnx-int8")
    parser.add_argument("--json", type=Path, help="also write the report here (model cards)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    queries = read_judgments(DEV)
    if args.smoke:
        queries = queries[:6]
        args.folds, args.layers, args.max_tokens, args.losses = 2, 1, 32, "distributional"
    if args.model:
        from rex_search.indexer.embed import Embedder
        from rex_search.rerank.base import load_reranker

        embedder = CachedEmbedder(Embedder())
        rankers = make_rankers(["bm25", "dense", "fused", "rerank"], embedder,
                               load_reranker(args.model, embedder, runtime=args.runtime))
        report = evaluate_rerank(queries, rankers, METRICS)
        print(format_report(report))
        write_json(report, args, "all DEV queries, no DEV training")
        return
    losses = args.losses.split(",")
    reports = [cross_validate(loss, queries, args) for loss in losses]
    if args.pretrained:
        reports += [as_pretrained(loss, queries, args) for loss in losses]
    if args.baselines:
        from rex_search.indexer.embed import Embedder

        baseline = evaluate_rerank(queries, make_rankers(args.baselines.split(","), Embedder(),
                                                         None), METRICS)
        reports = baseline.rankers + reports
    print(f"\n{args.folds}-fold query-grouped CV on DEV ({len(queries)} queries), "
          f"epochs={args.epochs}, layers={args.layers or 6}, max_tokens={args.max_tokens}, "
          f"lr backbone/head {args.backbone_lr}/{args.head_lr}, "
          f"base {args.pretrained or 'all-MiniLM-L6-v2'}")
    report = summarise("cross-validated rerank", queries, reports, METRICS, 1000, 0)
    print(format_report(report))
    write_json(report, args, f"{args.folds}-fold query-grouped cross-validation")


def write_json(report, args, protocol: str) -> None:
    if args.json:
        import json

        body = {"dataset": "ESCI sample DEV (data/esci-sample/dev/eress.parquet)",
                "protocol": protocol, "arguments": {k: v for k, v in vars(args).items()
                                                    if k != "json"},
                **report.to_dict()}
        args.json.write_text(json.dumps(body, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
