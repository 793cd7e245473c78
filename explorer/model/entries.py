"""The three things the explorer lists, each its own small type: a training run, a sweep and a T selection.

Each folds core's records (or a sweep's light events) into plain Python and numpy, and says what changed, so
the collection can tell its listeners (docs/explorer.md#model). Nothing here imports Qt.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.metrics.near_best import mean_se
from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

from .kinds import VAE, CurveSpec, kind_of, spec_of

ARRAY_FIELDS = ("samples", "frames", "frame_times")
# What a change touched: the listeners redraw only what depends on it.
STEPS, EVALS, STATUS = "steps", "evals", "status"


@dataclass(eq=False)
class Entry:
    """What every listed item has: identity, colour, folder, status and progress."""

    run_id: int
    name: str
    config: DiffusionConfig | VAEConfig
    folder: Path
    colour: tuple[int, int, int]
    status: str = "queued"
    message: str = ""
    progress: float = 0.0
    started: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    is_sweep = False  # several models shown against T (a sweep or a T selection)

    @property
    def phase(self) -> str:
        """What a running entry is doing when its progress alone does not say it ("" otherwise)."""
        return ""

    @property
    def kind(self) -> str:
        return kind_of(self.config)

    @property
    def spec(self) -> CurveSpec:
        return spec_of(self.config)

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running", "stopping")

    @property
    def wall_seconds(self) -> float | None:
        """Seconds the entry has run (so far, or in all when it finished); for one read from disk, its last
        recorded wall time (None when there is none)."""
        if self.status == "loaded":
            walls = [w for w in getattr(self, "walls", []) if w == w]
            return walls[-1] if walls else None
        return (self.finished_at or time.monotonic()) - self.started

    def eta_seconds(self) -> float | None:
        """Remaining time from the elapsed time and the progress so far."""
        if not self.active or self.progress <= 0.0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed * (1.0 - self.progress) / self.progress

    def fail(self, message: str) -> None:
        self.status, self.message, self.finished_at = "failed", message, time.monotonic()

    def finish(self, status: str) -> None:
        self.status, self.finished_at = status, self.finished_at or time.monotonic()
        if status == "finished":
            self.progress = 1.0

    def metrics(self) -> dict[str, float | None]:
        """The runs table's columns: final bound, test metric, T, m and wall time."""
        return {"bound": None, "test": None, "T": getattr(self.config, "T", None), "m": self.config.m,
                "wall": self.wall_seconds}


