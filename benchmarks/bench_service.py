"""Bounded load test of `rex-search serve` on loopback: throughput, p50/p99, status codes.

    python benchmarks/bench_service.py [--seconds 8]

Builds a small index of the bundled sample (~700 products), serves it on 127.0.0.1 in its
own process (`rex-search serve`, workers=2, queue=4), then sends /search requests (the 50 DEV
queries, each with a distinct non-binding budget so the result cache does not answer) from N
client threads for a fixed time each. Only loopback traffic; every loop is bounded in time.
The first row (1 client) is the baseline for the ratios.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


_REQUEST_NUMBERS = itertools.count()


def load(url: str, clients: int, seconds: float, queries: list[str],
         budget_ms: float = 60_000.0) -> dict[str, object]:
    """``clients`` threads POST /search for ``seconds``; returns latencies by status."""
    stop = time.perf_counter() + seconds
    lock = threading.Lock()
    latencies: dict[int, list[float]] = {}
    reranked: list[int] = []

    def worker() -> None:
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < stop:
                i = next(_REQUEST_NUMBERS)  # unique across threads: no query twice in a row
                # A distinct budget per request (never binding by default) keeps the result
                # cache from answering: every request runs retrieval, reranking and rules.
                body = {"query": queries[i % len(queries)], "budget_ms": budget_ms + i * 1e-3}
                started = time.perf_counter()
                response = client.post(f"{url}/search", json=body)
                took = time.perf_counter() - started
                with lock:
                    latencies.setdefault(response.status_code, []).append(took)
                    if response.status_code == 200:  # how many candidates the model scored
                        reranked.append(int(response.json().get("reranked", 0)))

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": latencies, "seconds": seconds, "reranked": reranked}


def summarise(result: dict[str, object]) -> dict[str, float]:
    latencies: dict[int, list[float]] = result["latencies"]  # type: ignore[assignment]
    ok = latencies.get(200, [])
    busy = latencies.get(503, [])
    errors = sum(len(v) for k, v in latencies.items() if k >= 500 and k != 503)
    return {"ok_per_s": len(ok) / float(result["seconds"]),  # type: ignore[arg-type]
            "p50_ms": float(np.percentile(ok, 50) * 1000) if ok else float("nan"),
            "p99_ms": float(np.percentile(ok, 99) * 1000) if ok else float("nan"),
            "n503": len(busy),
            "p50_503_ms": float(np.percentile(busy, 50) * 1000) if busy else float("nan"),
            "other_5xx": errors, "statuses": dict(Counter({k: len(v) for k, v in
                                                           latencies.items()}))}


def main() -> None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from rex_search.backends.embedded import EmbeddedBackend
    from rex_search.indexer.embed import Embedder
    from rex_search.indexer.indexer import index_catalog
    from tests.service_server import free_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--smoke", action="store_true", help="tiny index, short load: checks "
                                                             "it runs")
    args = parser.parse_args()
    pattern = r"(?i)laptop" if args.smoke else r"(?i)shoe|bag|laptop|charger|case"
    if args.smoke:
        args.seconds = 0.5
    data = Path(__file__).resolve().parents[1] / "data" / "esci-sample"
    queries = sorted(set(pq.read_table(data / "dev" / "eress.parquet")["query_string"]
                         .to_pylist()))
    with tempfile.TemporaryDirectory() as tmp:
        table = pq.read_table(data / "catalog.parquet")
        keep = pc.match_substring_regex(table["title"], pattern)
        pq.write_table(table.filter(keep), Path(tmp) / "c.parquet")
        embedder = Embedder()
        backend = EmbeddedBackend(Path(tmp) / "i", dim=embedder.dim, model_id=embedder.model_id)
        index_catalog(Path(tmp) / "c.parquet", backend, embedder)
        count = backend.count()
        backend.close()
        # The server runs in its own process (as `rex-search serve` does), so the client threads
        # here do not compete with it for the GIL.
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", "from rex_search.cli import main; main()", "serve",
             "--index", str(Path(tmp) / "i"), "--port", str(port), "--workers", "2",
             "--queue", "4"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            load(url, 2, 2.0, queries)  # warm-up
            rows = [(c, summarise(load(url, c, args.seconds, queries))) for c in (1, 2, 4, 32)]
        finally:
            server.terminate()
            server.wait(10)
    base = rows[0][1]["ok_per_s"]
    print(f"\n/search load on loopback ({count} products, workers=2, queue=4, "
          f"{args.seconds:.0f} s per row)")
    print(f"{'clients':>7} {'ok/s':>7} {'ok/s vs 1':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'503s':>6} {'503 p50 ms':>10} {'other 5xx':>9}")
    for clients, s in rows:
        print(f"{clients:>7} {s['ok_per_s']:>7.1f} {s['ok_per_s'] / base:>9.2f} "
              f"{s['p50_ms']:>7.1f} {s['p99_ms']:>7.1f} {s['n503']:>6} "
              f"{s['p50_503_ms']:>10.1f} {s['other_5xx']:>9}")


if __name__ == "__main__":
    main()
