"""Seeded 2-D toy datasets: the paper's Swiss roll, plus moons, 8 Gaussians and a checkerboard.

Train and test sets come from one seeded generator, train first, so the same seed always gives the same
split, and a larger test set never changes the training points.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.datasets import make_moons, make_swiss_roll

from ..errors import DataError
from ..seeding import numpy_rng
from .validation import validate_points

Sampler = Callable[[int, np.random.RandomState], np.ndarray]


def swiss_roll(n: int, rng: np.random.RandomState) -> np.ndarray:
    """The paper's recipe: make_swiss_roll(n, noise=0.5), columns (0, 2), divided by 5 (docs/experiments.md#swiss-roll)."""
    x, _ = make_swiss_roll(n_samples=n, noise=0.5, random_state=rng)
    return x[:, [0, 2]] / 5.0


def moons(n: int, rng: np.random.RandomState) -> np.ndarray:
    """Two interleaved half circles, centred and scaled to the Swiss roll's range."""
    x, _ = make_moons(n_samples=n, noise=0.05, random_state=rng)
    return (x - np.array([0.5, 0.25])) * 1.5


def eight_gaussians(n: int, rng: np.random.RandomState) -> np.ndarray:
    """Eight Gaussians (std 0.1) on a circle of radius 2."""
    angles = rng.randint(0, 8, size=n) * (np.pi / 4)
    centres = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centres + 0.1 * rng.standard_normal((n, 2))


def checkerboard(n: int, rng: np.random.RandomState) -> np.ndarray:
    """Uniform on the dark squares of a 4 x 4 checkerboard over [-2, 2]^2."""
    x1 = rng.uniform(-2.0, 2.0, size=n)
    x2 = rng.uniform(0.0, 1.0, size=n) - rng.randint(0, 2, size=n) * 2.0
    x2 = x2 + np.floor(x1) % 2
    return np.stack([x1, x2], axis=1)


TOY_DATASETS: dict[str, Sampler] = {
    "swissroll": swiss_roll,
    "moons": moons,
    "8gaussians": eight_gaussians,
    "checkerboard": checkerboard,
}


def load_toy2d(name: str, m: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``m`` training and ``n_test`` test points of the named dataset from ``seed``."""
    if name not in TOY_DATASETS:
        raise DataError(f"unknown 2-D dataset {name!r}; choose one of {', '.join(TOY_DATASETS)}")
    if int(m) != m or m < 2:
        raise DataError(f"training set size m must be an integer >= 2, got {m!r}")
    if int(n_test) != n_test or n_test < 2:
        raise DataError(f"test set size must be an integer >= 2, got {n_test!r}")
    sampler = TOY_DATASETS[name]
    rng = numpy_rng(seed, "data")
    train = validate_points(sampler(int(m), rng), dim=2, name=f"{name} training set")
    test = validate_points(sampler(int(n_test), rng), dim=2, name=f"{name} test set")
    return train, test
