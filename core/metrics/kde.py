"""Gaussian kernel density estimates in torch, chunked over query points and kernel centres."""

from __future__ import annotations

import torch

from ..bounds.chunking import DEFAULT_BLOCK_BYTES, rows_per_block
from ..bounds.mixture_kl import log_mixture_density, precise_dtype


@torch.no_grad()
def kde_log_density(
    query: torch.Tensor, points: torch.Tensor, bandwidth: float, block_bytes: int = DEFAULT_BLOCK_BYTES
) -> torch.Tensor:
    """log p_hat(query) for the Gaussian KDE on ``points`` (scikit-learn's KernelDensity, gaussian kernel)."""
    var = float(bandwidth) ** 2
    shift = points.mean(dim=0, keepdim=True)  # distances are translation invariant; centring avoids cancellation
    query, points = query - shift, points - shift
    dtype = precise_dtype(torch.cat([query, points]), var)
    query, points = query.to(dtype), points.to(dtype)
    rows = rows_per_block(min(points.shape[0], 4096), query.shape[1], budget=block_bytes)
    out = [log_mixture_density(query[i : i + rows], points, var, block_bytes) for i in range(0, query.shape[0], rows)]
    return torch.cat(out)


def kde_kl(test: torch.Tensor, generated: torch.Tensor, bandwidth: float = 0.1) -> float:
    """Test KL: mean over test points of log p_hat_test(x) - log q_hat_gen(x) (diffusion-bound.md section 4)."""
    log_p = kde_log_density(test, test, bandwidth)
    log_q = kde_log_density(test, generated, bandwidth)
    return float((log_p - log_q).double().mean())
