"""DSM loss and the EM generator against closed forms, using the exact score of Gaussian data."""

import math

import pytest
import torch

from core.diffusion.dsm import dsm_losses
from core.diffusion.sampler import euler_maruyama
from core.sde import VPSDE


class ExactGaussianScore:
    """The true score of X_t when X_0 ~ N(0, s^2 I): -y / (alpha(t)^2 s^2 + sigma^2(t))."""

    def __init__(self, s2: float) -> None:
        self.s2 = s2

    def score(self, y, t, sde, t_net=None):
        v = sde.alpha(t) ** 2 * self.s2 + sde.var(t)
        return -y / v.unsqueeze(-1)


@pytest.mark.parametrize("s2,T", [(1.0, 1.0), (0.25, 0.6)])
def test_dsm_loss_of_the_exact_score_matches_its_closed_form(s2, T):
    sde, d, n = VPSDE(), 2, 200_000
    gen = torch.Generator().manual_seed(0)
    x = math.sqrt(s2) * torch.randn(1, n, d, generator=gen, dtype=torch.float64)
    losses = dsm_losses(ExactGaussianScore(s2), sde, x, torch.tensor([T], dtype=torch.float64), [gen])
    # Per dimension 1/2 E_t[alpha^2 s^2 / (alpha^2 s^2 + sigma^2)], t ~ U(0, T): integrate numerically.
    t = torch.linspace(0, T, 200_001, dtype=torch.float64)
    a2 = sde.alpha(t) ** 2 * s2
    expected = 0.5 * d * torch.trapezoid(a2 / (a2 + sde.var(t)), t) / T
    se = losses.std() / math.sqrt(n)
    assert float(losses.mean()) == pytest.approx(float(expected), abs=float(4 * se))


def test_em_with_the_exact_score_keeps_the_standard_normal_and_records_L():
    # For N(0, I) data the forward process is stationary, so the reverse SDE from pi stays at N(0, I),
    # and the mean score norm is E|y| = sqrt(pi / 2) in two dimensions at every step.
    sde, n = VPSDE(), 20000
    gen = torch.Generator().manual_seed(1)
    y0 = torch.randn(1, n, 2, generator=gen, dtype=torch.float64)
    result = euler_maruyama(ExactGaussianScore(1.0), sde, y0, torch.tensor([1.0], dtype=torch.float64), 200, [gen])
    assert result.samples.var(dim=1).flatten().tolist() == pytest.approx([1.0, 1.0], abs=0.05)
    assert float(result.L) == pytest.approx(math.sqrt(math.pi / 2), abs=0.03)
    assert result.mean_score_norm.shape == (1, 200)


def test_em_keeps_frames_from_T_down_to_zero():
    sde = VPSDE()
    gen = torch.Generator().manual_seed(2)
    y0 = torch.randn(1, 10, 2, generator=gen)
    result = euler_maruyama(ExactGaussianScore(1.0), sde, y0, torch.tensor([0.8]), 20, [gen], frame_every=5)
    assert result.frames[0].shape == (5, 10, 2)
    assert result.frame_times[0].tolist() == pytest.approx([0.8, 0.6, 0.4, 0.2, 0.0], abs=1e-6)
    assert torch.equal(result.frames[0][0], y0[0])
    assert torch.equal(result.frames[0][-1], result.samples[0])


def test_em_can_be_cancelled_between_steps():
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(InterruptedError):
        euler_maruyama(ExactGaussianScore(1.0), VPSDE(), torch.zeros(1, 4, 2), torch.tensor([1.0]), 100,
                       [torch.Generator().manual_seed(0)], should_stop=stop)
    assert len(calls) == 4
