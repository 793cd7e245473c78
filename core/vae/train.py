"""VAE training as a generator of records (docs/vae-bound.md).

Records: ``start``; one ``step`` per minibatch (step, epoch, negative ELBO, wall time); one ``epoch`` record
per epoch with the training ``rec``, ``kl`` and ``mi`` (running averages over the epoch's minibatches, as the
published code does, or a full pass at the epoch's end: docs/vae-bound.md#running-averages), the test
``rec`` and ``kl`` (a full pass at the end of the epoch), both bounds, the test curve and the gaps, and every
``logpx_every`` epochs the importance-sampled log p(x) on train and test; ``error`` on a non-finite loss;
``end`` or ``cancelled``.
Binarized data are resampled (Bernoulli(intensity)) on every pass: dynamic binarization.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator

import numpy as np
import torch

from .. import __version__
from ..data.images import load_images, pad_to, split_images
from ..seeding import stream_seed, torch_generator
from .config import VAEConfig
from .model import PRESETS, VAE

EVAL_CHUNK = 500
N_SAMPLE_IMAGES = 16


def load_vae_data(cfg: VAEConfig) -> tuple[np.ndarray, np.ndarray]:
    """Flattened (train, test) intensities in [0, 1]; 28 x 28 single-channel images (MNIST, Fashion-MNIST)
    zero-padded to 32 x 32 as in the paper."""
    return load_vae_data_with_shape(cfg)[:2]


def load_vae_data_with_shape(cfg: VAEConfig) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """(train, test, (C, H, W)): see load_vae_data."""
    images = load_images(cfg.data, cfg.data_path)
    if images.shape[1:] == (1, 28, 28):
        images = pad_to(images[:, 0], 32)[:, None]
    train, test = split_images(images, cfg.m, cfg.n_test, cfg.seed, cfg.data)
    return train.reshape(len(train), -1), test.reshape(len(test), -1), tuple(int(v) for v in images.shape[1:])


def bounds(rec: float, kl: float, mi: float, m: int, r: float) -> dict[str, float]:
    """encoder-only rec + sqrt(kl) and encoder+generator rec + (1+r) sqrt(kl) + (1+r) sqrt(mi / m).

    docs/vae-bound.md#bounds, with a worked example in #worked-example.
    """
    return {
        "bound_encoder_only": rec + math.sqrt(max(kl, 0.0)),
        "bound_encoder_generator": rec + (1 + r) * math.sqrt(max(kl, 0.0)) + (1 + r) * math.sqrt(max(mi, 0.0) / m),
    }


def train_vae(config: VAEConfig, should_stop: Callable[[], bool] | None = None) -> Iterator[dict]:
    """Train one VAE; yields its records (see the module docstring)."""
    cfg = config.validate()
    device = torch.device(cfg.device)
    train_np, test_np, shape = load_vae_data_with_shape(cfg)
    x_train, x_test = torch.from_numpy(train_np).to(device), torch.from_numpy(test_np).to(device)
    m, d = x_train.shape
    hidden, latent = PRESETS[cfg.preset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(cfg.seed, "init"))
        model = VAE(d, hidden, latent, cfg.likelihood, reference_seed=stream_seed(cfg.seed, "reference")).to(device)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=cfg.lr)
    gen = torch_generator(cfg.seed, "train", device)
    binarize = cfg.likelihood == "bernoulli"
    start = time.perf_counter()
    yield {"kind": "start", "config": cfg.as_dict(), "m": m, "data_dim": d, "image_shape": list(shape), "version": __version__,
           "n_params": sum(p.numel() for p in model.trainable_parameters())}
    z_fixed = torch.randn(N_SAMPLE_IMAGES, latent, generator=torch_generator(cfg.seed, "eval", device), device=device)
    step = 0
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(m, generator=gen, device=gen.device).to(device)
        sums = {"rec": 0.0, "kl": 0.0, "mi": 0.0}
        for begin in range(0, m, cfg.batch):
            if should_stop is not None and should_stop():
                yield {"kind": "cancelled", "step": step, "epoch": epoch, "wall": time.perf_counter() - start}
                return
            xb = x_train[order[begin : begin + cfg.batch]]
            if binarize:
                xb = torch.bernoulli(xb, generator=gen)
            terms = model.terms(xb, gen)
            loss = (terms["rec"] + terms["kl"]).mean()
            step += 1
            if not torch.isfinite(loss):
                yield {"kind": "error", "step": step, "epoch": epoch, "wall": time.perf_counter() - start,
                       "message": f"training loss became {float(loss.detach())} at step {step} (epoch {epoch}); the run was stopped"}
                return
            optimizer.zero_grad(set_to_none=True)
            (loss * len(xb)).backward()  # the ELBO summed over the batch, as in the paper
            optimizer.step()
            for key in sums:
                sums[key] += float(terms[key].detach().sum())
            yield {"kind": "step", "step": step, "epoch": epoch, "loss": float(loss.detach()), "wall": time.perf_counter() - start}
        if cfg.train_stats == "running":
            train_stats = {k: v / m for k, v in sums.items()}
        else:
            train_stats = evaluate(model, x_train, binarize, torch_generator(cfg.seed, "eval", device))
        test_stats = evaluate(model, x_test, binarize, torch_generator(cfg.seed, "eval", device))
        record = {"kind": "epoch", "epoch": epoch, "step": step, "wall": time.perf_counter() - start,
                  "rec_train": train_stats["rec"], "kl_train": train_stats["kl"], "mi_train": train_stats["mi"],
                  "rec_test": test_stats["rec"], "kl_test": test_stats["kl"], "r": cfg.r, "m": m,
                  **bounds(train_stats["rec"], train_stats["kl"], train_stats["mi"], m, cfg.r),
                  "test_curve": test_stats["rec"] + math.sqrt(max(test_stats["kl"], 0.0))}
        record["gap"] = record["test_curve"] - record["bound_encoder_only"]
        record["rec_gap"] = test_stats["rec"] - train_stats["rec"]
        record["neg_elbo_gap"] = (test_stats["rec"] + test_stats["kl"]) - (train_stats["rec"] + train_stats["kl"])
        if cfg.logpx_every and (epoch % cfg.logpx_every == 0 or epoch == cfg.epochs):
            lp_gen = torch_generator(cfg.seed, "eval", device)
            record["log_px_train"] = mean_log_px(model, x_train, binarize, cfg.logpx_K, lp_gen)
            record["log_px_test"] = mean_log_px(model, x_test, binarize, cfg.logpx_K, lp_gen)
        record["samples"] = generated_images(model, z_fixed, shape)
        yield record
    yield {"kind": "end", "step": step, "epoch": cfg.epochs, "status": "finished", "wall": time.perf_counter() - start}


@torch.no_grad()
def evaluate(model: VAE, x: torch.Tensor, binarize: bool, gen: torch.Generator) -> dict[str, float]:
    """Full-pass averages of rec, kl and mi over x, in chunks."""
    sums = {"rec": 0.0, "kl": 0.0, "mi": 0.0}
    for begin in range(0, len(x), EVAL_CHUNK):
        xb = x[begin : begin + EVAL_CHUNK]
        if binarize:
            xb = torch.bernoulli(xb, generator=gen)
        terms = model.terms(xb, gen)
        for key in sums:
            sums[key] += float(terms[key].sum())
    return {k: v / len(x) for k, v in sums.items()}


@torch.no_grad()
def mean_log_px(model: VAE, x: torch.Tensor, binarize: bool, K: int, gen: torch.Generator) -> float:
    total = 0.0
    for begin in range(0, len(x), EVAL_CHUNK):
        xb = x[begin : begin + EVAL_CHUNK]
        if binarize:
            xb = torch.bernoulli(xb, generator=gen)
        total += float(model.log_px(xb, K, gen).sum())
    return total / len(x)


@torch.no_grad()
def generated_images(model: VAE, z: torch.Tensor, shape: tuple[int, int, int]) -> np.ndarray:
    """Mean images of P(x|z) for fixed latent draws in [0, 1], the same z every epoch: (n, H, W) for one
    channel, (n, H, W, C) for colour."""
    out = model.decoder.net(z)
    images = torch.sigmoid(out) if model.decoder.likelihood == "bernoulli" else out.clamp(0.0, 1.0)
    channels, height, width = shape
    images = images.reshape(len(z), channels, height, width).float().cpu().numpy()
    return images[:, 0] if channels == 1 else images.transpose(0, 2, 3, 1)
