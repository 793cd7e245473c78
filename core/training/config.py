"""The settings of one diffusion run, validated before anything starts."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..bounds.variants import get_variant
from ..data.images import IMAGE_SOURCES, PATH_SOURCES
from ..data.toy2d import TOY_DATASETS
from ..config_checks import diffusion_time, em_steps, int_at_least, learning_rate, positive_number, reject_unknown
from ..errors import ConfigError
from ..resources import check_diffusion_costs
from ..sde import check_steps


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
    test_kl_draws: int = 8  # independent generator draws of n_gen samples per evaluation: the test KL's error bar
    kde_bandwidth: float = 0.1
    dsm_eval_draws: int = 20
    hidden: int = 128
    device: str = "cpu"
    frame_every: int = 0  # > 0: a trajectory frame every frame_every EM steps, overriding trajectory_frames
    trajectory_frames: int = 50  # about this many frames of the reverse trajectory per evaluation; 0: none
    score_reg: float = 0.0
    preset: str = "small"  # U-Net preset for image data (ignored for points, which use the paper's MLP)
    step_size: float = 0.0  # > 0: N = round(T / step_size) EM steps instead of n_steps (the image setting)
    preview_evals: bool = False  # evaluations before the last are light previews; the last one is in full
    preview_samples: int = 200  # generated samples of a preview (one draw), at most n_gen

    def eval_sampling(self, final: bool) -> tuple[int, int]:
        """(samples per draw, draws) of an evaluation: n_gen x test_kl_draws, or for a preview
        (``preview_evals`` and not the final evaluation) min(preview_samples, n_gen) x 1
        (docs/test-metrics.md#previews)."""
        if self.preview_evals and not final:
            return min(self.preview_samples, self.n_gen), 1
        return self.n_gen, self.test_kl_draws

    def evaluates_after(self, step: int) -> bool:
        """Whether training evaluates right after ``step``: every eval_every steps, and after the last."""
        return step == self.iters or bool(self.eval_every and step % self.eval_every == 0)

    @property
    def evaluation_count(self) -> int:
        """Evaluations of a run: every eval_every iterations and at the end (the end counted once)."""
        if not self.eval_every:
            return 1
        return self.iters // self.eval_every + (0 if self.iters % self.eval_every == 0 else 1)

    @property
    def is_images(self) -> bool:
        """Image data (U-Net, logit space, BPD) rather than points (MLP, KDE test KL)."""
        return self.data in IMAGE_SOURCES

    @property
    def steps(self) -> int:
        """The Euler-Maruyama step count N: n_steps, or round(T / step_size) with a fixed step size."""
        return max(1, round(self.T / self.step_size)) if self.step_size > 0 else self.n_steps

    @property
    def frame_interval(self) -> int | None:
        """EM steps between two recorded frames of the reverse trajectory, or None when none are recorded.

        ``frame_every`` > 0 is used as it is (the app's explicit choice); otherwise ``trajectory_frames`` > 0 asks for
        about that many: a frame every max(1, N // trajectory_frames) steps, plus the start and the last step, so
        N = 1000 and the default 50 give 51 frames. Both 0: no trajectory. A config saved before
        ``trajectory_frames`` existed gets the default (50) when it is read back, so a resumed old run records one
        from its next evaluation on."""
        if self.frame_every > 0:
            return self.frame_every
        if self.trajectory_frames > 0:
            return max(1, self.steps // self.trajectory_frames)
        return None

    @property
    def frame_count(self) -> int:
        """How many frames one evaluation records (0 without a trajectory): the start, then every frame_interval
        steps, and the last step."""
        every = self.frame_interval
        return 0 if every is None else 1 + -(-self.steps // every)

    def bound_steps(self, truncate: bool) -> int:
        """N as a bound variant counts it; the published image code truncates int(T / step_size)."""
        if truncate and self.step_size > 0:
            return max(1, int(self.T / self.step_size))
        return self.steps

    def validate(self) -> "DiffusionConfig":
        """Raise ConfigError naming the first bad setting; return self when all are valid."""
        if self.data == "file":
            if not self.data_path:
                raise ConfigError("dataset 'file' needs a data_path (.npy, .npz, .csv or .txt)")
            if not Path(self.data_path).is_file():
                raise ConfigError(f"data file {self.data_path} does not exist")
        elif self.data in PATH_SOURCES:
            if not self.data_path:
                raise ConfigError(f"image dataset {self.data!r} reads the user's files: give a data_path")
            if not Path(self.data_path).exists():
                raise ConfigError(f"data path {self.data_path} does not exist")
        elif self.data not in TOY_DATASETS and self.data not in IMAGE_SOURCES:
            names = ", ".join([*TOY_DATASETS, "file", *IMAGE_SOURCES])
            raise ConfigError(f"unknown dataset {self.data!r}; choose one of {names}")
        if self.is_images:
            from ..diffusion.unet import UNET_PRESETS

            if self.preset not in UNET_PRESETS:
                raise ConfigError(f"unknown U-Net preset {self.preset!r}; choose one of {', '.join(UNET_PRESETS)}")
            if self.variant == "reference-2d":
                raise ConfigError("bound variant 'reference-2d' is the Swiss roll code's; for images use exact or reference-images")
        if not isinstance(self.step_size, (int, float)) or not math.isfinite(self.step_size) or self.step_size < 0:
            raise ConfigError(f"step_size must be a finite number >= 0 (0: use n_steps), got {self.step_size!r}")
        diffusion_time(self.T)
        check_steps(self.n_steps)
        em_steps(self.n_steps)
        if self.step_size > 0:
            em_steps(self.steps, f"N = round(T / step_size) = round({self.T:g} / {self.step_size:g})")
        get_variant(self.variant)
        int_at_least("m (training set size)", self.m, 2)
        int_at_least("n_test", self.n_test, 2)
        int_at_least("iters", self.iters, 1)
        int_at_least("batch", self.batch, 1)
        int_at_least("eval_every", self.eval_every, 0)
        int_at_least("mc_samples (K)", self.mc_samples, 1)
        int_at_least("n_gen", self.n_gen, 2)
        int_at_least("test_kl_draws", self.test_kl_draws, 1)
        int_at_least("preview_samples", self.preview_samples, 2)
        if not isinstance(self.preview_evals, bool):
            raise ConfigError(f"preview_evals must be true or false, got {self.preview_evals!r}")
        int_at_least("dsm_eval_draws", self.dsm_eval_draws, 1)
        int_at_least("hidden", self.hidden, 1)
        int_at_least("frame_every", self.frame_every, 0)
        int_at_least("trajectory_frames", self.trajectory_frames, 0)
        int_at_least("seed", self.seed, 0)
        if not isinstance(self.score_reg, (int, float)) or not math.isfinite(self.score_reg) or self.score_reg < 0:
            raise ConfigError(f"score_reg (lambda) must be a finite number >= 0, got {self.score_reg!r}")
        learning_rate(self.lr)
        for name in ("R", "kde_bandwidth"):
            positive_number(name, getattr(self, name))
        check_diffusion_costs(self)  # the sizes against this machine's memory (core/resources.py)
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



IMAGE_DEFAULTS = {
    "m": 16, "n_test": 100, "batch": 128, "lr": 1e-3, "R": 4000.0, "mc_samples": 100, "n_gen": 100,
    "test_kl_draws": 1,
    "step_size": 0.001, "preset": "small", "iters": 2000, "variant": "exact", "dsm_eval_draws": 5,
}


def image_config(**changes) -> DiffusionConfig:
    """A diffusion config with the paper's image settings (R = 4000, K = 100, EM step 0.001, m = 16 few-shot,
    100 test images; docs/experiments.md#images), a CPU-sized U-Net and learning rate; ``changes`` override them."""
    return DiffusionConfig(**{"data": "digits", **IMAGE_DEFAULTS, **changes})


def load_run_data(cfg: DiffusionConfig):
    """The run's (train, test) float32 arrays: a seeded toy dataset, a seeded split of the user's point
    file, or a seeded split of images, flattened to (n, C*H*W) with intensities in [0, 1]."""
    train, test, _ = load_run_data_with_shape(cfg)
    return train, test


def load_run_data_with_shape(cfg: DiffusionConfig):
    """(train, test, shape of one example): (d,) for points, (C, H, W) for images."""
    from ..data.files import load_points_file, split_points
    from ..data.images import load_images, split_images
    from ..data.toy2d import load_toy2d

    if cfg.is_images:
        images = load_images(cfg.data, cfg.data_path)
        if images.shape[2] != images.shape[3]:
            from ..errors import DataError

            raise DataError(f"{cfg.data}: images are {images.shape[2]}x{images.shape[3]}; the U-Net needs square images")
        train, test = split_images(images, cfg.m, cfg.n_test, cfg.seed, cfg.data)
        return train.reshape(len(train), -1), test.reshape(len(test), -1), tuple(images.shape[1:])
    if cfg.data == "file":
        train, test = split_points(load_points_file(cfg.data_path), cfg.m, cfg.n_test, cfg.seed, cfg.data_path)
    else:
        train, test = load_toy2d(cfg.data, cfg.m, cfg.n_test, cfg.seed)
    return train, test, (train.shape[1],)
