"""Does collapsing colour/size variants cost relevance? DEV through the pipeline's own
reranking and rules, with the collapse rule and without it, in one run.

    python benchmarks/collapse.py [--reranker NAME]     # default: the configured reranker
    python benchmarks/collapse.py --smoke               # 3 queries, embedding-cosine: seconds

Rerank mode (each query's judged products, full catalog records so brand and colour are
known), every default rule on in both rows; a collapsed product drops out of the list, so it
counts as not retrieved. nDCG@10 and nDCG@5 with 95% bootstrap intervals and the paired
difference; "collapsed" is how many judged products the rule folded into a variant shown once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.backends.base import IndexedProduct  # noqa: E402
from rex_search.catalog.reader import read_catalog  # noqa: E402
from rex_search.config import RulesConfig, load_config  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import parse_metric  # noqa: E402
from rex_search.evaluate.rankers import CachedEmbedder, PipelineRanker  # noqa: E402
from rex_search.evaluate.run import evaluate_rerank  # noqa: E402
from rex_search.indexer.embed import Embedder  # noqa: E402
from rex_search.onnx_session import machine  # noqa: E402
from rex_search.query import KnownBrands  # noqa: E402
from rex_search.rerank.base import load_reranker  # noqa: E402
from rex_search.rules.build import build_rules  # noqa: E402
from rex_search.rules.collapse import Collapse  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "esci-sample" / "dev" / "eress.parquet"
CATALOG = ROOT / "data" / "esci-sample" / "catalog.parquet"
METRICS = [parse_metric("ndcg@10"), parse_metric("ndcg@5")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reranker", help="default: the configured [rerank] model")
    parser.add_argument("--smoke", action="store_true", help="3 queries, embedding-cosine")
    args = parser.parse_args()
    config = load_config()
    queries = read_judgments(DEV)[:3] if args.smoke else read_judgments(DEV)
    name = "embedding-cosine" if args.smoke else args.reranker or config.rerank.model
    embedder = CachedEmbedder(Embedder(config.index.embedding_model))
    reranker = load_reranker(name, embedder)
    products = {p.parent_asin: IndexedProduct(p) for b in read_catalog(CATALOG)
                for p in b.products}
    brands = KnownBrands.from_names({p.product.brand for p in products.values()
                                     if p.product.brand})

    def catalog(ids):
        return {i: products[i] for i in ids if i in products}

    rows = {}
    for label, collapse in (("without collapse", "off"), ("with collapse", "title")):
        rules = build_rules(dataclasses.replace(RulesConfig(), collapse=collapse))
        ranker = PipelineRanker(embedder, reranker, rules, config.rerank, brands, catalog)
        ranker.name = label
        rows[label] = ranker
    report = evaluate_rerank(queries, list(rows.values()), METRICS)
    where = machine()
    print(f"CPU: {where['cpu']} ({where['cpu_flags']}); reranker {reranker.name}; "
          f"{report.queries} DEV queries, rerank mode, every default rule on\n")
    print("ranker | nDCG@10 | nDCG@5")
    print("--- | --- | ---")
    for r in report.rankers:
        cells = [f"{r.summary[m].mean:.3f} [{r.summary[m].low:.3f}, {r.summary[m].high:.3f}]"
                 for m in ("ndcg@10", "ndcg@5")]
        print(f"{r.name} | {' | '.join(cells)}")
    for a, b, metric, c in report.comparisons:
        print(f"{a} - {b} {metric}: {c.diff:+.4f} [{c.low:+.4f}, {c.high:+.4f}] "
              f"p={c.p_value:.3f}")
    folded, judged = 0, 0
    for q in queries:
        keys = [variant_key(products.get(d.parent_asin) or IndexedProduct(d.as_product()))
                for d in q.docs]
        judged += len(keys)
        folded += len([k for k in keys if k]) - len({k for k in keys if k})
    print(f"\njudged products that are a variant of another judged product of their query "
          f"(collapsed): {folded} of {judged}")


def variant_key(item: IndexedProduct) -> tuple[str, ...]:
    from rex_search.results import Candidate
    from rex_search.rules.base import Ranked

    return Collapse().key(Ranked(Candidate(item.product.parent_asin, 0, 0.0, {}), item, 0.0))


if __name__ == "__main__":
    main()
