"""The KDE test KL, its standard error over generator draws, and the near-best T set (docs/test-metrics.md)."""

import math

import numpy as np
import pytest
import torch

from core.metrics.kde import kde_kl, kde_kl_draws
from core.metrics.near_best import mean_se, near_best
from core.training.diffusion import train_diffusion


def test_test_kl_of_a_set_against_itself_is_zero():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert kde_kl(x, x) == pytest.approx(0.0, abs=1e-12)
    result = kde_kl_draws(x, torch.stack([x, x, x]))
    assert result.per_draw == pytest.approx([0.0, 0.0, 0.0], abs=1e-12) and result.se == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("shift", [0.5, 1.0])
def test_test_kl_of_shifted_gaussians_matches_the_closed_form(shift):
    # Test points ~ N(0, I), generated ~ N(delta, I). With a wide kernel h the two KDEs are N(0, (1+h^2) I) and
    # N(delta, (1+h^2) I) up to sampling error, so the estimate is |delta|^2 / (2 (1 + h^2)).
    h, n, draws = 0.5, 3000, 8
    gen = torch.Generator().manual_seed(1)
    test = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    generated = torch.randn(draws, n, 2, generator=gen, dtype=torch.float64) + torch.tensor([shift, 0.0], dtype=torch.float64)
    result = kde_kl_draws(test, generated, bandwidth=h)
    closed = shift**2 / (2 * (1 + h * h))
    assert result.se < 0.02
    # The test points are one draw too; their own sampling error of the mean log ratio is about shift / sqrt(n).
    assert result.mean == pytest.approx(closed, abs=4 * math.hypot(result.se, shift / (1 + h * h) / math.sqrt(n)) + 0.01)


def test_standard_error_is_the_spread_of_the_draws_over_root_d():
    gen = torch.Generator().manual_seed(2)
    test = torch.randn(200, 2, generator=gen)
    draws = torch.randn(5, 150, 2, generator=gen) * 1.3 + 0.2
    result = kde_kl_draws(test, draws, bandwidth=0.1)
    singles = np.array([kde_kl(test, d, 0.1) for d in draws])
    np.testing.assert_allclose(result.per_draw, singles, rtol=1e-12)
    assert result.mean == pytest.approx(singles.mean(), rel=1e-12)
    assert result.se == pytest.approx(singles.std(ddof=1) / math.sqrt(5), rel=1e-12)
    assert math.isnan(kde_kl_draws(test, draws[:1]).se)


def test_evaluation_reports_the_mean_and_se_over_its_generator_draws(tiny_config):
    cfg = tiny_config.with_(test_kl_draws=4, iters=4, eval_every=0)
    final = [r for r in train_diffusion(cfg) if r["kind"] == "eval"][-1]
    assert final["test_kl_draws"] == 4 and final["samples"].shape == (cfg.n_gen, 2)
    assert math.isfinite(final["test_kl_se"]) and final["test_kl_se"] > 0
    one = [r for r in train_diffusion(cfg.with_(test_kl_draws=1)) if r["kind"] == "eval"][-1]
    assert math.isnan(one["test_kl_se"])


def test_seed_mean_se_combines_independent_errors():
    assert mean_se([0.03, 0.04]) == pytest.approx(0.025)  # sqrt(0.03^2 + 0.04^2) / 2
    assert mean_se([0.02]) == pytest.approx(0.02)
    assert math.isnan(mean_se([0.02, None])) and math.isnan(mean_se([0.02, float("nan")])) and math.isnan(mean_se([]))


def test_near_best_uses_two_standard_errors_of_the_difference():
    Ts = [0.2, 0.4, 0.6, 0.8, 1.0]
    means = [0.50, 0.40, 0.43, 0.4565, 0.60]
    ses = [0.01, 0.02, 0.01, 0.02, 0.01]
    # 0.6: 0.03 <= 2 sqrt(0.01^2 + 0.02^2) = 0.0447; 0.8: 0.0565 <= 2 sqrt(2) 0.02 = 0.0566; 0.2: 0.1 > 0.0447.
    assert near_best(Ts, means, ses) == [0.4, 0.6, 0.8]
    assert near_best(Ts, means, [0.001] * 5) == [0.4]
    assert near_best(Ts, [math.nan, 0.3, math.nan, 0.31, 0.2], [0.01] * 5) == [1.0]
    assert near_best(Ts, [math.nan] * 5, ses) == []
    assert near_best(Ts, means, [math.nan] * 5) == [0.4]


def test_the_bound_and_the_shown_samples_do_not_depend_on_the_number_of_draws(tiny_config):
    cfg = tiny_config.with_(iters=4, eval_every=0)
    one = [r for r in train_diffusion(cfg.with_(test_kl_draws=1)) if r["kind"] == "eval"][-1]
    four = [r for r in train_diffusion(cfg.with_(test_kl_draws=4)) if r["kind"] == "eval"][-1]
    assert one["bounds"] == four["bounds"]
    np.testing.assert_array_equal(one["samples"], four["samples"])
    assert one["test_kl"] != four["test_kl"]  # the mean over four draws, not the first draw alone


def test_near_best_boundary_and_missing_errors():
    # Exactly on the boundary counts as near: 0.75 - 0.25 = 0.5 = 2 sqrt(0.2^2 + 0.15^2), all exact in binary.
    assert near_best([1.0, 2.0], [0.25, 0.75], [0.2, 0.15]) == [1.0, 2.0]
    assert near_best([1.0, 2.0], [0.25, 0.7500001], [0.2, 0.15]) == [1.0]
    # A missing (None) standard error: the best T stays alone, and a T without one is never called near.
    assert near_best([1.0, 2.0, 3.0], [0.3, 0.31, 0.9], [None, 0.05, 0.05]) == [1.0]
    assert near_best([1.0, 2.0, 3.0], [0.3, 0.31, 0.9], [0.05, None, 0.05]) == [1.0]
