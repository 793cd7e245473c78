"""Which T values are as good as the best one, given the test metric's Monte Carlo error.

A T whose mean test metric exceeds the minimum by at most two standard errors of the difference,
2 sqrt(se_T^2 + se_best^2), cannot be told apart from the best T by these draws (docs/test-metrics.md#near-best).
"""

from __future__ import annotations

import math
from typing import Sequence

NEAR_BEST_Z = 2.0


def mean_se(ses: Sequence[float | None]) -> float:
    """Standard error of a mean of independent estimates with standard errors ``ses``: sqrt(sum se^2) / n.

    NaN when any is missing or non-finite (a single draw has no error estimate), or when there are none."""
    values = [float(s) for s in ses if s is not None]
    if not values or len(values) != len(ses) or not all(math.isfinite(v) for v in values):
        return math.nan
    return math.sqrt(math.fsum(v * v for v in values)) / len(values)


def near_best(Ts: Sequence[float], means: Sequence[float], ses: Sequence[float], z: float = NEAR_BEST_Z) -> list[float]:
    """The T values whose mean is within z standard errors (of the difference) of the smallest mean.

    Non-finite means are skipped; a T without a finite standard error is near the best only if it is the best.
    Empty when no mean is finite."""
    finite = [i for i, v in enumerate(means) if v is not None and math.isfinite(v)]
    if not finite:
        return []
    best = min(finite, key=lambda i: means[i])
    se_best = ses[best] if ses[best] is not None and math.isfinite(ses[best]) else math.nan
    out = []
    for i in finite:
        if i == best:
            out.append(float(Ts[i]))
            continue
        se = ses[i] if ses[i] is not None else math.nan
        spread = z * math.sqrt(se * se + se_best * se_best)
        if math.isfinite(spread) and means[i] - means[best] <= spread:
            out.append(float(Ts[i]))
    return out
