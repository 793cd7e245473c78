"""Training throughput: our training generator against a bare hand-written torch loop of the same model.

Same MLP (3 -> 128 -> 128 -> 128 -> 2, Swish), same full batch (200), Adam lr 1e-3, one thread each. Also
reports the batched ensemble a sweep uses (model-steps per second for E runs trained together).

    python benchmarks/bench_training.py [--iters 2000] [--ensemble 14]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from core.allocator import keep_freed_memory
from core.training.config import DiffusionConfig
from core.training.diffusion import train_diffusion, train_diffusion_ensemble


def bare_loop(iters: int, m: int = 200) -> float:
    """Steps/s of the plainest correct DSM loop with nn.Sequential."""
    net = nn.Sequential(nn.Linear(3, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(), nn.Linear(128, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(m, 2)
    T = 0.6
    t0 = time.perf_counter()
    for _ in range(iters):
        opt.zero_grad()
        t = torch.rand(m, 1) * T
        ib = 0.1 * t + 0.5 * 19.9 * t * t
        alpha, std = torch.exp(-0.5 * ib), torch.sqrt(1 - torch.exp(-ib))
        eps = torch.randn(m, 2)
        y = alpha * x + std * eps
        score = net(torch.cat([y, t], 1)) / torch.sqrt(0.1 + 19.9 * t)
        loss = 0.5 * (std * score + eps).pow(2).sum(1).mean()
        loss.backward()
        opt.step()
        loss.item()
    return iters / (time.perf_counter() - t0)


def ours(iters: int, ensemble: int = 1) -> float:
    """Model-steps/s of the training generator (evaluation excluded: it runs only at the end)."""
    cfg = DiffusionConfig(iters=iters, eval_every=0)
    configs = [cfg.with_(seed=s) for s in range(ensemble)]
    t0 = time.perf_counter()
    last = 0.0
    for record in (train_diffusion(cfg) if ensemble == 1 else train_diffusion_ensemble(configs)):
        if record["kind"] == "step" and record["step"] == iters:
            last = time.perf_counter()
            break
    return iters * ensemble / (last - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--ensemble", type=int, default=14)
    args = p.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()  # as the CLI, the sweep workers and the app do (core/allocator.py)
    ours(50)
    bare_loop(50)
    base = bare_loop(args.iters)
    single = ours(args.iters)
    ens = ours(args.iters // 4, args.ensemble)
    print(f"bare torch loop:              {base:8.1f} steps/s")
    print(f"training generator (1 run):   {single:8.1f} steps/s   ratio {single / base:.2f}")
    print(f"ensemble of {args.ensemble:2d} runs:          {ens:8.1f} model-steps/s   ratio {ens / base:.2f}")


if __name__ == "__main__":
    main()
