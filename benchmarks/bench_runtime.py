"""What the torch-free runtime saves: a cold query's wall time and peak memory, and what a
plain install puts on disk, with the PyTorch embedder (the runtime before) as the baseline.

    python benchmarks/bench_runtime.py [--runs 3] [--no-install]

Each cold query is a fresh process that opens the index, loads the embedder and the bundled
reranker, and answers one query -- as `rex-search query` does. "torch" loads the embedder on
transformers + PyTorch (what every query did before); "onnx" the bundled ONNX copy. Both use
all-MiniLM-L6-v2 (the one embedder with both a PyTorch and an ONNX copy here), so the
difference is the runtime alone. Install
size: the site-packages of a fresh venv with `pip install .` (no extras), against the
torch-related packages of this environment. Nothing is asserted; numbers are this run's.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLD = """
import sys, time
started = time.perf_counter()
runtime = sys.argv[2]
if runtime == "torch":
    import torch, transformers  # what the runtime imported before
from rex_search.backends.open import open_backend
from rex_search.indexer.embed import Embedder
from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
backend = open_backend(sys.argv[1], embedder=None)
embedder = Embedder("all-MiniLM-L6-v2", runtime=runtime)
pipeline = SearchPipeline(backend, embedder, load_reranker("rex-reranker-bge-small", embedder))
hits = pipeline.search("usb c charger not apple", size=5).hits
import resource
print(round(time.perf_counter() - started, 3), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def cpu() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("flags")), "")
    wanted = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f" {f}" in flags]
    return f"{model} ({', '.join(wanted)})"


def cold_query(index: Path, runtime: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one fresh process answering one query, as it reports."""
    done = subprocess.run([sys.executable, "-c", COLD, str(index), runtime],
                          capture_output=True, text=True, check=True)
    seconds, peak_kb = done.stdout.split()[:2]
    return float(seconds), int(peak_kb) / 1024


def serve_rss(index: Path) -> float:
    """Resident memory (MB) of `rex-search serve` once it is ready and has answered."""
    import json
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rex_search", "serve", "--index",
                               str(index), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        request = urllib.request.Request(f"{base}/search", method="POST",
                                         data=json.dumps({"query": "usb c charger"}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()
        status = Path(f"/proc/{server.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmRSS"))) / 1024
    finally:
        server.terminate()
        server.wait(30)


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="one run, no install: checks it "
                                                             "runs")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.no_install = 1, True
    print(f"CPU: {cpu()}; Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as work:
        index = Path(work) / "index"
        config = Path(work) / "minilm.toml"
        config.write_text('[index]\nembedding_model = "all-MiniLM-L6-v2"\n')
        subprocess.run([sys.executable, "-m", "rex_search", "--config", str(config), "index",
                        str(REPO / "tests/fixtures/rules_catalog.jsonl"), "--index", str(index)],
                       check=True, capture_output=True)
        rows = {}
        for runtime in ("onnx", "torch"):
            runs = [cold_query(index, runtime) for _ in range(args.runs)]
            rows[runtime] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
        print("\n| cold query (fresh process) | seconds (median) | peak RSS MB | vs torch |")
        print("|---|---|---|---|")
        base = rows["torch"]
        for runtime, (seconds, rss) in rows.items():
            print(f"| embedder on {runtime} | {seconds:.2f} | {rss:.0f} | "
                  f"{seconds / base[0]:.2f}x time, {rss / base[1]:.2f}x memory |")
        print(f"\n| `rex-search serve` after one /search | RSS MB |\n|---|---|\n"
              f"| embedder on onnx (the only runtime serve uses now) | {serve_rss(index):.0f} |")
        if args.no_install:
            return
        site = Path(next(p for p in sys.path if p.endswith("site-packages")))
        heavy = sum(folder_mb(p) for p in site.iterdir() if p.is_dir() and (
            p.name.startswith(("torch", "nvidia", "transformers", "triton"))))
        venv = Path(work) / "plain"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(REPO)], check=True)
        plain = folder_mb(next((venv / "lib").glob("python*/site-packages")))
        print("\n| install | MB on disk |")
        print("|---|---|")
        print(f"| `pip install .` (no extras), whole site-packages | {plain:.0f} |")
        print(f"| torch, nvidia-*, triton, transformers in this dev environment | {heavy:.0f} |")


if __name__ == "__main__":
    main()
