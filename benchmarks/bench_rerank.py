"""Reranker throughput on CPU against sentence-transformers, FLOP accounting, and budgets.

    python benchmarks/bench_rerank.py [--queries 50] [--candidates 200]
    python benchmarks/bench_rerank.py --smoke      # 2 queries x 8 candidates: checks it runs

Candidates: for each of the 50 DEV queries (data/esci-sample/dev), the top-200 fused BM25+dense
candidates from an embedded index of the bundled 6,764-product catalog (built here if
--index is not given), as RexReranker product texts. Every variant scores exactly the same
(query, text) pairs at max 256 tokens, each in its own process (so peak RSS is its own):

  st-crossencoder   sentence_transformers.CrossEncoder.predict, batch 32   (the baseline)
  torch             rex-search CrossEncoderReranker (length-sorted, token-budget batches)
  onnx-fp32         rex-search OnnxCrossEncoder, model.onnx
  onnx-int8         rex-search OnnxCrossEncoder, model.int8.onnx (dynamic, per-channel)
  embedding-cosine  the current default scorer (stored vectors: no model run per pair)

The cross-encoder is all-MiniLM-L6-v2's encoder with a seeded, UNTRAINED 1-logit head (no
trained cross-encoder exists offline here): speed and agreement are real, relevance is not.
FLOPs: 2 x multiply-adds; per token 12*d^2 per layer (QKV+output 4d^2, FFN 8d^2) plus
attention 2*L*d per layer, over the padded tokens each variant actually ran. Peak is measured
in the same run (numpy sgemm) and computed (cores x FLOP/cycle x MHz, 64 FLOP/cycle with
AVX-512, else 32).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "data" / "esci-sample"
VARIANTS = ("st-crossencoder", "torch", "onnx-fp32", "onnx-int8", "embedding-cosine")
LAYERS, WIDTH = 6, 384


def flops(tokens_per_batch: list[tuple[int, int]]) -> float:
    """2 x MACs for (rows, padded length) batches of a 6-layer, 384-wide BERT."""
    total = 0.0
    for rows, length in tokens_per_batch:
        per_token = LAYERS * (12 * WIDTH * WIDTH + 2 * length * WIDTH)
        total += 2.0 * per_token * rows * length
    return total


def build_candidates(index: str | None, n_queries: int, k: int, work: Path,
                     catalog_rows: int | None = None) -> Path:
    from rex_search.backends.embedded import EmbeddedBackend
    from rex_search.catalog.prompt import product_text
    from rex_search.config import RetrievalConfig
    from rex_search.evaluate.judgments import read_judgments
    from rex_search.indexer.embed import Embedder
    from rex_search.indexer.indexer import index_catalog
    from rex_search.pipelines.retrieve import retrieve

    embedder = Embedder()
    if index is None:
        catalog = DATA / "catalog.parquet"
        if catalog_rows is not None:  # smoke mode: a slice of the catalog
            import pyarrow.parquet as pq

            catalog = work / "slice.parquet"
            pq.write_table(pq.read_table(DATA / "catalog.parquet").slice(0, catalog_rows),
                           catalog)
        backend = EmbeddedBackend(work / "index", dim=embedder.dim, model_id=embedder.model_id)
        index_catalog(catalog, backend, embedder)
    else:
        backend = EmbeddedBackend(index)
    queries = read_judgments(DATA / "dev" / "eress.parquet")[:n_queries]
    config = RetrievalConfig(bm25_k=k, dense_k=k)
    out = []
    for q in queries:
        vector = embedder.encode_queries([q.query])[0]
        found = retrieve(backend, q.query, vector, config).candidates[:k]
        items = backend.get([c.parent_asin for c in found])
        out.append({"query": q.query, "ids": [c.parent_asin for c in found],
                    "texts": [product_text(items[c.parent_asin].product) for c in found]})
    path = work / "candidates.json"
    path.write_text(json.dumps(out))
    return path


def make_models(work: Path) -> Path:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rex_search.model_files import resolve_model
    from rex_search.rerank.export import export_onnx

    torch.manual_seed(0)
    source = resolve_model("all-MiniLM-L6-v2")
    model_dir = work / "ce"
    AutoModelForSequenceClassification.from_pretrained(source, num_labels=1).save_pretrained(
        model_dir)
    AutoTokenizer.from_pretrained(source).save_pretrained(model_dir)
    export_onnx(str(model_dir), work / "ce-onnx", quantize=True)
    return model_dir


def run_variant(variant: str, candidates: Path, model_dir: Path, threads: int) -> dict:
    """Runs in its own process: score every query's candidates, time each query."""
    from rex_search.catalog.prompt import query_text

    data = json.loads(candidates.read_text())
    tokens: list[tuple[int, int]] = []
    if variant == "st-crossencoder":
        import torch
        from sentence_transformers import CrossEncoder

        torch.set_num_threads(threads)
        model = CrossEncoder(str(model_dir), max_length=256, device="cpu")
        tokenizer = model.tokenizer

        def score(query: str, texts: list[str]) -> list[float]:
            pairs = [(query_text(query), t) for t in texts]
            for start in range(0, len(pairs), 32):  # what predict pads, batch by batch
                chunk = pairs[start:start + 32]
                enc = tokenizer([a for a, _ in chunk], [b for _, b in chunk], truncation=True,
                                max_length=256, padding=True)
                tokens.append((len(chunk), len(enc["input_ids"][0])))
            return [float(s) for s in model.predict(pairs, batch_size=32,
                                                    show_progress_bar=False)]
    elif variant == "embedding-cosine":
        from rex_search.indexer.embed import Embedder

        embedder = Embedder()
        vectors = {}

        def score(query: str, texts: list[str]) -> list[float]:
            missing = [t for t in texts if t not in vectors]
            if missing:  # stored vectors in the pipeline: embed once, outside the timing
                vectors.update(zip(missing, embedder.encode(missing), strict=True))
            q = embedder.encode_queries([query])[0]
            return [float(vectors[t] @ q) for t in texts]
    else:
        from rex_search.rerank.cross_encoder import CrossEncoderReranker, OnnxCrossEncoder

        if variant == "torch":
            scorer = CrossEncoderReranker(str(model_dir), cache_entries=0, threads=threads)
        else:
            file = "model.int8.onnx" if variant == "onnx-int8" else "model.onnx"
            scorer = OnnxCrossEncoder(str(model_dir.parent / "ce-onnx"), file=file,
                                      cache_entries=0, threads=threads)
        original = scorer._logits

        def counted(batch):
            tokens.append(batch["input_ids"].shape)
            return original(batch)

        scorer._logits = counted

        def score(query: str, texts: list[str]) -> list[float]:
            return scorer.score_texts(query, texts)

    if variant == "embedding-cosine":
        for item in data:
            score(item["query"], item["texts"])
    score(data[0]["query"], data[0]["texts"][:8])  # warm-up
    tokens.clear()
    latencies, scores = [], []
    for item in data:
        started = time.perf_counter()
        scores.append(score(item["query"], item["texts"]))
        latencies.append(time.perf_counter() - started)
    return {"variant": variant, "latencies": latencies, "scores": scores,
            "flops": flops(tokens) if variant != "embedding-cosine" else 0.0,
            "tokens": sum(r * w for r, w in tokens),
            "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's resident-set high-water mark (VmHWM: reset at exec, unlike ru_maxrss,
    which a spawned child inherits from its parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measured_peak(threads: int) -> float:
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).standard_normal((2048, 2048), dtype=np.float32)
    with threadpool_limits(threads):
        a @ a
        best = 0.0
        for _ in range(5):
            started = time.perf_counter()
            a @ a
            best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - started))
    return best


