"""The distributional-pointwise loss against hand-computed targets and numerical gradients."""

from __future__ import annotations

import math

import pytest
import torch

from rex_search.train.loss import (
    DistributionalConfig,
    distributional_loss,
    expected_score,
    soft_targets,
    target_sigma,
)

CONFIG = DistributionalConfig()


def hand_targets(y: float, sigma: float) -> list[float]:
    weights = [max(math.exp(-0.5 * (y - k / 10) ** 2 / sigma ** 2), 1e-8) for k in range(11)]
    total = sum(weights)
    return [w / total for w in weights]


def hand_sigma(y: float) -> float:
    d = min(abs(y - t) for t in (0.2, 0.5, 0.8))
    return 0.04 + 0.08 * math.exp(-0.5 * d * d / 0.08 ** 2)


@pytest.mark.parametrize("y", [0.0, 0.5, 0.8, 1.0])
def test_targets_match_hand_computation(y: float):
    sigma = hand_sigma(y)
    if y == 0.5:
        assert sigma == pytest.approx(0.12)  # on a boundary: widest
    if y in (0.0, 1.0):
        assert sigma == pytest.approx(0.04 + 0.08 * math.exp(-0.5 * 0.2 ** 2 / 0.0064))
    got = soft_targets(torch.tensor([y], dtype=torch.float64), CONFIG)[0].tolist()
    assert got == pytest.approx(hand_targets(y, sigma), abs=1e-7)
    assert sum(got) == pytest.approx(1.0)
    assert max(range(11), key=lambda k: got[k]) == round(y * 10)


def test_width_from_data_variance():
    y = torch.tensor([0.3, 0.3, 0.3], dtype=torch.float64)
    sigma = target_sigma(y, CONFIG, torch.tensor([0.0, 0.0064, 1.0], dtype=torch.float64))
    assert sigma.tolist() == pytest.approx([0.04, 0.08, 0.12])


def test_loss_is_zero_at_the_target_and_kl_by_hand():
    y = torch.tensor([0.8], dtype=torch.float64)
    q = soft_targets(y, CONFIG)
    assert distributional_loss(q.log(), y, CONFIG).item() == pytest.approx(0.0, abs=1e-12)
    uniform = torch.zeros(1, 11, dtype=torch.float64)
    expected = sum(v * (math.log(v) - math.log(1 / 11)) for v in q[0].tolist())
    assert distributional_loss(uniform, y, CONFIG).item() == pytest.approx(expected)
    with_mse = distributional_loss(uniform, y, DistributionalConfig(mse_weight=10.0))
    assert with_mse.item() == pytest.approx(expected + 10 * (0.5 - 0.8) ** 2)
    assert expected_score(uniform).item() == pytest.approx(0.5)


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    logits = torch.randn(3, 11, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 0.55, 1.0], dtype=torch.float64)
    config = DistributionalConfig(mse_weight=10.0)
    assert torch.autograd.gradcheck(lambda z: distributional_loss(z, y, config), (logits,))
