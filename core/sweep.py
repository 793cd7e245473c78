"""T sweeps: one model per (T, seed), trained in parallel worker processes, aggregated over seeds.

Each run directory also holds the run's checkpoint (checkpoint.infogen), so a sweep is a directory of run
checkpoints plus its summary. Within a worker the runs train as one batched ensemble (many small models are far cheaper together than one
by one); every run still has its own seeds and streams, so its numbers do not depend on the grouping or on
the number of workers. Each run writes its own run directory; the sweep directory also gets sweep.json (the
plan) and summary.json (the aggregate).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue as queue_module
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from .allocator import keep_freed_memory
from . import __version__, kernel_choice
from .diffusion.ensemble_mlp_kernels import mlp_kernel_paths
from .errors import ConfigError
from .io.atomic import atomic_write_json
from .io.recorder import FolderLock, RunRecorder, claim_folder
from .records import MEMBER, RUN, without_arrays
from .metrics.near_best import mean_se, near_best
from .resources import check_diffusion_costs
from .training.config import DiffusionConfig
from .training.diffusion import train_diffusion_ensemble
from .training.evaluate import applicable_variants

MAX_ENSEMBLE = 32
PROGRESS_SECONDS = 0.25
TERMS = ("score_matching", "encoder_info", "encoder_prior", "generator")


@dataclass(frozen=True)
class SweepRun:
    """One (T, seed) point of the sweep and where its files go."""

    name: str
    config: DiffusionConfig
    folder: Path


def plan_sweep(base: DiffusionConfig, Ts: Sequence[float], seeds: Sequence[int], out_dir: str | Path) -> list[SweepRun]:
    """Every (T, seed) run with its validated config and run directory."""
    if not Ts or not seeds:
        raise ConfigError("a sweep needs at least one T and one seed")
    runs = []
    for T in Ts:
        for seed in seeds:
            cfg = base.with_(T=float(T), seed=int(seed)).validate()
            name = f"T{T:g}_seed{seed}"
            runs.append(SweepRun(name, cfg, Path(out_dir) / name))
    return runs


def default_jobs() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)


def group_runs(runs: Sequence[SweepRun], jobs: int, max_members: int = MAX_ENSEMBLE) -> list[list[SweepRun]]:
    """Split runs into at least ``jobs`` groups (if there are enough runs), each at most ``max_members``, each
    trained as one ensemble by one worker.

    Runs with one step count (points) are split into contiguous groups of equal size. Runs with a fixed EM step
    size (images) take T-dependent step counts, so their costs differ: each run goes, costliest first, to the
    group with the least work so far (``run_cost``), so the workers finish together; within a group the runs
    are ordered by decreasing step count, so the sampler's members still stepping are always the leading ones."""
    max_members = max(1, min(max_members, MAX_ENSEMBLE))
    n_groups = max(min(jobs, len(runs)), math.ceil(len(runs) / max_members))
    if any(r.config.step_size > 0 for r in runs):
        groups: list[list[SweepRun]] = [[] for _ in range(n_groups)]
        work = [0.0] * n_groups
        for r in sorted(runs, key=lambda r: run_cost(r.config), reverse=True):
            g = min((i for i in range(n_groups) if len(groups[i]) < max_members), key=lambda i: work[i])
            groups[g].append(r)
            work[g] += run_cost(r.config)
        return [sorted(g, key=lambda r: r.config.steps, reverse=True) for g in groups if g]
    size, extra = divmod(len(runs), n_groups)
    groups, start = [], 0
    for g in range(n_groups):
        end = start + size + (1 if g < extra else 0)
        groups.append(list(runs[start:end]))
        start = end
    return groups


def members_that_fit(base: DiffusionConfig, jobs: int) -> int:
    """The most runs per ensemble (at most MAX_ENSEMBLE) such that ``jobs`` such ensembles, one per worker, fit
    in memory at once (core.resources' estimate); 1 when not even that fits (the sweep's own check says so)."""
    low, high = 1, MAX_ENSEMBLE
    while low < high:
        size = (low + high + 1) // 2
        try:
            check_diffusion_costs(base, concurrent=size * max(1, jobs))
        except ConfigError:
            high = size - 1
        else:
            low = size
    return low


