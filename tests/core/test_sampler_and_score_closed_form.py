"""The score parameterisation, the Euler-Maruyama generator and the optimizer's step count against closed forms
(docs/diffusion-model.md). Expected values are computed here with numpy, not with the code's helpers."""

import math

import numpy as np
import pytest
import torch

from core.diffusion.sampler import euler_maruyama
from core.diffusion.score_mlp import EnsembleMLP
from core.sde import VPSDE
from core.training.diffusion import train_diffusion

BETA_MIN, BETA_MAX = 0.1, 20.0


def beta(t):
    return BETA_MIN + (BETA_MAX - BETA_MIN) * t


def marginal_var(t, s2):
    """Var of X_t per dimension when X_0 ~ N(0, s2 I): alpha(t)^2 s2 + sigma^2(t)."""
    a2 = np.exp(-(BETA_MIN * t + 0.5 * (BETA_MAX - BETA_MIN) * t * t))
    return a2 * s2 + (1 - a2)


class ExactScore:
    """The exact score of X_t for Gaussian data N(0, s2 I): -y / (alpha^2 s2 + sigma^2)."""

    def __init__(self, s2: float) -> None:
        self.s2 = s2

    def score(self, y, t, sde, t_net=None):
        return -y / torch.as_tensor(marginal_var(t.numpy(), self.s2), dtype=y.dtype).unsqueeze(-1)


def test_score_is_the_drift_over_the_root_of_beta():
    model = EnsembleMLP(2, 3, hidden=8).initialize([torch.Generator().manual_seed(s) for s in (0, 1)])
    gen = torch.Generator().manual_seed(2)
    y = torch.randn(2, 5, 3, generator=gen)
    t = torch.rand(2, 5, generator=gen) * 1.5
    drift = model(y, t).detach().numpy()
    expected = drift / np.sqrt(beta(t.numpy()))[..., None]
    np.testing.assert_allclose(model.score(y, t, VPSDE()).detach().numpy(), expected, rtol=1e-6)


def test_time_override_queries_the_network_elsewhere_but_scales_by_beta_at_t():
    model = EnsembleMLP(1, 2, hidden=8).initialize([torch.Generator().manual_seed(0)])
    y = torch.randn(1, 4, 2, generator=torch.Generator().manual_seed(1))
    t, s = torch.full((1, 4), 0.9), torch.full((1, 4), 0.1)
    expected = model(y, s).detach().numpy() / math.sqrt(beta(0.9))
    np.testing.assert_allclose(model.score(y, t, VPSDE(), t_net=s).detach().numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("s2", [0.25, 2.0])
def test_generator_reaches_non_stationary_gaussian_data_and_records_L_along_its_path(s2):
    # With the exact score of N(0, s2 I) data the reverse SDE carries N(0, I) at t = T to N(0, s2 I) at t = 0.
    # At step k the chain is (close to) the forward marginal N(0, v(t_k) I), t_k = T - k T / N, so the mean
    # score norm |y| / v is E|y| / v = sqrt(pi / 2) / sqrt(v(t_k)) in two dimensions; L is its maximum.
    T, N, n = 1.0, 400, 40_000
    gen = torch.Generator().manual_seed(3)
    y0 = torch.randn(1, n, 2, generator=gen, dtype=torch.float64)
    result = euler_maruyama(ExactScore(s2), VPSDE(), y0, torch.tensor([T], dtype=torch.float64), N, [gen])
    final_var = result.samples[0].var(dim=0).numpy()
    np.testing.assert_allclose(final_var, [s2, s2], rtol=0.04)
    t_k = T - np.arange(N) * T / N
    expected_norms = math.sqrt(math.pi / 2) / np.sqrt(marginal_var(t_k, s2))
    np.testing.assert_allclose(result.mean_score_norm[0].numpy(), expected_norms, rtol=0.03)
    assert float(result.L[0]) == pytest.approx(expected_norms.max(), rel=0.02)
    # The maximum, not the mean over steps: the two differ by far more than the tolerance here.
    assert abs(expected_norms.max() - expected_norms.mean()) > 3 * 0.02 * expected_norms.max()


def test_one_euler_maruyama_step_is_the_documented_update():
    # Y1 = Y0 + delta (beta/2 Y0 + beta s(Y0, T)) + sqrt(delta beta) xi with t_0 = T (forward time at step 0).
    T = 0.8
    y0 = torch.tensor([[[0.3, -1.2], [2.0, 0.5]]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    out = euler_maruyama(ExactScore(0.5), VPSDE(), y0, torch.tensor([T], dtype=torch.float64), 1, [gen])
    xi = torch.randn(1, 2, 2, generator=torch.Generator().manual_seed(7), dtype=torch.float64).numpy()
    delta, b = T / 1, beta(T)
    y = y0.numpy()
    score = -y / marginal_var(T, 0.5)
    expected = y + delta * (0.5 * b * y + b * score) + math.sqrt(delta * b) * xi
    np.testing.assert_allclose(out.samples.numpy(), expected, rtol=1e-6, atol=1e-12)


def test_the_reverse_clock_probe_queries_the_network_at_s_k_but_steps_at_t_k():
    class Recorder(ExactScore):
        def __init__(self):
            super().__init__(1.0)
            self.times = []

        def score(self, y, t, sde, t_net=None):
            self.times.append(float(t.flatten()[0]))
            return super().score(y, t, sde)

    rec = Recorder()
    y0 = torch.zeros(1, 3, 2, dtype=torch.float64)
    euler_maruyama(rec, VPSDE(), y0, torch.tensor([1.0], dtype=torch.float64), 4, [torch.Generator().manual_seed(0)],
                   probe_reverse_clock=True)
    # Per step: the step's score at t_k = 1 - k/4, then the probe at s_k = k/4.
    assert rec.times == pytest.approx([1.0, 0.0, 0.75, 0.25, 0.5, 0.5, 0.25, 0.75])


def test_adam_takes_iters_times_ceil_m_over_batch_steps(tiny_config):
    cfg = tiny_config.with_(m=32, batch=10, iters=3, eval_every=0)
    final = [r for r in train_diffusion(cfg) if r["kind"] == "eval"][-1]
    steps = {float(np.asarray(v).reshape(-1)[0]) for k, v in final["train_state"]["optimizer"].items() if k.startswith("step.")}
    assert steps == {3.0 * math.ceil(32 / 10)}
    full = [r for r in train_diffusion(cfg.with_(batch=64)) if r["kind"] == "eval"][-1]
    assert {float(np.asarray(v).reshape(-1)[0]) for k, v in full["train_state"]["optimizer"].items()
            if k.startswith("step.")} == {3.0}
