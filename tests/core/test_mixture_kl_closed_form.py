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


EPS32 = 1.2e-7


def spy_on_densities(monkeypatch):
    """Record (rows, dtype, block_bytes) of every log_mixture_density call mixture_kl makes."""
    import core.bounds.mixture_kl as module

    calls = []
    real = module.log_mixture_density

    def spy(u, centres, var, block_bytes):
        calls.append((u.shape[0], u.dtype, block_bytes))
        return real(u, centres, var, block_bytes)

    monkeypatch.setattr(module, "log_mixture_density", spy)
    return calls


@pytest.mark.parametrize("a,dtype", [(1.63, torch.float32), (1.66, torch.float64)])
def test_float64_when_samples_four_sigma_out_would_lose_float32_precision(monkeypatch, a, dtype):
    # Means +-a (d = 1), variance 0.01: samples reach |a| + 4 * 0.1, and float64 is used where
    # 2 eps (a + 0.4)^2 / 0.01 > 1e-4, i.e. a > 1.641.
    assert (2 * EPS32 * (a + 0.4) ** 2 / 0.01 > 1e-4) == (dtype == torch.float64)
    calls = spy_on_densities(monkeypatch)
    means = torch.tensor([[-a], [a]])
    mixture_kl(means, means, 0.01, 0.02, 4, torch.Generator().manual_seed(0))
    assert {c[1] for c in calls} == {dtype}


def test_float32_inputs_get_the_float64_answer_when_they_need_it():
    x = torch.tensor([[-100.0, 3.0], [100.0, -3.0], [40.0, 60.0]])
    lo = mixture_kl(x, x, 0.01, 0.01, 8, torch.Generator().manual_seed(1))
    hi = mixture_kl(x.double(), x.double(), 0.01, 0.01, 8, torch.Generator().manual_seed(1))
    assert torch.allclose(lo.per_point, hi.per_point, rtol=1e-9, atol=1e-9)


def test_chunks_of_points_fit_the_budget(monkeypatch):
    # Each chunk holds its samples and one distance block of up to 4096 centres, 4 bytes a value:
    # rows = budget // ((min(M, 4096) + d) * 4) samples, i.e. max(1, rows // K) points per chunk.
    calls = spy_on_densities(monkeypatch)
    means, centres = torch.randn(6, 2, generator=torch.Generator().manual_seed(2)), torch.zeros(10, 2)
    mixture_kl(means, centres, 0.5, 0.5, 4, torch.Generator().manual_seed(3), block_bytes=528)  # rows 11: 2 points
    assert [c[0] for c in calls] == [8, 8, 8] and {c[2] for c in calls} == {528}
    calls.clear()
    mixture_kl(means, centres, 0.5, 0.5, 8, torch.Generator().manual_seed(3), block_bytes=528)  # rows 11: 1 point
    assert [c[0] for c in calls] == [8] * 6
    calls.clear()
    many = torch.zeros(4097, 2)  # the distance block is capped at 4096 centres
    mixture_kl(torch.zeros(10, 2), many, 0.5, 0.5, 1, torch.Generator().manual_seed(4), block_bytes=4098 * 4 * 5)
    assert [c[0] for c in calls] == [5, 5]


def test_standard_error_with_two_samples_and_over_several_chunks():
    means = torch.arange(5, dtype=torch.float64)[:, None].repeat(1, 2) * 30.0
    two = mixture_kl(means, means, 0.5, 0.5, 2, torch.Generator().manual_seed(5))
    assert 0 < two.mean_se < math.inf
    # Well separated, K = 3000, one point per chunk: still sqrt(m d / (2 K)) / m.
    K = 3000
    chunked = mixture_kl(means, means, 0.5, 0.5, K, torch.Generator().manual_seed(6), block_bytes=(5 + 2) * 4 * K)
    assert chunked.mean_se == pytest.approx(math.sqrt(5 * 2 / (2 * K)) / 5, rel=0.1)