def run_cost(cfg: DiffusionConfig) -> float:
    """A run's work in network passes over one example: a training step's forward and backward (about three
    passes) on each batch example, and each evaluation's Euler-Maruyama passes over its generated samples."""
    n_gen, draws = cfg.eval_sampling(True)
    return 3 * cfg.iters * min(cfg.batch, cfg.m) + cfg.evaluation_count * n_gen * draws * cfg.steps


def run_sweep(
    base: DiffusionConfig,
    Ts: Sequence[float],
    seeds: Sequence[int],
    out_dir: str | Path,
    jobs: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    engine: str = "local",
    address: str | None = None,
    overwrite: bool = False,
) -> Iterator[dict]:
    """Train and evaluate the sweep; yields ``progress``, ``eval``, ``error`` records, then one ``summary``.

    A folder that already holds a sweep or a run is refused unless ``overwrite`` moves it aside first.

    ``engine`` "local" trains on worker processes here; "ray" runs each (T, seed) as a task on the Ray
    cluster at ``address`` (a local Ray with ``jobs`` CPUs when no address is given).
    """
    if engine not in ("local", "ray"):
        raise ConfigError(f"unknown engine {engine!r}; choose local or ray")
    if engine == "ray":
        from .engines.ray_engine import import_ray

        import_ray()  # fail with the install hint before anything is written
    out = Path(out_dir)
    runs = plan_sweep(base, Ts, seeds, out)
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    groups = group_runs(runs, jobs, members_that_fit(base, jobs) if engine == "local" else MAX_ENSEMBLE)
    if engine == "local":  # the groups of `jobs` workers are in memory at once (a remote Ray cluster: not here)
        check_diffusion_costs(base, concurrent=sum(sorted(map(len, groups), reverse=True)[:jobs]))
    elif address is None:
        check_diffusion_costs(base, concurrent=min(jobs, len(runs)))
    claim_folder(out, overwrite, what="sweep")
    lock = FolderLock(out)  # the whole sweep folder is this sweep's until it ends: no --overwrite can move it
    lock.acquire()
    try:
        atomic_write_json(out / "sweep.json", {
            "format": "infogen-sweep", "format_version": 1, "version": __version__, "model": "dm",
            "base_config": base.as_dict(), "T": list(Ts), "seeds": list(seeds), "runs": [r.name for r in runs],
            "engine": engine,
        })
        finals: dict[str, dict] = {}
        errors: dict[str, str] = {}
        paths = sweep_kernel_paths(base)
        if engine == "ray":
            from .engines.ray_engine import ray_events

            events = ray_events(runs, jobs, address, should_stop, paths)
        elif len(groups) == 1:
            events = group_events(groups[0], should_stop)
        else:
            events = _run_in_pool(groups, jobs, should_stop, paths)
        for event in events:
            if event["kind"] == "eval" and event["step"] == event["iters"]:
                finals[event["run"]] = event
            elif event["kind"] == "error":
                errors[event["run"]] = event["message"]
            yield event
        summary = summarize(runs, Ts, seeds, base, finals, errors)
        atomic_write_json(out / "summary.json", summary)
        yield {"kind": "summary", "summary": summary}
    finally:
        lock.release()


