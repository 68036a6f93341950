"""Prometheus text-format metrics for the service: counters and latency histograms."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


HELP = {
    "rex_requests_total": ("counter", "HTTP requests by route and status"),
    "rex_request_seconds": ("histogram", "HTTP request latency by route"),
    "rex_stage_seconds": ("histogram", "search pipeline stage latency"),
    "rex_degraded_total": ("counter", "search responses served degraded (budget or failure)"),
    "rex_rejected_total": ("counter", "requests refused before any work (overload)"),
    "rex_in_flight": ("gauge", "requests running or queued for the models"),
    "rex_rerank_cache_hit_rate": ("gauge", "reranker score cache hit rate"),
}


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self.histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        self.gauges: dict[str, float] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self.counters[(name, tuple(sorted(labels.items())))] += amount

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            state = self.histograms.setdefault(key, [0.0] * (len(BUCKETS_S) + 2))
            for i, bound in enumerate(BUCKETS_S):
                if seconds <= bound:
                    state[i] += 1
            state[-2] += 1  # count
            state[-1] += seconds  # sum

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self.gauges[name] = value

    def render(self) -> str:
        lines: list[str] = []
        described: set[str] = set()

        def describe(name: str) -> None:
            if name not in described and name in HELP:
                kind, text = HELP[name]
                lines.extend((f"# HELP {name} {text}", f"# TYPE {name} {kind}"))
                described.add(name)

        with self._lock:
            for (name, labels), value in sorted(self.counters.items()):
                describe(name)
                lines.append(f"{name}{_labels(labels)} {value:g}")
            for name, value in sorted(self.gauges.items()):
                describe(name)
                lines.append(f"{name} {value:g}")
            for (name, labels), state in sorted(self.histograms.items()):
                describe(name)
                for bound, count in zip(BUCKETS_S, state, strict=False):
                    lines.append(f"{name}_bucket{_labels(labels + (('le', f'{bound:g}'),))} "
                                 f"{count:g}")
                lines.append(f"{name}_bucket{_labels(labels + (('le', '+Inf'),))} {state[-2]:g}")
                lines.append(f"{name}_count{_labels(labels)} {state[-2]:g}")
                lines.append(f"{name}_sum{_labels(labels)} {state[-1]:.6f}")
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    """Label values as the exposition format requires: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
