"""The Monte Carlo mixture KL against closed forms: one component (a Gaussian-to-Gaussian KL, any variances),
well-separated components (KL = log m, per-sample variance d/2), and translation invariance in float32."""

import math

import numpy as np
import pytest
import torch

from core.bounds.mixture_kl import mixture_kl


def test_one_component_is_the_gaussian_kl_with_its_standard_error():
    # KL(N(a, vs I) || N(b, vm I)) = d/2 (vs/vm - 1 - log(vs/vm)) + |a - b|^2 / (2 vm); the estimator's only noise is
    # |u - b|^2 / (2 vm) with u - b ~ N(a - b, vs I): variance (2 d vs^2 + 4 vs |a - b|^2) / (4 vm^2).
    a, b = np.array([0.3, -0.2, 0.5]), np.array([-0.4, 0.1, 0.2])
    vs, vm, d, K = 0.5, 2.0, 3, 4000
    kl = d / 2 * (vs / vm - 1 - math.log(vs / vm)) + ((a - b) ** 2).sum() / (2 * vm)
    se = math.sqrt((2 * d * vs**2 + 4 * vs * ((a - b) ** 2).sum()) / (4 * vm**2) / K)
    result = mixture_kl(torch.from_numpy(a)[None], torch.from_numpy(b)[None], vs, vm, K, torch.Generator().manual_seed(0))
    assert result.per_point.shape == (1,) and result.per_point.dtype == torch.float64
    assert result.mean == pytest.approx(kl, abs=5 * se)
    assert result.mean_se == pytest.approx(se, rel=0.1)


def test_well_separated_components_give_log_m_and_the_standard_error_of_a_chi_square():
    # Far apart, log q(u) = -log m + log N(u; mu_i, v): KL_i = log m exactly and the per-sample variance is
    # Var(chi^2_d / 2) = d / 2, so the mean's standard error is sqrt(m d / (2 K)) / m.
    m, d, K = 5, 2, 3000
    means = torch.arange(m, dtype=torch.float64)[:, None].repeat(1, d) * 30.0
    result = mixture_kl(means, means, 0.5, 0.5, K, torch.Generator().manual_seed(1))
    per_point_se = math.sqrt(d / 2 / K)
    assert result.per_point.tolist() == pytest.approx([math.log(m)] * m, abs=5 * per_point_se)
    assert result.mean_se == pytest.approx(math.sqrt(m * d / (2 * K)) / m, rel=0.1)


def test_one_sample_has_no_standard_error():
    result = mixture_kl(torch.zeros(2, 2), torch.ones(3, 2), 0.3, 0.3, 1, torch.Generator().manual_seed(2))
    assert math.isnan(result.mean_se) and torch.isfinite(result.per_point).all()


def test_a_common_offset_changes_nothing_even_in_float32_above_64_dimensions():
    # Points on a 1/4 grid shifted by 512 are exact in float32, so after centring the two problems are identical;
    # without centring, |u|^2 + |c|^2 - 2 u.c would lose everything to rounding at |u|^2 ~ 1.7e7.
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.integers(-4, 5, size=(4, 65)) / 4).float()
    near = mixture_kl(x, x, 0.5, 0.5, 16, torch.Generator().manual_seed(4))
    far = mixture_kl(x + 512, x + 512, 0.5, 0.5, 16, torch.Generator().manual_seed(4))
    assert torch.allclose(near.per_point, far.per_point, rtol=1e-6, atol=1e-6)
