"""Nearest-neighbour memorisation summary and the KDE test KL on tiny sets whose values are worked out here."""

import math

import numpy as np
import pytest
import torch

from core.metrics.kde import kde_kl, kde_kl_draws
from core.metrics.memorization import memorization_summary


def test_memorization_summary_of_points_on_a_grid():
    # Training points 3 apart on a line: each one's nearest other point is 3 away, so the spacing is 3 and
    # "copies" are generated points closer than 1 to a training point.
    train = torch.tensor([[0.0, 0.0], [3.0, 0.0], [6.0, 0.0], [9.0, 0.0]], dtype=torch.float64)
    generated = torch.tensor([[0.0, 1.0], [3.0, 0.8], [6.0, 2.0], [10.5, 0.0], [9.0, 3.0]], dtype=torch.float64)
    # Nearest training distances 1.0 (exactly a third of the spacing: not a copy), 0.8 (a copy), 2.0, 1.5, 3.0.
    summary = memorization_summary(generated, train)
    assert summary == pytest.approx({
        "nn_dist_mean": (1.0 + 0.8 + 2.0 + 1.5 + 3.0) / 5,
        "nn_dist_median": 1.5,
        "nn_dist_min": 0.8,
        "train_nn_median": 3.0,
        "nn_copy_fraction": 1 / 5,
    })


def numpy_kde_log_density(query: np.ndarray, points: np.ndarray, h: float) -> np.ndarray:
    """log (1/n) sum_j N(query; points_j, h^2 I)."""
    d = query.shape[1]
    sq = ((query[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    return np.log(np.exp(-sq / (2 * h * h)).mean(1)) - 0.5 * d * math.log(2 * math.pi * h * h)


@pytest.fixture
def sets():
    rng = np.random.default_rng(0)
    test = rng.normal(scale=0.15, size=(6, 2))
    gen = rng.normal(scale=0.15, size=(2, 4, 2))
    return test, gen


def test_kde_kl_against_the_kernel_sums(sets):
    test, gen = sets
    for h in (0.1, 0.3):
        expected = float(np.mean(numpy_kde_log_density(test, test, h) - numpy_kde_log_density(test, gen[0], h)))
        got = kde_kl(torch.from_numpy(test), torch.from_numpy(gen[0]), h)
        assert got == pytest.approx(expected, rel=1e-9)
    # The default bandwidth is 0.1.
    assert kde_kl(torch.from_numpy(test), torch.from_numpy(gen[0])) == pytest.approx(
        float(np.mean(numpy_kde_log_density(test, test, 0.1) - numpy_kde_log_density(test, gen[0], 0.1))), rel=1e-9)


def test_kde_kl_of_each_draw(sets):
    test, gen = sets
    result = kde_kl_draws(torch.from_numpy(test), torch.from_numpy(gen))
    expected = [float(np.mean(numpy_kde_log_density(test, test, 0.1) - numpy_kde_log_density(test, g, 0.1))) for g in gen]
    assert result.per_draw == pytest.approx(expected, rel=1e-9)
    assert result.mean == pytest.approx(np.mean(expected), rel=1e-9)
    assert result.se == pytest.approx(np.std(expected, ddof=1) / math.sqrt(2), rel=1e-9)


@pytest.mark.parametrize("shape", [(4, 2), (0, 4, 2)])
def test_kde_kl_draws_needs_at_least_one_set_of_points(shape):
    with pytest.raises(ValueError, match=rf"draws must have shape \(D, n_gen, d\) with D >= 1, got \({shape[0]}, "):
        kde_kl_draws(torch.zeros(3, 2), torch.zeros(shape))
