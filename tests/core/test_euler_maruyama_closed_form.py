"""The Euler-Maruyama generator against the exact variance recursion of its linear chain.

For data N(0, s2 I) the exact score is -y / v(t), v(t) = alpha^2 s2 + sigma^2, so each step is linear:
y <- (1 + delta beta (1/2 - 1/v(t_k))) y + sqrt(delta beta) xi, with t_k = T - k T / N, delta = T / N, and the
per-dimension variance follows var <- a_k^2 var + delta beta_k exactly. In two dimensions E|y| = sqrt(var pi / 2).
"""

import math

import numpy as np
import pytest
import torch

from core.diffusion.sampler import euler_maruyama
from core.errors import ConfigError
from core.sde import VPSDE


def v_of(t, s2):
    B = 0.1 * t + 9.95 * t * t
    return math.exp(-B) * s2 + 1 - math.exp(-B)


class ExactScore:
    def __init__(self, s2: float) -> None:
        self.s2 = s2

    def score(self, y, t, sde, t_net=None):
        B = 0.1 * t + 9.95 * t * t
        return -y / (torch.exp(-B) * self.s2 + 1 - torch.exp(-B)).unsqueeze(-1)


def variances(T: float, N: int, s2: float, var0: float) -> list[float]:
    """Per-dimension variance before each step (N values) and after the last (one more)."""
    out, var, delta = [var0], var0, T / N
    for k in range(N):
        t = T - k * T / N
        b = 0.1 + 19.9 * t
        var = (1 + delta * b * (0.5 - 1 / v_of(t, s2))) ** 2 * var + delta * b
        out.append(var)
    return out


def test_sample_variance_and_recorded_score_norms_follow_the_recursion_per_member():
    s2, N, n = 0.25, 40, 20_000
    Ts = (1.0, 0.5)
    gen = torch.Generator().manual_seed(0)
    y0 = torch.randn(2, n, 2, generator=gen, dtype=torch.float64)
    result = euler_maruyama(ExactScore(s2), VPSDE(), y0, torch.tensor(Ts, dtype=torch.float64), N,
                            [torch.Generator().manual_seed(s) for s in (1, 2)])
    assert result.mean_score_norm.shape == (2, N)
    for e, T in enumerate(Ts):
        var = variances(T, N, s2, 1.0)
        assert float(result.samples[e].var()) == pytest.approx(var[-1], rel=5 * math.sqrt(2 / n))
        norms = [math.sqrt(var[k] * math.pi / 2) / v_of(T - k * T / N, s2) for k in range(N)]
        np.testing.assert_allclose(result.mean_score_norm[e].numpy(), norms, rtol=0.03)
        assert float(result.L[e]) == pytest.approx(max(norms), rel=0.03)


