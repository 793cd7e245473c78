"""Sweeps on Ray: each (T, seed) run is one Ray task on an existing cluster, or on a local Ray.

Tasks return their records (weights and samples included) to the driver, which writes the run directories,
so a remote cluster needs no shared filesystem and the files are the same as the local engine's. Progress
streams back through a Ray queue while tasks run. A run trained alone gives bit-identical numbers to the
same run trained inside a local ensemble (each member has its own parameters and random streams), so both
engines produce the same summary for the same seeds.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

from ..errors import ConfigError

PROGRESS_SECONDS = 0.25
INSTALL_HINT = "Ray is not installed: pip install 'infogen-explorer[ray]' (or pip install ray)"


def import_ray():
    """The ray module, or a ConfigError that says how to install it."""
    try:
        import ray
        from ray.util.queue import Queue  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _train_one(config: dict, name: str, queue, kernel_paths: dict[str, str]) -> list[dict]:
    """Body of the Ray task: train one run with the sweep's kernel paths, stream progress, return every record."""
    from .. import kernel_choice
    from ..training.config import DiffusionConfig
    from ..training.diffusion import train_diffusion

    kernel_choice.adopt(kernel_paths)
    cfg = DiffusionConfig.from_dict(config)
    records, last = [], 0.0
    for record in train_diffusion(cfg):
        records.append(record)
        if record["kind"] == "step":
            now = time.monotonic()
            if now - last >= PROGRESS_SECONDS:
                last = now
                queue.put({"kind": "progress", "runs": [name], "step": record["step"], "iters": cfg.iters})
    return records


def ray_events(runs: Sequence, jobs: int | None, address: str | None,
               should_stop: Callable[[], bool] | None = None, kernel_paths: dict[str, str] | None = None) -> Iterator[dict]:
    """Run every SweepRun as a Ray task; yield the same events as the local engine and write the run files.
    ``kernel_paths``: the sweep's choices of the score MLP's kernels (core/kernel_choice.py), taken by every task."""
    ray = import_ray()
    from ray.util.queue import Empty, Queue

    from ..io.recorder import RunRecorder
    from ..sweep import sweep_event

    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"address": address} if address else {"num_cpus": jobs}
        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
    try:
        queue = Queue()
        task = ray.remote(num_cpus=1)(_train_one)
        pending = {task.remote(r.config.as_dict(), r.name, queue, dict(kernel_paths or {})): r for r in runs}
        while pending:
            if should_stop is not None and should_stop():
                for ref in pending:
                    ray.cancel(ref, force=True)
                return
            while True:
                try:
                    yield queue.get(block=False)
                except Empty:
                    break
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            for ref in done:
                run = pending.pop(ref)
                records = ray.get(ref)
                with RunRecorder(run.folder, run.config.as_dict()) as recorder:
                    for record in records:
                        recorder.write(record)
                        if record["kind"] not in ("step", "start"):
                            yield sweep_event(run, record)
    finally:
        if started_here:
            ray.shutdown()
