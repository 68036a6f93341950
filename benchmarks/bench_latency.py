"""Issue #23's levers, each judged by its latency and its relevance cost, in one run.

    python benchmarks/bench_latency.py [--student DIR] [--index DIR] [--system] [--smoke]

On the sample index (built here, or ``--index`` an existing one made with the default
embedder) every configuration runs the 50 DEV queries through the whole `SearchPipeline`
(score cache off, result cache off): rerank p50/p95 and whole-query p50, and end-to-end
nDCG@10/@5 of the first page against DEV's judgments (an unjudged product counts 0, the same
for every row). "gain kept" is (row − fused retrieval order) / (full model − fused retrieval
order): the share of today's default's gain over the first stage that the row keeps. The
model-level rows are also scored in rerank mode (each query's judged candidates) on DEV as is,
titles only and HTML descriptions, against the best of fused and dense on the same variant.
Rows:
- full: the full model on 100 candidates (rex-reranker-bge-small: 12 layers, 64 tokens; the
  default before #23): the reference of every ratio;
- window k: the cascade with the fused first stage as the cheap scorer (the model on its
  top k, the rest below in fused order); the full model on 50 was the default until the
  6-layer student on 20 replaced it;
- tokens n: the product text cut to n tokens per pair;
- budget_ms 100: the deadline path (scores best-first in small batches while it lasts);
- 6-layer: the bundled student (rex-reranker-bge-small-6l) on 100, 50, 30 and 20 candidates
  (20: the default configuration, as ``RerankConfig()`` sets it), and with the 100 ms budget;
- ``--student DIR`` (repeatable): another smaller model on 100, 50, 40, 30 and 20 candidates;
- split: a split cross-encoder (``--split DIR``, `rex_search/rerank/split_scorer.py`) with
  its product states prepared before the queries (what a warmed service runs) and computed
  during each query (a product never seen before), at window 30, 50 and 100.
Numbers are this run's on this machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_pipeline import pct, table  # noqa: E402
from rex_search.backends.embedded import EmbeddedBackend  # noqa: E402
from rex_search.catalog.prompt import product_text  # noqa: E402
from rex_search.catalog.reader import read_catalog  # noqa: E402
from rex_search.catalog.schema import embedding_text  # noqa: E402
from rex_search.config import RerankConfig  # noqa: E402
from rex_search.evaluate.judgments import QueryJudgments, read_judgments  # noqa: E402
from rex_search.evaluate.metrics import ndcg  # noqa: E402
from rex_search.evaluate.rankers import DenseRanker, FusedRanker  # noqa: E402
from rex_search.evaluate.robustness import VARIANTS, variant  # noqa: E402
from rex_search.evaluate.stats import paired_bootstrap  # noqa: E402
from rex_search.indexer.embed import Embedder  # noqa: E402
from rex_search.model_files import FULL_RERANKER, STUDENT_RERANKER  # noqa: E402
from rex_search.onnx_session import machine  # noqa: E402
from rex_search.pipelines.pipeline import SearchPipeline  # noqa: E402
from rex_search.rerank.base import load_reranker  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "esci-sample"


@dataclass
class Row:
    label: str
    model: str
    window: int = 100
    max_tokens: int = 256
    budget_ms: float | None = None
    prepared: bool | None = None  # split models: product states ahead of queries, or never kept
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    per_query10: list[float] = field(default_factory=list)  # nDCG of each DEV query
    per_query5: list[float] = field(default_factory=list)

    @property
    def ndcg10(self) -> float:
        return _mean(self.per_query10)

    @property
    def ndcg5(self) -> float:
        return _mean(self.per_query5)


def _kept(value: float, first_stage: float, full: float) -> str:
    """The share of the full model's gain over the first stage that ``value`` keeps."""
    return f"{(value - first_stage) / (full - first_stage):.0%}" if full > first_stage \
        else "- (no gain)"


def _versus(row: list[float], reference: list[float]) -> str:
    """The row's mean nDCG minus the reference's over the same queries, with its paired
    bootstrap 95% interval: how much of a difference 50 queries can tell from noise."""
    if row is reference:
        return "-"
    c = paired_bootstrap(row, reference)
    return f"{c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}]"


def _mean(values: list[float | None]) -> float:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else 0.0


def catalog_products(limit: int | None, titles_only: bool = False) -> list:
    products = [p for b in read_catalog(DATA / "catalog.parquet") for p in b.products][:limit]
    if titles_only:  # another retailer's thin feed: the title and nothing else
        products = [replace(p, description="", features=(), details={}, categories=(),
                            main_category=None) for p in products]
    return products


