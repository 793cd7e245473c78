"""Choose T by minimizing the bound, with far fewer trainings than a full grid.

The bound splits into terms that need no training and terms that do. encoder_info and encoder_prior depend
only on the training set and T, and the generator term's T-dependence sqrt(T sum_beta / (2 m N)) is known in
closed form; only score_matching and the score scale L come from a trained model, and both vary slowly and
smoothly with T (see the sweep tables in README). So: train at a few coarse T, interpolate score_matching and
L linearly in T (constant beyond the ends), add the exact training-free terms on a fine T grid, and train
next where that surrogate bound is smallest. Repeat until the surrogate's minimum falls on a T already
trained or the training budget is spent. T* is the trained T with the smallest actual bound; its model is
the final model. docs/t-selection.md#select-t explains the procedure and its limits.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .bounds.diffusion_bound import encoder_terms, generator_term
from .bounds.variants import get_variant
from .errors import ConfigError
from .io.recorder import FolderLock, claim_folder
from .io.atomic import atomic_write_json
from .sde import VPSDE
from .seeding import torch_generator
from .sweep import run_sweep
from .training.config import DiffusionConfig, load_run_data

SURROGATE_STEP = 0.01
SURROGATE_MC_SAMPLES = 200


def coarse_grid(lo: float, hi: float, n: int) -> list[float]:
    """n points at the centres of n equal cells of [lo, hi], rounded to 0.01."""
    return [round(lo + (hi - lo) * (i + 0.5) / n, 2) for i in range(n)]


def training_free_terms(cfg: DiffusionConfig, Ts: np.ndarray) -> dict[str, np.ndarray]:
    """encoder_info, encoder_prior and the generator term per unit L, for every T in Ts (no model needed)."""
    variant = get_variant(cfg.variant)
    x = torch.from_numpy(load_run_data(cfg)[0])
    sde = VPSDE()
    gen = torch_generator(cfg.seed, "select")
    if cfg.is_images:  # the bound lives in logit space, as in training
        from .training.diffusion import to_logit_space

        x = to_logit_space(x[None], [gen])[0]
    info, prior, per_L = [], [], []
    for T in Ts:
        enc = encoder_terms(x, float(T), variant, min(cfg.mc_samples, SURROGATE_MC_SAMPLES), gen, sde)
        n_steps = cfg.with_(T=float(T)).bound_steps(variant.truncate_steps)
        n_terms = n_steps + 1 if variant.sum_beta_extra_term else n_steps
        sum_beta = sde.sum_beta(float(T), n_steps, n_terms)
        info.append(enc.encoder_info)
        prior.append(enc.encoder_prior)
        per_L.append(generator_term(float(T), 1.0, sum_beta, x.shape[0], n_steps))
    return {"encoder_info": np.array(info), "encoder_prior": np.array(prior), "generator_per_L": np.array(per_L)}


def surrogate_bound(cfg: DiffusionConfig, Ts: np.ndarray, free: dict[str, np.ndarray], trained: dict[float, dict]) -> np.ndarray:
    """Predicted bound on Ts from the trained points' score_matching and L (linear in T) and the exact free terms."""
    known = sorted(trained)
    sm = np.interp(Ts, known, [trained[T]["score_matching"] for T in known])
    L = np.interp(Ts, known, [trained[T]["L"] for T in known])
    scale = math.sqrt(2.0) * cfg.R
    return sm + free["encoder_info"] + scale * free["encoder_prior"] + scale * L * free["generator_per_L"]


def select_t(
    base: DiffusionConfig,
    t_range: tuple[float, float] = (0.1, 2.0),
    out_dir: str | Path = "select-t",
    n_coarse: int = 3,
    max_trainings: int = 4,
    jobs: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
) -> Iterator[dict]:
    """Yield sweep events, ``evaluated`` events ([T, bound] as each model finishes) and a final ``selection``.

    A folder that already holds work is refused unless ``overwrite`` moves it aside first."""
    lo, hi = t_range
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ConfigError(f"T range must satisfy 0 < low < high, got {lo}:{hi}")
    if n_coarse < 2 or max_trainings < n_coarse:
        raise ConfigError(f"need at least 2 coarse points and max_trainings >= coarse points; got {n_coarse}, {max_trainings}")
    base.validate()
    base.with_(T=hi).validate()  # the high end too: a T above the limit is refused before any training
    out = Path(out_dir)
    claim_folder(out, overwrite, what="T selection")
    lock = FolderLock(out)  # the selection's folder is its own until it ends: no --overwrite can move it
    lock.acquire()
    try:
        yield from _selection_rounds(base, (lo, hi), out, n_coarse, max_trainings, jobs, should_stop)
    finally:
        lock.release()


def _selection_rounds(
    base: DiffusionConfig,
    t_range: tuple[float, float],
    out: Path,
    n_coarse: int,
    max_trainings: int,
    jobs: int | None,
    should_stop: Callable[[], bool] | None,
) -> Iterator[dict]:
    """The rounds of select_t: coarse trainings, then the surrogate's minimum, until the budget is spent."""
    lo, hi = t_range
    Ts = np.round(np.arange(lo, hi + SURROGATE_STEP / 2, SURROGATE_STEP), 4)
    free = training_free_terms(base, Ts)
    trained: dict[float, dict] = {}
    folders: dict[float, Path] = {}
    to_train = coarse_grid(lo, hi, n_coarse)
    round_no = 0
    surrogate = None
    while to_train and len(trained) < max_trainings:
        to_train = to_train[: max_trainings - len(trained)]
        round_dir = out / f"round{round_no}"
        for event in run_sweep(base, to_train, [base.seed], round_dir, jobs=jobs, should_stop=should_stop):
            if event["kind"] == "eval" and event["step"] == event["iters"]:
                record = event["bounds"][base.variant]
                trained[float(event["T"])] = record
                folders[float(event["T"])] = round_dir / event["run"]
                yield {"kind": "evaluated", "T": float(event["T"]), "bound": record["total"],
                       "test_kl": event["test_kl"], "test_kl_se": event.get("test_kl_se"), "trainings": len(trained),
                       **({"test_bpd": event["test_bpd"], "test_bpd_se": event["test_bpd_se"]} if "test_bpd" in event else {}),
                       "run_dir": str(folders[float(event["T"])]), "max_trainings": max_trainings}
            elif event["kind"] != "summary":
                yield event
        if should_stop is not None and should_stop():
            return
        if not trained:
            raise ConfigError("no model finished training; see the run directories for the errors")
        round_no += 1
        surrogate = surrogate_bound(base, Ts, free, trained)
        best = float(Ts[int(np.argmin(surrogate))])
        nearest = min(trained, key=lambda T: abs(T - best))
        to_train = [] if abs(nearest - best) < 0.025 else [best]

    T_star = min(trained, key=lambda T: trained[T]["total"])
    result = {
        "T_star": T_star,
        "bound_at_T_star": trained[T_star]["total"],
        "trainings": len(trained),
        "evaluated": [[T, trained[T]["total"]] for T in sorted(trained)],
        "surrogate": {"T": Ts.tolist(), "bound": surrogate.tolist() if surrogate is not None else []},
        "final_run_dir": str(folders[T_star]),
        "variant": base.variant, "R": base.R, "m": base.m, "iters": base.iters, "seed": base.seed,
        "range": [lo, hi],
    }
    atomic_write_json(out / "selection.json", result)
    yield {"kind": "selection", "selection": result}
