"""The DSM evaluation's average against its closed-form expectation, and the score network's initialisation
against nn.Linear's distribution (uniform in +-1/sqrt(fan_in) for weights and biases)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from core.diffusion.dsm import dsm_eval
from core.diffusion.score_mlp import EnsembleMLP
from core.sde import VPSDE


def alpha2(t):
    return np.exp(-(0.1 * t + 9.95 * t * t))


def time_average(f, T, n=100_001):
    t = np.linspace(0.0, T, n)
    return np.trapezoid(f(t), t) / T


class StationaryScore:
    """Exact score for X_0 ~ N(0, I): p_t = N(0, I), score -y."""

    def score(self, y, t, sde, t_net=None):
        return -y


def test_dsm_eval_of_the_exact_stationary_score_matches_its_expectation_per_member():
    # sigma * (-y) + eps = alpha (alpha eps - sigma x) with alpha eps - sigma x ~ N(0, I): the loss is
    # 1/2 alpha^2 chi^2_d, mean d/2 E_t[alpha^2], variance (2d + d^2)/4 E_t[alpha^4] - mean^2, t ~ U(0, T).
    n, d = 4000, 2
    Ts = (0.3, 0.9)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, n, d, generator=gen, dtype=torch.float64)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    got = dsm_eval(StationaryScore(), VPSDE(), x, torch.tensor(Ts, dtype=torch.float64), gens, draws=5, chunk=1000)
    assert got.shape == (2,) and got.dtype == torch.float64
    for e, T in enumerate(Ts):
        mean = d / 2 * time_average(alpha2, T)
        var = (2 * d + d * d) / 4 * time_average(lambda t: alpha2(t) ** 2, T) - mean**2
        assert float(got[e]) == pytest.approx(mean, abs=5 * math.sqrt(var / n))  # draws share x: n, not 5 n


def test_dsm_eval_averages_twenty_draws_by_default():
    x = torch.randn(1, 50, 2, generator=torch.Generator().manual_seed(3))
    T = torch.tensor([0.5])
    default = dsm_eval(StationaryScore(), VPSDE(), x, T, [torch.Generator().manual_seed(4)])
    twenty = dsm_eval(StationaryScore(), VPSDE(), x, T, [torch.Generator().manual_seed(4)], draws=20)
    assert torch.equal(default, twenty)


def uniform_pvalue(values: torch.Tensor, bound: float) -> float:
    return stats.kstest(values.detach().flatten().double().numpy(), stats.uniform(loc=-bound, scale=2 * bound).cdf).pvalue


def test_initialization_is_uniform_in_plus_minus_one_over_sqrt_fan_in():
    net = EnsembleMLP(2, 3, hidden=300, n_hidden_layers=1).initialize([torch.Generator().manual_seed(s) for s in (0, 1)])
    w0, w1, b0 = net.weights[0], net.weights[1], net.biases[0]  # (2, 4, 300), (2, 300, 3), (2, 1, 300)
    for e in range(2):
        for values, fan_in in ((w0[e], 4), (b0[e], 4), (w1[e], 300)):
            bound = 1 / math.sqrt(fan_in)
            assert float(values.detach().abs().max()) <= bound
            assert uniform_pvalue(values, bound) > 1e-3
            assert torch.unique(values).numel() == values.numel()  # independent draws, not a repeated row
    assert not torch.equal(w0[0], w0[1])


def test_initialization_needs_one_generator_per_member():
    with pytest.raises(ValueError, match="need 2 generators, got 1"):
        EnsembleMLP(2, 3, hidden=4).initialize([torch.Generator()])


class OffsetScore:
    """For data at +-100 on the first axis: the exact score of each point's noised law plus a / sigma(t), with a
    chosen per point (by the sign of y), so that sigma * score + eps = a and each point's loss is |a|^2 / 2."""

    def __init__(self, a_left, a_right) -> None:
        self.a_left, self.a_right = torch.tensor(a_left), torch.tensor(a_right)

    def score(self, y, t, sde, t_net=None):
        B = 0.1 * t + 9.95 * t * t
        alpha, var = torch.exp(-0.5 * B).unsqueeze(-1), (1 - torch.exp(-B)).unsqueeze(-1)
        left = (y[..., :1] < 0).to(y.dtype)
        c = torch.cat([200 * (0.5 - left), torch.zeros_like(left)], -1)  # the point y came from
        a = left * self.a_left + (1 - left) * self.a_right
        return -(y - alpha * c) / var + a / var.sqrt()


def test_dsm_eval_is_the_mean_over_every_point_chunk_by_chunk():
    # Losses 2.0 for the first point and 0.5 for the two others: mean 1.0, whatever the chunking.
    x = torch.tensor([[[-100.0, 0.0], [100.0, 0.0], [100.0, 0.0]]], dtype=torch.float64)
    model, T = OffsetScore([2.0, 0.0], [0.0, 1.0]), torch.tensor([0.1], dtype=torch.float64)
    for chunk in (None, 1, 2):
        got = dsm_eval(model, VPSDE(), x, T, [torch.Generator().manual_seed(7)], draws=3, chunk=chunk)
        assert float(got[0]) == pytest.approx(1.0, rel=1e-9)
