"""Files on disk as explorer entries: a checkpoint or run folder (one run, diffusion or VAE) or a sweep folder.

Qt-free, so it runs on a worker thread; the window adds the result. Every view is restored: the curves, the
samples of every evaluation, the reverse trajectory (stored with the checkpoint) and, for a sweep, its summary
and every member's curves. Files are read through core's checked readers (core.checkpoint, core.io.run_dir,
core.io.safe_read): a FIFO, a device, an oversized or malformed file is refused with a message. Values stored as
null (a NaN in the run) stay None; the plots skip them and labels show "n/a".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.checkpoint import CHECKPOINT_NAME, load_checkpoint
from core.errors import InfoGenError, RunFileError
from core.io.run_dir import read_run
from core.io.safe_read import read_json_file
from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

from .entries import Entry, Sweep, TrainingRun


def load_entry(path: str | Path) -> Entry:
    """The entry for a checkpoint file, a run folder holding one, or a sweep folder (run id 0 until the
    collection numbers it)."""
    p = Path(path)
    if p.is_dir() and (p / "summary.json").exists():
        return load_sweep(p)
    if p.is_dir() and not (p / CHECKPOINT_NAME).exists() and (p / "history.jsonl").exists():
        return load_run_folder(p)  # a VAE run (no checkpoint yet) or a run stopped before its first evaluation
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    ckpt = load_checkpoint(p)
    vae = ckpt.model == "vae"
    config = VAEConfig.from_dict(ckpt.config) if vae else DiffusionConfig.from_dict(ckpt.config)
    run = opened_run(config, p.parent, ckpt.history, ckpt.samples, ckpt.trajectory)
    run.checkpoint_path = p
    if ckpt.notes:
        run.message = "; ".join([run.message, *ckpt.notes] if run.message else ckpt.notes)
    return run


def opened_name(config: DiffusionConfig | VAEConfig, where: str) -> str:
    """A reopened run's name: what it is, then where it came from."""
    what = f"VAE {config.data} m={config.m}" if isinstance(config, VAEConfig) else f"{config.data} m={config.m} T={config.T:g}"
    return f"{what} seed={config.seed} (opened {where})"


def opened_run(config: DiffusionConfig | VAEConfig, folder: Path, history: list[dict], samples: dict[int, np.ndarray],
               trajectory: tuple[np.ndarray, np.ndarray] | None) -> TrainingRun:
    """A run read from disk: its history folded as it was recorded, each evaluation with its stored samples."""
    run = TrainingRun(0, opened_name(config, folder.name), config, folder, (0, 0, 0))
    evaluation = "epoch" if isinstance(config, VAEConfig) else "eval"
    for record in history:
        kind = record.get("kind")
        if kind == "step":
            run.add_record(record)
        elif kind == evaluation:
            stored = samples.get(record["step"], np.zeros((0, 2), np.float32))
            run.add_record({**record, "samples": stored})
        elif kind == "error":
            run.message = record["message"]
    if trajectory is not None:
        run.frames, run.frame_times = trajectory
    run.status, run.finished_at = "loaded", None
    if isinstance(config, VAEConfig):
        run.progress = min(1.0, run.evals[-1]["epoch"] / config.epochs) if run.evals else 0.0
    else:
        run.progress = min(1.0, run.steps[-1] / config.iters) if run.steps else 0.0
    return run


def load_run_folder(folder: Path) -> TrainingRun:
    """A run folder without a checkpoint (a VAE run keeps none yet): its curves and samples, read-only."""
    files = read_run(folder)
    vae = files.meta.get("model") == "vae" or any(r.get("kind") == "epoch" for r in files.history)
    try:
        config = VAEConfig.from_dict(files.config) if vae else DiffusionConfig.from_dict(files.config)
    except (KeyError, TypeError, ValueError, InfoGenError) as exc:
        raise RunFileError(f"{folder / 'config.json'}: not a run's settings ({exc})") from None
    samples = {int(k.split("_")[1]): v for k, v in files.samples.items()}
    run = opened_run(config, folder, files.history, samples, files.trajectory)
    run.message = "opened from its run folder (no checkpoint: it cannot be resumed)"
    return run


def load_sweep(folder: Path) -> Sweep:
    """A finished (or stopped) sweep: its plan, summary and every member's evaluations and loss."""
    plan = read_json_file(folder / "sweep.json", RunFileError, what="sweep plan")
    summary = read_json_file(folder / "summary.json", RunFileError, what="sweep summary")
    try:
        config = DiffusionConfig.from_dict(plan["base_config"])
        Ts, seeds, names = [float(t) for t in plan["T"]], [int(s) for s in plan["seeds"]], list(plan["runs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFileError(f"{folder / 'sweep.json'}: not a sweep plan ({type(exc).__name__}: {exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("T"), list):
        raise RunFileError(f"{folder / 'summary.json'}: not a sweep summary (no list of T values)")
    sweep = Sweep(0, f"sweep {folder.name}", config, folder, (0, 0, 0), status="loaded", progress=1.0,
                  Ts=Ts, seeds=seeds)
    problems = []
    for name in names:
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            continue
        try:
            member = read_run(folder / name)
        except InfoGenError as exc:
            problems.append(f"{name}: {exc}")
            continue
        T, iters = member.config.get("T"), member.config.get("iters")
        steps = [r for r in member.history if r.get("kind") == "step"]
        sweep.member_steps[name] = ([int(r["step"]) for r in steps],
                                    [float("nan") if r.get("loss") is None else float(r["loss"]) for r in steps])
        evals = [{**r, "run": name, "T": T, "seed": member.config.get("seed"), "iters": iters}
                 for r in member.records("eval")]
        sweep.member_evals[name] = evals
        if T is not None:
            sweep.member_T[name] = float(T)
        if evals and evals[-1]["step"] == iters:
            sweep.finals[name] = evals[-1]
    sweep.summary = summary
    if problems:
        sweep.message = f"{len(problems)} member run(s) could not be read: " + "; ".join(problems[:3])
    return sweep