def group_events(group: Sequence[SweepRun], should_stop: Callable[[], bool] | None = None) -> Iterator[dict]:
    """Train one group as an ensemble, writing each run's folder and checkpoint; yield light events (no arrays).

    Progress counts every member: the members step in lockstep, so any member's step record advances it,
    and a member that failed (a NaN loss) never freezes it. Each ``progress`` event (at most one per
    PROGRESS_SECONDS) also carries ``losses``: every member's latest training loss by run name, None before its
    first step, when the loss is not finite, and after the member failed, so a live view can draw the members'
    loss curves. The step after which the group evaluates is always sent, with ``evaluating`` True."""
    recorders: list[RunRecorder] = []
    losses: dict[str, float | None] = {r.name: None for r in group}
    last_sent, announced = 0.0, None
    try:
        for r in group:
            recorders.append(RunRecorder(r.folder, r.config.as_dict()))
        for record in train_diffusion_ensemble([r.config for r in group], should_stop):
            index = record.pop(MEMBER)
            run = group[index]
            recorders[index].write(record)
            if record["kind"] == "step":
                losses[run.name] = finite_or_none(record.get("loss"))
                now = time.monotonic()
                # the group goes quiet while it evaluates (sampling can take minutes): that step is always sent
                evaluating = record["step"] != announced and run.config.evaluates_after(record["step"])
                if evaluating:
                    announced = record["step"]
                if now - last_sent >= PROGRESS_SECONDS or evaluating:
                    last_sent = now
                    yield {"kind": "progress", "runs": [r.name for r in group], "step": record["step"],
                           "iters": run.config.iters, "losses": dict(losses), "evaluating": evaluating}
                continue
            if record["kind"] == "error":
                losses[run.name] = None  # its loss stopped being finite
            if record["kind"] != "start":
                yield sweep_event(run, record)
    finally:
        for recorder in recorders:
            recorder.close()


def finite_or_none(value) -> float | None:
    """A loss as events carry it: a finite float, or None (not yet known, NaN or infinite)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sweep_event(run: SweepRun, record: dict) -> dict:
    """The light event a sweep yields for one of its run's records: no arrays or config, the run named."""
    event = {k: v for k, v in without_arrays(record).items() if k != "config"}
    event.update({RUN: run.name, "T": run.config.T, "seed": run.config.seed, "iters": run.config.iters})
    return event


_worker_queue = None
_worker_stop = None


def sweep_kernel_paths(base: DiffusionConfig) -> dict[str, str]:
    """The score MLP's kernel paths on this CPU (core/kernel_choice.py), decided here once for every worker of
    the sweep, so that its numbers do not depend on --jobs or the engine; none for images or a GPU."""
    if base.is_images or torch.device(base.device).type != "cpu":
        return {}
    return mlp_kernel_paths()


def _init_worker(events, stop, threads: int, paths: dict[str, str]) -> None:
    global _worker_queue, _worker_stop
    _worker_queue, _worker_stop = events, stop
    torch.set_num_threads(threads)
    keep_freed_memory()
    kernel_choice.adopt(paths)


def _worker_main(group: Sequence[SweepRun]) -> None:
    for event in group_events(group, _worker_stop.is_set):
        _worker_queue.put(event)


def _run_in_pool(groups: list[list[SweepRun]], jobs: int, should_stop: Callable[[], bool] | None,
                 paths: dict[str, str]) -> Iterator[dict]:
    """Run groups in spawned worker processes, relaying their events; a stop request reaches every worker."""
    ctx = mp.get_context("spawn")
    events, stop = ctx.Queue(), ctx.Event()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(events, stop, threads, paths)) as pool:
        futures = [pool.submit(_worker_main, g) for g in groups]
        try:
            while True:
                if should_stop is not None and should_stop():
                    stop.set()
                try:
                    yield events.get(timeout=0.1)
                    continue
                except queue_module.Empty:
                    pass
                if all(f.done() for f in futures):
                    break
            while True:  # whatever arrived between the last get and the workers finishing
                try:
                    yield events.get(timeout=0.2)
                except queue_module.Empty:
                    break
            for f in futures:
                f.result()  # re-raise a worker's exception here, with its message
        finally:
            stop.set()


