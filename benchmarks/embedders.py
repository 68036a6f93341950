"""Which embedder should the index use? Each bundled embedder as the `dense` ranker (and fused
with BM25, as the pipeline retrieves) on DEV and its robustness variants, with its cost.

    python benchmarks/embedders.py                   # every bundled embedder that is built
    python benchmarks/embedders.py --smoke           # 3 queries, titles only: seconds

Rerank mode over each query's judged products (the same code as `rex-search eval`), nDCG@10
and nDCG@5 with 95% bootstrap intervals; ``a+b`` is the mean of two models' cosines,
``bm25+a`` BM25 and ``a`` fused by RRF (the pipeline's first stage). Cost:
product texts embedded per second (batch 32, the indexer's texts), one query's embedding
latency (p50 of 50 real queries), model file size, and vector bytes per product. Ratios are
against all-MiniLM-L6-v2 (the previous default) in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.catalog.schema import embedding_text  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import parse_metric  # noqa: E402
from rex_search.evaluate.rankers import CachedEmbedder, FusedRanker  # noqa: E402
from rex_search.evaluate.robustness import VARIANTS, variant  # noqa: E402
from rex_search.evaluate.run import evaluate_rerank  # noqa: E402
from rex_search.indexer.embed import Embedder  # noqa: E402
from rex_search.model_files import BUNDLED_EMBEDDERS, BUNDLED_MINILM, bundled_embedder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "data" / "esci-sample" / "dev" / "eress.parquet"
QUERIES = ROOT / "data" / "esci-extra" / "queries.txt"
METRICS = [parse_metric("ndcg@10"), parse_metric("ndcg@5")]


def cpu_line() -> str:
    model, flags = platform.processor() or "unknown CPU", ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                     if line.startswith("model name"))
        have = set(next(line for line in info.splitlines() if line.startswith("flags")).split())
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in have)
    except (OSError, StopIteration):
        pass
    return f"{model} ({flags}); {len(os.sched_getaffinity(0))} cores"


class CosineRanker:
    """Mean cosine of one or more embedders (one: the `dense` ranker)."""

    unit_scores = False

    def __init__(self, name: str, embedders: list[CachedEmbedder]) -> None:
        self.name, self._embedders = name, embedders

    def score(self, query_id: str, query: str, docs) -> list[float]:
        texts = [embedding_text(d.as_product()) for d in docs]
        total = np.zeros(len(docs))
        for embedder in self._embedders:
            total += embedder.encode(texts) @ embedder.encode_queries([query])[0]
        return [float(s) for s in total / len(self._embedders)]


def fused(name: str, embedder: CachedEmbedder) -> FusedRanker:
    """BM25 and this embedder's cosine fused by RRF (the pipeline's retrieval)."""
    ranker = FusedRanker(embedder)
    ranker.name = f"bm25+{name}"
    return ranker


def cost(name: str, embedder: Embedder, texts: list[str], queries: list[str]) -> dict:
    start = time.perf_counter()
    embedder.encode(texts)
    per_second = len(texts) / (time.perf_counter() - start)
    latencies = []
    for query in queries:
        start = time.perf_counter()
        embedder.encode_queries([query])
        latencies.append((time.perf_counter() - start) * 1000)
    size = sum(f.stat().st_size for f in bundled_embedder(name).iterdir()) / 1e6
    return {"products/s": per_second, "query ms": statistics.median(latencies), "MB": size,
            "vector bytes": embedder.dim * 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", help="bundled embedders (default: all built)")
    parser.add_argument("--smoke", action="store_true", help="3 queries, one variant")
    args = parser.parse_args()
    names = args.models or [n for n, f in BUNDLED_EMBEDDERS.items()
                            if (ROOT / "rex_search" / "models" / f.folder).is_dir()]
    queries = read_judgments(DEV)[:3] if args.smoke else read_judgments(DEV)
    variants = ["title-only"] if args.smoke else list(VARIANTS)
    print(f"CPU: {cpu_line()}; {len(queries)} queries; embedders: {', '.join(names)}\n")
    embedders = {n: CachedEmbedder(Embedder(n)) for n in names}
    rankers = [CosineRanker(n, [e]) for n, e in embedders.items()]
    if "e5-small-v2" in embedders and "bge-small-en-v1.5" in embedders:
        rankers.append(CosineRanker("e5+bge", [embedders["e5-small-v2"],
                                               embedders["bge-small-en-v1.5"]]))
    rankers += [fused(n, e) for n, e in embedders.items()]
    for metric in ("ndcg@10", "ndcg@5"):
        print(f"{metric} | " + " | ".join(variants))
        print(" | ".join(["---"] * (len(variants) + 1)))
        for_ranker: dict[str, list[str]] = {r.name: [] for r in rankers}
        for name in variants:
            report = evaluate_rerank(variant(queries, name), rankers, METRICS)
            for r in report.rankers:
                i = r.summary[metric]
                for_ranker[r.name].append(f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]")
        for ranker, cells in for_ranker.items():
            print(f"{ranker} | " + " | ".join(cells))
        print()
    texts = sorted({embedding_text(d.as_product()) for q in queries for d in q.docs})
    texts = texts[:64] if args.smoke else texts[:512]
    real = [q for q in QUERIES.read_text().splitlines() if q.strip()][:10 if args.smoke else 50]
    costs = {n: cost(n, Embedder(n), texts, real) for n in names}
    base = costs.get(BUNDLED_MINILM)
    print(f"cost ({len(texts)} product texts, {len(real)} queries) | products/s | query p50 ms "
          "| model MB | vector bytes | products/s vs MiniLM | query ms vs MiniLM")
    print(" | ".join(["---"] * 7))
    for name, c in costs.items():
        ratios = (f"{c['products/s'] / base['products/s']:.2f} | "
                  f"{c['query ms'] / base['query ms']:.2f}") if base else "- | -"
        print(f"{name} | {c['products/s']:.1f} | {c['query ms']:.1f} | {c['MB']:.0f} | "
              f"{c['vector bytes']} | {ratios}")


if __name__ == "__main__":
    main()
