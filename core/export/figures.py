"""``infogen export``: a paper figure from a run directory, a checkpoint or a sweep directory.

The data are extracted to a CSV, a standalone script that draws the CSV is written beside it, and the figure
itself is made by running that very script: so the script reproduces the figure by construction. Vector PDF
and SVG keep their text as embedded TrueType (PDF) or glyph paths (SVG); PNG is rendered at the chosen dpi.
"""

from __future__ import annotations

import csv
import json
import math
import runpy
import shutil
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..errors import ConfigError, RunFileError
from ..io.run_dir import read_run
from ..smoothing import debiased_ema
from ..training.config import DiffusionConfig, load_run_data, load_run_data_with_shape
from .figure_script import SCRIPT

RUN_FIGURES = ("loss", "bound", "gap", "samples")
SWEEP_FIGURES = ("bound-vs-T",)
FORMATS = ("pdf", "svg", "png", "pgf")


def load_source(path: str | Path) -> dict:
    """{"kind": "run"|"sweep", ...} from a run directory, a sweep directory or a checkpoint file."""
    p = Path(path)
    if p.is_dir() and (p / "summary.json").exists():
        try:
            return {"kind": "sweep", "summary": json.loads((p / "summary.json").read_text()), "name": p.name}
        except json.JSONDecodeError as exc:
            raise RunFileError(f"{p / 'summary.json'}: not valid JSON ({exc})") from None
    if p.is_dir():
        run = read_run(p)
        return {"kind": "run", "config": run.config, "history": run.history, "name": p.name, "model": run.meta.get("model", "dm"),
                "samples": {int(k.split("_")[1]): v for k, v in run.samples.items()}}
    if p.is_file():
        ckpt = load_checkpoint(p)
        return {"kind": "run", "config": ckpt.config, "history": ckpt.history, "samples": ckpt.samples, "name": p.stem}
    raise ConfigError(f"{p}: no such run directory, sweep directory or checkpoint")


def figure_table(source: dict, figure: str, smoothing: float = 0.9, variant: str | None = None) -> tuple[dict[str, list], dict]:
    """The plotted data as equal-length columns, and the few settings the script needs. ``variant`` picks a
    sweep's bound variant (default: the one the sweep was run with)."""
    if source["kind"] == "sweep":
        if figure not in SWEEP_FIGURES:
            raise ConfigError(f"a sweep exports {', '.join(SWEEP_FIGURES)}; {figure!r} needs a single run")
        s = source["summary"]
        variant = variant or s["variant"]
        block = s if variant == s["variant"] else s.get("variants", {}).get(variant)
        if block is None:
            raise ConfigError(f"the sweep has no bound variant {variant!r}; it has {', '.join(s.get('variants', {}))}")
        test_key = "bpd" if "bpd_mean" in s else "test_kl"
        cols = {"T": s["T"], "bound_mean": block["bound_mean"], "bound_std": block["bound_std"],
                "test_mean": s[f"{test_key}_mean"], "test_std": s[f"{test_key}_std"]}
        preset = f", U-Net {s['preset']}" if "preset" in s else ""
        meta = {"R": s["R"], "test_label": "test BPD" if test_key == "bpd" else "test KL",
                "title": f"{s.get('data', '')} m={s['m']}, {s['iters']} iterations, seeds {s['seeds']}, {variant}{preset}"}
        return cols, meta
    if figure not in RUN_FIGURES:
        raise ConfigError(f"a run exports {', '.join(RUN_FIGURES)}; {figure!r} needs a sweep directory")
    cfg = source["config"]
    history = source["history"]
    if source.get("model") == "vae" or any(r.get("kind") == "epoch" for r in history):
        return _vae_table(source, figure, smoothing)
    steps = [r for r in history if r.get("kind") == "step"]
    evals = [r for r in history if r.get("kind") == "eval"]
    meta = {"R": cfg.get("R"), "title": f"{cfg.get('data')} m={cfg.get('m')} T={cfg.get('T')}, {cfg.get('variant')}"}
    if figure == "loss":
        if not steps:
            raise ConfigError("the run has no training steps to plot")
        held = {r["step"]: r["dsm_test"] for r in evals}
        loss = [r["loss"] for r in steps]
        return {"step": [r["step"] for r in steps], "loss": loss,
                "loss_smoothed": debiased_ema(np.array(loss, dtype=float), smoothing).tolist(),
                "held_out": [held.get(r["step"], math.nan) for r in steps]}, meta
    if not evals:
        raise ConfigError("the run has no evaluation yet")
    if figure == "bound":
        scale = math.sqrt(2.0) * cfg["R"]
        return {"step": [r["step"] for r in evals], "bound": [r["bound"] for r in evals],
                "score_matching": [r["score_matching"] for r in evals], "encoder_info": [r["encoder_info"] for r in evals],
                "encoder_prior_scaled": [scale * r["encoder_prior"] for r in evals],
                "generator_scaled": [scale * r["generator"] for r in evals]}, meta
    if figure == "gap":
        return {"step": [r["step"] for r in evals], "test_kl": [r["test_kl"] for r in evals],
                "dsm_gap": [r["dsm_gap"] for r in evals]}, meta
    samples = source["samples"]
    if not samples:
        raise ConfigError("the run has no stored samples")
    last = samples[max(samples)]
    dm_cfg = DiffusionConfig.from_dict(cfg)
    meta["title"] += f", samples at step {max(samples)}"
    if dm_cfg.is_images:
        return _image_grid_table(last, load_run_data_with_shape(dm_cfg)[2], meta)
    train = load_run_data(dm_cfg)[0]
    return {"x": [*train[:, 0].tolist(), *last[:, 0].tolist()], "y": [*train[:, 1].tolist(), *last[:, 1].tolist()],
            "kind": [0] * len(train) + [1] * len(last)}, meta


