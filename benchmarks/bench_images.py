"""Where the README's digits sweep spends its time: training, test BPD, the bound's terms and sampling.

The sweep is `infogen sweep dm --data digits --m 16 --T 0.2:2.0:0.2 --seeds 0,1,2` (image defaults: U-Net
preset `small`, 2,000 iterations, 100 test images, n_gen 100, Euler-Maruyama step 0.001 so N = round(1000 T),
one evaluation at the end). core/sweep.py hands each worker process (one per core, one thread each) one
ensemble of 15 runs of mixed T, balanced by cost; the sampler steps each member for its own N.

``--sweep`` runs that sweep in full here and prints its wall time: the number the README reports.

Without it, a proxy compares the U-Net's forward before issue #12 (torch.func.vmap over functional_call, kept
as core.diffusion.unet.reference_forward) with the current one on a group of the 3 seeds of one T, trained in
process on one thread, with timers around what core/training/evaluate.py calls: test_bpd ("bpd"); encoder_terms,
dsm_eval and clean_batch_L ("bound"); euler_maruyama ("sampling", of which "network" is the U-Net's forward);
training is the rest. ``--iters`` iterations (default 200; training time is per iteration, so it is scaled to
2,000) and the group of ``--T`` (default 0.2, N = 200; sampling time is per EM step, so it is scaled to each
T's N). Both paths run alternating, ``--repeats`` times each; every phase's best time is reported, and both
paths' evaluation numbers are printed side by side (equal up to float rounding at the first step). Its wall
time estimate is for 3-seed groups per T handed to the workers in order (the grouping before this change).

    taskset -c 1 env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/bench_images.py
    ... benchmarks/bench_images.py --iters 2000 --T 2.0 --repeats 1   # one real group in full (minutes)
    .venv/bin/python benchmarks/bench_images.py --sweep                # the whole sweep (minutes, both cores)
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  # torch.optim's first step imports it (about 1 s, once per process): not training

import core.training.diffusion as training
import core.training.evaluate as evaluation
from core.allocator import keep_freed_memory
from core.diffusion.unet import EnsembleUNet, reference_forward
from core.sweep import group_runs, plan_sweep
from core.training.config import image_config

PHASES = ("training", "bpd", "bound", "sampling", "other eval")
SWEEP_TS = [round(0.2 * k, 1) for k in range(1, 11)]
SWEEP_SEEDS = [0, 1, 2]
SWEEP_ITERS = 2000
STEP_SIZE = 0.001
SHOWN = ("test_bpd", "test_bpd_se", "test_kl", "dsm_train", "dsm_test", "encoder_info", "encoder_prior", "L", "bound")


class Meter:
    """Seconds spent in the evaluation's parts and in the network while sampling; training is the rest."""

    WRAPPED = {"test_bpd": "bpd", "encoder_terms": "bound", "dsm_eval": "bound", "clean_batch_L": "bound",
               "euler_maruyama": "sampling"}

    def __init__(self) -> None:
        self.seconds = {name: 0.0 for name in (*PHASES, "network", "evaluation", "total")}
        self._sampling = False

    @contextlib.contextmanager
    def installed(self, forward):
        """Timers around the evaluation's functions; ``forward`` becomes EnsembleUNet.forward meanwhile."""
        real = {name: getattr(evaluation, name) for name in self.WRAPPED}
        real_eval, real_forward = training.evaluate_ensemble, EnsembleUNet.forward
        meter = self

        def timed(phase, fn):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                meter._sampling = phase == "sampling"
                try:
                    return fn(*args, **kwargs)
                finally:
                    meter._sampling = False
                    meter.seconds[phase] += time.perf_counter() - start
            return wrapper

        def timed_forward(model, y, t):
            if not meter._sampling:
                return forward(model, y, t)
            start = time.perf_counter()
            try:
                return forward(model, y, t)
            finally:
                meter.seconds["network"] += time.perf_counter() - start

        for name, phase in self.WRAPPED.items():
            setattr(evaluation, name, timed(phase, real[name]))
        training.evaluate_ensemble = timed("evaluation", real_eval)
        EnsembleUNet.forward = timed_forward
        try:
            yield self
        finally:
            for name, fn in real.items():
                setattr(evaluation, name, fn)
            training.evaluate_ensemble, EnsembleUNet.forward = real_eval, real_forward

    def finish(self, total: float) -> dict[str, float]:
        s = self.seconds
        s["total"] = total
        s["training"] = total - s["evaluation"]
        s["other eval"] = s["evaluation"] - s["bpd"] - s["bound"] - s["sampling"]
        return s


