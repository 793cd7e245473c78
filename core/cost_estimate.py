"""What a diffusion run of the score MLP will cost in time, said before it starts.

Almost all of a point-data run's time is matrix products of the score MLP: the training steps (forward, weight
and input gradients) and the evaluations' Euler-Maruyama passes (draws x samples x N steps, plus the probe on
the training points). The estimate counts those FLOPs and divides them by the GFLOP/s that this machine
reaches on the network's main product (measured once per process, in about 20 ms), times the overhead over
that floor that benchmarks/bench_sweep.py measures (the README's "Where the time goes"). It is an estimate:
other work on the machine, and the evaluation's smaller parts, make the real time differ by some tens of
percent. Image runs (the U-Net) get no estimate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import torch

from .diffusion.ensemble_mlp_kernels import onednn_inference, onednn_training
from .training.config import DiffusionConfig

# Measured time over the rate ``matmul_gflops`` reads (one worker's group of 14 runs, one thread; the split of
# benchmarks/bench_sweep.py), by the path the network takes (core/kernel_choice.py): on a CPU where oneDNN is the
# faster path it runs sampling well under that rate; where torch's batched matmul is (or on CUDA), both run over
# it, the SiLU's share included (torch path, the split's 1,000 iterations: 7.5-7.9 s of training against 3.9 s,
# and 92 s of sampling against 54 s, at the 145 GFLOP/s that matmul_gflops read that day; the machine's rate
# moved by 10-15% within the day).
TRAINING_OVER_FLOOR = {"onednn": 1.3, "torch": 2.0}
SAMPLING_OVER_FLOOR = {"onednn": 0.6, "torch": 1.7}
PROBE_PASSES = 2  # the reference-2d probe evaluates the network twice per step on the training points


def mlp_flops_per_row(cfg: DiffusionConfig, data_dim: int = 2) -> tuple[int, int]:
    """(forward, training) FLOPs of one row through the score MLP: training adds the weight gradients and the
    input gradients of every layer but the first."""
    widths = [data_dim + 1] + [cfg.hidden] * 3 + [data_dim]
    layers = [2 * a * b for a, b in zip(widths[:-1], widths[1:])]
    forward = sum(layers)
    return forward, 2 * forward + sum(layers[1:])


@lru_cache(maxsize=8)
def matmul_gflops(device: str = "cpu", threads: int | None = None) -> float:
    """GFLOP/s of a member-batched 128 x 128 product on ``device`` with ``threads`` CPU threads (None: the
    current count), measured once per process and argument."""
    if threads is not None and threads != torch.get_num_threads():
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return matmul_gflops(device, threads)
        finally:
            torch.set_num_threads(previous)
    dev = torch.device(device)
    h = torch.randn(8, 256, 128, device=dev)
    w = torch.randn(8, 128, 128, device=dev)
    b = torch.zeros(8, 1, 128, device=dev)
    flops = 2 * 8 * 256 * 128 * 128
    with torch.no_grad():
        torch.baddbmm(b, h, w)
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(4):
                torch.baddbmm(b, h, w)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            best = min(best, (time.perf_counter() - start) / 4)
    return flops / best / 1e9


@dataclass(frozen=True)
class TimeEstimate:
    """Seconds for training and for each evaluation, and how many evaluations, of one run or a whole sweep."""

    training_s: float
    evaluation_s: float
    final_evaluation_s: float
    n_evaluations: int
    samples_per_eval: str

    @property
    def total_s(self) -> float:
        return self.training_s + self.evaluation_s * (self.n_evaluations - 1) + self.final_evaluation_s

    def describe(self) -> str:
        """One line, e.g. '≈ 3 min: training 1 min 10 s, 11 evaluations × 9 s (8 × 1000 samples × 1000 steps)'."""
        if self.n_evaluations > 1 and abs(self.final_evaluation_s - self.evaluation_s) > 0.05 * self.final_evaluation_s:
            evals = (f"{self.n_evaluations - 1} previews × {format_seconds(self.evaluation_s)} and a full evaluation of "
                     f"{format_seconds(self.final_evaluation_s)}")
        else:
            evals = f"{self.n_evaluations} evaluation{'s' if self.n_evaluations != 1 else ''} × {format_seconds(self.final_evaluation_s)}"
        return (f"≈ {format_seconds(self.total_s)}: training {format_seconds(self.training_s)}, {evals} "
                f"({self.samples_per_eval})")


def format_seconds(seconds: float) -> str:
    """'0.4 s', '12 s', '3 min 5 s', '1 h 20 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def estimate_diffusion_time(cfg: DiffusionConfig, runs: int = 1, workers: int = 1, gflops: float | None = None) -> TimeEstimate | None:
    """The time of ``runs`` runs like ``cfg`` spread over ``workers`` parallel workers (a sweep), or None for
    image data. ``gflops``: the rate of one worker (default: measured here once; a sweep's workers have one
    thread each)."""
    if cfg.is_images:
        return None
    if gflops is None:
        gflops = matmul_gflops(cfg.device, 1 if workers > 1 else None)
    rate = gflops * 1e9
    on_cpu = torch.device(cfg.device).type == "cpu"  # elsewhere the batched torch path runs
    training_path = "onednn" if on_cpu and onednn_training(torch.zeros(1)) else "torch"
    sampling_path = "onednn" if on_cpu and onednn_inference(torch.zeros(1)) else "torch"
    forward, train = mlp_flops_per_row(cfg)
    per_worker = math.ceil(runs / max(1, workers))
    training = per_worker * cfg.iters * cfg.m * train / rate * TRAINING_OVER_FLOOR[training_path]

    def evaluation(final: bool) -> float:
        n_gen, draws = cfg.eval_sampling(final)
        rows = n_gen * draws + PROBE_PASSES * cfg.m
        return per_worker * rows * cfg.steps * forward / rate * SAMPLING_OVER_FLOOR[sampling_path]

    n_gen, draws = cfg.n_gen, cfg.test_kl_draws
    what = f"{draws} × {n_gen} samples × {cfg.steps} steps" if draws > 1 else f"{n_gen} samples × {cfg.steps} steps"
    if cfg.preview_evals:
        what += f"; previews {min(cfg.preview_samples, n_gen)} samples"
    return TimeEstimate(training, evaluation(final=False), evaluation(final=True), cfg.evaluation_count, what)
