"""Denoising score matching with the epsilon-prediction weighting (docs/diffusion-model.md#dsm-loss).

loss(x) = 1/2 || sigma(t) s_theta(y, t) + eps ||^2 with t ~ U(0, T), y = alpha(t) x + sigma(t) eps, summed over
dimensions. It contains an irreducible constant, so it does not go to 0.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..sde import VPSDE
from .noise import normal, uniform
from .score_mlp import EnsembleMLP


def dsm_terms(
    model: EnsembleMLP, sde: VPSDE, x: torch.Tensor, T: torch.Tensor, generators: Sequence[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point DSM losses and squared score norms |s_theta(y, t)|^2, both (E, n), at the same (t, y).

    The squared norms come free with the loss (no extra network evaluation): their mean estimates
    E_{t ~ U(0,T), y ~ p_t} |s_theta(y, t)|^2, the training-time proxy of the L^2 in the bound's generator
    term, which the score-norm regulariser penalizes (docs/t-selection.md#score-norm-regulariser).
    """
    n_members, n, d = x.shape
    t = uniform(generators, (n,), x.device) * T.unsqueeze(1)
    eps = normal(generators, (n, d), x.device)
    std = torch.sqrt(sde.var(t)).unsqueeze(-1)
    y = sde.alpha(t).unsqueeze(-1) * x + std * eps
    score = model.score(y, t, sde)
    return 0.5 * (std * score + eps).pow(2).sum(-1), score.pow(2).sum(-1)


def dsm_losses(
    model: EnsembleMLP, sde: VPSDE, x: torch.Tensor, T: torch.Tensor, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """Per-point DSM losses, shape (E, n), for clean points x of shape (E, n, d) and horizons T of shape (E,)."""
    return dsm_terms(model, sde, x, T, generators)[0]


def dsm_eval(
    model: EnsembleMLP,
    sde: VPSDE,
    x: torch.Tensor,
    T: torch.Tensor,
    generators: Sequence[torch.Generator],
    draws: int = 20,
    chunk: int | None = None,
) -> torch.Tensor:
    """Mean DSM loss per member over ``draws`` independent (t, eps) per point: a low-variance estimate, shape (E,).

    ``chunk`` bounds how many points go through the network at once (for large images); None: all at once.
    On the training set it is the `exact` bound's score_matching (docs/diffusion-bound.md#score_matching); test
    minus train is the DSM gap (docs/test-metrics.md#dsm-gap)."""
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        total = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        n = x.shape[1]
        step = chunk or n
        for _ in range(draws):
            for start in range(0, n, step):
                part = x[:, start : start + step]
                total += dsm_losses(model, sde, part, T, generators).sum(1).double() / n
        return total / draws
