"""The bound's encoder terms against closed forms (docs/diffusion-bound.md#encoder_info, #encoder_prior):
well-separated encoded points make every mixture KL log(mixture size), and the prior term is the isotropic
Gaussian KL, 1/2 (alpha^2 |x|^2 + d sigma^2 - d - d log sigma^2)."""

import math

import numpy as np
import pytest
import torch

from core.bounds.diffusion_bound import encoder_terms
from core.bounds.variants import get_variant
from core.errors import ConfigError


def alpha_var(T):
    B = 0.1 * T + 9.95 * T * T
    return math.exp(-0.5 * B), 1 - math.exp(-B)


def prior_kl(x: np.ndarray, T: float) -> np.ndarray:
    a, v = alpha_var(T)
    d = x.shape[1]
    return 0.5 * (a * a * (x**2).sum(1) + d * v - d - d * math.log(v))


def grid(m: int, spacing: float) -> np.ndarray:
    side = math.ceil(math.sqrt(m))
    return np.array([[spacing * (i % side), spacing * (i // side)] for i in range(m)], dtype=np.float64)


def test_exact_variant_on_well_separated_points():
    x, T, K = grid(6, 10.0), 0.05, 400
    terms = encoder_terms(torch.from_numpy(x), T, get_variant("exact"), K, torch.Generator().manual_seed(0))
    d = 2
    assert terms.encoder_info == pytest.approx(-math.log(6), abs=5 * math.sqrt(d / 2 / K / 6))
    assert terms.encoder_info_se == pytest.approx(math.sqrt(d / (2 * K * 6)), rel=0.15)
    assert terms.encoder_prior == pytest.approx(float(np.sqrt(prior_kl(x, T)).mean()), rel=1e-9)


def test_minibatch_variant_averages_over_batches_of_128():
    # 130 points: batches of 128 and 2, each KL log(batch size); SE sqrt(se_1^2 + se_2^2) / 2 with
    # se_b = sqrt(d / (2 K n_b)); the prior term is the mean KL, not the mean of its square root.
    x, T, K, d = grid(130, 10.0), 0.05, 400, 2
    terms = encoder_terms(torch.from_numpy(x), T, get_variant("reference-images"), K, torch.Generator().manual_seed(1))
    se = math.sqrt(d / (2 * K * 128) + d / (2 * K * 2)) / 2
    assert terms.encoder_info == pytest.approx(-(math.log(128) + math.log(2)) / 2, abs=5 * se)
    assert terms.encoder_info_se == pytest.approx(se, rel=0.15)
    assert terms.encoder_prior == pytest.approx(float(prior_kl(x, T).mean()), rel=1e-9)


def test_one_monte_carlo_sample_is_enough():
    # With K = 1 each KL estimate has variance d / 2 = 1 around log 4; there is no standard error.
    terms = encoder_terms(torch.from_numpy(grid(4, 10.0)), 0.05, get_variant("exact"), 1, torch.Generator().manual_seed(5))
    assert terms.encoder_info == pytest.approx(-math.log(4), abs=5 * math.sqrt(1 / 4))
    assert math.isnan(terms.encoder_info_se)


def numpy_mixture_kl(mu: np.ndarray, v: float, K: int, rng) -> float:
    """Mean over i of E_u[log N(u; mu_i, v) - log (1/m) sum_j N(u; mu_j, v)], u ~ N(mu_i, v), plain Monte Carlo."""
    m, d = mu.shape
    kls = []
    for i in range(m):
        u = mu[i] + math.sqrt(v) * rng.normal(size=(K, d))
        log_comp = -((u[:, None, :] - mu[None, :, :]) ** 2).sum(-1) / (2 * v)
        log_mix = np.log(np.exp(log_comp).mean(1))
        kls.append(float((log_comp[:, i] - log_mix).mean()))
    return float(np.mean(kls))


def test_reference_2d_variant_uses_sigma_as_the_encoder_variance():
    # At T = 1e-3, sigma^2 = 1.1e-4: points 0.2 apart are separate under variance sigma^2 (the exact bound) but
    # overlap under variance sigma (the published Swiss roll code).
    x, T, K = grid(4, 0.2), 1e-3, 2000
    a, v = alpha_var(T)
    exact = encoder_terms(torch.from_numpy(x), T, get_variant("exact"), K, torch.Generator().manual_seed(2))
    ref = encoder_terms(torch.from_numpy(x), T, get_variant("reference-2d"), K, torch.Generator().manual_seed(2))
    assert exact.encoder_info == pytest.approx(-math.log(4), abs=0.01)
    expected = -numpy_mixture_kl(a * x, math.sqrt(v), 20_000, np.random.default_rng(3))
    assert ref.encoder_info == pytest.approx(expected, abs=5 * ref.encoder_info_se + 0.01)
    assert ref.encoder_info > -math.log(4) + 0.3
    assert ref.encoder_prior == exact.encoder_prior  # the prior term always uses sigma^2


@pytest.mark.parametrize("m,K,message", [(1, 10, "at least 2 training points, got 1"), (3, 0, "samples K must be >= 1, got 0")])
def test_too_few_points_or_samples_are_refused(m, K, message):
    with pytest.raises(ConfigError, match=message):
        encoder_terms(torch.zeros(m, 2), 0.5, get_variant("exact"), K, torch.Generator())
