"""Preprocessing of 8-bit images for diffusion (docs/diffusion-bound.md#images).

Uniform dequantisation x * 255/256 + U(0, 1/256) turns the discrete intensities into a density on [0, 1]^d;
the logit transform y = logit(lam + (1 - 2 lam) x), lam = 0.05, maps them to R^d. Its log-determinant
sum_i [log(1 - 2 lam) - log s_i - log(1 - s_i)], s = lam + (1 - 2 lam) x, converts a density of y into one of x,
which is what bits per dimension are reported on.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

LOGIT_LAMBDA = 0.05


def dequantize(x: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """x * 255/256 + U(0, 1/256); x carries a leading member axis, member e's noise from generators[e]."""
    from ..diffusion.noise import uniform

    noise = uniform(generators, tuple(x.shape[1:]), x.device).to(x.dtype)
    return x * (255.0 / 256.0) + noise / 256.0


def logit_transform(x: torch.Tensor, lam: float = LOGIT_LAMBDA) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, log|dy/dx| summed over the last axis) for x in [0, 1]."""
    s = lam + (1.0 - 2.0 * lam) * x
    y = torch.log(s) - torch.log1p(-s)
    logdet = (math.log(1.0 - 2.0 * lam) - torch.log(s) - torch.log1p(-s)).sum(-1)
    return y, logdet


def inverse_logit(y: torch.Tensor, lam: float = LOGIT_LAMBDA) -> torch.Tensor:
    """x = (sigmoid(y) - lam) / (1 - 2 lam), clipped to [0, 1] for display."""
    return ((torch.sigmoid(y) - lam) / (1.0 - 2.0 * lam)).clamp(0.0, 1.0)


def bits_per_dim(log_likelihood_y: torch.Tensor, logdet: torch.Tensor, d: int) -> torch.Tensor:
    """BPD = -(log p(y) + logdet) / (d ln 2) + 8: bits per 8-bit pixel of the dequantised data.

    docs/test-metrics.md#test-bpd.
    """
    return -(log_likelihood_y + logdet) / (d * math.log(2.0)) + 8.0
