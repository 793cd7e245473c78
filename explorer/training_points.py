"""The training points of a run, loaded once through core (the same seeded split the run trains on)."""

from __future__ import annotations

import numpy as np

from core.errors import InfoGenError
from core.training.config import load_run_data

from .model import VAE, Entry

_cache: dict[tuple, np.ndarray | None] = {}


def training_points(run: Entry) -> np.ndarray | None:
    """(m, d) float32 training points of the run's first seed, or None if its data cannot be loaded."""
    cfg = run.config
    if run.kind == VAE:
        return None
    key = (cfg.data, cfg.data_path, cfg.m, cfg.n_test, cfg.seed)
    if key not in _cache:
        try:
            _cache[key] = load_run_data(cfg)[0]
        except (InfoGenError, OSError):
            _cache[key] = None
    return _cache[key]
