"""Issue #23's ONNX Runtime lever: session settings for the bundled int8 reranker, in one run.

    python benchmarks/bench_ort_settings.py [--repeats 2] [--window 50] [--smoke]

Each DEV query's first ``window`` judged products (the default reranks 50) are tokenized once
as the reranker does (64 tokens) and scored one pair per call -- the bundled model is int8,
so a batch would make a pair's score depend on its batch-mates (see
`rex_search/rerank/cross_encoder.py`). Only how ONNX Runtime runs those calls changes:

- today: one session, 1 intra-op thread, full graph optimisation, the calls spread over a
  pool of one thread per core (what `OnnxCrossEncoder` does; the reference of every ratio);
- graph optimisation extended / basic / disabled, otherwise today;
- one session per pool thread instead of one shared session;
- IO binding (inputs and the output bound before each call);
- memory pattern and CPU arena off;
- calls in turn on one session with one intra-op thread per core, with and without
  spin-waiting, and in ORT's parallel execution mode.

Settings run interleaved, ``repeats`` passes each; a setting's per-query latencies are those
of its fastest pass. "max |score diff|" is against today's scores for the same pairs (graph
rewrites may round differently; anything else should be exactly 0). Nothing is asserted;
the numbers are this run's on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_pipeline import pct, table  # noqa: E402
from rex_search.catalog.prompt import product_text  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.model_files import BUNDLED_RERANKER, resolve_model  # noqa: E402
from rex_search.onnx_session import default_threads, machine  # noqa: E402
from rex_search.rerank.cross_encoder import OnnxCrossEncoder, scores_from_logits  # noqa: E402

DEV = ROOT / "data" / "esci-sample" / "dev" / "eress.parquet"
MODEL_FILE = "model.int8.onnx"


@dataclass
class Setting:
    name: str
    level: str = "ORT_ENABLE_ALL"
    pooled: bool = True  # one-thread calls over a pool of one thread per core
    sessions_per_thread: bool = False
    io_binding: bool = False
    memory_pattern: bool = True
    spinning: bool = True
    parallel: bool = False


SETTINGS = [
    Setting("today (1-thread calls on a pool, ENABLE_ALL)"),
    Setting("graph optimisation EXTENDED", level="ORT_ENABLE_EXTENDED"),
    Setting("graph optimisation BASIC", level="ORT_ENABLE_BASIC"),
    Setting("graph optimisation disabled", level="ORT_DISABLE_ALL"),
    Setting("one session per pool thread", sessions_per_thread=True),
    Setting("IO binding", io_binding=True),
    Setting("memory pattern and arena off", memory_pattern=False),
    Setting("calls in turn, all cores per call", pooled=False),
    Setting("calls in turn, all cores, no spin-wait", pooled=False, spinning=False),
    Setting("calls in turn, all cores, parallel mode", pooled=False, parallel=True),
]


def open_with(setting: Setting, path: Path, cores: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, setting.level)
    options.intra_op_num_threads = 1 if setting.pooled else cores
    options.inter_op_num_threads = cores if setting.parallel else 1
    if setting.parallel:
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    if not setting.memory_pattern:
        options.enable_mem_pattern = False
        options.enable_cpu_mem_arena = False
    if not setting.spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Runner:
    """Scores one query's pairs under one setting."""

    def __init__(self, setting: Setting, path: Path, cores: int) -> None:
        self.setting = setting
        count = cores if setting.sessions_per_thread else 1
        self.sessions = [open_with(setting, path, cores) for _ in range(count)]
        self.inputs = {i.name for i in self.sessions[0].get_inputs()}
        self.pool = ThreadPoolExecutor(cores) if setting.pooled else None

    def one(self, pair: dict[str, np.ndarray], slot: int) -> float:
        session = self.sessions[slot % len(self.sessions)]
        feed = {k: v for k, v in pair.items() if k in self.inputs}
        if self.setting.io_binding:
            binding = session.io_binding()
            for name, value in feed.items():
                binding.bind_cpu_input(name, value)
            binding.bind_output(session.get_outputs()[0].name)
            session.run_with_iobinding(binding)
            logits = binding.copy_outputs_to_cpu()[0]
        else:
            logits = session.run(None, feed)[0]
        return float(scores_from_logits(np.asarray(logits))[0])

    def score(self, pairs: list[dict[str, np.ndarray]]) -> np.ndarray:
        if self.pool is None:
            return np.array([self.one(p, 0) for p in pairs])
        # Pair i goes to slot i mod cores: with one session per thread, the slots spread the
        # calls over the sessions the way one session per worker would.
        return np.array(list(self.pool.map(self.one, pairs, range(len(pairs)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--window", type=int, default=50, help="pairs per query (the default "
                        "reranks 50 candidates)")
    parser.add_argument("--smoke", action="store_true", help="3 queries, 1 pass, 3 settings")
    args = parser.parse_args()
    queries = read_judgments(DEV)[:3] if args.smoke else read_judgments(DEV)
    settings = SETTINGS[:2] + SETTINGS[-1:] if args.smoke else SETTINGS
    repeats = 1 if args.smoke else args.repeats
    reranker = OnnxCrossEncoder(BUNDLED_RERANKER, max_tokens=64, cache_entries=0,
                                file=MODEL_FILE)
    work = []
    for q in queries:
        encoded = reranker.encode(q.query, [product_text(d.as_product())
                                            for d in q.docs[:args.window]])
        work.append([{name: np.array([values[i]], dtype=np.int64)
                      for name, values in encoded.items()}
                     for i in range(len(encoded["input_ids"]))])
    cores = default_threads()
    path = Path(resolve_model(BUNDLED_RERANKER)) / MODEL_FILE
    runners = [Runner(s, path, cores) for s in settings]
    for runner in runners:  # warm each session (first-call allocations) before timing
        runner.score(work[0])
    # (seconds, per-query ms, per-query scores) of each pass, by setting name
    passes: dict[str, list[tuple[float, list[float], list[np.ndarray]]]] = {
        s.name: [] for s in settings}
    for _ in range(repeats):
        for runner in runners:
            started, times, scores = time.perf_counter(), [], []
            for pairs in work:
                t0 = time.perf_counter()
                scores.append(runner.score(pairs))
                times.append(1000 * (time.perf_counter() - t0))
            passes[runner.setting.name].append((time.perf_counter() - started, times, scores))
    pairs_total = sum(len(p) for p in work)
    info = machine()
    print(f"CPU: {info.get('cpu')}; flags {info.get('cpu_flags')}; onnxruntime "
          f"{info.get('onnxruntime')}; {cores} cores; {len(work)} DEV queries, {pairs_total} "
          f"pairs (up to {args.window} per query, {reranker.max_tokens} tokens), "
          f"{repeats} interleaved passes; started {time.strftime('%F %T')}")
    best = {name: min(runs, key=lambda run: run[0]) for name, runs in passes.items()}
    reference = best[settings[0].name]
    ref_p50 = pct(reference[1], 50)
    rows = []
    for s in settings:
        elapsed, times, scores = best[s.name]
        diff = max(float(np.abs(a - b).max()) for a, b in
                   zip(scores, reference[2], strict=True))
        spread = [run[0] for run in passes[s.name]]
        rows.append([s.name, f"{pct(times, 50):.0f}", f"{pct(times, 95):.0f}",
                     f"{pct(times, 50) / ref_p50:.2f}", f"{pairs_total / elapsed:.0f}",
                     f"{statistics.fmean(spread):.1f}", f"{diff:.2g}"])
    table(f"Bundled reranker ({MODEL_FILE}), one pair per call: per-query latency by ONNX "
          "Runtime setting (fastest pass)",
          ["setting", "p50 ms", "p95 ms", "p50 vs today", "pairs/s", "mean pass s",
           "max |score diff|"], rows)


if __name__ == "__main__":
    main()
