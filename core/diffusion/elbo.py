"""Test bits per dimension of an image diffusion model (docs/test-metrics.md#test-bpd).

The ELBO of the plug-in reverse SDE (Huang et al. 2021), with one t ~ U(0, T) per image and a Hutchinson
estimate of the divergence with Rademacher probes:

    ELBO(y) = log N(y_T; 0, I) + T * [ -v^T (d mu / d y_t) v - |a_theta(y_t, t)|^2 / 2 ],
    y_t ~ N(alpha(t) y, sigma^2(t) I),  y_T ~ E_T(y),  mu = sqrt(beta) a_theta + beta y_t / 2.

It is an unbiased estimate of a lower bound on log p(y). Images are dequantised and logit-transformed first,
and the transform's log-determinant turns the density of y into one of x: BPD = -(ELBO + logdet)/(d ln 2) + 8.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..data.image_transforms import bits_per_dim, dequantize, logit_transform
from ..sde import VPSDE
from .noise import normal, uniform

ELBO_CHUNK = 64
LOG_2PI = math.log(2 * math.pi)


def elbo(model, sde: VPSDE, y: torch.Tensor, T: torch.Tensor, generators: Sequence[torch.Generator],
         chunk: int = ELBO_CHUNK) -> torch.Tensor:
    """Per-point ELBO estimates (E, n) for points y (E, n, d) of each member's model at its own T (E,)."""
    E, n, d = y.shape
    parts = []
    for start in range(0, n, chunk):
        yb = y[:, start : start + chunk]
        k = yb.shape[1]
        t = uniform(generators, (k,), y.device) * T[:, None]
        eps = normal(generators, (k, d), y.device)
        probe = uniform(generators, (k, d), y.device).lt(0.5).to(y.dtype) * 2 - 1
        eps_T = normal(generators, (k, d), y.device)
        alpha, std = sde.alpha(t)[..., None], sde.var(t).sqrt()[..., None]
        beta = sde.beta(t)[..., None]
        with torch.enable_grad():
            yt = (alpha * yb + std * eps).detach().requires_grad_(True)
            a = model(yt, t)
            mu = beta.sqrt() * a + 0.5 * beta * yt
            (jvp,) = torch.autograd.grad(mu, yt, probe)
        div = (jvp * probe).sum(-1)
        integrand = -div - 0.5 * (a.detach() ** 2).sum(-1)
        yT = sde.alpha(T)[:, None, None] * yb + sde.var(T).sqrt()[:, None, None] * eps_T
        log_prior = -0.5 * (yT**2 + LOG_2PI).sum(-1)
        parts.append((log_prior + T[:, None] * integrand).detach())
    return torch.cat(parts, dim=1)


def test_bpd(model, sde: VPSDE, x: torch.Tensor, T: torch.Tensor, generators: Sequence[torch.Generator],
             chunk: int = ELBO_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean bits per dimension and its standard error (both (E,)) on images x (E, n, d) in [0, 1]."""
    y, logdet = logit_transform(dequantize(x, generators))
    per_image = bits_per_dim(elbo(model, sde, y, T, generators, chunk), logdet, x.shape[-1])
    n = per_image.shape[1]
    se = per_image.std(dim=1) / math.sqrt(n) if n > 1 else torch.zeros_like(per_image[:, 0])
    return per_image.mean(dim=1), se
