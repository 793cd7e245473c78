"""Generator functions that run in the thread pool: core training and sweeps, written to disk, throttled.

They run in a worker thread, so they only touch core objects and plain data: every yield is a list of
records (plain floats and small numpy arrays), at most one list every THROTTLE_SECONDS unless something
other than a training step arrives. Stop is a threading.Event that core checks between steps.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator

import torch

from core import kernel_choice
from core.api import bound_against_T
from core.checkpoint import load_checkpoint
from core.io.atomic import atomic_write_json
from core.io.recorder import RunRecorder
from core.select_t import select_t
from core.sweep import run_sweep
from core.training.config import DiffusionConfig, load_run_data_with_shape
from core.training.diffusion import train_diffusion
from core.vae.config import VAEConfig
from core.user_model import load_user_network
from core.vae.train import train_vae

THROTTLE_SECONDS = 0.05
GUI_KEYS_DROPPED = ("model_state", "train_state")


def app_threads() -> int:
    """Torch threads for the app's work: one core is left to the GUI."""
    return max(1, (os.cpu_count() or 2) - 1)


def in_app_threads(job):
    """``job`` (a generator function) with its pool thread set to ``app_threads`` first: torch keeps a thread
    count per thread, and a pool thread could otherwise keep the one thread of a kernel timing
    (core/kernel_choice.py) that happened when it first used torch."""

    def run(*args, **kwargs):
        torch.set_num_threads(app_threads())
        yield from job(*args, **kwargs)

    run.__name__, run.__doc__ = job.__name__, job.__doc__
    return run


def throttled(records: Iterator[dict], interval: float = THROTTLE_SECONDS) -> Iterator[list[dict]]:
    """Batch records so that at most one list per ``interval`` goes out, always flushing non-step records."""
    batch: list[dict] = []
    last = time.monotonic()
    for record in records:
        batch.append(record)
        now = time.monotonic()
        if record.get("kind") != "step" or now - last >= interval:
            yield batch
            batch, last = [], now
    if batch:
        yield batch


def single_run_job(config: DiffusionConfig, folder: Path, stop: threading.Event,
                   resume_from: Path | None = None, in_place: bool = False) -> Iterator[list[dict]]:
    """Train one run (or continue a checkpoint), autosaving its run folder and its checkpoint at every
    evaluation (core.io.recorder), and yield throttled batches of its records. ``in_place``: the checkpoint is
    the folder's own, and the run continues there; otherwise ``folder`` is a new run folder."""

    def records() -> Iterator[dict]:
        ckpt = load_checkpoint(resume_from) if resume_from is not None else None
        taken = ckpt.kernel_paths if ckpt is not None else {}  # a resumed run: the kernel paths it trained with
        with kernel_choice.taking(taken), RunRecorder(folder, config.as_dict(), resume=ckpt, in_place=in_place) as recorder:
            resume = ckpt.train_state_for(config.device) if ckpt is not None else None
            for record in train_diffusion(config, should_stop=stop.is_set, resume=resume):
                recorder.write(record)
                yield {k: v for k, v in record.items() if k not in GUI_KEYS_DROPPED}

    yield from throttled(records())


def sweep_job(
    config: DiffusionConfig, Ts: list[float], seeds: list[int], folder: Path, stop: threading.Event
) -> Iterator[list[dict]]:
    """Run a sweep over worker processes (one per core, so every core is busy) and yield its events."""
    jobs = max(1, min(os.cpu_count() or 1, len(Ts) * len(seeds)))
    yield from throttled(run_sweep(config, Ts, seeds, folder, jobs=jobs, should_stop=stop.is_set))


def select_t_job(
    config: DiffusionConfig, t_range: tuple[float, float], folder: Path, stop: threading.Event
) -> Iterator[list[dict]]:
    """Select T by the bound (core.select_t), yielding each trained point as it is evaluated."""
    jobs = max(1, os.cpu_count() or 1)
    yield from throttled(select_t(config, t_range, folder, jobs=jobs, should_stop=stop.is_set))


def vae_job(config: VAEConfig, folder: Path, stop: threading.Event) -> Iterator[list[dict]]:
    """Train a VAE, writing its run directory, and yield throttled batches of its records."""

    def records() -> Iterator[dict]:
        with RunRecorder(folder, config.as_dict(), model="vae") as recorder:
            for record in train_vae(config, should_stop=stop.is_set):
                recorder.write(record)
                yield record

    yield from throttled(records())


def model_bound_job(
    spec: str, weights: Path | None, output: str, config: DiffusionConfig, Ts: list[float], folder: Path,
    stop: threading.Event,
) -> Iterator[list[dict]]:
    """A user's own score network (core.user_model: their file, run as Python by their choice, weights from
    safetensors) evaluated at every T of ``Ts`` on ``config``'s data split (core.api.bound_against_T), as a
    sweep's events; a progress event after each T moves the entry's bar. The summary is written to
    ``folder``/summary.json, so the entry can be exported and reopened like a sweep."""

    def events() -> Iterator[dict]:
        net = load_user_network(spec, weights, config.device)
        x_train, x_test, _ = load_run_data_with_shape(config)
        device = torch.device(config.device)
        for event in bound_against_T(
            net, torch.from_numpy(x_train).to(device), Ts, x_test=torch.from_numpy(x_test).to(device),
            seed=config.seed, data=config.data, should_stop=stop.is_set, output=output, variant=config.variant,
            R=config.R, N=config.n_steps, K=config.mc_samples, n_gen=config.n_gen, test_kl_draws=config.test_kl_draws,
        ):
            if event["kind"] == "summary":
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_json(folder / "summary.json", {**event["summary"], "model": spec, "output": output})
            yield event
            if event["kind"] == "eval":
                yield {"kind": "progress", "runs": [event["run"]], "step": config.iters}

    yield from throttled(events())
