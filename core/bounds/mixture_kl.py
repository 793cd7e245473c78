"""Monte Carlo KL between each component of an isotropic Gaussian mixture and the mixture itself.

For means mu_1..mu_m: KL_i = KL( N(mu_i, v_s I) || (1/M) sum_j N(nu_j, v_m I) ), estimated with K samples
u_ik ~ N(mu_i, v_s I), the exact entropy of N(mu_i, v_s I), and a logsumexp over the M mixture components.
Distances are matrix products (|u|^2 + |nu|^2 - 2 u.nu), chunked over samples and components so that memory
stays bounded however large m, M and d are. That form cancels badly when the variance is small against the
norms, so the points are first centred on the components' mean (distances do not change), and low-dimensional
inputs are computed in float64 when float32 rounding would move the exponents by more than 1e-4.
The estimator and its standard error are explained in docs/diffusion-bound.md#encoder_info.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .chunking import DEFAULT_BLOCK_BYTES, rows_per_block
from .gaussian import gaussian_entropy_isotropic

FLOAT64_MAX_DIM = 64
FLOAT32_EPS = 1.2e-7


def precise_dtype(centred: torch.Tensor, var: float) -> torch.dtype:
    """float64 where float32's error in |u - nu|^2 / (2 var), about 2 eps max|x|^2 / var, exceeds 1e-4.

    Only for d <= FLOAT64_MAX_DIM, where the cost is negligible; high-dimensional inputs keep their dtype.
    """
    if centred.shape[1] > FLOAT64_MAX_DIM:
        return centred.dtype
    max_sq = float(centred.double().pow(2).sum(-1).max())
    return torch.float64 if 2 * FLOAT32_EPS * max_sq / var > 1e-4 else centred.dtype


@dataclass(frozen=True)
class MixtureKL:
    """Per-component KL estimates (m,) and the Monte Carlo standard error of their mean."""

    per_point: torch.Tensor
    mean_se: float

    @property
    def mean(self) -> float:
        return float(self.per_point.mean())


def log_mixture_density(
    u: torch.Tensor, centres: torch.Tensor, var: float, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> torch.Tensor:
    """log (1/M) sum_j N(u; centres_j, var I) for each row of u (n, d), chunked over the M centres."""
    n, d = u.shape
    n_centres = centres.shape[0]
    u_sq = u.pow(2).sum(-1, keepdim=True)
    cols = rows_per_block(n, 0, budget=block_bytes)
    running = torch.full((n,), -math.inf, dtype=u.dtype, device=u.device)
    for start in range(0, n_centres, cols):
        c = centres[start : start + cols]
        sq = (u_sq + c.pow(2).sum(-1).unsqueeze(0)).addmm_(u, c.t(), alpha=-2.0).clamp_min_(0.0)
        running = torch.logaddexp(running, torch.logsumexp(sq.mul_(-0.5 / var), dim=1))
    return running - math.log(n_centres) - 0.5 * d * math.log(2.0 * math.pi * var)


def mixture_kl(
    means: torch.Tensor,
    centres: torch.Tensor,
    sample_var: float,
    mixture_var: float,
    n_samples: int,
    generator: torch.Generator,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> MixtureKL:
    """KL_i for every row of ``means`` (m, d) against the mixture on ``centres`` (M, d); K = ``n_samples``."""
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        m, d = means.shape
        shift = centres.mean(dim=0, keepdim=True)
        means, centres = means - shift, centres - shift
        # Samples reach a few standard deviations beyond the means.
        dtype = precise_dtype(torch.cat([means, centres]).abs() + 4 * math.sqrt(sample_var), min(sample_var, mixture_var))
        means, centres = means.to(dtype), centres.to(dtype)
        entropy = gaussian_entropy_isotropic(d, sample_var)
        std = math.sqrt(sample_var)
        # Each chunk holds its samples (rows x d) and one distance block (rows x up to 4096 centres).
        sample_rows = rows_per_block(min(centres.shape[0], 4096), d, budget=block_bytes)
        points_per_chunk = max(1, sample_rows // n_samples)
        kl = torch.empty(m, dtype=torch.float64, device=means.device)
        var_sum = 0.0
        for start in range(0, m, points_per_chunk):
            mu = means[start : start + points_per_chunk]
            noise = torch.randn(mu.shape[0], n_samples, d, generator=generator, device=generator.device)
            u = (mu.unsqueeze(1) + std * noise.to(mu.device, mu.dtype)).reshape(-1, d)
            log_q = log_mixture_density(u, centres, mixture_var, block_bytes).double().view(mu.shape[0], n_samples)
            kl[start : start + mu.shape[0]] = -entropy - log_q.mean(1)
            if n_samples > 1:
                var_sum += float(log_q.var(1).sum())
        se = math.sqrt(var_sum / n_samples) / m if n_samples > 1 else float("nan")
        return MixtureKL(kl, se)
