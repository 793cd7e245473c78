"""Gaussian kernel density estimates in torch, chunked over query points and kernel centres, and the KDE test
KL with its Monte Carlo error over independent generator draws (docs/test-metrics.md#test-kl)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..bounds.chunking import DEFAULT_BLOCK_BYTES, rows_per_block
from ..bounds.mixture_kl import log_mixture_density, precise_dtype


def kde_log_density(
    query: torch.Tensor, points: torch.Tensor, bandwidth: float, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> torch.Tensor:
    """log p_hat(query) for the Gaussian KDE on ``points`` (scikit-learn's KernelDensity, gaussian kernel)."""
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        var = float(bandwidth) ** 2
        shift = points.mean(dim=0, keepdim=True)  # distances are translation invariant; centring avoids cancellation
        query, points = query - shift, points - shift
        dtype = precise_dtype(torch.cat([query, points]), var)
        query, points = query.to(dtype), points.to(dtype)
        rows = rows_per_block(min(points.shape[0], 4096), query.shape[1], budget=block_bytes)
        out = [log_mixture_density(query[i : i + rows], points, var, block_bytes) for i in range(0, query.shape[0], rows)]
        return torch.cat(out)


def kde_kl(test: torch.Tensor, generated: torch.Tensor, bandwidth: float = 0.1) -> float:
    """Test KL: mean over test points of log p_hat_test(x) - log q_hat_gen(x) (docs/test-metrics.md#test-kl)."""
    return kde_kl_draws(test, generated.unsqueeze(0), bandwidth).mean


@dataclass(frozen=True)
class KdeTestKL:
    """The test KL of each independent generator draw, their mean and its standard error (NaN for one draw;
    docs/test-metrics.md#test-kl-error-bar)."""

    per_draw: list[float]

    @property
    def mean(self) -> float:
        return math.fsum(self.per_draw) / len(self.per_draw)

    @property
    def se(self) -> float:
        """Sample standard deviation over the draws / sqrt(number of draws)."""
        n = len(self.per_draw)
        if n < 2:
            return math.nan
        mean = self.mean
        return math.sqrt(math.fsum((v - mean) ** 2 for v in self.per_draw) / (n - 1) / n)


def kde_kl_draws(test: torch.Tensor, draws: torch.Tensor, bandwidth: float = 0.1) -> KdeTestKL:
    """The test KL of each of D generated sets ``draws`` (D, n_gen, d) against the same test points: the test
    points' own density is computed once, the generated density once per draw (docs/test-metrics.md#test-kl)."""
    if draws.ndim != 3 or draws.shape[0] < 1:
        raise ValueError(f"draws must have shape (D, n_gen, d) with D >= 1, got {tuple(draws.shape)}")
    log_p = kde_log_density(test, test, bandwidth).double()
    return KdeTestKL([float((log_p - kde_log_density(test, g, bandwidth).double()).mean()) for g in draws])
