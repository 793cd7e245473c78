"""The variance-preserving SDE of Song et al. (2021) with the paper's linear schedule (docs/diffusion-model.md#vp-sde).

beta(t) = beta_min + (beta_max - beta_min) t, not rescaled with T: a larger T runs the same beta further.
All functions accept Python floats or tensors and broadcast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import ConfigError

Number = float | torch.Tensor


def _exp(x: Number) -> Number:
    return torch.exp(x) if isinstance(x, torch.Tensor) else math.exp(x)


@dataclass(frozen=True)
class VPSDE:
    """Schedule constants and closed forms of the forward VP-SDE."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def beta(self, t: Number) -> Number:
        """beta(t), the instantaneous noise rate."""
        return self.beta_min + (self.beta_max - self.beta_min) * t

    def integral_beta(self, t: Number) -> Number:
        """The integral of beta from 0 to t (10.05 at t = 1)."""
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t

    def alpha(self, t: Number) -> Number:
        """Mean weight: X_t | X_0 = x has mean alpha(t) x."""
        return _exp(-0.5 * self.integral_beta(t))

    def var(self, t: Number) -> Number:
        """sigma^2(t) = 1 - alpha(t)^2, the variance of X_t | X_0."""
        return 1.0 - _exp(-self.integral_beta(t))

    def sum_beta(self, T: float, n_steps: int, n_terms: int | None = None) -> float:
        """Left Riemann sum of beta on the EM grid: sum_{k < n_terms} beta(k T / n_steps).

        ``n_terms`` defaults to ``n_steps`` (the exact bound); the reference image code uses n_steps + 1.
        (T / n_steps) * sum_beta(T, n_steps) tends to integral_beta(T). Closed form for n_terms = n_steps = N:
        N beta_min + (beta_max - beta_min) T (N - 1) / 2 (docs/diffusion-bound.md#generator).
        """
        check_T(T)
        check_steps(n_steps)
        terms = n_steps if n_terms is None else n_terms
        k = torch.arange(terms, dtype=torch.float64)
        return float(self.beta(k * (T / n_steps)).sum())


def check_T(T: float) -> float:
    """Reject a diffusion time that is not a finite positive number."""
    if not isinstance(T, (int, float)) or not math.isfinite(T) or T <= 0:
        raise ConfigError(f"diffusion time T must be a finite number > 0, got {T!r}")
    return float(T)


def check_steps(n_steps: int) -> int:
    """Reject a number of Euler-Maruyama steps below 1."""
    if int(n_steps) != n_steps or n_steps < 1:
        raise ConfigError(f"number of Euler-Maruyama steps N must be an integer >= 1, got {n_steps!r}")
    return int(n_steps)
