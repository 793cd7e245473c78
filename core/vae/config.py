"""Settings of one VAE run, validated before anything starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from pathlib import Path

from ..config_checks import int_at_least, learning_rate, positive_number, reject_unknown
from ..data.images import IMAGE_SOURCES, PATH_SOURCES
from ..errors import ConfigError
from ..resources import check_vae_costs

IMAGE_DATASETS = IMAGE_SOURCES


@dataclass(frozen=True)
class VAEConfig:
    """Defaults follow the paper's VAE experiment (Bernoulli MLP VAE, batch 64, Adam 1e-3) on the mnist5k subset
    (docs/experiments.md#vae)."""

    data: str = "mnist5k"
    data_path: str = ""
    m: int | None = 4000
    n_test: int = 1000
    epochs: int = 100
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    preset: str = "paper"
    likelihood: str = "bernoulli"
    r: float = 1.0
    logpx_every: int = 5
    logpx_K: int = 256
    train_stats: str = "running"  # "running" (published code) or "end-pass"
    device: str = "cpu"

    def validate(self) -> "VAEConfig":
        from .model import PRESETS

        if self.data not in IMAGE_DATASETS:
            raise ConfigError(f"unknown VAE dataset {self.data!r}; choose one of {', '.join(IMAGE_DATASETS)}")
        if self.data in PATH_SOURCES:
            if not self.data_path:
                raise ConfigError(f"image dataset {self.data!r} reads the user's files: give a data_path")
            if not Path(self.data_path).exists():
                raise ConfigError(f"data path {self.data_path} does not exist")
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown VAE preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.likelihood not in ("bernoulli", "gaussian"):
            raise ConfigError(f"likelihood must be bernoulli or gaussian, got {self.likelihood!r}")
        if self.train_stats not in ("running", "end-pass"):
            raise ConfigError(f"train_stats must be running or end-pass, got {self.train_stats!r}")
        for name, low in (("epochs", 1), ("batch", 1), ("n_test", 1), ("logpx_every", 0), ("logpx_K", 1), ("seed", 0)):
            int_at_least(name, getattr(self, name), low)
        if self.m is not None:
            int_at_least("m (training set size)", self.m, 2)
        learning_rate(self.lr)
        positive_number("r", self.r)
        check_vae_costs(self)  # the sizes against this machine's memory (core/resources.py)
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "VAEConfig":
        reject_unknown(cls, values, "VAE")
        return cls(**values)

    def with_(self, **changes) -> "VAEConfig":
        return replace(self, **changes)