GRID_IMAGES = 16


def _image_grid_table(images: np.ndarray, shape: tuple[int, ...], meta: dict) -> tuple[dict[str, list], dict]:
    """Up to 16 generated images as long-format columns (image, pixel, value); the script tiles them."""
    flat = np.asarray(images, dtype=float).reshape(len(images), -1)[:GRID_IMAGES]
    n, d = flat.shape
    meta = {**meta, "layout": "image-grid", "shape": [int(v) for v in shape]}
    return {"image": np.repeat(np.arange(n), d).tolist(), "pixel": np.tile(np.arange(d), n).tolist(),
            "value": flat.reshape(-1).tolist()}, meta


def _vae_table(source: dict, figure: str, smoothing: float) -> tuple[dict[str, list], dict]:
    """VAE runs: the loss per step, both bounds and the test curve per epoch (nats), or the sample grid."""
    cfg = source["config"]
    epochs = [r for r in source["history"] if r.get("kind") == "epoch"]
    meta = {"title": f"VAE {cfg.get('data')} m={cfg.get('m')}, preset {cfg.get('preset')}, r={cfg.get('r')}"}
    if figure == "loss":
        steps = [r for r in source["history"] if r.get("kind") == "step"]
        if not steps:
            raise ConfigError("the run has no training steps to plot")
        loss = [r["loss"] for r in steps]
        return {"step": [r["step"] for r in steps], "loss": loss,
                "loss_smoothed": debiased_ema(np.array(loss, dtype=float), smoothing).tolist(),
                "held_out": [math.nan] * len(steps)}, {**meta, "ylabel": "negative ELBO (nats)"}
    if not epochs:
        raise ConfigError("the run has no finished epoch yet")
    if figure in ("bound", "gap"):
        return {"epoch": [r["epoch"] for r in epochs],
                "bound_encoder_only": [r["bound_encoder_only"] for r in epochs],
                "bound_encoder_generator": [r["bound_encoder_generator"] for r in epochs],
                "test_curve": [r["test_curve"] for r in epochs],
                "train_neg_elbo": [r["rec_train"] + r["kl_train"] for r in epochs]}, {**meta, "layout": "vae-bound"}
    samples = source["samples"]
    if not samples:
        raise ConfigError("the run has no stored samples")
    last = np.asarray(samples[max(samples)])
    if last.ndim == 4:  # (n, H, W, C) colour
        last = last.transpose(0, 3, 1, 2)
    elif last.ndim == 3:
        last = last[:, None]
    else:
        side = int(round(math.sqrt(last.shape[1])))
        last = last.reshape(len(last), 1, side, side)
    return _image_grid_table(last, last.shape[1:], {**meta, "title": meta["title"] + f", samples at step {max(samples)}"})


def export_figure(
    source_path: str | Path, figure: str, fmt: str = "pdf", width_in: float = 3.25, dpi: float = 300,
    out: str | Path | None = None, smoothing: float = 0.9, variant: str | None = None,
) -> dict[str, Path]:
    """Write the figure, its CSV and its script; returns their paths."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not (0.5 <= width_in <= 20) or not (20 <= dpi <= 2400):
        raise ConfigError(f"width must be 0.5..20 inches and dpi 20..2400; got {width_in}, {dpi}")
    if fmt == "pgf" and not any(shutil.which(t) for t in ("pdflatex", "xelatex", "lualatex")):
        raise ConfigError("PGF export needs LaTeX (pdflatex, xelatex or lualatex) on the PATH; use pdf or svg instead")
    source = load_source(source_path)
    columns, meta = figure_table(source, figure, smoothing, variant)
    target = Path(out) if out else Path(f"{source['name']}-{figure}.{fmt}")
    if target.suffix.lstrip(".") != fmt:
        target = target.with_suffix(f".{fmt}")
    target.parent.mkdir(parents=True, exist_ok=True)
    csv_path, script_path = target.with_suffix(".csv"), target.with_suffix(".py")
    write_columns(csv_path, columns)
    script_path.write_text(SCRIPT.format(figure=figure, csv_name=csv_path.name, out_name=target.name, meta=meta,
                                         width_in=float(width_in), dpi=float(dpi)))
    runpy.run_path(str(script_path), run_name="infogen_export")["render"](str(target), float(width_in), float(dpi))
    return {"figure": target, "csv": csv_path, "script": script_path}


def write_columns(path: Path, columns: dict[str, list]) -> None:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of different lengths: {lengths}")
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for row in zip(*columns.values()):
            writer.writerow(["" if (isinstance(v, float) and math.isnan(v)) else repr(float(v)) for v in row])