def summarize(
    runs: Sequence[SweepRun],
    Ts: Sequence[float],
    seeds: Sequence[int],
    base: DiffusionConfig,
    finals: dict[str, dict],
    errors: dict[str, str],
) -> dict:
    """Mean and standard deviation over seeds per T, for the chosen variant and every other one; the test
    metric's Monte Carlo standard error of the seed mean per T, and the T values within 2 SE of its minimum
    (docs/test-metrics.md#sweep-summary, #near-best; T* by the bound: docs/t-selection.md#sweep)."""
    by_T: dict[float, list[dict]] = {float(T): [] for T in Ts}
    for run in runs:
        if run.name in finals:
            by_T[run.config.T].append(finals[run.name])

    def stats(values_per_T: list[list[float]]) -> tuple[list[float], list[float]]:
        means, stds = [], []
        for values in values_per_T:
            arr = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
            means.append(float(arr.mean()) if arr.size else float("nan"))
            stds.append(float(arr.std(ddof=1)) if arr.size > 1 else 0.0 if arr.size else float("nan"))
        return means, stds

    def variant_block(name: str) -> dict:
        per_T = [[r["bounds"][name] for r in by_T[float(T)]] for T in Ts]
        bound_mean, bound_std = stats([[b["total"] for b in bs] for bs in per_T])
        terms_mean, terms_std = {}, {}
        for term in TERMS:
            terms_mean[term], terms_std[term] = stats([[b[term] for b in bs] for bs in per_T])
        L_mean, _ = stats([[b["L"] for b in bs] for bs in per_T])
        return {"bound_mean": bound_mean, "bound_std": bound_std, "terms_mean": terms_mean, "terms_std": terms_std,
                "L_mean": L_mean, "T_star_bound": _argmin(Ts, bound_mean)}

    test_kl_mean, test_kl_std = stats([[r["test_kl"] for r in by_T[float(T)]] for T in Ts])
    test_kl_se = [mean_se([r.get("test_kl_se") for r in by_T[float(T)]]) for T in Ts]
    dsm_gap_mean, _ = stats([[r["dsm_gap"] for r in by_T[float(T)]] for T in Ts])
    nn_mean, _ = stats([[r["nn_dist_mean"] for r in by_T[float(T)]] for T in Ts])
    chosen = variant_block(base.variant)
    images = {}
    if base.is_images:
        bpd_mean, bpd_std = stats([[r.get("test_bpd") for r in by_T[float(T)]] for T in Ts])
        bpd_se = [mean_se([r.get("test_bpd_se") for r in by_T[float(T)]]) for T in Ts]
        images = {"bpd_mean": bpd_mean, "bpd_std": bpd_std, "bpd_se": bpd_se, "T_star_bpd": _argmin(Ts, bpd_mean),
                  "T_near_best_bpd": near_best(Ts, bpd_mean, bpd_se), "preset": base.preset,
                  "step_size": base.step_size}
    return {
        "T": [float(T) for T in Ts],
        **chosen,
        "test_kl_mean": test_kl_mean,
        "test_kl_std": test_kl_std,
        "test_kl_se": test_kl_se,
        "dsm_gap_mean": dsm_gap_mean,
        "nn_dist_mean": nn_mean,
        "T_star_test_kl": _argmin(Ts, test_kl_mean),
        "T_near_best_test_kl": near_best(Ts, test_kl_mean, test_kl_se),
        "test_kl_draws": base.test_kl_draws,
        "n_gen": base.n_gen,
        "preview_evals": base.preview_evals,
        "preview_samples": base.preview_samples if base.preview_evals else None,
        "variant": base.variant,
        "R": base.R,
        "m": base.m,
        "iters": base.iters,
        "seeds": list(seeds),
        "data": base.data,
        "n_steps": base.n_steps,
        "K": base.mc_samples,
        "n_runs": len(runs),
        "n_finished": len(finals),
        "errors": errors,
        **images,
        "variants": {name: variant_block(name) for name in applicable_variants(base)},
        "version": __version__,
    }


def _argmin(Ts: Sequence[float], values: list[float]) -> float | None:
    arr = np.array(values, dtype=float)
    if not np.isfinite(arr).any():
        return None
    return float(Ts[int(np.nanargmin(arr))])
