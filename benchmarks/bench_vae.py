"""VAE epoch time: our training generator against a bare hand-written torch loop of the same model.

Same Bernoulli MLP VAE (the paper's: 1024 -> 512 -> 256 -> 16 and back, docs/vae-bound.md#model), same data (mnist5k, 4,000
training images padded to 32x32, dynamically binarized), batch 64, Adam lr 1e-3, one thread each. The bare
loop only trains; ours also computes the mutual-information sample against the frozen reference generator
at every step, yields a record per step and, per epoch, evaluates the test set and both bounds (reported
separately). Importance-sampled log p(x) is off (it is an every-k-epochs cost, not an epoch's).

    python benchmarks/bench_vae.py [--epochs 3] [--data mnist5k|digits]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from core.vae.config import VAEConfig
from core.vae.train import load_vae_data, train_vae


def bare_epochs(x: torch.Tensor, epochs: int, batch: int = 64, hidden=(512, 256), latent: int = 16) -> float:
    """Seconds per epoch of the plainest correct VAE loop."""
    d = x.shape[1]
    enc = nn.Sequential(nn.Linear(d, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                        nn.Linear(hidden[1], 2 * latent))
    dec = nn.Sequential(nn.Linear(latent, hidden[1]), nn.ReLU(), nn.Linear(hidden[1], hidden[0]), nn.ReLU(),
                        nn.Linear(hidden[0], d))
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(batch):
            xb = torch.bernoulli(x[idx])
            mean, logvar = enc(xb).chunk(2, dim=-1)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            rec = nn.functional.binary_cross_entropy_with_logits(dec(z), xb, reduction="sum")
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum()
            opt.zero_grad()
            (rec + kl).backward()
            opt.step()
    return (time.perf_counter() - t0) / epochs


def ours(cfg: VAEConfig) -> tuple[float, float]:
    """(seconds per epoch including its evaluation, seconds of that evaluation per epoch)."""
    last_step_wall, eval_time, walls = 0.0, 0.0, []
    for record in train_vae(cfg):
        if record["kind"] == "step":
            last_step_wall = record["wall"]
        elif record["kind"] == "epoch":
            eval_time += record["wall"] - last_step_wall
            walls.append(record["wall"])
    return walls[-1] / len(walls), eval_time / len(walls)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--data", default="mnist5k", choices=["mnist5k", "digits"])
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = VAEConfig(data=args.data, m=4000 if args.data == "mnist5k" else 1500, n_test=1000 if args.data == "mnist5k" else 297,
                    epochs=args.epochs, logpx_every=0)
    x = torch.from_numpy(load_vae_data(cfg)[0])
    torch.manual_seed(0)
    bare_epochs(x, 1)  # warm-up
    bare = bare_epochs(x, args.epochs)
    ours_epoch, ours_eval = ours(cfg)
    bare_after = bare_epochs(x, args.epochs)
    base = (bare + bare_after) / 2
    print(f"VAE epoch, {args.data} m={cfg.m} batch {cfg.batch}, one thread, {args.epochs} epochs each")
    print(f"  bare torch loop      {base * 1000:8.1f} ms/epoch (before {bare * 1000:.1f}, after {bare_after * 1000:.1f})")
    print(f"  train_vae            {ours_epoch * 1000:8.1f} ms/epoch, of which test-set evaluation and bounds {ours_eval * 1000:.1f}")
    print(f"  ratio                {ours_epoch / base:8.2f}x the bare loop's time "
          f"({(ours_epoch - ours_eval) / base:.2f}x for the training part alone)")


if __name__ == "__main__":
    main()
