"""One way to open an ONNX Runtime session, for the embedder and the rerankers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rex_search.errors import ModelError


def default_threads() -> int:
    """Intra-op threads: the cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def open_session(path: Path, threads: int | None = None) -> Any:
    """A CPU session with full graph optimisation, ``threads`` intra-op threads (default: the
    cores available) and one inter-op thread, so concurrent models do not oversubscribe."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError("ONNX models need onnxruntime: pip install onnxruntime") from exc
    if not path.exists():
        raise ModelError(f"{path} not found")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def machine() -> dict[str, str]:
    """The CPU model, the instruction sets that change int8 kernels (VNNI and AMX take other
    paths than AVX2, so int8 scores differ slightly between CPUs) and ONNX Runtime's version:
    recorded beside every measured number so it can be reproduced."""
    cpu, flags = "unknown CPU", ""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((line.split(":", 1)[1].strip() for line in info
                    if line.startswith("model name")), cpu)
        have = set(next((line for line in info if line.startswith("flags")), "").split())
        flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                          if f in have)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        runtime = version("onnxruntime")
    except Exception:  # noqa: BLE001 (not installed: nothing to report)
        runtime = "not installed"
    return {"cpu": cpu, "cpu_flags": flags, "onnxruntime": runtime}
