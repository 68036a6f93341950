"""The rest of issue #23's picture, in one run: indexing products/s, cold start of
`rex-search query`, and `rex-search serve` throughput at p95 <= 200 ms -- each as the catalog
grows (the 6,764-product sample, 10k and 100k synthetic) and as the rerank window grows.

    python benchmarks/bench_system.py [--sizes 10000,100000] [--windows 50,100,200,400]
    python benchmarks/bench_latency.py --system    # after the levers table, same run
    python benchmarks/bench_system.py --smoke      # tiny sizes, short load: checks it runs

Indexes: the bundled sample through `index_catalog` with the default embedder (embed +
store, as `rex-search index` runs it), and synthetic catalogs (`synthetic_catalog.py`:
realistic titles, clustered 384-d vectors given to the store, so the embedder does not run
and the row measures the store alone; recorded under the default embedder's id so the CLI
and the service open them). The embedder's own rate is measured on 1,000 real product texts:
it does not depend on the catalog's size, the store's does.

Cold start: a fresh `python -m rex_search query` process per run (open the index, load the
embedder and the default reranker, answer one query, print), wall time, median of 3.

Serve: `rex-search serve --workers 2 --queue 4` in its own process per configuration (the
default configuration with the window changed by a config file), N client threads for a
fixed time each sending real queries to /search (the 50 DEV and 496 more ESCI queries, in
turn: none repeats within a server's life, so the reranker's score cache never answers) with a
distinct budget_ms (so the result cache never answers). "ok/s at p95 <= 200 ms" is the best
throughput among the client counts whose p95 stays within 200 ms ("none" when even one client
exceeds it). The budget row sends budget_ms = 150 (the deadline path): "mean reranked" says
how many candidates the model still scored per answer (the budget counts the queue wait).
Ratios compare with the default (the sample at the default window), measured in the same run.
Numbers are this run's on this machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_pipeline import table  # noqa: E402
from benchmarks.bench_service import load  # noqa: E402
from benchmarks.synthetic_catalog import as_products, generate  # noqa: E402
from rex_search.backends.embedded import EmbeddedBackend  # noqa: E402
from rex_search.catalog.schema import embedding_text  # noqa: E402
from rex_search.config import RerankConfig  # noqa: E402
from rex_search.indexer.embed import Embedder  # noqa: E402
from rex_search.indexer.indexer import index_catalog  # noqa: E402
from rex_search.onnx_session import machine  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "esci-sample"
COLD_QUERY = "work bag 16 inch laptop"
P95_LIMIT_MS = 200.0


@dataclass(frozen=True)
class Catalog:
    label: str
    path: Path
    products: int


@dataclass(frozen=True)
class ServeRow:
    catalog: Catalog
    window: int
    budget_ms: float | None = None

    @property
    def label(self) -> str:
        budget = f", budget_ms {self.budget_ms:.0f}" if self.budget_ms else ""
        return f"{self.catalog.label}, window {self.window}{budget}"


def build_sample(workdir: Path, limit: int | None,
                 embedder: Embedder) -> tuple[Catalog, list[object]]:
    """Index the bundled sample as `rex-search index` does; returns the catalog and a table row."""
    source = DATA / "catalog.parquet"
    if limit is not None:
        source = workdir / "sample-subset.parquet"
        pq.write_table(pq.read_table(DATA / "catalog.parquet").slice(0, limit), source)
    backend = EmbeddedBackend(workdir / "sample", dim=embedder.dim, model_id=embedder.model_id)
    summary = index_catalog(source, backend, embedder)
    count = backend.count()
    backend.close()
    row = ["sample (real), embed + store", count, f"{summary.seconds:.1f}",
           f"{count / summary.seconds:.0f}"]
    return Catalog(f"sample {count:,}", workdir / "sample", count), row


def embedder_rate(embedder: Embedder, limit: int) -> list[object]:
    """The embedder alone on real product texts (its cost per product does not grow with n)."""
    from rex_search.catalog.reader import read_catalog

    products = [p for b in read_catalog(DATA / "catalog.parquet") for p in b.products][:limit]
    texts = [embedding_text(p) for p in products]
    started = time.perf_counter()
    embedder.encode(texts)
    seconds = time.perf_counter() - started
    return [f"embedder alone ({embedder.model_id})", len(texts), f"{seconds:.1f}",
            f"{len(texts) / seconds:.0f}"]


def build_synthetic(workdir: Path, n: int, embedder: Embedder) -> tuple[Catalog, list[object]]:
    """Store ``n`` synthetic products with given vectors (the store's own cost)."""
    rows, vectors, _ = generate(n, dim=embedder.dim)
    products = as_products(rows)
    path = workdir / f"synthetic-{n}"
    backend = EmbeddedBackend(path, dim=embedder.dim, model_id=embedder.model_id)
    started = time.perf_counter()
    for i in range(0, n, 256):  # index_catalog's batch and commit sizes
        backend.upsert(products[i:i + 256], vectors[i:i + 256])
        if (i // 256) % 16 == 15:
            backend.commit()
    backend.commit()
    backend.finalize()
    seconds = time.perf_counter() - started
    backend.close()
    row = [f"synthetic {n:,}, store only", n, f"{seconds:.1f}", f"{n / seconds:.0f}"]
    return Catalog(f"synthetic {n:,}", path, n), row


def cold_starts(catalog: Catalog, runs: int) -> list[float]:
    """Wall seconds of fresh `rex-search query` processes against ``catalog``."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "rex_search", "query", COLD_QUERY,
                               "--index", str(catalog.path)], capture_output=True, text=True,
                              timeout=600)
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"rex-search query failed on {catalog.label}: {done.stderr}")
    return seconds


def serve_load(row: ServeRow, workdir: Path, clients: list[int], seconds: float,
               queries: list[str]) -> list[dict[str, float]]:
    """Start `rex-search serve` for ``row`` and load it at each client count."""
    import httpx

    from tests.opensearch_node import free_port

    config = workdir / f"serve-window-{row.window}.toml"
    config.write_text(f"[rerank]\nwindow = {row.window}\n")
    port = free_port()
    # Its own process (as in production), so these client threads do not share its GIL.
    server = subprocess.Popen(
        [sys.executable, "-m", "rex_search", "--config", str(config), "serve", "--index",
         str(row.catalog.path), "--port", str(port), "--workers", "2", "--queue", "4"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    budget = row.budget_ms or 60_000.0
    try:
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise SystemExit(f"rex-search serve exited ({server.returncode}) for "
                                 f"{row.label}")
            time.sleep(0.2)
        load(url, 2, 2.0, queries, budget)  # warm-up
        return [_summary(c, load(url, c, seconds, queries, budget)) for c in clients]
    finally:
        server.terminate()
        server.wait(30)


def _summary(clients: int, result: dict[str, object]) -> dict[str, float]:
    latencies: dict[int, list[float]] = result["latencies"]  # type: ignore[assignment]
    ok = latencies.get(200, [])
    ms = np.array(ok) * 1000 if ok else np.array([np.nan])
    reranked: list[int] = result["reranked"]  # type: ignore[assignment]
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    return {"clients": clients, "ok_per_s": len(ok) / seconds,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "reranked": float(np.mean(reranked)) if reranked else float("nan"),
            "refused": sum(len(v) for k, v in latencies.items() if k != 200)}


def load_queries() -> list[str]:
    """The DEV queries and the 496 extra ESCI queries, each once, in a fixed order."""
    dev = pq.read_table(DATA / "dev" / "eress.parquet")["query_string"].to_pylist()
    extra = (DATA.parent / "esci-extra" / "queries.txt").read_text(encoding="utf-8").split("\n")
    return list(dict.fromkeys(q.strip() for q in [*sorted(set(dev)), *extra] if q.strip()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="synthetic catalog sizes")
    parser.add_argument("--windows", default="50,100,200,400", help="rerank windows served "
                                                                   "on the sample")
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--seconds", type=float, default=6.0, help="load per client count")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it runs")
    args = parser.parse_args()
    run(sizes=[int(s) for s in args.sizes.split(",")],
        windows=[int(w) for w in args.windows.split(",")],
        clients=[int(c) for c in args.clients.split(",")], seconds=args.seconds,
        smoke=args.smoke)


def run(sizes: list[int], windows: list[int], clients: list[int], seconds: float,
        smoke: bool = False) -> None:
    """Measure and print the three tables (also called by ``bench_latency.py --system``)."""
    if smoke:
        sizes, windows, clients, seconds = [1000], [RerankConfig().window], clients[:2], 0.5
    queries = load_queries()
    default_window = RerankConfig().window
    print(f"\nCPU: {machine()}; started {time.strftime('%Y-%m-%d %H:%M:%S')}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        embedder = Embedder()
        sample, sample_row = build_sample(workdir, 300 if smoke else None, embedder)
        indexing = [sample_row, embedder_rate(embedder, 100 if smoke else 1000)]
        catalogs = [sample]
        for n in sizes:
            catalog, built = build_synthetic(workdir, n, embedder)
            catalogs.append(catalog)
            indexing.append(built)
        table("Indexing (products/s; the synthetic rows store given vectors: add the embedder's "
              "time per product for a real catalog)",
              ["what", "products", "seconds", "products/s"],
              [[str(x) for x in r] for r in indexing])

        starts = {c.label: cold_starts(c, 1 if smoke else 3) for c in catalogs}
        base = statistics.median(starts[sample.label])
        table(f"Cold start: a fresh `rex-search query \"{COLD_QUERY}\"` process, wall seconds "
              f"(median of {len(starts[sample.label])}; window {default_window})",
              ["index", "products", "median s", "min s", "vs sample"],
              [[c.label, f"{c.products:,}", f"{statistics.median(starts[c.label]):.2f}",
                f"{min(starts[c.label]):.2f}",
                f"{statistics.median(starts[c.label]) / base:.2f}"] for c in catalogs])

        rows = [ServeRow(sample, w) for w in sorted({default_window, *windows})]
        rows += [ServeRow(c, default_window) for c in catalogs[1:]]
        rows.append(ServeRow(sample, default_window, budget_ms=150.0))
        measured = [(r, serve_load(r, workdir, clients, seconds, queries)) for r in rows]
    reference = next(m for r, m in measured
                     if r.catalog is sample and r.window == default_window and not r.budget_ms)
    base_rate = reference[0]["ok_per_s"]
    lines = []
    for row, results in measured:
        fitting = [m["ok_per_s"] for m in results if m["p95"] <= P95_LIMIT_MS]
        for m in results:
            lines.append([row.label, str(int(m["clients"])), f"{m['ok_per_s']:.1f}",
                          f"{m['ok_per_s'] / base_rate:.2f}", f"{m['p50']:.0f}",
                          f"{m['p95']:.0f}", f"{m['reranked']:.1f}", str(m["refused"]),
                          f"{max(fitting):.1f}" if fitting else "none"])
    table(f"`rex-search serve` /search (workers 2, queue 4, {seconds:.0f} s per client count; "
          f"ratio vs the default: sample, window {default_window}, 1 client)",
          ["configuration", "clients", "ok/s", "ok/s vs default", "p50 ms", "p95 ms",
           "mean reranked", "not 200", f"ok/s at p95 <= {P95_LIMIT_MS:.0f} ms"], lines)


if __name__ == "__main__":
    main()
