"""Where a sweep's time goes, against this machine's floor: training, the evaluations' sampling passes (the
Euler-Maruyama generator and the probe for L) and the rest of the evaluation.

The wall time is the user's path (`run_sweep` over one worker process per core). The split is measured by
training the sweep's first ensemble group again in this process with one thread (what each worker does),
timing `evaluate_ensemble` and `euler_maruyama` and counting every row the score network processes. Each
phase's floor is its FLOPs divided by the GFLOP/s that torch reaches here, in the same run, on the same
batched matmul shapes (the network's layers as baddbmm, forward only; training counts 3x the forward FLOPs).

    python benchmarks/bench_sweep.py --quick       # 3 T x 1 seed, 1000 iterations, an evaluation every 500
    python benchmarks/bench_sweep.py               # the README sweep: T 0.2:1.8:0.2 x seeds 0,1,2, 10,000 iterations
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import torch

import core.training.diffusion as training
import core.training.evaluate as evaluation
from core.diffusion.score_mlp import EnsembleMLP
from core.sweep import default_jobs, group_runs, plan_sweep, run_sweep
from core.training.config import DiffusionConfig


class Meter:
    """Seconds spent in the wrapped functions and rows pushed through the score network (with and without
    autograd)."""

    def __init__(self) -> None:
        self.seconds = {"evaluation": 0.0, "sampling": 0.0}
        self.rows = {"train": 0, "infer": 0}

    @contextlib.contextmanager
    def installed(self):
        real_eval, real_em, real_forward = training.evaluate_ensemble, evaluation.euler_maruyama, EnsembleMLP.forward
        meter = self

        def timed(name, fn):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    meter.seconds[name] += time.perf_counter() - start
            return wrapper

        def counted_forward(self, y, t):
            meter.rows["train" if torch.is_grad_enabled() else "infer"] += y.shape[0] * y.shape[1]
            return real_forward(self, y, t)

        training.evaluate_ensemble = timed("evaluation", real_eval)
        evaluation.euler_maruyama = timed("sampling", real_em)
        EnsembleMLP.forward = counted_forward
        try:
            yield self
        finally:
            training.evaluate_ensemble, evaluation.euler_maruyama, EnsembleMLP.forward = real_eval, real_em, real_forward


def layer_widths(cfg: DiffusionConfig, data_dim: int = 2) -> list[int]:
    return [data_dim + 1] + [cfg.hidden] * 3 + [data_dim]


def forward_flops_per_row(widths: list[int]) -> int:
    """Multiply-adds of one row through the network's layers, counted as 2 FLOPs each."""
    return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def gflops(widths: list[int], members: int, rows: int, seconds: float = 1.0) -> float:
    """GFLOP/s of the network's layer matmuls (baddbmm) for ``members`` x ``rows``, one thread, no autograd."""
    hs = [torch.randn(members, rows, a) for a in widths[:-1]]
    ws = [torch.randn(members, a, b) * 0.1 for a, b in zip(widths[:-1], widths[1:])]
    bs = [torch.zeros(members, 1, b) for b in widths[1:]]
    flops = members * rows * forward_flops_per_row(widths)
    with torch.no_grad():
        for h, w, b in zip(hs, ws, bs):
            torch.baddbmm(b, h, w)  # warm up
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for h, w, b in zip(hs, ws, bs):
                torch.baddbmm(b, h, w)
            n += 1
    return n * flops / (time.perf_counter() - start) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small sweep (seconds) instead of the README's")
    p.add_argument("--skip-wall", action="store_true", help="only the split (no run of the whole sweep)")
    args = p.parse_args()
    if args.quick:
        Ts, seeds, base = [0.2, 0.6, 1.0], [0], DiffusionConfig(data="swissroll", m=200, iters=1000, eval_every=500)
    else:
        Ts = [round(0.2 * k, 1) for k in range(1, 10)]
        seeds, base = [0, 1, 2], DiffusionConfig(data="swissroll", m=200, iters=10_000, eval_every=1000)
    jobs = default_jobs()
    if not args.skip_wall:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            for _ in run_sweep(base, Ts, seeds, Path(tmp) / "sweep", jobs=jobs):
                pass
            wall = time.perf_counter() - start
        print(f"sweep: {len(Ts)} T x {len(seeds)} seeds, {base.iters} iterations, {jobs} worker processes: "
              f"wall {wall:.1f} s")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        group = group_runs(plan_sweep(base, Ts, seeds, Path(tmp) / "s"), jobs)[0]
        meter = Meter()
        with meter.installed():
            start = time.perf_counter()
            for _ in training.train_diffusion_ensemble([r.config for r in group]):
                pass
            total = time.perf_counter() - start
    members = len(group)
    widths = layer_widths(base)
    per_row = forward_flops_per_row(widths)
    train_rows_per_member = base.batch if base.batch < base.m else base.m
    train_gflops = gflops(widths, members, train_rows_per_member)
    infer_gflops = gflops(widths, members, base.n_gen)
    torch.set_num_threads(threads)

    evaluation_s, sampling_s = meter.seconds["evaluation"], meter.seconds["sampling"]
    phases = [
        ("training", total - evaluation_s, 3 * per_row * meter.rows["train"], train_gflops),
        ("evaluation: sampling", sampling_s, per_row * meter.rows["infer"], infer_gflops),
        ("evaluation: the rest", evaluation_s - sampling_s, None, None),
    ]
    print(f"split of one worker's group ({members} runs as one ensemble, one thread): {total:.1f} s")
    print(f"{'phase':<24}{'time (s)':>10}{'GFLOP':>10}{'GFLOP/s here':>14}{'floor (s)':>11}{'ratio':>8}")
    for name, seconds, flops, rate in phases:
        if flops is None:
            print(f"{name:<24}{seconds:>10.1f}{'':>10}{'':>14}{'':>11}{'':>8}")
            continue
        floor = flops / (rate * 1e9)
        print(f"{name:<24}{seconds:>10.1f}{flops / 1e9:>10.1f}{rate:>14.1f}{floor:>11.1f}{seconds / floor:>8.2f}")
    print("floor: the phase's FLOPs at the GFLOP/s of the same baddbmm shapes, measured above (target ratio <= 1.3)")


if __name__ == "__main__":
    main()
