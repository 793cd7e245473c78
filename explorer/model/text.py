"""Numbers as the app shows them: "n/a" for what was not recorded, a test metric with its standard error."""

from __future__ import annotations

import numpy as np


def fmt(value, spec: str = ".4f") -> str:
    """A number for a label, or "n/a" where there is none: None (a NaN stored as null), NaN or infinity."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return "n/a"
    if not np.isfinite(value):
        return "n/a"
    return format(value, spec)


def metric_text(record: dict, key: str = "test_kl", label: str = "test KL") -> str:
    """'test KL 0.512 ± 0.014': a test metric with its Monte Carlo standard error when the record has one
    ('test KL n/a' when the metric is missing or not finite)."""
    se = record.get(f"{key}_se")
    return f"{label} {fmt(record.get(key), '.3f')}" + (f" ± {se:.3f}" if fmt(se) != "n/a" else "")


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"ETA {seconds // 60}:{seconds % 60:02d}"
