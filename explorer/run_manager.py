"""Starts, stops and tracks runs on Qt's global thread pool (superqt GeneratorWorkers)."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import GeneratorWorker, thread_worker

from core.checkpoint import CHECKPOINT_NAME, load_checkpoint
from core.errors import ConfigError
from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

from .jobs import select_t_job, single_run_job, sweep_job, vae_job
from .run_state import RunState

RUNS_DIR_ENV = "INFOGEN_RUNS_DIR"


# 20 distinct colours (matplotlib's tab20, dark shades first, then the light ones): no repeat for the first 20
# runs; after that the cycle restarts.
RUN_COLOURS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
    (219, 219, 141), (158, 218, 229),
)


def run_colour(run_id: int) -> tuple[int, int, int]:
    """The colour of run ``run_id`` (1-based)."""
    return RUN_COLOURS[(run_id - 1) % len(RUN_COLOURS)]


def default_runs_dir() -> Path:
    """Where the app autosaves runs: $INFOGEN_RUNS_DIR, else ~/infogen-runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or Path.home() / "infogen-runs")


class RunManager(QObject):
    """Owns every RunState of the session and the worker that feeds it."""

    run_added = Signal(int)
    run_changed = Signal(int)
    run_removed = Signal(int)
    run_failed = Signal(int, str)

    def __init__(self, runs_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs_dir = runs_dir or default_runs_dir()
        self.runs: dict[int, RunState] = {}
        self._workers: dict[int, GeneratorWorker] = {}
        self._stops: dict[int, threading.Event] = {}
        self._next_id = 1

    def start(self, config: DiffusionConfig, Ts: list[float], seeds: list[int]) -> RunState:
        """Start a single run (one T, one seed) or a sweep; returns its state at once."""
        sweep = len(Ts) * len(seeds) > 1
        label = (f"sweep {config.data} m={config.m} T={Ts[0]:g}..{Ts[-1]:g} x{len(seeds)} seeds" if sweep
                 else f"{config.data} m={config.m} T={Ts[0]:g} seed={seeds[0]}")
        base = config.with_(T=Ts[0], seed=seeds[0])
        state = self._new_state(base, label, list(Ts), list(seeds), "sweep" if sweep else "run")
        if sweep:
            job = (sweep_job, base, list(Ts), list(seeds), state.folder)
        else:
            job = (single_run_job, base, state.folder)
        return self._launch(state, *job)

    def start_vae(self, config: VAEConfig) -> RunState:
        """Train a VAE: its epochs feed the same plots (two bounds and the test curve) and an image grid."""
        label = f"VAE {config.data} m={config.m if config.m is not None else 'all'} seed={config.seed}"
        state = self._new_state(config, label, [], [config.seed], "run")
        return self._launch(state, vae_job, config, state.folder)

    def start_selection(self, config: DiffusionConfig, t_range: tuple[float, float]) -> RunState:
        """Select T by the bound over ``t_range`` (core.select_t): a few trainings, shown as they finish."""
        label = f"select T in {t_range[0]:g}..{t_range[1]:g} {config.data} m={config.m} seed={config.seed}"
        state = self._new_state(config, label, [], [config.seed], "select")
        state.t_range = t_range
        return self._launch(state, select_t_job, config, t_range, state.folder)

    def reserve(self) -> tuple[int, tuple[int, int, int]]:
        """A fresh run id and its colour."""
        run_id = self._next_id
        self._next_id += 1
        return run_id, run_colour(run_id)

    def add_loaded(self, state: RunState) -> None:
        """Show a run or sweep read from disk (see loading.load_state)."""
        self.runs[state.run_id] = state
        self.run_added.emit(state.run_id)
        self.run_changed.emit(state.run_id)

    def resume(self, run_id: int, iters: int | None = None) -> RunState:
        """Continue a run from its checkpoint (exactly, see core.checkpoint) in the same entry. A run trained in
        this session continues in its own folder; an opened file continues into a new run folder under the
        runs directory, never beside the opened file."""
        state = self.runs[run_id]
        path = state.checkpoint_path or state.folder / CHECKPOINT_NAME
        if state.is_vae:
            raise ConfigError("VAE runs cannot be resumed: their checkpoints hold no optimizer state yet")
        if state.active or state.is_sweep:
            raise ConfigError("only a finished, stopped or loaded single run can be resumed")
        if not Path(path).is_file():
            raise ConfigError(f"{state.name} has no checkpoint to resume from (it is written at each evaluation)")
        ckpt = load_checkpoint(path)
        device = ckpt.resume_device()  # a run saved on CUDA continues on the CPU where there is no GPU
        config = state.config.with_(iters=iters or state.config.iters, device=device).validate()
        if ckpt.train_state is None or config.iters <= ckpt.step:
            raise ConfigError(f"the checkpoint is at step {ckpt.step} of {config.iters}: raise the iterations to train further")
        keep = sum(1 for s in state.steps if s <= ckpt.step)
        del state.steps[keep:], state.losses[keep:], state.walls[keep:]
        keep_evals = sum(1 for ev in state.evals if ev["step"] <= ckpt.step)
        del state.evals[keep_evals:], state.samples[keep_evals:]
        ckpt.train_state_for(device)  # fills ckpt.notes when the device changes
        state.config, state.status, state.message = config, "running", " ".join(ckpt.notes)
        state.started, state.finished_at = time.monotonic(), None
        state.revision += 1
        state.eval_revision += 1
        in_place = state.checkpoint_path is None
        if not in_place:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            state.folder = self.runs_dir / f"{stamp}-run{run_id}-resumed"
            state.checkpoint_path = None  # from now on the run's own checkpoint, in its new folder
        self._launch(state, single_run_job, config, state.folder, resume_from=Path(path), in_place=in_place)
        return state

    def _new_state(self, config: DiffusionConfig, label: str, Ts: list[float], seeds: list[int], mode: str) -> RunState:
        run_id, colour = self.reserve()
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        state = RunState(run_id, f"#{run_id} {label}", config, self.runs_dir / f"{stamp}-run{run_id}", colour,
                         Ts, seeds, mode=mode)
        self.runs[run_id] = state
        return state

    def _launch(self, state: RunState, job, *args, **kwargs) -> RunState:
        run_id = state.run_id
        stop = threading.Event()
        worker = thread_worker(job, start_thread=False, ignore_errors=True)(*args, stop, **kwargs)
        worker.yielded.connect(lambda batch, rid=run_id: self._on_batch(rid, batch))
        worker.errored.connect(lambda exc, rid=run_id: self._on_error(rid, exc))
        worker.finished.connect(lambda rid=run_id: self._on_finished(rid))
        self._workers[run_id], self._stops[run_id] = worker, stop
        if state.status == "queued":
            self.run_added.emit(run_id)
        else:
            self.run_changed.emit(run_id)  # a resumed entry: already listed
        state.status = "running"
        worker.start()
        return state

    def stop(self, run_id: int) -> None:
        """Ask a run to stop; core checks between two training steps."""
        if run_id in self._stops:
            self._stops[run_id].set()
            state = self.runs[run_id]
            if state.active:
                state.status = "stopping"
                state.revision += 1
                self.run_changed.emit(run_id)

    def remove(self, run_id: int) -> None:
        """Stop the run if needed and forget it (its files stay on disk)."""
        self.stop(run_id)
        self.runs.pop(run_id, None)
        self.run_removed.emit(run_id)

    def stop_all_and_wait(self, timeout_ms: int = 30000) -> bool:
        """Stop every run and wait for the pool to drain (used on close and by tests).

        Only the runs' own stop events are set: core then ends each run between two steps with a
        ``cancelled`` record and the run files are closed properly. (GeneratorWorker.quit would abandon the
        generator mid-way, leaving its files to the garbage collector.)
        """
        for stop in self._stops.values():
            stop.set()
        return QThreadPool.globalInstance().waitForDone(timeout_ms)

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def _on_batch(self, run_id: int, batch: list[dict]) -> None:
        state = self.runs.get(run_id)
        if state is None:
            return
        for record in batch:
            if state.is_sweep:
                state.add_sweep_event(record)
            else:
                state.add_record(record)
        if state.status == "failed":
            self.run_failed.emit(run_id, state.message)
        self.run_changed.emit(run_id)

    def _on_error(self, run_id: int, exc: Exception) -> None:
        state = self.runs.get(run_id)
        if state is not None:
            state.fail(f"{type(exc).__name__}: {exc}")
            self.run_failed.emit(run_id, state.message)
            self.run_changed.emit(run_id)

    def _on_finished(self, run_id: int) -> None:
        self._workers.pop(run_id, None)
        self._stops.pop(run_id, None)
        state = self.runs.get(run_id)
        if state is None:
            return
        if state.active:
            if state.is_sweep and state.summary is not None and state.status != "stopping":
                state.status, state.progress = "finished", 1.0
            else:
                state.status = "cancelled"
            state.finished_at = state.finished_at or time.monotonic()
            state.revision += 1
        self.run_changed.emit(run_id)
