"""VAE epoch time: our training generator against a bare hand-written torch loop of the same model.

Same Bernoulli MLP VAE (the paper's: 1024 -> 512 -> 256 -> 16 and back, docs/vae-bound.md#model), same data (mnist5k, 4,000
training images padded to 32x32, dynamically binarized), batch 64, Adam lr 1e-3, one thread each. The bare
loop only trains; ours also computes the mutual-information sample against the frozen reference generator
at every step, yields a record per step and, per epoch, evaluates the test set and both bounds (reported
separately). Importance-sampled log p(x) is off (it is an every-k-epochs cost, not an epoch's).

With --split: where the time of a whole run goes (training steps, test-set pass, importance-sampled log p(x),
the rest of the epoch's end: bounds, sample images, records), measured on a proxy of --proxy-epochs epochs
with log p(x) at the run's own cadence (every ``logpx_every`` epochs and at the last, K = ``logpx_K``: 5 and 256
by default) and scaled to --epochs, for the current code and for the code before issue #12 (BaselineEstimates:
MKL matrix products and the BCE for the test pass and log p(x), which is what the current code does with
autograd on), alternated --repeats times in one process. Training is the same code in both, so the two runs'
records differ only by the float rounding of the estimates; the largest relative difference is printed.

    python benchmarks/bench_vae.py [--epochs 3] [--data mnist5k|digits]
    python benchmarks/bench_vae.py --split [--epochs 100] [--proxy-epochs 5] [--repeats 2] [--data mnist5k|digits]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from typing import Callable, Iterator

import torch
from torch import nn

import core.vae.train as vae_train
from core.bounds.gaussian import kl_diagonal_to_standard
from core.vae.config import VAEConfig
from core.vae.model import LOG_2PI, VAE
from core.vae.train import load_vae_data, train_vae

COMPARED = ("rec_train", "kl_train", "mi_train", "rec_test", "kl_test", "bound_encoder_only", "bound_encoder_generator",
            "log_px_train", "log_px_test")


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


def baseline_terms(self: VAE, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """VAE.terms before issue #12: the autograd-path decoder (net(z), BCE) also without autograd."""
    mean, logvar = self.encoder(x).chunk(2, dim=-1)
    logvar = logvar.clamp(-30.0, 20.0)
    eps = torch.randn(mean.shape, generator=generator, device=generator.device).to(mean)
    z = mean + torch.exp(0.5 * logvar) * eps
    log_p = self.decoder.log_prob(x, z, fast=False)
    with torch.no_grad():
        log_p0 = self.reference.log_prob(x, z, fast=False)
    return {"rec": -log_p, "kl": kl_diagonal_to_standard(mean, logvar), "mi": log_p.detach() - log_p0}


def baseline_log_px(self: VAE, x: torch.Tensor, K: int, generator: torch.Generator, chunk: int = 64) -> torch.Tensor:
    """VAE.log_px before issue #12: each chunk of 64 samples x 500 examples through the decoder in one pass."""
    with torch.no_grad():
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        logvar = logvar.clamp(-30.0, 20.0)
        std = torch.exp(0.5 * logvar)
        parts = []
        for start in range(0, K, chunk):
            k = min(chunk, K - start)
            eps = torch.randn((k, *mean.shape), generator=generator, device=generator.device).to(mean)
            z = mean + std * eps
            log_prior = (-0.5 * (z**2 + LOG_2PI)).sum(-1)
            log_q = (-0.5 * (eps**2 + LOG_2PI) - 0.5 * logvar).sum(-1)
            parts.append(self.decoder.log_prob(x, z, fast=False) + log_prior - log_q)
        return torch.logsumexp(torch.cat(parts), dim=0) - math.log(K)


@contextlib.contextmanager
def baseline_estimates() -> Iterator[None]:
    """The estimates (test pass, log p(x)) of the code before issue #12, for the duration of the block."""
    saved = VAE.terms, VAE.log_px
    VAE.terms, VAE.log_px = baseline_terms, baseline_log_px
    try:
        yield
    finally:
        VAE.terms, VAE.log_px = saved


@contextlib.contextmanager
def timing(names: tuple[str, ...]) -> Iterator[dict[str, float]]:
    """Seconds spent in the named functions of core.vae.train during the block."""
    spent = {name: 0.0 for name in names}
    saved = {name: getattr(vae_train, name) for name in names}

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    for name, fn in saved.items():
        setattr(vae_train, name, timed(name, fn))
    try:
        yield spent
    finally:
        for name, fn in saved.items():
            setattr(vae_train, name, fn)


