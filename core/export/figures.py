"""``infogen export``: a paper figure from a run directory, a checkpoint or a sweep directory.

The data are extracted to a CSV, a standalone script that draws the CSV is written beside it, and the figure
itself is drawn by that very script's code: the text written to the .py file is compiled and run in this process,
from memory, on the CSV text written beside it. So the script reproduces the figure by construction, and no
file is ever run from disk (a planted or swapped .py cannot be executed). Vector PDF and SVG keep their text as
embedded TrueType (PDF) or glyph paths (SVG); PNG is rendered at the chosen dpi.

The user's files are safe: every target (figure, CSV, script) is checked before anything is written. An existing
file is refused unless ``force``; a symbolic link (even a dangling one), a folder or any other non-regular file
at a target is refused always, even with ``force``, because replacing it would either write through the link or
silently remove what the user put there. Everything is written in a private temporary folder beside the
targets and then moved into place (os.replace with ``force``, an exclusive hard link without it, so a file that
appears meanwhile is still not overwritten).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..checkpoint import load_checkpoint
from ..config_checks import smoothing_weight
from ..errors import ConfigError, RunFileError
from ..io.run_dir import read_run
from ..io.safe_read import read_json_file
from ..resources import check_data_costs
from ..smoothing import debiased_ema
from ..training.config import DiffusionConfig, load_run_data, load_run_data_with_shape
from .figure_script import SCRIPT

RUN_FIGURES = ("loss", "bound", "gap", "samples")
TERMS_MODES = ("total", "terms", "stacked")  # the bound figure: the bound alone, with its terms, or terms stacked
BOUND_TERMS = ("score_matching", "encoder_info", "encoder_prior_scaled", "generator_scaled")
SWEEP_FIGURES = ("bound-vs-T",)
FORMATS = ("pdf", "svg", "png", "pgf")


def load_source(path: str | Path) -> dict:
    """{"kind": "run"|"sweep", ...} from a run directory, a sweep directory or a checkpoint file."""
    p = Path(path)
    if p.is_dir() and (p / "summary.json").exists():
        return {"kind": "sweep", "summary": read_json_file(p / "summary.json", RunFileError), "name": p.name}
    if p.is_dir():
        run = read_run(p)
        return {"kind": "run", "config": run.config, "history": run.history, "name": p.name, "model": run.meta.get("model", "dm"),
                "samples": {int(k.split("_")[1]): v for k, v in run.samples.items()}}
    if p.exists() or p.is_symlink():  # a checkpoint; anything but a regular file is refused by name there
        ckpt = load_checkpoint(p)
        return {"kind": "run", "config": ckpt.config, "history": ckpt.history, "samples": ckpt.samples, "name": p.stem}
    raise ConfigError(f"{p}: no such run directory, sweep directory or checkpoint")


def figure_table(source: dict, figure: str, smoothing: float = 0.9, variant: str | None = None,
                 terms: str = "terms") -> tuple[dict[str, list], dict]:
    """The plotted data as equal-length columns, and the few settings the script needs. ``variant`` picks a
    sweep's bound variant (default: the one the sweep was run with); ``terms`` is the bound figure's mode
    (TERMS_MODES), as the app's terms mode shows it."""
    if terms not in TERMS_MODES:
        raise ConfigError(f"terms must be one of {', '.join(TERMS_MODES)}, got {terms!r}")
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
        columns = {"step": [r["step"] for r in evals], "bound": [r["bound"] for r in evals]}
        if terms == "total":
            return columns, meta
        values = {"score_matching": [_scaled(1.0, r["score_matching"]) for r in evals],
                  "encoder_info": [_scaled(1.0, r["encoder_info"]) for r in evals],
                  "encoder_prior_scaled": [_scaled(scale, r["encoder_prior"]) for r in evals],
                  "generator_scaled": [_scaled(scale, r["generator"]) for r in evals]}
        if terms == "stacked":  # each curve is the sum of the terms up to it, as the app stacks them
            values = dict(zip(BOUND_TERMS, np.cumsum(np.array([values[k] for k in BOUND_TERMS]), axis=0).tolist()))
            meta["stacked"] = True
        return {**columns, **values}, meta
    if figure == "gap":
        return {"step": [r["step"] for r in evals], "test_kl": [r["test_kl"] for r in evals],
                "dsm_gap": [r["dsm_gap"] for r in evals]}, meta
    samples = source["samples"]
    if not samples:
        raise ConfigError("the run has no stored samples")
    last = samples[max(samples)]
    dm_cfg = DiffusionConfig.from_dict(cfg)
    check_data_costs(dm_cfg)  # the stored sizes are redrawn to plot the training points: refuse what cannot fit
    meta["title"] += f", samples at step {max(samples)}"
    if dm_cfg.is_images:
        return _image_grid_table(last, load_run_data_with_shape(dm_cfg)[2], meta)
    train = load_run_data(dm_cfg)[0]
    return {"x": [*train[:, 0].tolist(), *last[:, 0].tolist()], "y": [*train[:, 1].tolist(), *last[:, 1].tolist()],
            "kind": [0] * len(train) + [1] * len(last)}, meta


GRID_IMAGES = 16


def _scaled(scale: float, value: float | None) -> float:
    """scale * value; a value stored as null (NaN) stays NaN."""
    return math.nan if value is None else scale * value


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
                "train_neg_elbo": [math.nan if None in (r["rec_train"], r["kl_train"]) else r["rec_train"] + r["kl_train"]
                                   for r in epochs]}, {**meta, "layout": "vae-bound"}
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


