"""Cost at scale on a real OpenSearch: indexing docs/s, BM25 / kNN / hybrid latency and memory,
as the catalog grows.

    python benchmarks/bench_cluster_scale.py                        # 10k and 100k, 1 node
    python benchmarks/bench_cluster_scale.py --sizes 100000,1000000 --heap 4g
    python benchmarks/bench_cluster_scale.py --nodes 3              # a 3-node cluster, 1 replica
    python benchmarks/bench_cluster_scale.py --smoke                # 2,000 products: ~1 min

Products and vectors are synthetic (`synthetic_catalog.py`: clustered 384-d unit vectors,
as the embedder's would be; no model runs), so it measures the cluster: rex-search's bulk
path (the documents rex-search writes, in chunks of 500), then per query BM25 top-100, kNN
top-100 (HNSW, lucene engine: the Maven Central node has no faiss library) and hybrid (both,
fused by rex-search as every search is). Memory per node: the JVM heap in use and the
process's resident set (the heap, plus the vector and index files the OS maps). Each row's
ratio column compares it with the first size, measured in the same run. The node comes from
`tests/opensearch_node.py` (Java and Maven Central needed). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_runtime import cpu  # noqa: E402
from benchmarks.synthetic_catalog import as_products, generate, product_types  # noqa: E402
from rex_search.backends.connection import parse_target  # noqa: E402
from rex_search.backends.opensearch import OpenSearchBackend  # noqa: E402
from rex_search.config import RetrievalConfig  # noqa: E402
from rex_search.pipelines.retrieve import retrieve  # noqa: E402
from tests.opensearch_node import (  # noqa: E402
    NodeError,
    OpenSearchCluster,
    OpenSearchNode,
    assemble,
)

CHUNK = 5000  # products generated and sent per step (the backend bulks them 500 at a time)
NO_NODE = 3  # the exit status when no node can start (the smoke test skips on it)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _rss_mb(node: OpenSearchNode) -> float:
    """Resident memory of the node's process tree (the launcher execs java)."""
    assert node.process is not None
    status = Path(f"/proc/{node.process.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmRSS")) / 1024


def _load(backend: OpenSearchBackend, n: int, start: int) -> float:
    """Index products ``start``..``n`` (the earlier ones are already in); seconds taken."""
    took = 0.0
    for offset in range(start, n, CHUNK):
        size = min(CHUNK, n - offset)
        rows, vectors, _ = _slice(offset, size)
        products = as_products(rows)
        began = time.perf_counter()
        backend.upsert(products, vectors)
        took += time.perf_counter() - began
    began = time.perf_counter()
    backend.commit()  # refresh: searchable, as a finished run leaves it
    return took + time.perf_counter() - began


def _slice(offset: int, size: int) -> tuple[list[dict], np.ndarray, list[str]]:
    """Products offset..offset+size: one seed per chunk (same distribution, new ids)."""
    rows, vectors, kinds = generate(size, seed=offset)
    for i, row in enumerate(rows):
        row["parent_asin"] = f"S{offset + i:09d}"
    return rows, vectors, kinds


def _queries(count: int) -> list[tuple[str, np.ndarray]]:
    """Query text (a product type) and a vector near that type's products."""
    _, vectors, kinds = generate(4000, seed=1)
    types = [kind for _, kind in product_types()]
    out = []
    for i in range(count):
        kind = types[i % len(types)]
        members = [j for j, k in enumerate(kinds) if k == kind]
        v = vectors[members].mean(axis=0)
        out.append((kind, v / np.linalg.norm(v)))
    return out


