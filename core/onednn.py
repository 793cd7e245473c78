"""oneDNN's fused linear layer on the CPU: about twice the GFLOP/s of the default BLAS here, with one thread.

On this machine torch's batched and plain matmuls (MKL) reach about 100 GFLOP/s on one core for the networks'
128- and 512-wide layers, while oneDNN's linear reaches 160-230 and can apply the activation (ReLU, SiLU alias
"swish") in the same pass (benchmarks/bench_sweep.py, benchmarks/bench_vae.py --split). The op is
``torch.ops.mkldnn._linear_pointwise``, the one torch.compile's CPU backend emits; it is private, so it is
checked once per process against the plain formula on a tiny layer, and every caller falls back to plain
torch when it is missing, fails that check, or the tensors are not CPU float32 (CUDA, float64).
Results equal the plain path up to float rounding (the products are summed in another order).
"""

from __future__ import annotations

from functools import cache

import torch
from torch.nn import functional

ACTIVATIONS = {"none": lambda h: h, "relu": torch.relu, "swish": functional.silu}


@cache
def fused_linear_works(activation: str = "none") -> bool:
    """Whether this torch build runs oneDNN's linear with ``activation`` fused, checked once against F.linear."""
    op = getattr(torch.ops.mkldnn, "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    x = torch.linspace(-3, 3, 24).reshape(6, 4)
    w, b = torch.linspace(-1, 1, 12).reshape(3, 4), torch.tensor([0.5, -0.5, 0.25])
    try:
        got = op(x, w, b, activation, [], "")
    except RuntimeError:
        return False
    return torch.allclose(got, ACTIVATIONS[activation](functional.linear(x, w, b)), atol=1e-6)


def usable(*tensors: torch.Tensor, activation: str = "none") -> bool:
    """True when every tensor is a CPU float32 one and the fused op works with ``activation``."""
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors) and fused_linear_works(activation)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, activation: str = "none") -> torch.Tensor:
    """activation(x @ weight^T + bias) for 2-D x (rows, in) and weight (out, in), in one oneDNN call
    (call ``usable`` first)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, activation, [], "")
