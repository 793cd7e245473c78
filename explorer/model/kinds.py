"""A curve specification per kind of run: what each plot shows, with its labels, units and x axis.

Three kinds: diffusion on 2-D points (test metric: the KDE test KL), diffusion on images (test BPD) and the VAE
(x axis in epochs, nats per image). The views read everything kind-specific from here instead of branching on
the run's type, and runs of different kinds never share an axis (docs/explorer.md#kinds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

POINTS, IMAGES, VAE = "points", "images", "vae"
KINDS = (POINTS, IMAGES, VAE)


@dataclass(frozen=True)
class Series:
    """One curve of a plot: the eval-record key it reads, its label and its line style (a pen style name:
    solid, dash, dot, dashdot, dashdotdot), and whether it is the run's main curve (the one in the legend)."""

    key: str
    label: str
    style: str = "solid"
    main: bool = False
    symbol: str | None = None


@dataclass(frozen=True)
class CurveSpec:
    """Everything kind-specific about a run's plots."""

    kind: str
    title: str
    x_label: str           # "step" or "epoch"
    eval_x: str            # the eval record's key that places it on the x axis
    loss_label: str
    held_out_label: str
    y_unit: str
    bound_total: tuple[Series, ...]   # shown in every terms mode
    bound_terms: tuple[Series, ...]   # shown in the terms and stacked modes
    gap: tuple[Series, ...]
    test_key: str          # the test metric, with "<key>_se" its Monte Carlo standard error when recorded
    test_label: str
    scaled_terms: tuple[str, ...] = ()  # terms that enter the bound multiplied by sqrt(2) R
    gap_unit: str = ""     # the gap plot's y unit (its curves differ in unit for diffusion: none is shown)
    eval_where: str = "eval @ {step}"  # where an evaluation sits, for the cursor read-out
    has_T: bool = True     # a diffusion time: the T slider's views apply
    resumable: bool = True  # its checkpoint holds the optimizer state to continue training

    def held_out(self, record: dict) -> float:
        """The held-out loss of an evaluation record (NaN where it was not recorded)."""
        if self.kind == VAE:
            rec, kl = record.get("rec_test"), record.get("kl_test")
            return math.nan if rec is None or kl is None else float(rec) + float(kl)
        value = record.get("dsm_test")
        return math.nan if value is None else float(value)

    def term_value(self, record: dict, key: str) -> float:
        """A bound term as it adds up to the bound: the scaled terms multiplied by sqrt(2) R."""
        value = record.get(key)
        if value is None:
            return math.nan
        if key in self.scaled_terms:
            R = record.get("R")
            return math.nan if R is None else math.sqrt(2.0) * float(R) * float(value)
        return float(value)


_DIFFUSION_TERMS = (
    Series("score_matching", "score matching", "dash"),
    Series("encoder_info", "encoder info", "dot"),
    Series("encoder_prior", "√2R·encoder prior", "dashdot"),
    Series("generator", "√2R·generator", "dashdotdot"),
)

SPECS = {
    POINTS: CurveSpec(
        POINTS, "Diffusion on points", "step", "step", "DSM loss", "held-out DSM", "nats",
        (Series("bound", "bound", "solid", main=True, symbol="o"),), _DIFFUSION_TERMS,
        (Series("test_kl", "test KL", "solid", main=True, symbol="s"), Series("dsm_gap", "DSM gap", "dash")),
        "test_kl", "test KL", scaled_terms=("encoder_prior", "generator"),
    ),
    IMAGES: CurveSpec(
        IMAGES, "Diffusion on images", "step", "step", "DSM loss", "held-out DSM", "nats",
        (Series("bound", "bound", "solid", main=True, symbol="o"),), _DIFFUSION_TERMS,
        (Series("test_bpd", "test BPD", "solid", main=True, symbol="s"), Series("dsm_gap", "DSM gap", "dash")),
        "test_bpd", "test BPD", scaled_terms=("encoder_prior", "generator"),
    ),
    VAE: CurveSpec(
        VAE, "VAE", "epoch", "epoch", "−ELBO", "held-out −ELBO", "nats per image",
        (Series("bound_encoder_generator", "encoder+generator bound", "solid", main=True),),
        (Series("bound_encoder_only", "encoder-only bound", "dash"), Series("test_curve", "test curve", "dot")),
        (Series("gap", "test curve − encoder-only bound", "solid", main=True),
         Series("rec_gap", "rec test − train", "dash"), Series("neg_elbo_gap", "−ELBO test − train", "dot")),
        "test_curve", "test curve", gap_unit="nats per image", eval_where="epoch {epoch}", has_T=False,
        resumable=False,
    ),
}


def kind_of(config: DiffusionConfig | VAEConfig) -> str:
    """The kind of a run with this config."""
    if isinstance(config, VAEConfig):
        return VAE
    return IMAGES if config.is_images else POINTS


def spec_of(config: DiffusionConfig | VAEConfig) -> CurveSpec:
    return SPECS[kind_of(config)]