def test_reverse_clock_probe_changes_the_recorded_norms_but_not_the_trajectory():
    # The probe reads the score at s_k = k T / N instead of t_k: recorded norm E|y_k| / v(s_k), per member.
    s2, N, n, Ts = 0.25, 30, 20_000, (0.8, 0.4)
    y0 = torch.randn(2, n, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    Tt = torch.tensor(Ts, dtype=torch.float64)

    def gens():
        return [torch.Generator().manual_seed(s) for s in (4, 5)]

    plain = euler_maruyama(ExactScore(s2), VPSDE(), y0, Tt, N, gens())
    probed = euler_maruyama(ExactScore(s2), VPSDE(), y0, Tt, N, gens(), probe_reverse_clock=True)
    assert torch.equal(plain.samples, probed.samples)
    for e, T in enumerate(Ts):
        var = variances(T, N, s2, 1.0)
        norms = [math.sqrt(var[k] * math.pi / 2) / v_of(k * T / N, s2) for k in range(N)]
        np.testing.assert_allclose(probed.mean_score_norm[e].numpy(), norms, rtol=0.03)


def test_frames_every_k_steps_and_at_the_end():
    y0 = torch.zeros(1, 3, 2)
    result = euler_maruyama(ExactScore(1.0), VPSDE(), y0, torch.tensor([1.0]), 7, [torch.Generator().manual_seed(5)],
                            frame_every=3)
    # Frames at the start, after steps 3 and 6, and after the last (7th) step.
    assert result.frame_times[0].tolist() == pytest.approx([1.0, 1 - 3 / 7, 1 - 6 / 7, 0.0], abs=1e-6)
    assert torch.equal(result.frames[0][-1], result.samples[0]) and torch.equal(result.frames[0][0], y0[0])
    # The score norms are recorded as without frames: |-y0| = 0 at the first step.
    assert result.mean_score_norm.shape == (1, 7) and float(result.mean_score_norm[0, 0]) == 0.0


class LeadingScore(ExactScore):
    """ExactScore with a view of its leading members, as EnsembleUNet offers; records who was asked."""

    def __init__(self, s2: float, calls: list) -> None:
        super().__init__(s2)
        self.calls = calls

    def score(self, y, t, sde, t_net=None):
        self.calls.append(("all", y.shape[0]))
        return super().score(y, t, sde)

    def leading_members(self, a):
        outer = self

        class View:
            def score(self, y, t, sde, t_net=None):
                outer.calls.append(("leading", a))
                assert y.shape[0] == a and t.shape[0] == a
                return ExactScore.score(outer, y, t, sde)
        return View()


@pytest.mark.parametrize("order, steps, Ts", [
    ("leading", (7, 5, 2), (0.7, 0.5, 0.2)),     # members still stepping lead: the view runs them alone
    ("any", (2, 7, 5), (0.2, 0.7, 0.5)),         # otherwise the whole model runs and the finished are dropped
])
def test_members_with_their_own_step_counts_follow_their_own_trajectories(order, steps, Ts):
    y0 = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = []
    together = euler_maruyama(LeadingScore(0.25, calls), VPSDE(), y0, torch.tensor(Ts, dtype=torch.float64), list(steps),
                              [torch.Generator().manual_seed(10 + e) for e in range(3)], frame_every=[2, 3, 1])
    for e, (N, T) in enumerate(zip(steps, Ts)):
        alone = euler_maruyama(ExactScore(0.25), VPSDE(), y0[e : e + 1], torch.tensor([T], dtype=torch.float64), N,
                               [torch.Generator().manual_seed(10 + e)], frame_every=[2, 3, 1][e])
        assert torch.equal(together.samples[e], alone.samples[0])
        assert torch.equal(together.mean_score_norm[e, :N], alone.mean_score_norm[0])
        assert torch.isnan(together.mean_score_norm[e, N:]).all()  # no steps there: not part of L
        assert float(together.L[e]) == float(alone.L[0])
        assert torch.equal(together.frames[e], alone.frames[0])
        assert torch.equal(together.frame_times[e], alone.frame_times[0])
    assert len(calls) == max(steps)
    if order == "leading":
        assert calls == [("all", 3)] * 2 + [("leading", 2)] * 3 + [("leading", 1)] * 2
    else:
        assert calls == [("all", 3)] * 7


def test_step_counts_must_match_the_members():
    with pytest.raises(ValueError, match="one step count per member"):
        euler_maruyama(ExactScore(1.0), VPSDE(), torch.zeros(2, 2, 2), torch.tensor([1.0, 1.0]), [3],
                       [torch.Generator(), torch.Generator()])
    with pytest.raises(ConfigError, match="Euler-Maruyama steps N"):
        euler_maruyama(ExactScore(1.0), VPSDE(), torch.zeros(2, 2, 2), torch.tensor([1.0, 1.0]), [3, 0],
                       [torch.Generator(), torch.Generator()])


def test_no_steps_is_refused():
    with pytest.raises(ConfigError, match="Euler-Maruyama steps N"):
        euler_maruyama(ExactScore(1.0), VPSDE(), torch.zeros(1, 2, 2), torch.tensor([1.0]), 0, [torch.Generator()])


def test_cancelling_says_so():
    with pytest.raises(InterruptedError, match="^sampling cancelled$"):
        euler_maruyama(ExactScore(1.0), VPSDE(), torch.zeros(1, 2, 2), torch.tensor([1.0]), 5, [torch.Generator()],
                       should_stop=lambda: True)
