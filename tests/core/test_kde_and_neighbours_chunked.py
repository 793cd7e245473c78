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


def test_kde_far_from_the_origin_above_64_dimensions_stays_accurate_in_float32():
    # d = 65 keeps float32, so only the centring on the points' mean (per coordinate) saves the distances;
    # the offset alternates in sign, which a single common shift would not remove.
    rng = np.random.default_rng(2)
    offset = 512 * np.where(np.arange(65) % 2 == 0, 1.0, -1.0)
    points = offset + rng.integers(-4, 5, size=(20, 65)) / 4
    query = points[:5] + rng.integers(-1, 2, size=(5, 65)) / 8
    expected = numpy_kde(query, points, 1.0)
    got = kde_log_density(torch.from_numpy(query).float(), torch.from_numpy(points).float(), 1.0)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_kde_switches_to_float64_for_widely_spread_float32_points():
    # Spread +-100 at bandwidth 0.1: float32 would move the exponents by ~1e-2 (2 eps 1e4 / 0.01 >> 1e-4).
    rng = np.random.default_rng(3)
    points = rng.integers(-100, 101, size=(12, 2)).astype(np.float64)
    query = points + rng.integers(-1, 2, size=(12, 2)) / 16
    got = kde_log_density(torch.from_numpy(query).float(), torch.from_numpy(points).float(), 0.1)
    np.testing.assert_allclose(got.numpy(), numpy_kde(query, points, 0.1), rtol=1e-6)


def test_kde_query_blocks_fit_the_budget(monkeypatch):
    # rows = budget // ((min(P, 4096) + d) * 4) query points per block, and the budget is passed on.
    import core.metrics.kde as kde

    calls = []
    real = kde.log_mixture_density

    def spy(query, points, var, block_bytes):
        calls.append((query.shape[0], block_bytes))
        return real(query, points, var, block_bytes)

    monkeypatch.setattr(kde, "log_mixture_density", spy)
    points, query = torch.randn(30, 3, generator=torch.Generator().manual_seed(4)), torch.zeros(10, 3)
    kde_log_density(query, points, 0.5, block_bytes=620)  # 620 // ((30 + 3) * 4) = 4 rows
    assert calls == [(4, 620), (4, 620), (2, 620)]
    calls.clear()
    kde_log_density(torch.zeros(7, 2), torch.zeros(4097, 2), 0.5, block_bytes=(4096 + 2) * 4 * 3)
    assert [c[0] for c in calls] == [3, 3, 1]
