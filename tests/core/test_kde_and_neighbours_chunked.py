"""The KDE log density and the nearest-neighbour distances in small chunks, against numpy in float64."""

import math

import numpy as np
import torch

import core.metrics.memorization as memorization
from core.metrics.kde import kde_log_density
from core.metrics.memorization import nearest_neighbour_distances


def numpy_kde(query: np.ndarray, points: np.ndarray, h: float) -> np.ndarray:
    d = query.shape[1]
    sq = ((query[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    return np.log(np.exp(-sq / (2 * h * h)).mean(1)) - 0.5 * d * math.log(2 * math.pi * h * h)


def test_kde_of_float32_points_far_from_the_origin_in_one_row_chunks():
    # Points on a 1/8 grid near 1000 are exact in float32; the density at bandwidth 0.1 needs the distances
    # to better than float32's 1e-4 at |x|^2 ~ 2e6, which centring (and float64) give.
    rng = np.random.default_rng(0)
    points = 1000 + rng.integers(-8, 9, size=(30, 2)) / 8
    query = 1000 + rng.integers(-8, 9, size=(7, 2)) / 8
    expected = numpy_kde(query, points, 0.1)
    q32, p32 = torch.from_numpy(query).float(), torch.from_numpy(points).float()
    np.testing.assert_allclose(kde_log_density(q32, p32, 0.1).numpy(), expected, rtol=1e-6)
    # A budget too small for one row: one query row per block, same values.
    np.testing.assert_allclose(kde_log_density(q32, p32, 0.1, block_bytes=64).numpy(), expected, rtol=1e-6)


def test_nearest_neighbours_across_chunks_exclude_only_the_point_itself(monkeypatch):
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(7, 3))
    dist = np.sqrt(((ref[:, None, :] - ref[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    monkeypatch.setattr(memorization, "rows_per_block", lambda n_cols, row_width=1, **kw: 2)  # chunks of 2 rows
    got = nearest_neighbour_distances(torch.from_numpy(ref), torch.from_numpy(ref), exclude_self=True)
    np.testing.assert_allclose(got.numpy(), dist.min(1), rtol=1e-12)
    assert nearest_neighbour_distances(torch.from_numpy(ref), torch.from_numpy(ref)).abs().max() < 1e-7
    query = rng.normal(size=(5, 3))
    to_ref = np.sqrt(((query[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_neighbour_distances(torch.from_numpy(query), torch.from_numpy(ref)).numpy(),
                               to_ref, rtol=1e-12)
