"""TensorBoard-compatible smoothing: a debiased exponential moving average.

last = last * w + (1 - w) * y, divided by 1 - w^n where n counts the finite points so far; non-finite points
pass through unchanged; a constant series is left exactly as it is; w is clamped to [0, 0.999]. Smooth the
full-resolution series first and decimate for display afterwards (the reverse is a known TensorBoard bug).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.signal import lfilter

MAX_WEIGHT = 0.999


def debiased_ema(values: Sequence[float] | np.ndarray, weight: float) -> np.ndarray:
    """The smoothed series, same length as ``values``."""
    y = np.asarray(values, dtype=np.float64)
    w = min(max(float(weight), 0.0), MAX_WEIGHT)
    out = y.copy()
    if w == 0.0 or y.size == 0:
        return out
    finite = np.isfinite(y)
    if finite.any() and np.all(y[finite] == y[finite][0]):
        return out  # constant: nothing to smooth, and no rounding drift
    # The recurrence last_n = w last_{n-1} + (1 - w) y_n over the finite points, run in C by lfilter: the app
    # smooths the whole loss curve at every redraw, and a Python loop there competed with training for the GIL.
    values = y[finite]
    n = np.arange(1, values.size + 1, dtype=np.float64)
    out[finite] = lfilter([1.0 - w], [1.0, -w], values) / (1.0 - np.power(w, n))
    return out


def decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-th point (always keeping the last) so that at most ``max_points`` remain."""
    n = len(x)
    if n <= max_points or max_points < 2:
        return np.asarray(x), np.asarray(y)
    idx = np.unique(np.concatenate([np.arange(0, n, math.ceil(n / (max_points - 1))), [n - 1]]))
    return np.asarray(x)[idx], np.asarray(y)[idx]
