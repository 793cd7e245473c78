"""View ranges that change only when the data leaves them (or shrinks well inside them).

pyqtgraph repaints an axis, which is costly, whenever its view range changes; plain auto-range changes it on
every new point. A sticky range keeps the axes still during steady training, so a live update only repaints
the curves. The user's own zoom or pan switches it off for that plot until "Fit to data".
"""

from __future__ import annotations

import math

GROWTH = 1.5
PADDING = 0.08
SHRINK_BELOW = 0.4


def sticky_interval(current: tuple[float, float] | None, lo: float, hi: float, anchor_zero: bool = False) -> tuple[float, float] | None:
    """The new (lo, hi) for data spanning [lo, hi], or None to keep ``current``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    if current is not None:
        c_lo, c_hi = current
        inside = c_lo <= lo and hi <= c_hi
        if inside and span >= SHRINK_BELOW * (c_hi - c_lo):
            return None
    if anchor_zero:
        return (min(0.0, lo), lo + span * GROWTH if lo >= 0 else hi + span * (GROWTH - 1))
    return (lo - PADDING * span, hi + PADDING * span)
