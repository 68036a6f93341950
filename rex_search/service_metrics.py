"""Prometheus text-format metrics for the service: counters and latency histograms."""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        with self._lock:
            for (name, labels), value in sorted(self.counters.items()):
                lines.append(f"{name}{_labels(labels)} {value:g}")
            for name, value in sorted(self.gauges.items()):
                lines.append(f"{name} {value:g}")
            for (name, labels), state in sorted(self.histograms.items()):
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
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"
