"""Bootstrap statistics over queries: confidence intervals and paired comparisons (seeded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """Paired bootstrap of mean(A) - mean(B) over the same queries."""

    diff: float
    low: float
    high: float
    p_value: float


def bootstrap_ci(values: Sequence[float], resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of the mean, resampling queries with replacement."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    means = _resampled_means(data, resamples, seed)
    tail = (1 - level) / 2 * 100
    return Interval(float(data.mean()), float(np.percentile(means, tail)),
                    float(np.percentile(means, 100 - tail)))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> Comparison:
    """Two-sided paired bootstrap test of mean(a - b) = 0.

    p = 2 * min(P*(d <= 0), P*(d >= 0)) over the resampled mean differences d (capped at 1):
    the share of resamples in which the sign of the difference flips.
    """
    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diffs.size == 0:
        return Comparison(float("nan"), float("nan"), float("nan"), 1.0)
    means = _resampled_means(diffs, resamples, seed)
    tail = (1 - level) / 2 * 100
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return Comparison(float(diffs.mean()), float(np.percentile(means, tail)),
                      float(np.percentile(means, 100 - tail)), p)


def _resampled_means(data: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, data.size, size=(resamples, data.size))
    return data[picks].mean(axis=1)
