import math

import pytest
import torch

from core.bounds.gaussian import kl_diagonal_to_standard, kl_isotropic_to_standard
from core.bounds.mixture_kl import log_mixture_density, mixture_kl
from core.metrics.kde import kde_kl, kde_log_density


def test_isotropic_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    var = 0.37
    ours = kl_isotropic_to_standard(mean, var)
    p = torch.distributions.MultivariateNormal(mean, covariance_matrix=var * torch.eye(3, dtype=torch.float64))
    q = torch.distributions.MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    assert torch.allclose(ours, torch.distributions.kl_divergence(p, q))


def test_diagonal_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(1)
    mean = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    logvar = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    p = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    q = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(kl_diagonal_to_standard(mean, logvar), torch.distributions.kl_divergence(p, q).sum(-1))


def test_log_mixture_density_matches_a_direct_sum():
    gen = torch.Generator().manual_seed(2)
    u = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    centres = torch.randn(11, 3, generator=gen, dtype=torch.float64)
    var = 0.5
    comps = torch.distributions.MultivariateNormal(centres, var * torch.eye(3, dtype=torch.float64))
    direct = torch.logsumexp(comps.log_prob(u.unsqueeze(1)), dim=1) - math.log(11)
    assert torch.allclose(log_mixture_density(u, centres, var), direct, atol=1e-10)
    # Chunking over centres (a tiny block budget) changes nothing.
    assert torch.allclose(log_mixture_density(u, centres, var, block_bytes=64), direct, atol=1e-10)


def test_mixture_kl_tends_to_log_m_for_well_separated_points():
    m = 10
    means = torch.arange(m, dtype=torch.float32).unsqueeze(1).repeat(1, 2) * 10.0
    result = mixture_kl(means, means, 1e-3, 1e-3, 2000, torch.Generator().manual_seed(0))
    # With the exact entropy the only error left is Monte Carlo error, of known size.
    assert result.mean_se < 0.01
    assert result.mean == pytest.approx(math.log(m), abs=4 * result.mean_se)


def test_mixture_kl_tends_to_zero_when_variance_swamps_the_spread():
    gen = torch.Generator().manual_seed(3)
    means = 1e-3 * torch.randn(20, 2, generator=gen)
    result = mixture_kl(means, means, 1.0, 1.0, 5000, torch.Generator().manual_seed(0))
    assert result.mean_se < 0.005
    assert abs(result.mean) < 4 * result.mean_se


def test_mixture_kl_of_two_components_agrees_with_brute_force_monte_carlo():
    means = torch.tensor([[0.0, 0.0], [1.0, 0.5]], dtype=torch.float64)
    var = 0.3
    result = mixture_kl(means, means, var, var, 20000, torch.Generator().manual_seed(4))
    # Brute force with torch.distributions and an independent stream.
    gen = torch.Generator().manual_seed(5)
    comps = torch.distributions.MultivariateNormal(means, var * torch.eye(2, dtype=torch.float64))
    kls = []
    for i in range(2):
        u = means[i] + math.sqrt(var) * torch.randn(200000, 2, generator=gen, dtype=torch.float64)
        log_p = comps.log_prob(u.unsqueeze(1))[:, i]
        log_mix = torch.logsumexp(comps.log_prob(u.unsqueeze(1)), dim=1) - math.log(2)
        kls.append(float((log_p - log_mix).mean()))
    assert result.mean == pytest.approx(sum(kls) / 2, abs=5 * result.mean_se + 2e-3)
    assert 0 < result.mean < math.log(2)


def test_mixture_kl_is_the_same_whatever_the_chunk_size():
    gen = torch.Generator().manual_seed(6)
    means = torch.randn(30, 4, generator=gen)
    big = mixture_kl(means, means, 0.2, 0.2, 16, torch.Generator().manual_seed(0))
    small = mixture_kl(means, means, 0.2, 0.2, 16, torch.Generator().manual_seed(0), block_bytes=4096)
    assert torch.allclose(big.per_point, small.per_point, atol=1e-5)
    assert big.mean_se > 0


def test_kde_matches_scikit_learn():
    from sklearn.neighbors import KernelDensity

    gen = torch.Generator().manual_seed(7)
    points = torch.randn(300, 2, generator=gen, dtype=torch.float64)
    query = torch.randn(50, 2, generator=gen, dtype=torch.float64)
    ref = KernelDensity(kernel="gaussian", bandwidth=0.1).fit(points.numpy()).score_samples(query.numpy())
    assert torch.allclose(kde_log_density(query, points, 0.1), torch.from_numpy(ref), atol=1e-8)


def test_kde_kl_of_a_set_with_itself_is_zero_and_grows_with_shift():
    gen = torch.Generator().manual_seed(8)
    test = torch.randn(200, 2, generator=gen)
    assert kde_kl(test, test) == pytest.approx(0.0, abs=1e-6)
    assert kde_kl(test, test + 0.5) > kde_kl(test, test + 0.1) > 0
