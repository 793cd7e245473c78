"""Checks every dataset passes before training: finite values, the right shape, enough points."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def validate_points(
    x: object, *, dim: int | None = None, min_points: int = 2, name: str = "data"
) -> np.ndarray:
    """Return ``x`` as a float32 array of shape (n, d), or raise DataError naming the problem."""
    try:
        arr = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: cannot be read as numbers ({exc})") from exc
    if arr.ndim != 2:
        raise DataError(f"{name}: expected a 2-D array of shape (points, dimensions), got shape {arr.shape}")
    n, d = arr.shape
    if d == 0:
        raise DataError(f"{name}: points have no coordinates (shape {arr.shape})")
    if dim is not None and d != dim:
        raise DataError(f"{name}: expected points of dimension {dim}, got dimension {d}")
    if n < min_points:
        raise DataError(f"{name}: needs at least {min_points} points, got {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        kind = "NaN" if np.isnan(arr).any() else "infinite"
        shown = ", ".join(str(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
        raise DataError(f"{name}: {len(rows)} point(s) contain {kind} values (rows {shown})")
    return arr
