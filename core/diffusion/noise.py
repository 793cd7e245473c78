"""Per-member random draws: each ensemble member reads only its own generator."""

from __future__ import annotations

from typing import Sequence

import torch


def uniform(generators: Sequence[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """U(0, 1) of shape (E, *shape), row e from generators[e]."""
    if len(generators) == 1:
        return torch.rand(shape, generator=generators[0], device=generators[0].device).unsqueeze(0).to(device)
    return torch.stack([torch.rand(shape, generator=g, device=g.device) for g in generators]).to(device)


def normal(generators: Sequence[torch.Generator], shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """N(0, 1) of shape (E, *shape), row e from generators[e]."""
    if len(generators) == 1:
        return torch.randn(shape, generator=generators[0], device=generators[0].device).unsqueeze(0).to(device)
    return torch.stack([torch.randn(shape, generator=g, device=g.device) for g in generators]).to(device)
