"""Starts, stops and tracks runs on Qt's global thread pool (superqt GeneratorWorkers), feeding the collection.

The entries and their change events live in the Qt-free model (explorer.model); this class only owns the
workers: each yields batches of core records, which are folded into the collection in the GUI thread.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool
from superqt.utils import GeneratorWorker, thread_worker

from core.checkpoint import CHECKPOINT_NAME, load_checkpoint
from core.errors import ConfigError
from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

from .jobs import in_app_threads, model_bound_job, select_t_job, single_run_job, sweep_job, vae_job
from .model import EVALS, STATUS, Entry, RunCollection, Selection, Sweep, TrainingRun

RUNS_DIR_ENV = "INFOGEN_RUNS_DIR"


def default_runs_dir() -> Path:
    """Where the app autosaves runs: $INFOGEN_RUNS_DIR, else ~/infogen-runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or Path.home() / "infogen-runs")


def resume_plan(path: Path, config: DiffusionConfig, iters: int | None) -> tuple[DiffusionConfig, int, list[str]]:
    """Read a checkpoint (on a worker: it may be large) and check that it can train further: the config to
    continue with, the checkpoint's step and the notes to show (a CUDA checkpoint continues on the CPU)."""
    ckpt = load_checkpoint(path)
    device = ckpt.resume_device()
    config = config.with_(iters=iters or config.iters, device=device).validate()
    if ckpt.train_state is None or config.iters <= ckpt.step:
        raise ConfigError(f"the checkpoint is at step {ckpt.step} of {config.iters}: raise the iterations to train further")
    ckpt.train_state_for(device)  # fills ckpt.notes when the device changes
    return config, ckpt.step, list(ckpt.notes)