def _latencies(backend: OpenSearchBackend, queries: list[tuple[str, np.ndarray]],
               k: int) -> dict[str, tuple[float, float]]:
    config = RetrievalConfig(bm25_k=k, dense_k=k)
    timings: dict[str, list[float]] = {"bm25": [], "knn": [], "hybrid": []}
    for text, vector in queries[:5]:  # warm the caches and the JIT
        retrieve(backend, text, vector, config)
    for text, vector in queries:
        for name, run in (("bm25", partial(backend.bm25, text, k)),
                          ("knn", partial(backend.knn, vector, k)),
                          ("hybrid", partial(retrieve, backend, text, vector, config))):
            began = time.perf_counter()
            run()
            timings[name].append((time.perf_counter() - began) * 1000)
    return {name: _percentiles(samples) for name, samples in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="catalog sizes, ascending")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--heap", default="2g", help="JVM heap per node")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=100, help="candidates per source")
    parser.add_argument("--smoke", action="store_true", help="2,000 products, 20 queries")
    args = parser.parse_args()
    sizes = [1000, 2000] if args.smoke else [int(s) for s in args.sizes.split(",")]
    queries = _queries(20 if args.smoke else args.queries)
    run_dir = Path(tempfile.mkdtemp(prefix="rex-scale-"))
    run_dir.chmod(0o755)  # as root the node runs unprivileged and must reach it
    try:
        home = assemble()
        cluster: OpenSearchNode | OpenSearchCluster = \
            OpenSearchNode(home, run_dir, heap=args.heap) if args.nodes == 1 else \
            OpenSearchCluster(home, run_dir, args.nodes, heap=args.heap)
        cluster.start()
    except NodeError as exc:
        print(f"no OpenSearch node (needs Java 17 and Maven Central): {exc}", file=sys.stderr)
        sys.exit(NO_NODE)
    nodes = [cluster] if isinstance(cluster, OpenSearchNode) else cluster.nodes
    print(f"CPU: {cpu()}; OpenSearch {len(nodes)} node(s), heap {args.heap} each; "
          f"{len(queries)} queries, top-{args.k} per source")
    url = (f"opensearch://127.0.0.1:{nodes[0].port}/scale?knn_engine=lucene&timeout=120"
           f"&shards={len(nodes)}" + (f"&replicas=1&hosts={cluster.hosts()}"
                                      if isinstance(cluster, OpenSearchCluster) else ""))
    rows = []
    try:
        backend = OpenSearchBackend(parse_target(url), 384, "synthetic")
        done = 0
        for n in sizes:
            seconds = _load(backend, n, done)
            done = n
            latency = _latencies(backend, queries, args.k)
            stats = nodes[0].request("GET", "/_nodes/stats/jvm")["nodes"]
            heap_mb = max(s["jvm"]["mem"]["heap_used_in_bytes"] for s in stats.values()) / 2**20
            store = nodes[0].request("GET", "/scale/_stats/store")["_all"]["total"]["store"]
            rows.append((n, (n - (rows[-1][0] if rows else 0)) / seconds, latency,
                         store["size_in_bytes"] / 2**20 / len(nodes),
                         max(_rss_mb(node) for node in nodes), heap_mb))
        backend.close()
    finally:
        cluster.stop()
    first = rows[0]
    print(f"\n{'products':>9} {'docs/s':>7} {'bm25 p50/p95':>13} {'knn p50/p95':>13} "
          f"{'hybrid p50/p95':>15} {'store/node':>10} {'RSS/node':>9} {'heap':>6} "
          f"{'hybrid p50 ×':>12} {'RSS ×':>6}")
    for n, rate, lat, store_mb, rss, heap in rows:
        cells = " ".join(f"{lat[name][0]:6.1f}/{lat[name][1]:<6.1f}" for name in
                         ("bm25", "knn", "hybrid"))
        print(f"{n:>9,} {rate:7.0f} {cells} {store_mb:8.0f}MB {rss:7.0f}MB {heap:5.0f}M "
              f"{lat['hybrid'][0] / first[2]['hybrid'][0]:12.2f} {rss / first[4]:6.2f}")
    print("\nms per query; docs/s: products of that step over the seconds to send them "
          "(rex-search's bulk path) and refresh; store/node: primary+replica store over nodes; "
          f"ratios against {first[0]:,} products in this run.")


if __name__ == "__main__":
    main()