def build_index(folder: Path, embedder: Embedder, products: list) -> EmbeddedBackend:
    vectors = embedder.encode([embedding_text(p) for p in products])
    backend = EmbeddedBackend(folder, dim=embedder.dim, model_id=embedder.model_id)
    for i in range(0, len(products), 512):
        backend.upsert(products[i:i + 512], vectors[i:i + 512])
    backend.commit()
    return backend


def run_row(row: Row, backend, embedder: Embedder, queries: list[QueryJudgments],
            repeats: int, products: list) -> None:
    reranker = load_reranker(row.model, embedder, max_tokens=row.max_tokens,
                             stored_vectors=backend.vectors)
    reranker.cache = None  # type: ignore[attr-defined]  # every repetition scores again
    if row.prepared:
        started = time.perf_counter()
        texts = [product_text(p) for p in products]
        reranker.prepare(texts)  # type: ignore[attr-defined]
        seconds = time.perf_counter() - started
        print(f"{row.label}: product states of {len(texts)} products prepared in "
              f"{seconds:.1f} s ({len(texts) / seconds:.0f} products/s), "
              f"{reranker.products.nbytes / 2**20:.0f} MB kept")  # type: ignore[attr-defined]
    elif row.prepared is False:
        reranker.products.max_entries = 0  # type: ignore[attr-defined]  # every query computes them
    pipeline = SearchPipeline(backend, embedder, reranker, cache_size=0,
                              rerank=RerankConfig(window=row.window))
    pipeline.search(queries[0].query)  # warm-up
    for repeat in range(repeats):
        for q in queries:
            result = pipeline.search(q.query, size=10, budget_ms=row.budget_ms)
            for stage, ms in result.timings_ms.items():
                row.stages[stage].append(ms)
            if repeat == 0:
                judged = {d.parent_asin: d.relevance for d in q.docs}
                gains = [judged.get(h.parent_asin, 0.0) for h in result.hits]
                row.per_query10.append(ndcg(gains, list(judged.values()), 10))
                row.per_query5.append(ndcg(gains, list(judged.values()), 5))


def fused_order(backend, embedder, queries: list[QueryJudgments]) -> tuple[float, float]:
    pipeline = SearchPipeline(backend, embedder, load_reranker("embedding-cosine", embedder),
                              cache_size=0)
    at10, at5 = [], []
    for q in queries:
        hits = pipeline.search(q.query, size=10, rerank=False).hits
        judged = {d.parent_asin: d.relevance for d in q.docs}
        gains = [judged.get(h.parent_asin, 0.0) for h in hits]
        at10.append(ndcg(gains, list(judged.values()), 10))
        at5.append(ndcg(gains, list(judged.values()), 5))
    return _mean(at10), _mean(at5)


def rerank_mode(models: list[Row], embedder, queries: list[QueryJudgments]) -> None:
    """nDCG@10 of each model on the judged candidates, per text variant."""
    cheap = {"fused": FusedRanker(embedder), "dense": DenseRanker(embedder)}
    rerankers = [load_reranker(r.model, embedder, max_tokens=r.max_tokens) for r in models]
    rows, full = [], {}
    for name in VARIANTS:
        changed = variant(queries, name)
        first = max(_mean([ndcg([q.docs[i].relevance for i in _order(r.score(
            q.query_id, q.query, q.docs))], [d.relevance for d in q.docs], 10)
            for q in changed]) for r in cheap.values())
        for row, reranker in zip(models, rerankers, strict=True):
            value = _mean([ndcg([q.docs[i].relevance for i in _order(reranker.score(
                q.query, [d.as_product() for d in q.docs]))], [d.relevance for d in q.docs], 10)
                for q in changed])
            full.setdefault(name, value)  # the first model row is the full model
            rows.append([name, row.label, f"{first:.4f}", f"{value:.4f}",
                         _kept(value, first, full[name])])
    table("Rerank mode (each DEV query's judged candidates), nDCG@10",
          ["variant", "model", "best first stage", "model", "gain kept"], rows)


