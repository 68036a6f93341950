"""Reranker scores that read as probabilities: a two-parameter logistic (Platt) map of the
model's score, fitted on judgments the model was not trained on.

The model's score (expected relevance over 11 bins) orders products well but is not
calibrated: users read 0.6 as "probably right" when it is not. ``calibrated = sigmoid(a *
logit(score) + b)`` is monotone, so it never changes an order; it estimates the expected
graded relevance (for ESCI gains: roughly the chance of an exact match), and ``[rerank]
min_score`` applies to it. Two parameters, not isotonic steps: they transfer to text forms
the fit never saw (titles only, HTML descriptions), which ``benchmarks/calibration.py``
measures by cross-fitting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rex_search.errors import ModelError

FILE = "calibration.json"
_EPS = 1e-6


def _logit(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _EPS, 1 - _EPS)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """``sigmoid(a * logit(score) + b)``; ``fitted_on`` says on what, for the reader."""

    a: float
    b: float
    fitted_on: str = ""

    def __call__(self, score: float) -> float:
        return float(self.apply([score])[0])

    def apply(self, scores: Sequence[float]) -> list[float]:
        z = self.a * _logit(np.asarray(scores, dtype=np.float64)) + self.b
        return [float(v) for v in 1 / (1 + np.exp(-z))]

    def save(self, folder: Path) -> Path:
        path = folder / FILE
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")
        return path


def fit(scores: Sequence[float], relevance: Sequence[float], fitted_on: str = "",
        iterations: int = 50) -> Calibration:
    """Minimise the cross-entropy of ``sigmoid(a * logit(score) + b)`` against graded
    relevance in [0, 1] (soft labels) by Newton's method: two parameters, a convex loss."""
    x = _logit(np.asarray(scores, dtype=np.float64))
    y = np.asarray(relevance, dtype=np.float64)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("calibration needs equally many scores and relevance values (>= 2)")
    if not ((y >= 0) & (y <= 1)).all():
        raise ValueError("calibration needs relevance in [0, 1]")
    design = np.stack([x, np.ones_like(x)], axis=1)
    theta = np.array([1.0, 0.0])
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(design @ theta)))
        gradient = design.T @ (p - y)
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return Calibration(float(theta[0]), float(theta[1]), fitted_on)


def load(folder: str | Path) -> Calibration | None:
    """The calibration stored beside a model, or None when it has none."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        calibration = Calibration(float(data["a"]), float(data["b"]),
                                  str(data.get("fitted_on", "")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{path} is not a calibration (expected JSON with numbers a and b): "
                         f"{exc}") from None
    if not (math.isfinite(calibration.a) and math.isfinite(calibration.b)
            and calibration.a > 0):
        raise ModelError(f"{path}: a must be a finite number > 0 (a monotone map) and b "
                         f"finite, got a={calibration.a}, b={calibration.b}")
    return calibration


def for_model(name: str) -> Calibration | None:
    """The calibration of the configured reranker ``name`` (a bundled name or a local
    folder); None for the embedding cosine, a hub id, or a folder without one."""
    from rex_search.model_files import resolve_model
    from rex_search.rerank.base import EMBEDDING_COSINE

    if name == EMBEDDING_COSINE:
        return None
    folder = Path(resolve_model(name))
    return load(folder) if folder.is_dir() else None
