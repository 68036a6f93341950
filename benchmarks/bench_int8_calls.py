"""The bundled int8 reranker: length-sorted batches against one pair per call.

    python benchmarks/bench_int8_calls.py [--repeats 3]

Why: the int8 model quantises every activation with one scale for the whole batch, so in a
batch a pair's score depends on its batch-mates and their padding. This compares, in one
process and on the same (query, product) pairs -- every judged product of the 50 DEV queries
(data/esci-sample/dev) -- the two ways to run it:

  batched          length-sorted batches of up to 32 pairs, one session with every core
                   (what rex-search did before)
  one pair/call    each pair alone, no padding, on a pool of single-threaded calls (the default)

Columns: per-query latency (all the query's pairs, score cache off), pairs per second, the
largest |score - score of the pair alone| and the share of same-query product pairs whose
order differs from the alone order ("stability"), and nDCG@5/@10 of the order each produces.
Nothing is asserted; the numbers are this run's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_runtime import cpu  # noqa: E402
from rex_search.catalog.prompt import product_text  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.evaluate.metrics import ndcg  # noqa: E402
from rex_search.model_files import BUNDLED_RERANKER  # noqa: E402
from rex_search.rerank.cross_encoder import OnnxCrossEncoder  # noqa: E402

DEV = ROOT / "data" / "esci-sample" / "dev" / "eress.parquet"


def scorer(one_pair_per_call: bool) -> OnnxCrossEncoder:
    return OnnxCrossEncoder(BUNDLED_RERANKER, max_tokens=256, cache_entries=0,
                            file="model.int8.onnx", one_pair_per_call=one_pair_per_call)


def flipped(scores: np.ndarray, alone: np.ndarray) -> tuple[int, int]:
    """(product pairs ordered differently from the alone scores, product pairs compared)."""
    upper = np.triu_indices(len(scores), k=1)
    a = np.sign(np.subtract.outer(scores, scores)[upper])
    b = np.sign(np.subtract.outer(alone, alone)[upper])
    return int((a * b < 0).sum()), len(a)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="3 queries, 1 pass: checks it runs")
    args = parser.parse_args()
    queries = read_judgments(DEV)[:3] if args.smoke else read_judgments(DEV)
    if args.smoke:
        args.repeats = 1
    texts = [[product_text(d.as_product()) for d in q.docs] for q in queries]
    variants = {"batched": scorer(False), "one pair/call": scorer(True)}
    reference = variants["one pair/call"]  # one pair per call: the score of the pair alone
    alone = [np.array(reference.score_texts(q.query, t))
             for q, t in zip(queries, texts, strict=True)]
    pairs = sum(len(t) for t in texts)
    print(f"CPU: {cpu()}; {len(queries)} queries, {pairs} pairs, bundled {BUNDLED_RERANKER} "
          f"(int8, {reference.max_tokens} tokens), best of {args.repeats} passes\n")
    rows = []
    for name, model in variants.items():
        best, latencies, scored = float("inf"), [], []
        for _ in range(args.repeats):
            started, times, scored = time.perf_counter(), [], []
            for query, query_texts in zip(queries, texts, strict=True):
                t0 = time.perf_counter()
                scored.append(np.array(model.score_texts(query.query, query_texts)))
                times.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
            if elapsed < best:
                best, latencies = elapsed, times
        drift = max(float(np.abs(s - a).max()) for s, a in zip(scored, alone, strict=True))
        flips = np.array([flipped(s, a) for s, a in zip(scored, alone, strict=True)]).sum(axis=0)
        quality = {}
        for k in (5, 10):
            values = []
            for query, scores in zip(queries, scored, strict=True):
                gains = [d.relevance for d in query.docs]
                ranked = [gains[i] for i in np.argsort(-scores, kind="stable")]
                value = ndcg(ranked, gains, k)
                if value is not None:
                    values.append(value)
            quality[k] = statistics.fmean(values)
        latencies_ms = sorted(1000 * t for t in latencies)
        rows.append((name, statistics.median(latencies_ms),
                     latencies_ms[int(0.95 * (len(latencies_ms) - 1))], pairs / best, drift,
                     flips[0] / flips[1], quality[5], quality[10]))
    base_rate = rows[0][3]
    header = ("variant", "query p50 ms", "query p95 ms", "pairs/s", "pairs/s vs batched",
              "max abs(score - alone)", "orders flipped", "nDCG@5", "nDCG@10")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for name, p50, p95, rate, drift, flips_share, n5, n10 in rows:
        print(f"{name} | {p50:.0f} | {p95:.0f} | {rate:.0f} | {rate / base_rate:.2f} | "
              f"{drift:.4f} | {flips_share:.2%} | {n5:.4f} | {n10:.4f}")


if __name__ == "__main__":
    main()
