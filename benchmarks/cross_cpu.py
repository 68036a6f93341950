"""Does a bundled reranker rank the same on another CPU type? Scores under an emulated CPU
against this machine natively.

    python benchmarks/cross_cpu.py [--model NAME] [--queries 2] [--cpu Haswell] [--smoke]

ONNX Runtime picks its int8 kernels by the CPU's features (AVX2's `vpmaddubsw` sums pairs of
products in int16; AVX-512 VNNI sums in int32), so the same file can score differently by
CPU. This scores the first ``--queries`` DEV queries' judged pairs here, then again in a child
process under ``qemu-x86_64 -cpu CPU`` (user-mode emulation: install the ``qemu-user`` package;
slow, minutes per query), and prints how far the scores and each query's order moved. Numbers
are this run's; nothing is asserted. ``--smoke``: one query, the child run natively (no qemu),
so every score must agree exactly: a check of the mechanics.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rex_search.config import RerankConfig  # noqa: E402
from rex_search.evaluate.judgments import read_judgments  # noqa: E402
from rex_search.onnx_session import machine  # noqa: E402

DEV = Path(__file__).resolve().parents[1] / "data" / "esci-sample" / "dev" / "eress.parquet"


def scores(model: str, queries: int) -> list[list[float]]:
    """Each of the first ``queries`` DEV queries' judged pairs, scored by ``model``."""
    from rex_search.rerank.base import load_reranker

    reranker = load_reranker(model)
    return [reranker.score(q.query, [d.as_product() for d in q.docs])
            for q in read_judgments(DEV)[:queries]]


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-a of two score lists over the same items."""
    pairs = concordant = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            pairs += 1
            concordant += 1 if (a[i] - a[j]) * (b[i] - b[j]) > 0 else \
                -1 if (a[i] - a[j]) * (b[i] - b[j]) < 0 else 0
    return concordant / pairs if pairs else 1.0


def top(values: list[float], k: int) -> list[int]:
    return sorted(range(len(values)), key=lambda i: -values[i])[:k]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=RerankConfig().model)
    parser.add_argument("--queries", type=int, default=2)
    parser.add_argument("--cpu", default="Haswell", help="a qemu CPU model (qemu-x86_64 "
                                                         "-cpu help lists them)")
    parser.add_argument("--smoke", action="store_true", help="1 query, no emulation")
    parser.add_argument("--scores-to", type=Path, help=argparse.SUPPRESS)  # the child's run
    args = parser.parse_args()
    if args.smoke:
        args.queries = 1
    if args.scores_to:
        args.scores_to.write_text(json.dumps(scores(args.model, args.queries)))
        return
    qemu = shutil.which("qemu-x86_64")
    if qemu is None and not args.smoke:
        sys.exit("qemu-x86_64 is not installed (Debian: apt-get install qemu-user)")
    emulator = [] if args.smoke else [qemu or "", "-cpu", args.cpu]
    native = scores(args.model, args.queries)
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "scores.json"
        child = subprocess.run([*emulator, sys.executable, __file__, "--model", args.model,
                                "--queries", str(args.queries), "--scores-to", str(out)],
                               stderr=subprocess.PIPE, text=True)
        if child.returncode:  # qemu warns once per thread about CPU features TCG lacks
            sys.exit("the emulated run failed:\n" + "\n".join(
                line for line in child.stderr.splitlines()
                if not line.startswith("qemu-x86_64: warning")))
        emulated = json.loads(out.read_text())
    here = machine()  # (under qemu-user /proc/cpuinfo is still the host's: not asked there)
    print(f"{args.model}: native {here.get('cpu', platform.processor())} "
          f"({here.get('cpu_flags', '?')}) against "
          f"{'itself (smoke)' if args.smoke else f'qemu -cpu {args.cpu}'}; onnxruntime "
          f"{here.get('onnxruntime', '?')}")
    print(f"{'query':>5} {'pairs':>5} {'mean |diff|':>11} {'max |diff|':>10} "
          f"{'kendall tau':>11} {'top-10 kept':>11} {'same top-1':>10}")
    diffs: list[float] = []
    for i, (a, b) in enumerate(zip(native, emulated, strict=True)):
        moved = [abs(x - y) for x, y in zip(a, b, strict=True)]
        diffs += moved
        kept = len(set(top(a, 10)) & set(top(b, 10)))
        print(f"{i:>5} {len(a):>5} {sum(moved) / len(moved):>11.4f} {max(moved):>10.4f} "
              f"{kendall_tau(a, b):>11.3f} {kept:>8} / {min(10, len(a))} "
              f"{'yes' if top(a, 1) == top(b, 1) else 'no':>10}")
    print(f"all {len(diffs)} pairs: mean |diff| {sum(diffs) / len(diffs):.4f}, "
          f"max {max(diffs):.4f}")


if __name__ == "__main__":
    main()
