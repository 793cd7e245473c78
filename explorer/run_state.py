"""What the app keeps of one run or sweep: its settings, status, curves and every evaluation.

Plain Python and numpy, filled from core records in the GUI thread; plots and panels read it at redraw time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

ARRAY_FIELDS = ("samples", "frames", "frame_times")


@dataclass
class RunState:
    """One entry of the runs list."""

    run_id: int
    name: str
    config: DiffusionConfig | VAEConfig
    folder: Path
    colour: tuple[int, int, int]
    Ts: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    status: str = "queued"
    message: str = ""
    started: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    progress: float = 0.0
    visible: bool = True
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    frames: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    sweep_finals: dict[str, dict] = field(default_factory=dict)
    mode: str = "run"  # "run", "sweep" or "select" (select T by the bound)
    t_range: tuple[float, float] | None = None
    selection_points: list[dict] = field(default_factory=list)
    selection: dict | None = None
    checkpoint_path: Path | None = None
    summary: dict | None = None
    revision: int = 0
    eval_revision: int = 0

    @property
    def is_vae(self) -> bool:
        return isinstance(self.config, VAEConfig)

    @property
    def planned_steps(self) -> int | None:
        """Training steps the run will take when it finishes (None when that is not known up front)."""
        if self.is_sweep:
            return None
        if self.is_vae:
            m = self.config.m
            return None if m is None else self.config.epochs * -(-m // self.config.batch)
        return self.config.iters

    @property
    def is_sweep(self) -> bool:
        """Several models (a sweep or a T selection): shown against T rather than against steps."""
        return self.mode in ("sweep", "select")

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running", "stopping")

    def eta_seconds(self) -> float | None:
        """Remaining time from the elapsed time and the progress so far."""
        if not self.active or self.progress <= 0.0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (1.0 - self.progress) / self.progress

    def add_record(self, record: dict) -> None:
        """Fold one core record (single run) into the state."""
        kind = record["kind"]
        if kind == "step":
            self.steps.append(record["step"])
            self.losses.append(record["loss"])
            self.walls.append(record["wall"])
            if self.is_vae:
                self.progress = (record["epoch"] - 1) / self.config.epochs
            else:
                self.progress = record["step"] / self.config.iters
            self.status = "running" if self.status == "queued" else self.status
        elif kind in ("eval", "epoch"):
            self.evals.append({k: v for k, v in record.items() if k not in ARRAY_FIELDS})
            if "samples" in record:
                self.samples.append(np.asarray(record["samples"]))
            if "frames" in record:
                self.frames, self.frame_times = np.asarray(record["frames"]), np.asarray(record["frame_times"])
            self.eval_revision += 1
        elif kind == "error":
            self.fail(record["message"])
        elif kind in ("end", "cancelled"):
            self.status = "finished" if kind == "end" else "cancelled"
            self.progress = 1.0 if kind == "end" else self.progress
            self.finished_at = time.monotonic()
        self.revision += 1

    def add_sweep_event(self, event: dict) -> None:
        """Fold one sweep or T-selection event (progress, eval, error, evaluated, summary) into the state.

        A sweep's progress is the share of all its runs' steps done; a selection's is the share of its
        training budget spent (updated as each model is evaluated).
        """
        kind = event["kind"]
        if kind == "progress":
            self.status = "running" if self.status == "queued" else self.status
            if self.mode == "sweep":
                self._group_steps[tuple(event["runs"])] = (event["step"], len(event["runs"]))
                done = sum(step * size for step, size in self._group_steps.values())
                self.progress = min(1.0, done / (len(self.Ts) * len(self.seeds) * self.config.iters))
        elif kind == "eval" and event["step"] == event["iters"]:
            self.sweep_finals[event["run"]] = event
            self.eval_revision += 1
        elif kind == "error":
            self.message = f"{event['run']}: {event['message']}"
        elif kind == "summary":
            self.summary = event["summary"]
            self.eval_revision += 1
        elif kind == "evaluated":
            self.selection_points.append(event)
            self.progress = min(1.0, event["trainings"] / event["max_trainings"])
            self.eval_revision += 1
        elif kind == "selection":
            self.selection = event["selection"]
            self.summary = event["selection"]
            self.eval_revision += 1
        self.revision += 1

    def fail(self, message: str) -> None:
        self.status = "failed"
        self.message = message
        self.finished_at = time.monotonic()
        self.revision += 1

    def __post_init__(self) -> None:
        self._group_steps: dict[tuple, tuple[int, int]] = {}


def fmt(value, spec: str = ".4f") -> str:
    """A number for a label, or "n/a" where there is none: None (a NaN stored as null), NaN or infinity."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        return "n/a"
    if not np.isfinite(value):
        return "n/a"
    return format(value, spec)


def metric_text(record: dict, key: str = "test_kl", label: str = "test KL") -> str:
    """'test KL 0.512 ± 0.014': a test metric with its Monte Carlo standard error when the record has one
    ('test KL n/a' when the metric is missing or not finite)."""
    se = record.get(f"{key}_se")
    return f"{label} {fmt(record.get(key), '.3f')}" + (f" ± {se:.3f}" if fmt(se) != "n/a" else "")
