"""Distributional-pointwise loss of RexRerankers, and the pointwise baselines.

Labels y in [0, 1]; K = 11 bins with centres c_k = 0, 0.1, ..., 1.0; the head outputs 11
logits, p = softmax(logits). The soft target is a Gaussian around y whose width grows near the
grade boundaries t in {0.2, 0.5, 0.8}, where annotators disagree most:

    d        = min_t |y - t|
    sigma(y) = sigma_min + (sigma_max - sigma_min) * exp(-0.5 d^2 / delta^2)
    q_k      ∝ max(exp(-0.5 (y - c_k)^2 / sigma^2), 1e-8),  normalised over k
    loss     = mean_batch KL(q || p) + lambda * mean_batch (sum_k p_k c_k - y)^2

Encoder defaults sigma_min 0.04, sigma_max 0.12, delta 0.08 (RexRerankers' released training
code; the decoder variant uses sigma_max 0.08, delta 0.06). With per-pair label variances
(several annotators), ``sigma`` may come from the data instead: sqrt(variance), clipped to
[sigma_min, sigma_max] — the "noise as signal" idea taken one step further. A NaN variance
(a pair judged once) falls back to the boundary schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRANSITIONS = (0.2, 0.5, 0.8)


@dataclass(frozen=True)
class DistributionalConfig:
    sigma_min: float = 0.04
    sigma_max: float = 0.12
    delta: float = 0.08
    mse_weight: float = 0.0  # lambda; the released scripts default to 10, the small run used 0
    bins: int = 11


def bin_centres(bins: int = 11, device: torch.device | None = None) -> torch.Tensor:
    return torch.linspace(0.0, 1.0, bins, device=device)


def target_sigma(y: torch.Tensor, config: DistributionalConfig,
                 variance: torch.Tensor | None = None) -> torch.Tensor:
    """Per-label target width: the boundary schedule, or sqrt(variance) where the data has one."""
    d = torch.stack([(y - t).abs() for t in TRANSITIONS]).min(dim=0).values
    closeness = torch.exp(-0.5 * d ** 2 / config.delta ** 2)
    schedule = config.sigma_min + (config.sigma_max - config.sigma_min) * closeness
    if variance is None:
        return schedule
    from_data = variance.clamp(min=0).sqrt().clamp(config.sigma_min, config.sigma_max)
    return torch.where(torch.isnan(variance), schedule, from_data)


def soft_targets(y: torch.Tensor, config: DistributionalConfig,
                 variance: torch.Tensor | None = None) -> torch.Tensor:
    """q: (batch, bins) Gaussian targets around each label, normalised over the bins."""
    centres = bin_centres(config.bins, y.device)
    sigma = target_sigma(y, config, variance).unsqueeze(1)
    weights = torch.exp(-0.5 * (y.unsqueeze(1) - centres) ** 2 / sigma ** 2).clamp(min=1e-8)
    return weights / weights.sum(dim=1, keepdim=True)


def distributional_loss(logits: torch.Tensor, y: torch.Tensor,
                        config: DistributionalConfig | None = None,
                        variance: torch.Tensor | None = None) -> torch.Tensor:
    """Batch-mean KL(q || softmax(logits)) + lambda * MSE(expected relevance, y)."""
    config = config or DistributionalConfig()
    q = soft_targets(y, config, variance)
    log_p = torch.log_softmax(logits, dim=1)
    kl = (q * (q.log() - log_p)).sum(dim=1).mean()
    if config.mse_weight == 0:
        return kl
    expected = (log_p.exp() * bin_centres(config.bins, logits.device)).sum(dim=1)
    return kl + config.mse_weight * ((expected - y) ** 2).mean()


def expected_score(logits: torch.Tensor) -> torch.Tensor:
    """Inference score: E[relevance] = sum_k softmax(logits)_k c_k."""
    return (torch.softmax(logits, dim=1) * bin_centres(logits.shape[1], logits.device)).sum(1)


def bce_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pointwise baseline: binary cross-entropy of sigmoid(logit) against soft label y."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logit.squeeze(-1), y)


def mse_loss(logit: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pointwise baseline: squared error of sigmoid(logit) against y."""
    return ((torch.sigmoid(logit.squeeze(-1)) - y) ** 2).mean()
