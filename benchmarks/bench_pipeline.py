"""Indexing throughput and per-stage query latency, on the real sample and a synthetic 100k catalog.

    python benchmarks/bench_pipeline.py            # full run (~5-8 min on 2 cores)
    python benchmarks/bench_pipeline.py --n 20000  # smaller synthetic catalog
    python benchmarks/bench_pipeline.py --smoke    # 300 products, 3 queries: seconds

Part 1 (real): the bundled 6,764-product ESCI sample, indexed with the real embedder, then the
50 DEV queries through the whole `SearchPipeline`, with the shipped cross-encoder against the
embedding-cosine scorer as baseline. Part 2 (synthetic): N generated products with
clustered vectors (the embedder is not run: 100k products would take ~20 min of embedding here),
so it measures the index itself: upsert throughput and BM25 / dense (flat vs HNSW) / fetch
latency at top-200. Every table has a ratio column against a baseline measured in the same run.
Numbers are measurements of this run on this machine, nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.synthetic_catalog import as_products, generate  # noqa: E402
from rex_search.backends.embedded import EmbeddedBackend  # noqa: E402
from rex_search.catalog.reader import read_catalog  # noqa: E402
from rex_search.catalog.schema import embedding_text  # noqa: E402
from rex_search.config import RerankConfig  # noqa: E402
from rex_search.indexer.embed import Embedder  # noqa: E402
from rex_search.pipelines.fusion import fuse  # noqa: E402
from rex_search.pipelines.pipeline import SearchPipeline  # noqa: E402
from rex_search.rerank.base import load_reranker  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "esci-sample"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=True)))


def bench_sample(workdir: Path, previous: str | None = None, limit: int | None = None,
                 query_limit: int | None = None, repeats: int = 3) -> None:
    embedder = Embedder()
    products = [p for b in read_catalog(DATA / "catalog.parquet") for p in b.products][:limit]
    texts = [embedding_text(p) for p in products]
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    embed_s = time.perf_counter() - started
    backend = EmbeddedBackend(workdir / "sample", dim=embedder.dim, model_id=embedder.model_id)
    started = time.perf_counter()
    for i in range(0, len(products), 256):
        backend.upsert(products[i:i + 256], vectors[i:i + 256])
        if (i // 256) % 16 == 15:
            backend.commit()
    backend.commit()
    store_s = time.perf_counter() - started
    n = len(products)
    table(f"Indexing the ESCI sample ({n} real products, {embedder.model_id}, 2 threads)",
          ["stage", "seconds", "products/s", "share of total"],
          [["embed", f"{embed_s:.1f}", f"{n / embed_s:.0f}",
            f"{embed_s / (embed_s + store_s):.2f}"],
           ["store (tantivy+faiss+sqlite)", f"{store_s:.1f}", f"{n / store_s:.0f}",
            f"{store_s / (embed_s + store_s):.2f}"],
           ["total", f"{embed_s + store_s:.1f}", f"{n / (embed_s + store_s):.0f}", "1.00"]])

    queries = sorted(set(pq.read_table(DATA / "dev" / "eress.parquet")["query_string"]
                         .to_pylist()))[:query_limit]
    # cache_size=0: every repetition runs every stage (the result cache would answer repeats).
    # embedding-cosine is the baseline; --previous DIR adds the previously shipped reranker.
    variants = [("embedding-cosine", "embedding-cosine", {"rerank": 1.0})]
    if previous:
        variants.append(("previous default", previous, {"rerank": 1.0}))
    variants.append(("default", RerankConfig().model, RerankConfig().combine))
    timings: dict[str, dict[str, list[float]]] = {}
    for label, name, weights in variants:
        reranker = load_reranker(name, embedder, stored_vectors=backend.vectors)
        if hasattr(reranker, "cache"):
            reranker.cache = None  # repetitions must score again, not hit the score cache
        pipeline = SearchPipeline(backend, embedder, reranker, cache_size=0,
                                  rerank=RerankConfig(combine=weights))
        pipeline.search(queries[0])  # warm-up
        stages: dict[str, list[float]] = defaultdict(list)
        for _ in range(repeats):
            for q in queries:
                for stage, ms in pipeline.search(q).timings_ms.items():
                    stages[stage].append(ms)
        timings[label] = stages
    base = timings["embedding-cosine"]
    rows = []
    for label, stages in timings.items():
        for stage in ("rerank", "total"):
            ratios = [f"{pct(stages[stage], 50) / max(pct(timings[ref][stage], 50), 1e-9):.2f}"
                      if ref in timings else "-" for ref in ("embedding-cosine",
                                                             "previous default")]
            rows.append([label, stage, f"{pct(stages[stage], 50):.2f}",
                         f"{pct(stages[stage], 95):.2f}", *ratios])
    table(f"Query latency on the sample index ({len(queries)} DEV queries x {repeats}; "
          "bm25/dense top-200,"
          f" rerank window {RerankConfig().window}; default = {RerankConfig().model}, combine "
          f"{RerankConfig().combine})",
          ["ranker", "stage", "p50 ms", "p95 ms", "p50 / cosine p50", "p50 / previous p50"],
          rows)
    table("Every stage (p50 ms)", ["stage", *timings],
          [[s, *[f"{pct(timings[label][s], 50):.2f}" for label in timings]] for s in base])
    backend.close()


def _written() -> int:
    """Bytes this process has passed to write() so far (Linux /proc/self/io ``wchar``)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def bench_synthetic(workdir: Path, n: int, queries: int = 200) -> None:
    rows, vectors, kinds = generate(n)
    products = as_products(rows)
    results = []
    # "rewrite" is how vectors were committed before segments (the whole store rewritten at
    # every commit): the same code with compaction forced at each commit.
    runs = [("flat, rewrite per commit (before)", "flat", "always"),
            ("flat, append deltas", "flat", "auto"), ("hnsw, append deltas", "hnsw", "auto")]
    for label, kind, compaction in runs:
        backend = EmbeddedBackend(workdir / f"synthetic-{kind}-{compaction}",
                                  dim=vectors.shape[1], model_id="synthetic-clustered",
                                  vector_index=kind, compaction=compaction)
        started, written, commits, peak = time.perf_counter(), _written(), 0, 0
        for i in range(0, n, 256):
            backend.upsert(products[i:i + 256], vectors[i:i + 256])
            if (i // 256) % 16 == 15 or i + 256 >= n:
                before = backend._vectors.bytes_written
                backend.commit()
                commits += 1
                peak = max(peak, backend._vectors.bytes_written - before)
        upsert_s = time.perf_counter() - started
        started = time.perf_counter()
        backend.finalize()
        results.append((label, backend, upsert_s, time.perf_counter() - started, commits,
                        backend._vectors.bytes_written, peak, _written() - written,
                        _size(backend.path / "vectors")))
    base_s, base_bytes = results[0][2], results[0][5]
    table(f"Indexing a synthetic catalog ({n} products, precomputed 384-d clustered vectors, a "
          "commit every 4,096)",
          ["vectors", "upsert+commit s", "products/s", "HNSW build s", "commits",
           "vector MB written", "largest commit MB", "all writes MB", "vectors/ MB on disk",
           "time / before", "vector writes / before"],
          [[label, f"{u:.1f}", f"{n / u:.0f}", f"{f:.1f}", str(c), f"{vb / 1e6:.0f}",
            f"{pk / 1e6:.0f}", f"{w / 1e6:.0f}", f"{d / 1e6:.0f}", f"{u / base_s:.2f}",
            f"{vb / base_bytes:.3f}"]
           for label, _, u, f, c, vb, pk, w, d in results])
    for _, backend, *_ in results[:1]:
        backend.close()
    results = [(r[0], r[1]) for r in results[1:]]

    rng = random.Random(1)
    flat, hnsw = results[0][1], results[1][1]
    stages: dict[str, list[float]] = defaultdict(list)
    recalls = []
    for _ in range(queries):
        i = rng.randrange(n)
        query = f"{kinds[i]} {rng.choice(['', 'black', 'waterproof', '16 inch'])}".strip()
        noisy = vectors[i] + np.random.default_rng(i).normal(scale=0.02, size=vectors.shape[1])
        qv = (noisy / np.linalg.norm(noisy)).astype(np.float32)
        t = time.perf_counter()
        bm25 = flat.bm25(query, 200)
        stages["bm25 top-200"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        exact = flat.knn(qv, 200)
        stages["dense flat top-200"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        approx = hnsw.knn(qv, 200)
        stages["dense hnsw top-200"].append((time.perf_counter() - t) * 1000)
        recalls.append(len({h.parent_asin for h in approx} & {h.parent_asin for h in exact}) / 200)
        t = time.perf_counter()
        fused = fuse({"bm25": bm25, "dense": exact})
        stages["fuse"].append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        flat.get([c.parent_asin for c in fused])
        stages["fetch candidates"].append((time.perf_counter() - t) * 1000)
    base = pct(stages["dense flat top-200"], 50)
    table(f"Retrieval latency on the synthetic {n}-product index ({queries} queries); HNSW "
          "recall@200 vs "
          f"exact = {np.mean(recalls):.3f}",
          ["stage", "p50 ms", "p95 ms", "p50 / flat dense p50"],
          [[s, f"{pct(v, 50):.2f}", f"{pct(v, 95):.2f}", f"{pct(v, 50) / base:.2f}"]
           for s, v in stages.items()])
    for _, backend in results:
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic catalog size")
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--previous", help="the previously shipped reranker's directory, timed "
                                           "beside the default")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sample:
            bench_sample(Path(tmp), args.previous, *((300, 3, 1) if args.smoke else ()))
        if not args.skip_synthetic:
            bench_synthetic(Path(tmp), 2000 if args.smoke else args.n,
                            10 if args.smoke else 200)


if __name__ == "__main__":
    main()