class RunManager(QObject):
    """Owns the session's workers; the entries are in ``runs`` (a RunCollection)."""

    def __init__(self, runs_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runs_dir = runs_dir or default_runs_dir()
        self.runs = RunCollection()
        self._workers: dict[int, GeneratorWorker] = {}
        self._stops: dict[int, threading.Event] = {}
        self._pending: set = set()

    def start(self, config: DiffusionConfig, Ts: list[float], seeds: list[int]) -> Entry:
        """Start a single run (one T, one seed) or a sweep; returns its entry at once."""
        base = config.with_(T=Ts[0], seed=seeds[0])
        if len(Ts) * len(seeds) > 1:
            label = f"sweep {config.data} m={config.m} T={Ts[0]:g}..{Ts[-1]:g} ×{len(seeds)} seeds"
            sweep = self._new(Sweep, base, label, Ts=list(Ts), seeds=list(seeds))
            return self._launch(sweep, sweep_job, base, list(Ts), list(seeds), sweep.folder)
        run = self._new(TrainingRun, base, f"{config.data} m={config.m} T={Ts[0]:g} seed={seeds[0]}")
        return self._launch(run, single_run_job, base, run.folder)

    def start_vae(self, config: VAEConfig) -> Entry:
        """Train a VAE: its epochs feed the same plots (its own curve specification) and an image grid."""
        label = f"VAE {config.data} m={config.m if config.m is not None else 'all'} seed={config.seed}"
        run = self._new(TrainingRun, config, label)
        return self._launch(run, vae_job, config, run.folder)

    def start_selection(self, config: DiffusionConfig, t_range: tuple[float, float]) -> Entry:
        """Select T by the bound over ``t_range`` (core.select_t): a few trainings, shown as they finish."""
        label = f"select T in {t_range[0]:g}..{t_range[1]:g} {config.data} m={config.m} seed={config.seed}"
        sel = self._new(Selection, config, label, t_range=t_range)
        return self._launch(sel, select_t_job, config, t_range, sel.folder)

    def start_model(self, spec: str, weights: Path | None, output: str, config: DiffusionConfig, Ts: list[float]) -> Entry:
        """Evaluate a user's own score network at every T (File → Open model…): shown as a sweep of one seed."""
        base = config.with_(T=Ts[0])
        name = Path(spec.rpartition(":")[0]).name + ":" + spec.rpartition(":")[2]
        label = f"model {name} {config.data} m={config.m} T={Ts[0]:g}..{Ts[-1]:g}"
        entry = self._new(Sweep, base, label, Ts=list(Ts), seeds=[config.seed])
        return self._launch(entry, model_bound_job, spec, weights, output, base, list(Ts), entry.folder)

    def add_loaded(self, entry: Entry) -> Entry:
        """Number and show an entry read from disk (explorer.model.loading); a file that failed to load never
        gets this far, so it uses up no run number."""
        entry.run_id, entry.colour = self.runs.reserve()
        entry.name = f"#{entry.run_id} {entry.name}"
        return self.runs.add(entry)

    def resume(self, run_id: int, iters: int | None = None) -> None:
        """Continue a run from its checkpoint (exactly, see core.checkpoint) in the same entry. The checkpoint is
        read on a worker; problems reach ``runs.failed``. A run trained in this session continues in its own
        folder; an opened file continues into a new folder under the runs directory, never beside the file."""
        run = self.runs[run_id]
        if not isinstance(run, TrainingRun):
            raise ConfigError("only a single run can be resumed; a sweep's members are runs of their own")
        if not run.spec.resumable:
            raise ConfigError(f"{run.spec.title} runs cannot be resumed: their files hold no optimizer state yet")
        if run.active:
            raise ConfigError(f"{run.name} is still running")
        path = Path(run.checkpoint_path or run.folder / CHECKPOINT_NAME)
        if not path.is_file():
            raise ConfigError(f"{run.name} has no checkpoint to resume from (it is written at each evaluation)")
        worker = thread_worker(resume_plan, start_thread=False, ignore_errors=True)(path, run.config, iters)
        worker.returned.connect(lambda plan, rid=run_id, p=path: self._resume_with(rid, p, *plan))
        worker.errored.connect(lambda exc, rid=run_id: self._resume_failed(rid, exc))
        worker.finished.connect(lambda w=worker: self._pending.discard(w))
        self._pending.add(worker)
        worker.start()

    def _resume_with(self, run_id: int, path: Path, config: DiffusionConfig, step: int, notes: list[str]) -> None:
        run = self.runs.get(run_id)
        if not isinstance(run, TrainingRun) or run.active:
            return
        run.cut_at(step)
        run.config, run.status, run.message = config, "running", " ".join(notes)
        run.started, run.finished_at = time.monotonic(), None
        in_place = run.checkpoint_path is None
        if not in_place:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            run.folder = self.runs_dir / f"{stamp}-run{run_id}-resumed"
            run.checkpoint_path = None  # from now on the run's own checkpoint, in its new folder
        self._launch(run, single_run_job, config, run.folder, resume_from=path, in_place=in_place)
        self.runs.update(run_id, EVALS)

    def _resume_failed(self, run_id: int, exc: Exception) -> None:
        from .file_actions import error_text

        run = self.runs.get(run_id)
        self.runs.failed.emit(run_id, f"cannot resume {run.name if run else run_id}: {error_text(exc)}")

    def _new(self, cls, config, label: str, **fields) -> Entry:
        run_id, colour = self.runs.reserve()
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return cls(run_id, f"#{run_id} {label}", config, self.runs_dir / f"{stamp}-run{run_id}", colour, **fields)

    def _launch(self, entry: Entry, job, *args, **kwargs) -> Entry:
        run_id = entry.run_id
        stop = threading.Event()
        worker = thread_worker(in_app_threads(job), start_thread=False, ignore_errors=True)(*args, stop, **kwargs)
        worker.yielded.connect(lambda batch, rid=run_id: self.runs.fold(rid, batch))
        worker.errored.connect(lambda exc, rid=run_id: self.runs.fail(rid, f"{type(exc).__name__}: {exc}"))
        worker.finished.connect(lambda rid=run_id: self._on_finished(rid))
        self._workers[run_id], self._stops[run_id] = worker, stop
        if run_id not in self.runs:
            self.runs.add(entry)
        entry.status = "running"
        worker.start()
        self.runs.update(run_id, STATUS)
        return entry

    def stop(self, run_id: int) -> None:
        """Ask a run to stop; core checks between two training steps."""
        if run_id in self._stops:
            self._stops[run_id].set()
            entry = self.runs.get(run_id)
            if entry is not None and entry.active:
                entry.status = "stopping"
                self.runs.update(run_id, STATUS)

    def remove(self, run_id: int) -> None:
        """Stop the run if needed and forget it (its files stay on disk)."""
        self.stop(run_id)
        self.runs.remove(run_id)

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
        return bool(self._workers) or bool(self._pending)

    def _on_finished(self, run_id: int) -> None:
        self._workers.pop(run_id, None)
        self._stops.pop(run_id, None)
        entry = self.runs.get(run_id)
        if entry is None:
            return
        if entry.active:
            done = entry.is_sweep and entry.status != "stopping" and (
                getattr(entry, "summary", None) is not None or getattr(entry, "selection", None) is not None)
            entry.finish("finished" if done else "cancelled")
        self.runs.update(run_id, STATUS)