def measure_group(T: float, iters: int, forward) -> tuple[dict[str, float], int, list[dict]]:
    """Phase seconds, N and the evaluation records of the sweep's group at T (its seeds as one ensemble)
    trained for ``iters`` iterations with ``forward`` as the U-Net's forward."""
    base = image_config(iters=iters, eval_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        (group,) = group_runs(plan_sweep(base, [T], SWEEP_SEEDS, Path(tmp) / "s"), 1)
        meter = Meter()
        with meter.installed(forward):
            start = time.perf_counter()
            records = [r for r in training.train_diffusion_ensemble([r.config for r in group]) if r["kind"] == "eval"]
            return meter.finish(time.perf_counter() - start), group[0].config.steps, records


def group_seconds(split: dict[str, float], iters: int, steps: int, N: int) -> dict[str, float]:
    """One sweep group's phase seconds: training scaled to the sweep's iterations, sampling to its N steps."""
    out = dict(split)
    out["training"] = split["training"] * SWEEP_ITERS / iters
    out["sampling"] = split["sampling"] * N / steps
    return out


def sweep_wall(per_group: list[float], jobs: int) -> float:
    """Makespan of the groups handed in order to the first free of ``jobs`` workers."""
    free = [0.0] * jobs
    for seconds in per_group:
        i = free.index(min(free))
        free[i] += seconds
    return max(free)


def estimate(split: dict[str, float], iters: int, steps: int, jobs: int) -> tuple[dict[str, float], float]:
    """Per-run phase seconds (each group's over its runs, averaged over the sweep's T) and the sweep's wall time."""
    groups = [group_seconds(split, iters, steps, round(T / STEP_SIZE)) for T in SWEEP_TS]
    per_run = {p: sum(g[p] for g in groups) / len(groups) / len(SWEEP_SEEDS) for p in PHASES}
    per_run["total"] = sum(per_run[p] for p in PHASES)
    wall = sweep_wall([sum(g[p] for p in PHASES) for g in groups], jobs)
    return per_run, wall


def run_whole_sweep(jobs: int) -> None:
    """The README digits sweep as `infogen sweep` runs it, timed from start to summary."""
    from core.sweep import run_sweep

    base = image_config(iters=SWEEP_ITERS, eval_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = [e for e in run_sweep(base, SWEEP_TS, SWEEP_SEEDS, Path(tmp) / "sweep", jobs=jobs)
                   if e["kind"] == "summary"][0]["summary"]
        wall = time.perf_counter() - start
    print(f"digits sweep: {len(SWEEP_TS)} T x {len(SWEEP_SEEDS)} seeds, {SWEEP_ITERS} iterations, {jobs} worker "
          f"processes: wall {wall:.1f} s")
    for T, bound, bpd in zip(summary["T"], summary["bound_mean"], summary["bpd_mean"]):
        print(f"  T = {T:g}: bound {bound:.4g}, test BPD {bpd:.3f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=200, help="training iterations of the proxy group (scaled to 2,000)")
    p.add_argument("--T", type=float, default=0.2, help="the group whose sampling is timed (scaled to every N)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes of the estimated sweep")
    p.add_argument("--repeats", type=int, default=2, help="runs of each path (alternating); the best time per phase")
    p.add_argument("--sweep", action="store_true", help="run the README digits sweep in full and print its wall time")
    args = p.parse_args()
    keep_freed_memory()  # as the CLI and the sweep workers do
    if args.sweep:
        run_whole_sweep(args.jobs)
        return
    torch.set_num_threads(1)

    paths = {"before (vmap)": reference_forward, "now": EnsembleUNet.forward}
    best: dict[str, dict[str, float]] = {}
    records: dict[str, list[dict]] = {}
    steps = 0
    for _ in range(args.repeats):
        for name, forward in paths.items():
            split, steps, records[name] = measure_group(args.T, args.iters, forward)
            best[name] = {k: min(v, best.get(name, {}).get(k, v)) for k, v in split.items()}

    print(f"proxy: the T = {args.T:g} group ({len(SWEEP_SEEDS)} seeds as one ensemble, N = {steps}), {args.iters} "
          f"iterations, one thread, best of {args.repeats}; per run: scaled to {SWEEP_ITERS} iterations and to "
          f"N = round(1000 T), averaged over T = {SWEEP_TS[0]}..{SWEEP_TS[-1]}")
    estimates = {name: estimate(split, args.iters, steps, args.jobs) for name, split in best.items()}
    names = list(paths)
    header = "".join(f"{n + ' proxy (s)':>25}{n + ' per run (s)':>27}" for n in names)
    print(f"{'phase':<20}{header}{'ratio':>8}")
    for phase in (*PHASES, "total"):
        cells = "".join(f"{best[n][phase]:>25.2f}{estimates[n][0][phase]:>27.2f}" for n in names)
        ratio = estimates[names[0]][0][phase] / max(estimates[names[1]][0][phase], 1e-9)
        print(f"{phase:<20}{cells}{ratio:>8.2f}")
        if phase == "sampling":
            shares = "".join(f"{best[n]['network']:>25.2f}{'':>27}" for n in names)
            print(f"{'  of which network':<20}{shares}")
    walls = [estimates[n][1] for n in names]
    print(f"estimated sweep wall time ({len(SWEEP_TS)} groups on {args.jobs} workers, one core each): "
          + ", ".join(f"{n} {w:.0f} s" for n, w in zip(names, walls)) + f"; ratio {walls[0] / walls[1]:.2f}")

    print("\nlast run's evaluation numbers per seed (before / now):")
    for key in SHOWN:
        pairs = [(a.get(key), b.get(key)) for a, b in zip(records[names[0]], records[names[1]])]
        print(f"  {key:<14}" + "  ".join(f"{a:.6g} / {b:.6g}" for a, b in pairs if a is not None))


if __name__ == "__main__":
    main()
