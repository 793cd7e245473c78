"""DSM terms against closed forms that hold draw by draw or in expectation, and the per-member noise streams."""

import math

import pytest
import torch

from core.diffusion.dsm import dsm_terms
from core.diffusion.noise import normal, uniform
from core.sde import VPSDE


def var_t(t):
    """sigma^2(t) = 1 - exp(-(0.1 t + 9.95 t^2)) for the linear schedule beta(t) = 0.1 + 19.9 t."""
    return 1.0 - torch.exp(-(0.1 * t + 9.95 * t * t))


class PointMassScore:
    """The exact score of X_t when X_0 = 0: p_t = N(0, sigma^2(t) I), score -y / sigma^2(t)."""

    def score(self, y, t, sde, t_net=None):
        return -y / var_t(t).unsqueeze(-1)


class StationaryScore:
    """The exact score when X_0 ~ N(0, I): p_t = N(0, I) for every t, score -y."""

    def score(self, y, t, sde, t_net=None):
        return -y


def test_the_exact_score_of_a_point_mass_has_zero_loss_for_every_draw():
    # y = sigma eps, so sigma * score + eps = -eps + eps = 0 whatever t and eps are.
    x = torch.zeros(1, 500, 3, dtype=torch.float64)
    losses, norms = dsm_terms(PointMassScore(), VPSDE(), x, torch.tensor([0.7], dtype=torch.float64),
                              [torch.Generator().manual_seed(0)])
    assert losses.shape == norms.shape == (1, 500)
    assert float(losses.abs().max()) < 1e-20
    assert bool((norms > 0).all())


def test_score_norms_of_the_stationary_gaussian_average_to_d():
    # |score|^2 = |y|^2 with y ~ N(0, I_d): mean d, variance 2 d.
    n, d = 50_000, 3
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, n, d, generator=gen, dtype=torch.float64)
    losses, norms = dsm_terms(StationaryScore(), VPSDE(), x, torch.tensor([0.9], dtype=torch.float64), [gen])
    assert losses.shape == norms.shape == (1, n)
    assert float(norms.mean()) == pytest.approx(d, abs=5 * math.sqrt(2 * d / n))


def test_each_member_draws_from_its_own_generator():
    gens = [torch.Generator().manual_seed(s) for s in (3, 4)]
    u, z = uniform(gens, (5,), torch.device("cpu")), normal(gens, (2, 3), torch.device("cpu"))
    assert u.shape == (2, 5) and z.shape == (2, 2, 3)
    for e, seed in enumerate((3, 4)):
        alone = torch.Generator().manual_seed(seed)
        assert torch.equal(u[e], torch.rand(5, generator=alone))
        assert torch.equal(z[e], torch.randn(2, 3, generator=alone))


@pytest.mark.parametrize("n_members", [1, 2])
def test_draws_are_moved_to_the_requested_device(n_members):
    # "meta" stands in for an accelerator: the generators stay on the CPU, the draws go where the data are.
    gens = [torch.Generator().manual_seed(s) for s in range(n_members)]
    meta = torch.device("meta")
    assert uniform(gens, (4,), meta).device == meta and uniform(gens, (4,), meta).shape == (n_members, 4)
    assert normal(gens, (4,), meta).device == meta
