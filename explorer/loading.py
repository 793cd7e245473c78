"""Turn files on disk into RunStates: a checkpoint (one run, diffusion or VAE) or a sweep directory. Qt-free,
so it can run on a worker thread; the window then adds the result.

Files are read through core's checked readers (core.checkpoint, core.io.run_dir, core.io.safe_read): a FIFO,
a device, an oversized or malformed file is refused with a message instead of hanging or crashing. Values stored
as null (a NaN in the run) stay None here; plots skip them and labels show "n/a".
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

from .run_state import RunState


def load_state(path: str | Path, run_id: int, colour: tuple[int, int, int]) -> RunState:
    """A RunState for a checkpoint file, a run directory holding one, or a sweep directory."""
    p = Path(path)
    if p.is_dir() and (p / "summary.json").exists():
        return _sweep_state(p, run_id, colour)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    ckpt = load_checkpoint(p)
    vae = ckpt.model == "vae"
    config = VAEConfig.from_dict(ckpt.config) if vae else DiffusionConfig.from_dict(ckpt.config)
    state = RunState(run_id, f"#{run_id} {p.parent.name}/{p.name}", config, p.parent, colour,
                     [] if vae else [config.T], [config.seed], status="loaded", mode="run")
    state.checkpoint_path = p
    for record in ckpt.history:
        kind = record.get("kind")
        if kind == "step":
            state.steps.append(record["step"])
            state.losses.append(record["loss"] if record["loss"] is not None else float("nan"))
            state.walls.append(record["wall"] if record.get("wall") is not None else float("nan"))
        elif kind == ("epoch" if vae else "eval"):
            state.evals.append(record)
            state.samples.append(ckpt.samples.get(record["step"], np.zeros((0, 2), np.float32)))
        elif kind == "error":
            state.message = record["message"]
    if vae:
        epochs = [r["epoch"] for r in state.evals]
        state.progress = min(1.0, epochs[-1] / config.epochs) if epochs else 0.0
    else:
        state.progress = min(1.0, state.steps[-1] / config.iters) if state.steps else 0.0
    if ckpt.notes:
        state.message = "; ".join([state.message, *ckpt.notes] if state.message else ckpt.notes)
    state.eval_revision = state.revision = 1
    return state


def renumber(state: RunState, run_id: int, colour: tuple[int, int, int]) -> RunState:
    """Give a state loaded under a placeholder id its run number and colour (taken only once it has loaded, so
    a file that fails to open uses up no number)."""
    state.run_id, state.colour = run_id, colour
    label = state.name.split(" ", 1)[1] if " " in state.name else state.name
    state.name = f"#{run_id} {label}"
    return state


def _sweep_state(folder: Path, run_id: int, colour: tuple[int, int, int]) -> RunState:
    plan = read_json_file(folder / "sweep.json", RunFileError, what="sweep plan")
    summary = read_json_file(folder / "summary.json", RunFileError, what="sweep summary")
    try:
        config = DiffusionConfig.from_dict(plan["base_config"])
        Ts, seeds, runs = list(plan["T"]), list(plan["seeds"]), list(plan["runs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFileError(f"{folder / 'sweep.json'}: not a sweep plan ({type(exc).__name__}: {exc})") from None
    if not isinstance(summary, dict):
        raise RunFileError(f"{folder / 'summary.json'}: not a sweep summary (not a JSON object)")
    state = RunState(run_id, f"#{run_id} sweep {folder.name}", config, folder, colour, Ts, seeds, status="loaded",
                     mode="sweep", progress=1.0)
    for name in runs:
        if not isinstance(name, str) or "/" in name or name in ("", ".", ".."):
            continue
        try:
            run = read_run(folder / name)
        except InfoGenError:
            continue
        evals = run.records("eval")
        if evals and evals[-1]["step"] == run.config.get("iters"):
            state.sweep_finals[name] = {**evals[-1], "run": name, "T": run.config.get("T"),
                                        "seed": run.config.get("seed"), "iters": run.config.get("iters")}
    state.summary = summary
    state.eval_revision = state.revision = 1
    return state