def export_paths(out: str | Path, fmt: str) -> dict[str, Path]:
    """The figure (``out`` with the format's suffix), and the CSV and the script beside it."""
    target = Path(out)
    if target.suffix.lstrip(".") != fmt:
        target = target.with_suffix(f".{fmt}")
    return {"figure": target, "csv": target.with_suffix(".csv"), "script": target.with_suffix(".py")}


def check_targets(paths, force: bool = False) -> None:
    """ConfigError naming every target that is in the way: any symbolic link or non-regular file (always), and
    existing regular files (unless ``force``)."""
    links, others, existing = [], [], []
    for p in paths:
        p = Path(p)
        if p.is_symlink():
            links.append(f"{p} -> {os.readlink(p)}")
        elif p.exists() and not p.is_file():
            others.append(str(p))
        elif p.exists() and not force:
            existing.append(str(p))
    problems = []
    if links:
        problems.append(f"{', '.join(links)} {'is a symbolic link' if len(links) == 1 else 'are symbolic links'}, "
                        "which export never writes through or replaces, even with --force")
    if others:
        problems.append(f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not a regular file")
    if existing:
        problems.append(f"{', '.join(existing)} already {'exists' if len(existing) == 1 else 'exist'} "
                        "(--force overwrites existing files)")
    if problems:
        raise ConfigError("export refused: " + "; ".join(problems) + ("; remove them or choose another --out"
                                                                       if links or others else ""))


def export_figure(
    source_path: str | Path, figure: str, fmt: str = "pdf", width_in: float = 3.25, dpi: float = 300,
    out: str | Path | None = None, smoothing: float = 0.9, variant: str | None = None, force: bool = False,
    log_y: bool = False, terms: str = "terms",
) -> dict[str, Path]:
    """Write the figure, its CSV and its script; returns their paths. Existing files are refused unless
    ``force``; symbolic links and other non-regular files at a target are refused always (module docstring).
    ``smoothing``, ``log_y`` and ``terms`` are the view's settings (the app passes what its screen shows)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not (0.5 <= width_in <= 20) or not (20 <= dpi <= 2400):
        raise ConfigError(f"width must be 0.5..20 inches and dpi 20..2400; got {width_in}, {dpi}")
    smoothing_weight(smoothing)
    if fmt == "pgf" and not any(shutil.which(t) for t in ("pdflatex", "xelatex", "lualatex")):
        raise ConfigError("PGF export needs LaTeX (pdflatex, xelatex or lualatex) on the PATH; use pdf or svg instead")
    source = load_source(source_path)
    columns, meta = figure_table(source, figure, smoothing, variant, terms)
    meta.update(smoothing=float(smoothing), log_y=bool(log_y), terms=terms)
    paths = export_paths(out if out else f"{source['name']}-{figure}.{fmt}", fmt)
    check_targets(paths.values(), force)
    target = paths["figure"]
    csv_text = columns_csv(columns)
    script_text = SCRIPT.format(figure=figure, csv_name=paths["csv"].name, out_name=target.name, meta=meta,
                                width_in=float(width_in), dpi=float(dpi))
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".infogen-export-", dir=folder))
    except OSError as exc:
        raise ConfigError(f"cannot write the export into {folder}: {exc.strerror or exc}") from None
    try:
        (staging / paths["csv"].name).write_text(csv_text, newline="")
        (staging / paths["script"].name).write_text(script_text)
        render_script(script_text, paths["script"], csv_text, staging / target.name, float(width_in), float(dpi))
        _publish(staging, folder, force)
    except OSError as exc:
        raise ConfigError(f"cannot write the export into {folder}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def render_script(script_text: str, script_path: Path, csv_text: str, figure_path: Path, width_in: float,
                  dpi: float) -> None:
    """Draw the figure with the script's own code, compiled from ``script_text`` in memory (never read from
    disk), on the columns parsed from ``csv_text`` exactly as the script parses its CSV file."""
    namespace = {"__name__": "infogen_export", "__file__": str(script_path)}
    exec(compile(script_text, str(script_path), "exec"), namespace)  # noqa: S102 - our own template, in memory
    columns = namespace["parse_csv"](io.StringIO(csv_text, newline=""))
    namespace["render"](str(figure_path), width_in, dpi, columns=columns)


def _publish(staging: Path, folder: Path, force: bool) -> None:
    """Move every staged file into ``folder``: os.replace with ``force`` (atomic, never through a link), else an
    exclusive hard link so that a file created meanwhile is not overwritten; undone on failure."""
    staged = sorted(staging.iterdir(), key=lambda f: (f.suffix != ".csv", f.name))  # the data first
    check_targets([folder / f.name for f in staged], force)  # pgf may add image files beside the figure
    done: list[Path] = []
    try:
        for f in staged:
            final = folder / f.name
            if force:
                if final.is_symlink() or (final.exists() and not final.is_file()):
                    check_targets([final], force)
                os.replace(f, final)
                continue
            try:
                os.link(f, final)
            except FileExistsError:
                check_targets([final], force)
                raise
            except OSError:  # no hard links on this file system: check again, then move
                if os.path.lexists(final):
                    check_targets([final], force)
                os.replace(f, final)
            done.append(final)
    except BaseException:
        for final in done:
            final.unlink(missing_ok=True)
        raise


def columns_csv(columns: dict[str, list]) -> str:
    """The columns as CSV text: a header row, then every value as repr(float), NaN as an empty cell."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise ValueError(f"columns of different lengths: {lengths}")
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(list(columns))
    for row in zip(*columns.values()):
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _cell(value) -> str:
    """repr(float) of a value; NaN and missing values (stored as null) as an empty cell, which reads back as NaN."""
    if value is None:
        return ""
    value = float(value)
    return "" if math.isnan(value) else repr(value)