def _order(scores: list[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", action="append",
                        help="a smaller reranker's directory to compare (repeatable; its rows "
                             "are labelled with the directory's name)")
    parser.add_argument("--split", help="a split cross-encoder's directory to compare")
    parser.add_argument("--index", type=Path, help="an existing sample index (default: build)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--titles-only", action="store_true",
                        help="index the catalog with titles only (a thin feed)")
    parser.add_argument("--rows", help="comma-separated row labels to run (default: all)")
    parser.add_argument("--windows", help="more windows to add as rows, e.g. 200,400 (how "
                                          "the cost grows with the window)")
    parser.add_argument("--system", action="store_true",
                        help="then, in the same run, bench_system.py: indexing products/s, "
                             "cold start and serve throughput as catalog and window grow")
    parser.add_argument("--smoke", action="store_true", help="300 products, 3 queries")
    args = parser.parse_args()
    queries = read_judgments(DATA / "dev" / "eress.parquet")[: 3 if args.smoke else None]
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as work:
        products = catalog_products(300 if args.smoke else None, args.titles_only)
        backend = EmbeddedBackend(args.index) if args.index else \
            build_index(Path(work) / "sample", embedder, products)
        full, six = FULL_RERANKER, STUDENT_RERANKER
        default = RerankConfig()
        rows = [Row("full, window 100", full),
                Row("window 50 (default before)", full, window=50),
                Row("window 30", full, window=30), Row("window 20", full, window=20),
                Row("tokens 48", full, max_tokens=48), Row("tokens 40", full, max_tokens=40),
                Row("budget_ms 100", full, budget_ms=100.0),
                Row("6-layer", six), Row("6-layer window 50", six, window=50),
                Row("6-layer window 30", six, window=30),
                Row(f"6-layer window {default.window} (default)", default.model,
                    window=default.window),
                Row("6-layer budget_ms 100", six, budget_ms=100.0)]
        for student in args.student or []:
            name = Path(student).name  # a row label: no commas (--rows splits on them)
            rows += [Row(name, student), *[Row(f"{name} window {w}", student, window=w)
                                           for w in (50, 40, 30, 20)]]
        if args.split:
            rows += [Row("split window 100 prepared", args.split, prepared=True),
                     Row("split window 50 prepared", args.split, window=50, prepared=True),
                     Row("split window 30 prepared", args.split, window=30, prepared=True),
                     Row("split window 50 per query", args.split, window=50,
                         prepared=False)]
        if args.rows:
            wanted = args.rows.split(",")
            rows = [rows[0], *[r for r in rows[1:] if r.label in wanted]]
        for size in (int(w) for w in (args.windows or "").split(",") if w):
            rows.append(Row(f"window {size}", full, window=size))
        for row in rows:
            run_row(row, backend, embedder, queries, 1 if args.smoke else args.repeats, products)
        base10, base5 = fused_order(backend, embedder, queries)
        reference = rows[0]
        ref_ms = pct(reference.stages["rerank"], 50)
        cpu = machine()
        print(f"CPU: {cpu.get('cpu', platform.processor())}; flags {cpu.get('cpu_flags', '?')}; "
              f"onnxruntime {cpu.get('onnxruntime', '?')}; {len(queries)} DEV queries x "
              f"{args.repeats}, score and result caches off; started {time.strftime('%F %T')}")
        table("End to end on the sample index (window = candidates the model scores; nDCG of "
              f"the first page; fused retrieval order: {base10:.4f} / {base5:.4f})",
              ["config", "rerank p50 ms", "rerank p95 ms", "whole p50 ms", "rerank / full",
               "nDCG@10", "nDCG@5", "gain kept @10", "gain kept @5",
               "vs full @10 [95% CI]", "vs full @5 [95% CI]"],
              [[r.label, f"{pct(r.stages['rerank'], 50):.0f}",
                f"{pct(r.stages['rerank'], 95):.0f}", f"{pct(r.stages['total'], 50):.0f}",
                f"{pct(r.stages['rerank'], 50) / ref_ms:.2f}", f"{r.ndcg10:.4f}",
                f"{r.ndcg5:.4f}", _kept(r.ndcg10, base10, reference.ndcg10),
                _kept(r.ndcg5, base5, reference.ndcg5),
                _versus(r.per_query10, reference.per_query10),
                _versus(r.per_query5, reference.per_query5)] for r in rows])
        models = [r for r in rows if r.window == 100 and r.budget_ms is None]
        if not args.titles_only and len(models) > 1:
            rerank_mode(models, embedder, queries)
        backend.close()
    if args.system:
        from benchmarks.bench_system import run

        run(sizes=[10_000, 100_000], windows=[50, 100, 200, 400], clients=[1, 2, 4],
            seconds=6.0, smoke=args.smoke)


if __name__ == "__main__":
    main()
