"""The computable generalization bound of a diffusion model (docs/diffusion-bound.md#the-bound).

B(T) = score_matching + encoder_info + sqrt(2) R encoder_prior + sqrt(2) R generator. No test data enters it.
The encoder terms depend only on the training set and T; the generator term needs the score scale L.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from ..errors import ConfigError
from ..sde import VPSDE, check_steps, check_T
from .gaussian import kl_isotropic_to_standard
from .mixture_kl import mixture_kl
from .variants import MINIBATCH_MIXTURE_SIZE, BoundVariant


@dataclass(frozen=True)
class EncoderTerms:
    """The two encoder terms, with encoder_info's Monte Carlo standard error."""

    encoder_info: float
    encoder_info_se: float
    encoder_prior: float


@dataclass(frozen=True)
class DiffusionBound:
    """Every term of B(T) with the settings that produced it."""

    variant: str
    T: float
    total: float
    score_matching: float
    encoder_info: float
    encoder_info_se: float
    encoder_prior: float
    generator: float
    L: float
    sum_beta: float
    N: int
    m: int
    R: float
    K: int

    def as_dict(self) -> dict:
        return asdict(self)


def encoder_terms(
    x: torch.Tensor,
    T: float,
    variant: BoundVariant,
    n_samples: int,
    generator: torch.Generator,
    sde: VPSDE = VPSDE(),
) -> EncoderTerms:
    """encoder_info = -(1/m) sum_i KL(E_T(X_i) || E_T#P) and encoder_prior, for training points x (m, d).

    docs/diffusion-bound.md#encoder_info and #encoder_prior; the variant's choices: #variants.
    """
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        check_T(T)
        m = x.shape[0]
        if m < 2:
            raise ConfigError(f"the bound needs at least 2 training points, got {m}")
        if n_samples < 1:
            raise ConfigError(f"the number of Monte Carlo samples K must be >= 1, got {n_samples}")
        alpha, var = float(sde.alpha(T)), float(sde.var(T))
        means = alpha * x.reshape(m, -1)
        enc_var = var if variant.encoder_variance == "var" else math.sqrt(var)
        if variant.mixture == "full":
            result = mixture_kl(means, means, enc_var, enc_var, n_samples, generator)
            info, se = -result.mean, result.mean_se
        else:
            order = torch.randperm(m, generator=generator, device=generator.device).to(means.device)
            batch_means, batch_vars = [], []
            for start in range(0, m, MINIBATCH_MIXTURE_SIZE):
                batch = means[order[start : start + MINIBATCH_MIXTURE_SIZE]]
                r = mixture_kl(batch, batch, enc_var, enc_var, n_samples, generator)
                batch_means.append(r.mean)
                batch_vars.append(r.mean_se**2)
            info = -sum(batch_means) / len(batch_means)
            se = math.sqrt(sum(batch_vars)) / len(batch_vars)
        kl_prior = kl_isotropic_to_standard(means, var).clamp_min(0.0)
        prior = float(kl_prior.sqrt().mean()) if variant.prior_sqrt else float(kl_prior.mean())
        return EncoderTerms(info, se, prior)


def generator_term(T: float, L: float, sum_beta: float, m: int, n_steps: int) -> float:
    """sqrt(T L^2 sum_beta / (2 m N)): the information the EM chain carries about the training set.

    docs/diffusion-bound.md#generator.
    """
    check_T(T)
    check_steps(n_steps)
    return math.sqrt(T * L * L * sum_beta / (2.0 * m * n_steps))


def assemble_bound(
    variant: BoundVariant,
    T: float,
    score_matching: float,
    encoder: EncoderTerms,
    L: float,
    m: int,
    n_steps: int,
    R: float,
    K: int,
    sde: VPSDE = VPSDE(),
) -> DiffusionBound:
    """Combine the terms into B(T) for the variant's N and sum-of-beta conventions (docs/diffusion-bound.md#the-bound)."""
    if not (math.isfinite(R) and R > 0):
        raise ConfigError(f"the sub-Gaussian constant R must be a finite number > 0, got {R!r}")
    n_terms = n_steps + 1 if variant.sum_beta_extra_term else n_steps
    sum_beta = sde.sum_beta(T, n_steps, n_terms)
    gen = generator_term(T, L, sum_beta, m, n_steps)
    scale = math.sqrt(2.0) * R
    total = score_matching + encoder.encoder_info + scale * encoder.encoder_prior + scale * gen
    return DiffusionBound(
        variant=variant.name, T=float(T), total=total, score_matching=float(score_matching),
        encoder_info=encoder.encoder_info, encoder_info_se=encoder.encoder_info_se,
        encoder_prior=encoder.encoder_prior, generator=gen, L=float(L), sum_beta=sum_beta,
        N=int(n_steps), m=int(m), R=float(R), K=int(K),
    )
