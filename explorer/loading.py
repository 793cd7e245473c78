"""Turn files on disk into RunStates: a checkpoint (one run) or a sweep directory. Qt-free, so it can run on
a worker thread; the window then adds the result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.checkpoint import CHECKPOINT_NAME, load_checkpoint
from core.errors import InfoGenError, RunFileError
from core.io.run_dir import read_run
from core.training.config import DiffusionConfig

from .run_state import RunState



def load_state(path: str | Path, run_id: int, colour: tuple[int, int, int]) -> RunState:
    """A RunState for a checkpoint file, a run directory holding one, or a sweep directory."""
    p = Path(path)
    if p.is_dir() and (p / "summary.json").exists():
        return _sweep_state(p, run_id, colour)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    ckpt = load_checkpoint(p)
    config = DiffusionConfig.from_dict(ckpt.config)
    state = RunState(run_id, f"#{run_id} {p.parent.name}/{p.name}", config, p.parent, colour, [config.T],
                     [config.seed], status="loaded", mode="run")
    state.checkpoint_path = p
    for record in ckpt.history:
        kind = record.get("kind")
        if kind == "step":
            state.steps.append(record["step"])
            state.losses.append(record["loss"] if record["loss"] is not None else float("nan"))
            state.walls.append(record["wall"])
        elif kind == "eval":
            state.evals.append(record)
            state.samples.append(ckpt.samples.get(record["step"], np.zeros((0, 2), np.float32)))
        elif kind == "error":
            state.message = record["message"]
    state.progress = (state.steps[-1] / config.iters) if state.steps else 0.0
    state.eval_revision = state.revision = 1
    return state


def _sweep_state(folder: Path, run_id: int, colour: tuple[int, int, int]) -> RunState:
    try:
        plan = json.loads((folder / "sweep.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{folder}: not a readable sweep directory ({exc})") from None
    config = DiffusionConfig.from_dict(plan["base_config"])
    state = RunState(run_id, f"#{run_id} sweep {folder.name}", config, folder, colour, list(plan["T"]),
                     list(plan["seeds"]), status="loaded", mode="sweep", progress=1.0)
    for name in plan["runs"]:
        try:
            run = read_run(folder / name)
        except InfoGenError:
            continue
        evals = run.records("eval")
        if evals and evals[-1]["step"] == run.config["iters"]:
            state.sweep_finals[name] = {**evals[-1], "run": name, "T": run.config["T"], "seed": run.config["seed"],
                                        "iters": run.config["iters"]}
    state.summary = summary
    state.eval_revision = state.revision = 1
    return state
