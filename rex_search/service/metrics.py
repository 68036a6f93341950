"""The service's Prometheus metrics, on prometheus-client: one registry per app, every metric
declared here with its help text and label names (route templates, never raw paths)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST

# name -> (kind, help, label names)
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "rex_requests_total": ("counter", "HTTP requests by route and status", ("path", "status")),
    "rex_request_seconds": ("histogram", "HTTP request latency by route", ("path",)),
    "rex_stage_seconds": ("histogram", "search pipeline stage latency", ("stage",)),
    "rex_degraded_total": ("counter", "search responses served degraded (budget or failure)",
                           ()),
    "rex_rejected_total": ("counter", "requests refused before any model work", ("reason",)),
    "rex_in_flight": ("gauge", "requests running or queued for the models", ()),
    "rex_rerank_cache_hit_rate": ("gauge", "reranker score cache hit rate", ()),
}
_KINDS = {"counter": Counter, "histogram": Histogram, "gauge": Gauge}


class Metrics:
    """inc / observe / set by metric name and labels; `render` is the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics = {}
        for name, (kind, text, labels) in METRICS.items():
            extra = {"buckets": BUCKETS_S} if kind == "histogram" else {}
            self._metrics[name] = _KINDS[kind](name, text, labels, registry=self.registry,
                                               **extra)

    def _child(self, name: str, labels: dict[str, str]):
        metric = self._metrics[name]
        return metric.labels(**labels) if labels else metric

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        self._child(name, labels).inc(amount)

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        self._child(name, labels).observe(seconds)

    def set(self, name: str, value: float) -> None:
        self._metrics[name].set(value)

    def render(self) -> str:
        return generate_latest(self.registry).decode("utf-8")
