"""The MLP VAE of the paper's experiments and the likelihoods its bounds need (docs/vae-bound.md#model).

Encoder Q(z|x) = N(mu(x), diag sigma^2(x)); prior N(0, I); generator P(x|z) Bernoulli (binarized images,
pixel probabilities sigmoid(f(z))) or Gaussian (continuous data, one learned log-scale). The reference
generator theta_0 is a second decoder with its own initialization that is never trained: its parameters are
frozen (requires_grad False) and it is not part of ``trainable_parameters`` (docs/vae-bound.md#reference-generator).
Without autograd (the test pass, log p(x)) the MLPs take a faster inference path, mlp_no_grad, that gives the same
numbers up to float rounding; training, and so the mi sample, keeps the autograd path (issue #12).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .. import onednn
from ..bounds.gaussian import kl_diagonal_to_standard

PRESETS = {"paper": ((512, 256), 16), "small": ((128, 64), 8)}
LOG_2PI = math.log(2 * math.pi)
LOG_PX_ROWS = 2048  # decoder rows per pass in log_px: the (rows, data_dim) activations stay in the CPU's caches


def mlp(widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def mlp_no_grad(net: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """net(h) without autograd: on CPU float32 through oneDNN's linear with the ReLU fused, else net(h). Equal to
    net(h) up to float rounding (the products are summed in another order)."""
    with torch.no_grad():  # inside the body: mutmut skips decorated functions
        layers = list(net)
        plain = not all(isinstance(layer, (nn.Linear, nn.ReLU)) for layer in layers)
        if plain or not onednn.usable(h, activation="relu"):
            return net(h)
        lead = h.shape[:-1]
        h = h.reshape(-1, h.shape[-1])
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Linear):
                relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
                h = onednn.linear(h, layer.weight, layer.bias, "relu" if relu else "none")
        return h.reshape(*lead, h.shape[-1])


class Decoder(nn.Module):
    """z -> logits (Bernoulli) or means (Gaussian, with a learned log-scale)."""

    def __init__(self, latent: int, hidden: Sequence[int], data_dim: int, likelihood: str) -> None:
        super().__init__()
        self.net = mlp([latent, *reversed(hidden), data_dim])
        self.likelihood = likelihood
        self.log_scale = nn.Parameter(torch.zeros(())) if likelihood == "gaussian" else None

    def log_prob(self, x: torch.Tensor, z: torch.Tensor, fast: bool | None = None) -> torch.Tensor:
        """log P(x|z) summed over pixels; broadcasts a leading sample axis of z.

        ``fast`` (default: when autograd is off) takes the inference path, mlp_no_grad and x l - softplus(l), which
        is the same value up to float rounding.
        """
        fast = not torch.is_grad_enabled() if fast is None else fast
        out = mlp_no_grad(self.net, z) if fast else self.net(z)
        if self.likelihood == "bernoulli":
            if fast:  # one pass over the logits less than the BCE with its broadcast x
                return (out * x).sum(-1) - nn.functional.softplus(out).sum(-1)
            return -nn.functional.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none").sum(-1)
        var = torch.exp(2 * self.log_scale)
        return (-0.5 * ((x - out) ** 2 / var + 2 * self.log_scale + LOG_2PI)).sum(-1)


class VAE(nn.Module):
    """Encoder, trained generator and frozen reference generator."""

    def __init__(self, data_dim: int, hidden: Sequence[int] = (512, 256), latent: int = 16,
                 likelihood: str = "bernoulli", reference_seed: int = 0) -> None:
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be bernoulli or gaussian, got {likelihood!r}")
        self.latent = latent
        self.encoder = mlp([data_dim, *hidden, 2 * latent])
        self.decoder = Decoder(latent, hidden, data_dim, likelihood)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(reference_seed)
            self.reference = Decoder(latent, hidden, data_dim, likelihood)
        self.reference.requires_grad_(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Encoder and generator only: the reference generator is never given to the optimizer."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.encoder(x) if torch.is_grad_enabled() else mlp_no_grad(self.encoder, x)
        mean, logvar = out.chunk(2, dim=-1)
        return mean, logvar.clamp(-30.0, 20.0)

    def terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Per-example rec = -log P(x|z), kl, and the generator-information sample log P(x|z) - log P0(x|z)
        (docs/vae-bound.md#quantities)."""
        mean, logvar = self.encode(x)
        eps = torch.randn(mean.shape, generator=generator, device=generator.device).to(mean)
        z = mean + torch.exp(0.5 * logvar) * eps
        fast = not torch.is_grad_enabled()
        log_p = self.decoder.log_prob(x, z, fast)
        with torch.no_grad():  # on the decoder's path, so that equal generators give mi exactly 0
            log_p0 = self.reference.log_prob(x, z, fast)
        return {"rec": -log_p, "kl": kl_diagonal_to_standard(mean, logvar), "mi": log_p.detach() - log_p0}

    def log_px(self, x: torch.Tensor, K: int, generator: torch.Generator, chunk: int = 64,
               rows: int = LOG_PX_ROWS) -> torch.Tensor:
        """Importance-sampled log p(x) with proposal Q(z|x) and K samples (docs/vae-bound.md#log_px).

        The samples are drawn ``chunk`` at a time (the draws, hence the estimate, do not depend on ``rows``) and
        go through the decoder about ``rows`` decoder rows (samples x examples) at a time, so its activations
        stay in the caches; the encoder runs once.
        """
        with torch.no_grad():  # inside the body: mutmut skips decorated functions
            mean, logvar = self.encode(x)
            std = torch.exp(0.5 * logvar)
            per_pass = max(1, rows // max(1, math.prod(mean.shape[:-1])))
            parts = []
            for start in range(0, K, chunk):
                k = min(chunk, K - start)
                eps = torch.randn((k, *mean.shape), generator=generator, device=generator.device).to(mean)
                z = mean + std * eps
                log_prior = (-0.5 * (z**2 + LOG_2PI)).sum(-1)
                log_q = (-0.5 * (eps**2 + LOG_2PI) - 0.5 * logvar).sum(-1)
                log_p = torch.cat([self.decoder.log_prob(x, zs) for zs in z.split(per_pass)])
                parts.append(log_p + log_prior - log_q)
            return torch.logsumexp(torch.cat(parts), dim=0) - math.log(K)
