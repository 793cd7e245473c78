"""The training points of a run, loaded once through core (the same seeded split the run trains on), on a
worker thread: a points file or an image set is read off the GUI thread."""

from __future__ import annotations

from typing import Callable

import numpy as np

from core.training.config import load_run_data

from .background import BackgroundCache
from .model import Entry

_cache = BackgroundCache()


def training_points(run: Entry, ready: Callable[[], None] = lambda: None) -> np.ndarray | None:
    """(m, d) float32 training points of the run's first seed; None while they load (``ready`` is called when
    they are there) or when they cannot be loaded."""
    cfg = run.config
    if not run.spec.has_T:  # a VAE: its T views, which draw these, do not apply
        return None
    key = (cfg.data, cfg.data_path, cfg.m, cfg.n_test, cfg.seed)
    return _cache.get(key, lambda: load_run_data(cfg)[0], ready)


def loading_points(run: Entry) -> bool:
    cfg = run.config
    return run.spec.has_T and _cache.loading((cfg.data, cfg.data_path, cfg.m, cfg.n_test, cfg.seed))
