"""Where a sweep's time goes, against this machine's floor: training, the evaluations' sampling passes (the
Euler-Maruyama generator and the probe for L) and the rest of the evaluation.

The wall time is the user's path (`run_sweep` over one worker process per core). The split is measured by
training the sweep's first ensemble group again in this process with one thread (what each worker does),
timing `evaluate_ensemble` and `euler_maruyama` and counting every row the score network processes. Each
phase's floor is its FLOPs divided by the GFLOP/s that torch's batched matmul (baddbmm, bmm) reaches here, in
the same run, on the same shapes and layouts (sampling: the forward products; training: the forward products,
every weight gradient and the input gradients of all layers but the first). On the CPU the network runs its
wide products either through that batched matmul or member by member through oneDNN (core/onednn.py), whichever
this process measured to be faster (core/kernel_choice.py; printed below; INFOGEN_KERNELS=onednn or =torch forces
one, to compare).

The floor leaves out work that no step can skip: the SiLU over every hidden activation (and its derivative in
training) and training's Adam step. Their time at torch's own kernels, measured here on the same shapes, gives
each phase's lowest ratio: the ratio it would have if everything else cost nothing. Where that lowest ratio is
above the 1.3 target, only faster elementwise kernels than torch's could meet it on this machine.

    python benchmarks/bench_sweep.py --quick       # 3 T x 1 seed, 1000 iterations, an evaluation every 500
    python benchmarks/bench_sweep.py               # the README sweep: T 0.2:1.8:0.2 x seeds 0,1,2, 10,000 iterations,
                                                   # reference-2d, R = 5, evaluated at the end (the CLI's default)
    python benchmarks/bench_sweep.py --skip-wall   # only the split (one worker's group, --split-iters iterations)
    python benchmarks/bench_sweep.py --full-eval-at-end   # the sweep with previews between, full evaluation at the end
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import tempfile
import time
from pathlib import Path

import torch

import core.training.diffusion as training
from core import kernel_choice
import core.training.evaluate as evaluation
from core.allocator import keep_freed_memory
from core.diffusion.ensemble_mlp_kernels import operand, weight_grad
from core.diffusion.score_mlp import EnsembleMLP
from core.diffusion.ensemble_mlp_kernels import inference_chunk, onednn_inference
from core.diffusion.sampler import even_chunk
from core.sweep import default_jobs, group_runs, plan_sweep, run_sweep
from core.training.config import DiffusionConfig


class Meter:
    """Seconds spent in the wrapped functions, and rows pushed through the score network in training (with
    autograd) and in the sampling passes."""

    def __init__(self) -> None:
        self.seconds = {"evaluation": 0.0, "sampling": 0.0}
        self.rows = {"train": 0, "sampling": 0}
        self.train_calls = 0  # forward passes with autograd: one per optimizer step
        self._sampling = False

    @contextlib.contextmanager
    def installed(self):
        real_eval, real_em, real_forward = training.evaluate_ensemble, evaluation.euler_maruyama, EnsembleMLP.forward
        meter = self

        def timed(name, fn):
            def wrapper(*args, **kwargs):
                start = time.perf_counter()
                meter._sampling = name == "sampling"
                try:
                    return fn(*args, **kwargs)
                finally:
                    meter._sampling = False
                    meter.seconds[name] += time.perf_counter() - start
            return wrapper

        def counted_forward(self, y, t, workspace=None):
            rows = y.shape[0] * y.shape[1]
            if torch.is_grad_enabled():
                meter.rows["train"] += rows
                meter.train_calls += 1
            elif meter._sampling:
                meter.rows["sampling"] += rows
            return real_forward(self, y, t, workspace)

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


def training_flops_per_row(widths: list[int]) -> int:
    """The forward, every weight gradient and the input gradients of all layers but the first."""
    layers = list(zip(widths[:-1], widths[1:]))
    return forward_flops_per_row(widths) * 2 + sum(2 * a * b for a, b in layers[1:])


def _seconds(run, seconds: float = 1.0) -> float:
    """Seconds per call of ``run``: the best of five blocks of seconds / 5 (after one warm-up call), so that a
    moment of slower clock does not count."""
    run()
    best = float("inf")
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            run()
            n += 1
        best = min(best, (time.perf_counter() - start) / n)
    return best


def _rate(flops: float, run, seconds: float) -> float:
    """GFLOP/s of ``run`` (``flops`` each call), timed as ``_seconds`` times it."""
    return flops / _seconds(run, seconds) / 1e9


def inference_gflops(widths: list[int], members: int, rows: int, seconds: float = 1.0) -> float:
    """GFLOP/s of the network's forward matmuls alone (baddbmm, the layouts the network uses) for
    ``members`` x ``rows``, one thread, no autograd."""
    hs = [torch.randn(members, rows, a) for a in widths[:-1]]
    ws = [torch.randn(members, a, b) * 0.1 for a, b in zip(widths[:-1], widths[1:])]
    bs = [torch.zeros(members, 1, b) for b in widths[1:]]

    def run():
        for h, w, b in zip(hs, ws, bs):
            torch.baddbmm(b, h, operand(w))

    with torch.no_grad():
        return _rate(members * rows * forward_flops_per_row(widths), run, seconds)


def training_gflops(widths: list[int], members: int, rows: int, seconds: float = 1.0) -> float:
    """GFLOP/s of a training step's matmuls alone: the forward, the weight gradients and the input
    gradients, in the layouts core/diffusion/ensemble_mlp_kernels.py uses, one thread."""
    hs = [torch.randn(members, rows, a) for a in widths[:-1]]
    gs = [torch.randn(members, rows, b) for b in widths[1:]]
    ws = [torch.randn(members, a, b) * 0.1 for a, b in zip(widths[:-1], widths[1:])]
    bs = [torch.zeros(members, 1, b) for b in widths[1:]]

    def run():
        for i, (h, g, w, b) in enumerate(zip(hs, gs, ws, bs)):
            torch.baddbmm(b, h, operand(w))
            weight_grad(h, g)
            if i > 0:
                torch.bmm(g, operand(w).transpose(1, 2))

    with torch.no_grad():
        return _rate(members * rows * training_flops_per_row(widths), run, seconds)


def sampling_silu_seconds(widths: list[int], members: int, rows: int) -> float:
    """Seconds per row of a sampling pass spent in the SiLU alone: torch's kernel over every hidden activation
    at the shape of the sampler's calls (into a second buffer, so that repeated calls see the same values; the
    sampler applies it in place). The floor leaves it out."""
    hidden = widths[1:-1]
    zs = [torch.randn(members, rows, b) * 2 for b in hidden]
    outs = [torch.empty_like(z) for z in zs]

    def run():
        for z, out in zip(zs, outs):
            torch.ops.aten.silu.out(z, out=out)

    return _seconds(run) / (members * rows)


def training_elementwise_seconds(widths: list[int], members: int, rows: int) -> tuple[float, float]:
    """Seconds per row of a training batch in the SiLU with its derivative over every hidden activation, and per
    fused Adam step over the ensemble's parameters (what training does): work the floor leaves out."""
    hidden = widths[1:-1]
    zs = [torch.randn(members, rows, b) * 2 for b in hidden]
    grads = [torch.randn_like(z) for z in zs]

    def activations():
        for z, g in zip(zs, grads):
            torch.nn.functional.silu(z)
            torch.ops.aten.silu_backward(g, z)

    params = [torch.nn.Parameter(torch.randn(members, a, b) * 0.1) for a, b in zip(widths[:-1], widths[1:])]
    params += [torch.nn.Parameter(torch.zeros(members, 1, b)) for b in widths[1:]]
    for param in params:
        param.grad = torch.randn_like(param) * 1e-3
    optimizer = torch.optim.Adam(params, lr=1e-3, fused=True)
    return _seconds(activations) / (members * rows), _seconds(optimizer.step)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small sweep (seconds) instead of the README's")
    p.add_argument("--skip-wall", action="store_true", help="only the split (no run of the whole sweep)")
    p.add_argument("--split-iters", type=int, default=1000,
                   help="iterations of the split's group (default 1000, one evaluation at the end: the ratios are "
                        "per FLOP, so a shorter run gives them in minutes)")
    p.add_argument("--full-eval-at-end", action="store_true", help="the wall-time sweep evaluates in full only at the end")
    args = p.parse_args()
    keep_freed_memory()  # as the CLI and the sweep workers do
    if args.quick:
        Ts, seeds, base = [0.2, 0.6, 1.0], [0], DiffusionConfig(data="swissroll", m=200, iters=1000, eval_every=500)
    else:
        Ts = [round(0.2 * k, 1) for k in range(1, 10)]
        seeds, base = [0, 1, 2], DiffusionConfig(data="swissroll", m=200, iters=10_000, eval_every=0, R=5.0)
    base = base.with_(variant="reference-2d")
    jobs = default_jobs()
    if not args.skip_wall:
        sweep_base = base.with_(preview_evals=True) if args.full_eval_at_end else base
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            for _ in run_sweep(sweep_base, Ts, seeds, Path(tmp) / "sweep", jobs=jobs):
                pass
            wall = time.perf_counter() - start
        how = "full evaluation at the end, previews between" if args.full_eval_at_end else "every evaluation in full"
        print(f"sweep: {len(Ts)} T x {len(seeds)} seeds, {base.iters} iterations, an evaluation every {base.eval_every} "
              f"({how}), {jobs} worker processes: wall {wall:.1f} s")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    importlib.import_module("torch._dynamo")  # torch.optim imports it at its first step (about 1 s, once per process)
    split = base.with_(iters=args.split_iters, eval_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        group = group_runs(plan_sweep(split, Ts, seeds, Path(tmp) / "s"), jobs)[0]
        meter = Meter()
        with meter.installed():
            start = time.perf_counter()
            for _ in training.train_diffusion_ensemble([r.config for r in group]):
                pass
            total = time.perf_counter() - start
    members = len(group)
    widths = layer_widths(base)
    train_rows = base.batch if base.batch < base.m else base.m
    train_rate = training_gflops(widths, members, train_rows)
    sampling_rows = even_chunk(base.n_gen, inference_chunk(members, torch.zeros(1)))  # the sampler's call size
    sampling_rate = inference_gflops(widths, members, sampling_rows)
    silu_per_row = sampling_silu_seconds(widths, members, sampling_rows)
    train_silu, adam_step = training_elementwise_seconds(widths, members, train_rows)
    torch.set_num_threads(threads)
    sampling_fused = onednn_inference(torch.zeros(1))  # the oneDNN path fuses the SiLU into its product
    unavoidable = {  # seconds each phase needs beyond its floor even at torch's own rates for SiLU and Adam
        "training": train_silu * meter.rows["train"] + adam_step * meter.train_calls,
        "evaluation: sampling": None if sampling_fused else silu_per_row * meter.rows["sampling"],
    }

    evaluation_s, sampling_s = meter.seconds["evaluation"], meter.seconds["sampling"]
    phases = [
        ("training", total - evaluation_s, training_flops_per_row(widths) * meter.rows["train"], train_rate),
        ("evaluation: sampling", sampling_s, forward_flops_per_row(widths) * meter.rows["sampling"], sampling_rate),
        ("evaluation: the rest", evaluation_s - sampling_s, None, None),
    ]
    print(f"split: one worker's group ({members} runs as one ensemble, one thread), {split.iters} iterations, "
          f"one evaluation ({base.test_kl_draws} test-KL draws of {base.n_gen}, N = {base.n_steps}): {total:.1f} s")
    print(f"{'phase':<24}{'time (s)':>10}{'GFLOP':>10}{'GFLOP/s here':>14}{'floor (s)':>11}{'ratio':>8}"
          f"{'SiLU+Adam (s)':>15}{'lowest ratio':>14}")
    for name, seconds, flops, rate in phases:
        if flops is None:
            print(f"{name:<24}{seconds:>10.1f}")
            continue
        floor = flops / (rate * 1e9)
        extra = unavoidable[name]
        lowest = f"{extra:>15.1f}{(floor + extra) / floor:>14.2f}" if extra is not None else f"{'fused':>15}{'':>14}"
        print(f"{name:<24}{seconds:>10.1f}{flops / 1e9:>10.1f}{rate:>14.1f}{floor:>11.1f}{seconds / floor:>8.2f}{lowest}")
    forced = kernel_choice.environment_path()
    chosen = f"forced by {kernel_choice.ENV}={forced}" if forced else kernel_choice.choices()
    print(f"kernel paths (core/kernel_choice.py): {chosen}")
    print("floor: the phase's FLOPs at the GFLOP/s of torch's batched matmul alone (baddbmm/bmm, the same shapes and "
          "layouts; training: its forward and backward products), measured above in this run (target ratio <= 1.3).")
    print(f"SiLU+Adam: the time torch's own kernels need, measured in this run at the same shapes, for the work the "
          f"floor leaves out and no step can skip: the SiLU over every hidden activation (training: with its "
          f"derivative, {train_silu * members * train_rows * 1e3:.2f} ms a step of {members} x {train_rows} rows) "
          f"and training's fused Adam step ({adam_step * 1e3:.2f} ms a step). lowest ratio = (floor + SiLU+Adam) / floor: what a phase would reach if every "
          f"other operation were free. \"fused\": the oneDNN path computes the SiLU inside its product.")


if __name__ == "__main__":
    main()
