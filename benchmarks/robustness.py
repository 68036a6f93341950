"""Robustness table of the reranker: DEV as it is, with titles only, with HTML descriptions,
and leave-category-out (LCO), against bm25 / dense / fused on the same queries.

    python benchmarks/robustness.py                       # the three text variants
    python benchmarks/robustness.py --lco                 # + LCO: trains one model per fold
    python benchmarks/robustness.py --model DIR --combine rerank=0.7,dense=0.3 --json out.json

Rerank mode (each query's judged candidates), nDCG@10 and nDCG@5 with 95% bootstrap intervals
over queries; "default - best" is the default ranking minus the better of dense and fused on
that row, with its paired bootstrap p. ``model`` is the cross-encoder's own score; ``default``
is what the pipeline ranks by (``[rerank] combine`` of the configuration, or ``--combine``).

LCO: DEV queries are split into folds by the top-level catalog category of their judged
products; for each fold a model is trained with the default recipe on synthetic data from the
catalog *without* that fold's categories (smaller budget: ``--lco-queries``), then scored on
that fold's queries. Per-query values of all folds are pooled into one row.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.config import load_config  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import parse_metric  # noqa: E402
from rex_search.evaluate.rankers import CachedEmbedder, RerankRanker, make_rankers  # noqa: E402
from rex_search.evaluate.robustness import VARIANTS, variant  # noqa: E402
from rex_search.evaluate.run import EvalReport, evaluate_rerank, summarise  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "esci-sample" / "dev" / "eress.parquet"
CATALOG = ROOT / "data" / "esci-sample" / "catalog.parquet"
METRICS = [parse_metric("ndcg@10"), parse_metric("ndcg@5")]
BASELINES = ("bm25", "dense", "fused")


def evaluate_variant(queries, embedder, reranker, weights) -> EvalReport:
    rankers = make_rankers(BASELINES, embedder, None)
    model = RerankRanker(reranker, embedder, {"rerank": 1.0})
    model.name = "model"
    default = RerankRanker(reranker, embedder, weights)
    default.name = "default"
    return evaluate_rerank(queries, [*rankers, model, default], METRICS)


def row(name: str, report: EvalReport) -> dict:
    out: dict = {"variant": name, "queries": report.queries}
    for r in report.rankers:
        out[r.name] = {m: vars(i) for m, i in r.summary.items()}
    for metric in ("ndcg@10", "ndcg@5"):
        best = max(("dense", "fused"), key=lambda n: out[n][metric]["mean"])
        a, c = next((a, c) for a, b, m, c in report.comparisons
                    if m == metric and {a, b} == {best, "default"})
        diff = c.diff if a == "default" else -c.diff  # comparisons are A - B in report order
        out[f"default-best {metric}"] = {"vs": best, "diff": diff, "p": c.p_value}
    return out


def format_table(rows: list[dict]) -> str:
    names = [*BASELINES, "model", "default"]
    lines = []
    for metric in ("ndcg@10", "ndcg@5"):
        lines.append(f"\n{metric} (rerank mode; mean [95% bootstrap CI])")
        lines.append(f"{'variant':<14} {'q':>3}  " + "  ".join(f"{n:<21}" for n in names)
                     + "  default - best of dense/fused")
        for r in rows:
            cells = [f"{r[n][metric]['mean']:.3f} [{r[n][metric]['low']:.3f}, "
                     f"{r[n][metric]['high']:.3f}]" for n in names]
            d = r[f"default-best {metric}"]
            lines.append(f"{r['variant']:<14} {r['queries']:>3}  "
                         + "  ".join(f"{c:<21}" for c in cells)
                         + f"  {d['diff']:+.3f} vs {d['vs']} (p={d['p']:.3f})")
    return "\n".join(lines)


def category_folds(queries, catalog) -> list[tuple[set[str], list]]:
    """Three folds of DEV queries, each a set of top-level categories (largest first, greedy
    to balance query counts); a query's category is the commonest among its judged products."""
    top: dict[str, str] = {}
    for q in queries:
        counts = Counter(catalog[d.parent_asin].categories[0] for d in q.docs
                         if d.parent_asin in catalog and catalog[d.parent_asin].categories)
        top[q.query_id] = counts.most_common(1)[0][0] if counts else "?"
    sizes = Counter(top.values())
    folds: list[tuple[set[str], list]] = [(set(), []) for _ in range(3)]
    for category, _ in sizes.most_common():
        smallest = min(folds, key=lambda f: len(f[1]))
        smallest[0].add(category)
        smallest[1].extend(q for q in queries if top[q.query_id] == category)
    return folds