def nominal_peak(threads: int) -> tuple[float, str]:
    """cores x FLOP/cycle x MHz: 2 FMA units x (16 fp32 lanes with AVX-512, else 8) x 2."""
    info = Path("/proc/cpuinfo").read_text().splitlines()
    mhz = max(float(line.split(":")[1]) for line in info if line.startswith("cpu MHz"))
    flags = next((line for line in info if line.startswith("flags")), "").split()
    per_cycle = 64 if "avx512f" in flags else 32
    return threads * per_cycle * mhz * 1e6, f"{threads} x {per_cycle} FLOP/cycle x {mhz:.0f} MHz"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--index", help="an existing embedded index of the sample catalog")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="2 queries x 8 candidates from a "
                                                             "300-product slice: checks it runs")
    args = parser.parse_args()
    if args.smoke:
        args.queries, args.candidates = 2, 8
    threads = len(os.sched_getaffinity(0))
    if args.variant:
        work = Path(args.work)
        print(json.dumps(run_variant(args.variant, work / "candidates.json", work / "ce",
                                     threads)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_candidates(args.index, args.queries, args.candidates, work,
                         300 if args.smoke else None)
        make_models(work)
        results = {}
        for variant in VARIANTS:
            done = subprocess.run([sys.executable, __file__, "--variant", variant, "--work",
                                   str(work)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{variant} failed: {done.stderr[-1500:]}", file=sys.stderr)
                continue
            results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        if len(results) < len(VARIANTS):
            sys.exit(f"{len(VARIANTS) - len(results)} variant(s) failed (above)")
        report(results, threads, work, 3 if args.smoke else None)


def report(results: dict, threads: int, work: Path, budget_queries: int | None) -> None:
    from rex_search.rerank.export import spearman

    peak_measured = measured_peak(threads)
    peak_nominal, how = nominal_peak(threads)
    base = results["st-crossencoder"]
    base_scores = np.concatenate([np.array(s) for s in base["scores"]])
    pairs = len(base_scores)
    base_rate = pairs / sum(base["latencies"])
    print(f"\nReranking {len(base['latencies'])} DEV queries x their top-"
          f"{len(base['scores'][0])} fused candidates ({pairs} pairs), {threads} threads")
    print(f"peak fp32: measured sgemm {peak_measured / 1e9:.0f} GFLOP/s; nominal "
          f"{peak_nominal / 1e9:.0f} GFLOP/s ({how})")
    header = (f"{'variant':17} {'pairs/s':>8} {'vs ST':>6} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'RSS MB':>7} {'Spearman':>8} {'max|d|':>8} {'tokens':>8} {'GFLOP/s':>8} "
              f"{'%meas':>6} {'%nom':>5}")
    print(header)
    for name, r in results.items():
        scores = np.concatenate([np.array(s) for s in r["scores"]])
        seconds = sum(r["latencies"])
        rate = pairs / seconds
        achieved = r["flops"] / seconds
        same_scale = name != "embedding-cosine"
        rho = spearman(base_scores, scores) if same_scale else float("nan")
        diff = float(np.max(np.abs(base_scores - scores))) if same_scale else float("nan")
        print(f"{name:17} {rate:8.1f} {rate / base_rate:6.2f} "
              f"{np.percentile(r['latencies'], 50) * 1000:7.0f} "
              f"{np.percentile(r['latencies'], 95) * 1000:7.0f} {r['peak_rss_mb']:7.0f} "
              f"{rho:8.4f} {diff:8.1e} {r['tokens']:8d} {achieved / 1e9:8.1f} "
              f"{achieved / peak_measured * 100:6.1f} {achieved / peak_nominal * 100:5.1f}")
    budgets(work, budget_queries)


def budgets(work: Path, query_limit: int | None) -> None:
    """DEV rerank mode (judged candidates in fused order) at latency budgets, ONNX fp32."""
    from rex_search.catalog.schema import Product
    from rex_search.evaluate.judgments import read_judgments
    from rex_search.evaluate.metrics import ndcg
    from rex_search.evaluate.rankers import CachedEmbedder, FusedRanker
    from rex_search.indexer.embed import Embedder
    from rex_search.rerank.cross_encoder import OnnxCrossEncoder
    from rex_search.rerank.deadline import score_within_budget

    queries = read_judgments(DATA / "dev" / "eress.parquet")[:query_limit]
    fused = FusedRanker(CachedEmbedder(Embedder()))
    scorer = OnnxCrossEncoder(str(work / "ce-onnx"), cache_entries=0)
    print("\nDEV rerank mode, judged candidates in fused order, reranked best-first in batches "
          "of 8 until the budget (reranking time only) is spent; ONNX fp32 untrained head")
    print(f"{'budget':>8} {'ms p50':>7} {'ms p95':>7} {'reranked':>9} {'nDCG@10':>8} "
          f"{'gain kept':>9}")
    rows = {}
    for budget in (None, 200.0, 100.0, 50.0, 0.0):
        values, times, share = [], [], []
        for q in queries:
            s = fused.score(q.query_id, q.query, q.docs)
            order = sorted(range(len(q.docs)), key=lambda i: (-s[i], q.docs[i].parent_asin))
            products = [Product(q.docs[i].parent_asin, q.docs[i].title,
                                description=q.docs[i].description) for i in order]
            started = time.perf_counter()
            deadline = None if budget is None else started + budget / 1000
            scores, _ = score_within_budget(scorer, q.query, products, deadline, 8)
            times.append((time.perf_counter() - started) * 1000)
            head = sorted(range(len(scores)), key=lambda i: -scores[i])
            final = head + list(range(len(scores), len(products)))
            values.append(ndcg([q.docs[order[i]].relevance for i in final],
                               [d.relevance for d in q.docs], 10))
            share.append(len(scores) / len(products))
        rows[budget] = (np.mean([v for v in values if v is not None]), times, np.mean(share))
    retrieval = rows[0.0][0]
    full = rows[None][0]
    for budget, (value, times, share) in rows.items():
        gain = (value - retrieval) / (full - retrieval) if full != retrieval else float("nan")
        label = "none" if budget is None else f"{budget:.0f} ms"
        print(f"{label:>8} {np.percentile(times, 50):7.1f} {np.percentile(times, 95):7.1f} "
              f"{share * 100:8.0f}% {value:8.4f} {gain * 100:8.0f}%")


if __name__ == "__main__":
    main()