def split_run(cfg: VAEConfig) -> tuple[dict[str, float], list[dict]]:
    """({phase: seconds}, epoch records) of one train_vae run: training (the optimizer steps, with the reference
    generator's forward for mi), the test-set pass, log p(x) (train and test sets) and the rest of the epochs' ends."""
    training, ends, epochs = 0.0, 0.0, []
    with timing(("evaluate", "mean_log_px")) as spent:
        epoch_start = last_step = time.perf_counter()
        for record in train_vae(cfg):  # timed here: a record's own wall is taken before its log p(x)
            now = time.perf_counter()
            if record["kind"] == "start":  # data loaded, model built
                epoch_start = now
            elif record["kind"] == "step":
                last_step = now
            elif record["kind"] == "epoch":
                training += last_step - epoch_start
                ends += now - last_step
                epoch_start = now
                epochs.append(record)
    phases = {"training": training, "test pass": spent["evaluate"], "log p(x)": spent["mean_log_px"]}
    phases["bounds, samples, records"] = ends - spent["evaluate"] - spent["mean_log_px"]
    return phases, epochs


def logpx_passes(epochs: int, every: int) -> int:
    """How many epochs of a run compute log p(x): every ``every``-th and the last (train_vae's rule)."""
    return 0 if not every else sum(1 for e in range(1, epochs + 1) if e % every == 0 or e == epochs)


def scaled(phases: dict[str, float], proxy: VAEConfig, epochs: int) -> dict[str, float]:
    """A proxy run's phases scaled to a run of ``epochs`` epochs: per-epoch phases by epochs, log p(x) by passes."""
    out = {k: v * epochs / proxy.epochs for k, v in phases.items()}
    passes = logpx_passes(proxy.epochs, proxy.logpx_every)
    out["log p(x)"] = phases["log p(x)"] * logpx_passes(epochs, proxy.logpx_every) / passes if passes else 0.0
    return out


def largest_difference(old: list[dict], new: list[dict]) -> tuple[float, str]:
    """The largest relative difference between two runs' epoch records, over COMPARED, and where it is."""
    worst, where = 0.0, ""
    for a, b in zip(old, new):
        for key in COMPARED:
            if key in a:
                diff = abs(a[key] - b[key]) / max(abs(a[key]), 1e-30)
                if diff >= worst:
                    worst, where = diff, f"{key} at epoch {a['epoch']}"
    return worst, where


def split_report(cfg: VAEConfig, epochs: int, repeats: int) -> None:
    """Runs the proxy old/new alternately and prints the scaled split of both, the ratio and the difference."""
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    records: dict[str, list[dict]] = {}
    for _ in range(repeats):
        with baseline_estimates():
            phases, records["before"] = split_run(cfg)
        runs["before"].append(phases)
        phases, records["after"] = split_run(cfg)
        runs["after"].append(phases)
    best = {name: {k: min(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    est = {name: scaled(ph, cfg, epochs) for name, ph in best.items()}
    print(f"VAE run split, {cfg.data} m={cfg.m} n_test={cfg.n_test} preset {cfg.preset} batch {cfg.batch}, one thread: "
          f"proxy of {cfg.epochs} epochs with log p(x) (K={cfg.logpx_K}) every {cfg.logpx_every} epochs and at the last "
          f"({logpx_passes(cfg.epochs, cfg.logpx_every)} passes), scaled to {epochs} epochs "
          f"({logpx_passes(epochs, cfg.logpx_every)} passes); best of {repeats} alternated runs each")
    print(f"  {'phase':26s} {'before s':>10s} {'after s':>10s} {'ratio':>7s}")
    for key in est["before"]:
        b, a = est["before"][key], est["after"][key]
        print(f"  {key:26s} {b:10.1f} {a:10.1f} {b / a if a else float('nan'):7.2f}")
    total_b, total_a = sum(est["before"].values()), sum(est["after"].values())
    print(f"  {'total':26s} {total_b:10.1f} {total_a:10.1f} {total_b / total_a:7.2f}")
    worst, where = largest_difference(records["before"], records["after"])
    print(f"  largest relative difference between the two runs' epoch records: {worst:.2e} ({where})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None, help="epochs timed (default 3), or of the run --split estimates (100)")
    p.add_argument("--data", default="mnist5k", choices=["mnist5k", "digits"])
    p.add_argument("--split", action="store_true", help="time split of a whole run, before and after issue #12")
    p.add_argument("--proxy-epochs", type=int, default=5, help="epochs actually run for --split")
    p.add_argument("--repeats", type=int, default=2, help="alternated before/after runs for --split")
    args = p.parse_args()
    torch.set_num_threads(1)
    sizes = {"m": 4000, "n_test": 1000} if args.data == "mnist5k" else {"m": 1500, "n_test": 297}
    if args.split:
        split_report(VAEConfig(data=args.data, epochs=args.proxy_epochs, **sizes), args.epochs or 100, args.repeats)
        return
    args.epochs = args.epochs or 3
    cfg = VAEConfig(data=args.data, epochs=args.epochs, logpx_every=0, **sizes)
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