def default_recipe(config_class):
    """The shipped reranker's recipe (its model card), so each LCO fold model is trained the way
    the default was: same base encoder, layers, pooling, loss and token budget."""
    from rex_search.model_files import BUNDLED_RERANKER, resolve_model

    card = json.loads((Path(resolve_model(BUNDLED_RERANKER)) / "model_card.json").read_text())
    recipe = card["recipe"]
    base = recipe["base"]
    if not Path(base).exists() and "/" in base:
        sys.exit(f"the default's base encoder {base} is not here: build it first (`python -m "
                 f"rex_search.train.onnx_to_torch bge-small-en-v1.5 {base}`)")
    layers = recipe.get("layers")
    return config_class(base=base, layers=tuple(layers) if isinstance(layers, list) else layers,
                        pooling=recipe.get("pooling", "mean"), loss=recipe.get("loss"),
                        max_tokens=recipe.get("max_tokens", 64), seed=0)


def leave_category_out(queries, embedder, weights, args) -> EvalReport:
    from rex_search.catalog.reader import read_catalog
    from rex_search.evaluate.run import RankerReport, rank_judged
    from rex_search.train.data import as_judgments, training_pairs
    from rex_search.train.recipe import InMemoryScorer, TrainConfig, train

    products = [p for batch in read_catalog(CATALOG) for p in batch.products]
    catalog = {p.parent_asin: p for p in products}
    reports = {n: RankerReport(n) for n in (*BASELINES, "model", "default")}
    for number, (categories, fold) in enumerate(category_folds(queries, catalog), start=1):
        started = time.perf_counter()
        kept = [p for p in products if not p.categories or p.categories[0] not in categories]
        train_set = as_judgments(training_pairs(kept, embedder, queries=args.lco_queries,
                                                real_query_limit=args.lco_real_queries))
        config = default_recipe(TrainConfig)
        model, tokenizer, _ = train(train_set, config, validation=None, log=lambda _: None)
        scorer = InMemoryScorer(model, tokenizer, config)
        rankers = dict(zip(BASELINES, make_rankers(BASELINES, embedder, None), strict=True))
        rankers["model"] = RerankRanker(scorer, embedder, {"rerank": 1.0})
        rankers["default"] = RerankRanker(scorer, embedder, weights)
        for name, ranker in rankers.items():
            rank_judged(ranker, fold, METRICS, reports[name])
        print(f"LCO fold {number}: {len(fold)} queries in {sorted(categories)}; trained on "
              f"{len(kept)} of {len(products)} products, {len(train_set)} queries, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    return summarise("rerank", queries, list(reports.values()), METRICS, 1000, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="reranker (default: the configured one)")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--combine", help="signal=weight,... (default: [rerank] combine)")
    parser.add_argument("--lco", action="store_true", help="also run leave-category-out")
    parser.add_argument("--lco-queries", type=int, default=900,
                        help="synthetic queries per LCO model (default recipe: 2400)")
    parser.add_argument("--lco-real-queries", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the table here")
    parser.add_argument("--smoke", action="store_true", help="3 queries: checks it runs")
    args = parser.parse_args()
    from rex_search.indexer.embed import Embedder
    from rex_search.rerank.base import load_reranker

    config = load_config()
    weights = (dict((k, float(v)) for k, v in (p.split("=") for p in args.combine.split(",")))
               if args.combine else dict(config.rerank.combine))
    embedder = CachedEmbedder(Embedder(config.index.embedding_model))
    reranker = load_reranker(args.model or config.rerank.model, embedder, runtime=args.runtime)
    queries = read_judgments(DEV)[:3] if args.smoke else read_judgments(DEV)
    print(f"reranker {reranker.name}; default = combine {weights}", flush=True)
    rows = [row(name, evaluate_variant(variant(queries, name), embedder, reranker, weights))
            for name in VARIANTS]
    if args.lco:
        rows.append(row("leave-cat-out", leave_category_out(queries, embedder, weights, args)))
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps({"reranker": reranker.name, "combine": weights,
                                         "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
