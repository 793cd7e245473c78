"""The settings of one diffusion run, validated before anything starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..bounds.variants import get_variant
from ..data.toy2d import TOY_DATASETS
from ..config_checks import int_at_least, positive_number, reject_unknown
from ..errors import ConfigError
from ..sde import check_steps, check_T


@dataclass(frozen=True)
class DiffusionConfig:
    """One (dataset, m, T, seed) diffusion run; defaults are the paper's Swiss roll settings."""

    data: str = "swissroll"
    data_path: str = ""
    m: int = 200
    n_test: int = 1000
    T: float = 0.6
    iters: int = 10000
    batch: int = 256
    lr: float = 1e-3
    seed: int = 0
    eval_every: int = 1000
    variant: str = "exact"
    R: float = 5.0
    n_steps: int = 1000
    mc_samples: int = 1000
    n_gen: int = 1000
    kde_bandwidth: float = 0.1
    dsm_eval_draws: int = 20
    hidden: int = 128
    device: str = "cpu"
    frame_every: int = 0
    score_reg: float = 0.0

    def validate(self) -> "DiffusionConfig":
        """Raise ConfigError naming the first bad setting; return self when all are valid."""
        if self.data == "file":
            if not self.data_path:
                raise ConfigError("dataset 'file' needs a data_path (.npy, .npz, .csv or .txt)")
            if not Path(self.data_path).is_file():
                raise ConfigError(f"data file {self.data_path} does not exist")
        elif self.data not in TOY_DATASETS:
            names = ", ".join([*TOY_DATASETS, "file"])
            raise ConfigError(f"unknown dataset {self.data!r}; choose one of {names}")
        check_T(self.T)
        check_steps(self.n_steps)
        get_variant(self.variant)
        int_at_least("m (training set size)", self.m, 2)
        int_at_least("n_test", self.n_test, 2)
        int_at_least("iters", self.iters, 1)
        int_at_least("batch", self.batch, 1)
        int_at_least("eval_every", self.eval_every, 0)
        int_at_least("mc_samples (K)", self.mc_samples, 1)
        int_at_least("n_gen", self.n_gen, 2)
        int_at_least("dsm_eval_draws", self.dsm_eval_draws, 1)
        int_at_least("hidden", self.hidden, 1)
        int_at_least("frame_every", self.frame_every, 0)
        int_at_least("seed", self.seed, 0)
        if not isinstance(self.score_reg, (int, float)) or not math.isfinite(self.score_reg) or self.score_reg < 0:
            raise ConfigError(f"score_reg (lambda) must be a finite number >= 0, got {self.score_reg!r}")
        for name in ("lr", "R", "kde_bandwidth"):
            positive_number(name, getattr(self, name))
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "DiffusionConfig":
        """Build from a dict (e.g. config.json), rejecting unknown keys by name."""
        reject_unknown(cls, values, "diffusion")
        return cls(**values)

    def with_(self, **changes) -> "DiffusionConfig":
        return replace(self, **changes)



def load_run_data(cfg: DiffusionConfig):
    """The run's (train, test) float32 arrays: a seeded toy dataset, or a seeded split of the user's file."""
    from ..data.files import load_points_file, split_points
    from ..data.toy2d import load_toy2d

    if cfg.data == "file":
        return split_points(load_points_file(cfg.data_path), cfg.m, cfg.n_test, cfg.seed, cfg.data_path)
    return load_toy2d(cfg.data, cfg.m, cfg.n_test, cfg.seed)
