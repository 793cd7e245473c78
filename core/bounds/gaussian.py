"""Closed-form Gaussian KL divergences used by the bounds.

Diffusion: docs/diffusion-bound.md#encoder_prior (and the entropy in #encoder_info); VAE: docs/vae-bound.md#kl.
"""

from __future__ import annotations

import math

import torch


def kl_isotropic_to_standard(mean: torch.Tensor, var: float) -> torch.Tensor:
    """KL(N(mean, var I) || N(0, I)) per row of ``mean`` (n, d): 1/2 (|mean|^2 + d var - d - d log var)."""
    d = mean.shape[-1]
    sq = mean.double().pow(2).sum(-1)
    return 0.5 * (sq + d * var - d - d * math.log(var))


def kl_diagonal_to_standard(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag exp(logvar)) || N(0, I)) per row: -1/2 sum(1 + logvar - mean^2 - exp(logvar))."""
    return -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(-1)


def gaussian_entropy_isotropic(d: int, var: float) -> float:
    """Differential entropy of N(mu, var I_d): d/2 (1 + log 2 pi var)."""
    return 0.5 * d * (1.0 + math.log(2.0 * math.pi * var))