@dataclass(eq=False)
class TrainingRun(Entry):
    """One trained model: its loss at every step, every evaluation with its samples, and the latest reverse
    trajectory (frames at forward times frame_times)."""

    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)
    frames: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    checkpoint_path: Path | None = None

    @property
    def planned_steps(self) -> int | None:
        """Training steps the run will take when it finishes (None when that is not known up front)."""
        if self.kind == VAE:
            m = self.config.m
            return None if m is None else self.config.epochs * self.steps_per_epoch
        return self.config.iters

    @property
    def steps_per_epoch(self) -> int:
        """A VAE's optimizer steps per epoch (1 for diffusion, whose x axis is the step)."""
        if self.kind != VAE or self.config.m is None:
            return 1
        return max(1, -(-self.config.m // self.config.batch))

    def add_record(self, record: dict) -> str:
        """Fold one core record into the run; returns what changed (STEPS, EVALS or STATUS)."""
        kind = record["kind"]
        if kind == "step":
            self.steps.append(int(record["step"]))
            self.losses.append(_num(record.get("loss")))
            self.walls.append(_num(record.get("wall")))
            if self.kind == VAE:
                self.progress = (record["epoch"] - 1) / self.config.epochs
            else:
                self.progress = record["step"] / self.config.iters
            if self.status == "queued":
                self.status = "running"
            return STEPS
        if kind in ("eval", "epoch"):
            self.evals.append({k: v for k, v in record.items() if k not in ARRAY_FIELDS})
            if "samples" in record:
                self.samples.append(np.asarray(record["samples"]))
            if record.get("frames") is not None:
                self.frames, self.frame_times = np.asarray(record["frames"]), np.asarray(record["frame_times"])
            if self.kind == VAE:
                self.progress = record["epoch"] / self.config.epochs
            return EVALS
        if kind == "error":
            self.fail(record["message"])
        elif kind in ("end", "cancelled"):
            self.finish("finished" if kind == "end" else "cancelled")
        return STATUS

    def cut_at(self, step: int) -> None:
        """Forget everything after ``step`` (a resume from a checkpoint taken there)."""
        keep = sum(1 for s in self.steps if s <= step)
        del self.steps[keep:], self.losses[keep:], self.walls[keep:]
        keep = sum(1 for ev in self.evals if ev["step"] <= step)
        del self.evals[keep:], self.samples[keep:]

    def metrics(self) -> dict[str, float | None]:
        out = super().metrics()
        if self.evals:
            last = self.evals[-1]
            spec = self.spec
            out["bound"] = last.get(spec.bound_total[0].key)
            out["test"] = last.get(spec.test_key)
        return out


@dataclass(eq=False)
class Sweep(Entry):
    """A grid of T values and seeds, one model per pair: every member's evaluations and sparse loss as they
    arrive, its final evaluation, and at the end the summary (core.sweep) that the sweep view draws."""

    Ts: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    finals: dict[str, dict] = field(default_factory=dict)
    member_evals: dict[str, list[dict]] = field(default_factory=dict)
    member_steps: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    member_T: dict[str, float] = field(default_factory=dict)
    summary: dict | None = None

    is_sweep = True

    def __post_init__(self) -> None:
        self._group_steps: dict[tuple, tuple[int, int]] = {}
        self._evaluating: set[tuple] = set()  # groups between their announced evaluation and its records

    @property
    def phase(self) -> str:
        """"evaluating" while a group of members evaluates (sampling takes minutes, with no steps to show)."""
        return "evaluating" if self._evaluating and self.active else ""

    @property
    def members(self) -> list[str]:
        """Member run names in T, then seed order (every planned one, trained or not)."""
        names = [f"T{T:g}_seed{s}" for T in self.Ts for s in self.seeds]
        return names + sorted(set(self.member_evals) - set(names))

    def add_event(self, event: dict) -> str:
        """Fold one sweep event (progress, eval, error, summary) in; returns what changed."""
        kind = event["kind"]
        if kind == "progress":
            if self.status == "queued":
                self.status = "running"
            group = tuple(event["runs"])
            self._group_steps[group] = (event["step"], len(event["runs"]))
            if event.get("evaluating"):
                self._evaluating.add(group)
            else:
                self._evaluating.discard(group)
            done = sum(step * size for step, size in self._group_steps.values())
            total = max(1, len(self.Ts) * len(self.seeds) * self.config.iters)
            self.progress = min(1.0, done / total)
            for name, loss in (event.get("losses") or {}).items():
                steps, losses = self.member_steps.setdefault(name, ([], []))
                steps.append(int(event["step"]))
                losses.append(_num(loss))
            return STEPS
        if kind == "eval":
            name = event["run"]
            self.member_evals.setdefault(name, []).append(event)
            self.member_T[name] = float(event["T"])
            self._evaluating = {group for group in self._evaluating if name not in group}  # its records arrive
            if event["step"] == event["iters"]:
                self.finals[name] = event
            return EVALS
        if kind == "error":
            self.message = f"{event.get('run', 'sweep')}: {event['message']}"
            return STATUS
        if kind == "summary":
            self.summary = event["summary"]
            return EVALS
        return STATUS

    def table(self) -> dict[str, list[float]]:
        """Per grid T: the bound's mean and sd over seeds and the test metric's mean and SE. From the summary
        once the sweep has one (the numbers the CLI prints), else from the members finished so far."""
        key = self.spec.test_key
        if self.summary is not None:
            s = self.summary
            metric = "bpd" if "bpd_mean" in s else "test_kl"
            return {"T": [float(t) for t in s["T"]], "bound": [_num(v) for v in s["bound_mean"]],
                    "bound_sd": [_num(v) for v in s["bound_std"]], "test": [_num(v) for v in s[f"{metric}_mean"]],
                    "test_se": [_num(v) for v in s.get(f"{metric}_se", [None] * len(s["T"]))]}
        out: dict[str, list[float]] = {"T": [], "bound": [], "bound_sd": [], "test": [], "test_se": []}
        for T in self.Ts:
            finals = [ev for ev in self.finals.values() if abs(ev["T"] - T) < 1e-9]
            if not finals:
                continue
            b = np.array([_num(ev.get("bound")) for ev in finals])
            out["T"].append(float(T))
            out["bound"].append(float(b.mean()))
            out["bound_sd"].append(float(b.std(ddof=1)) if len(b) > 1 else 0.0)
            out["test"].append(float(np.mean([_num(ev.get(key)) for ev in finals])))
            out["test_se"].append(mean_se([ev.get(f"{key}_se") for ev in finals]))
        return out

    def metrics(self) -> dict[str, float | None]:
        out = super().metrics()
        table = self.table()
        if table["T"]:  # the bound's T*, with the bound and the test metric at that same T
            best = _argmin(table["bound"])
            out.update(bound=table["bound"][best], test=table["test"][best], T=table["T"][best])
        else:
            out["T"] = None
        return out


@dataclass(eq=False)
class Selection(Entry):
    """T chosen by the bound (core.select_t): the models trained so far, then the selection."""

    t_range: tuple[float, float] = (0.1, 2.0)
    points: list[dict] = field(default_factory=list)
    selection: dict | None = None

    is_sweep = True

    def add_event(self, event: dict) -> str:
        kind = event["kind"]
        if kind == "evaluated":
            self.points.append(event)
            self.progress = min(1.0, event["trainings"] / event["max_trainings"])
            if self.status == "queued":
                self.status = "running"
            return EVALS
        if kind == "selection":
            self.selection = event["selection"]
            return EVALS
        if kind == "error":
            self.message = f"{event.get('run', 'selection')}: {event['message']}"
        elif kind == "progress" and self.status == "queued":
            self.status = "running"
        return STATUS

    def table(self) -> dict[str, list[float]]:
        """The trained points in T order (one model each: no spread over seeds)."""
        key = self.spec.test_key
        pts = sorted(self.points, key=lambda p: p["T"])
        return {"T": [float(p["T"]) for p in pts], "bound": [_num(p.get("bound")) for p in pts],
                "bound_sd": [0.0] * len(pts), "test": [_num(p.get(key, p.get("test_kl"))) for p in pts],
                "test_se": [mean_se([p.get(f"{key}_se")]) for p in pts]}

    def metrics(self) -> dict[str, float | None]:
        out = super().metrics()
        if self.selection:
            out.update(T=self.selection.get("T_star"), bound=self.selection.get("bound_at_T_star"))
        else:
            out["T"] = None
        return out


def _num(value) -> float:
    """A stored number as a float; None (a NaN stored as null) is NaN."""
    return math.nan if value is None else float(value)


def _argmin(values) -> int:
    """Index of the smallest finite value (0 when none is finite)."""
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    return int(np.nanargmin(np.where(finite, arr, np.nan))) if finite.any() else 0
