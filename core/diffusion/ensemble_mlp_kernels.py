"""The member-batched MLP's forward and backward passes, written for the speed of small batched matmuls.

Three things made the score MLP's steps cost up to twice their matmul floor on a CPU
(benchmarks/bench_sweep.py measures the floor):

- MKL's batched gemm is 2.5-5x slower on an operand 2 or 3 wide stored row-major than on the same values
  stored transposed; the thin first and last layers run with their weights transposed (``operand``) and the
  backward pass picks the fast layout for each product (``_MLPFunction``);
- fresh multi-megabyte activations in every Euler-Maruyama step cost page faults: an inference pass can
  write into reused buffers (``Workspace``);
- autograd recorded every layer separately; one autograd node for the whole network does the same products
  (the gradients equal autograd's up to float rounding; tests/core/test_ensemble_mlp_kernels.py).

Every product is still a batched matmul over the member axis, so one member's numbers do not depend on the
others.
"""

from __future__ import annotations

import torch
from torch.nn import functional

THIN = 16  # a layer this narrow on either side runs with its weight transposed


def operand(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` (E, fan_in, fan_out) as a matmul operand in the layout batched gemm is fast on: a thin
    weight is copied transposed (tiny) and passed as a transposed view; the values are the same."""
    if min(weight.shape[1], weight.shape[2]) < THIN:
        return weight.transpose(1, 2).contiguous().transpose(1, 2)
    return weight


class Workspace:
    """Reusable output buffers for inference passes (no autograd), one per (name, shape, dtype, device).

    A tensor obtained here is overwritten by the next call that asks for the same buffer.
    """

    def __init__(self) -> None:
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        key = (name, tuple(shape), like.dtype, like.device)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buffer


def mlp_inference(
    h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor], workspace: Workspace
) -> torch.Tensor:
    """The MLP (SiLU between layers) on input h (E, n, k), every activation written into ``workspace``."""
    if torch.is_grad_enabled():
        raise RuntimeError("a workspace is for inference: call under torch.no_grad()")
    last = len(weights) - 1
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        out = workspace.get(f"layer{i}", (*h.shape[:-1], weight.shape[2]), h)
        h = torch.baddbmm(bias, h, operand(weight), out=out)
        if i < last:
            functional.silu(h, inplace=True)
    return h


def mlp_train(h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.Tensor:
    """The MLP (SiLU between layers) on input h (E, n, k) as one autograd node (see _MLPFunction)."""
    return _MLPFunction.apply(h, len(weights), *weights, *biases)


def _weight_grad(inputs: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """inputs^T @ grad per member, (E, k, n_out); computed transposed when the output side is thin."""
    if grad.shape[-1] < THIN:
        return torch.bmm(grad.transpose(1, 2), inputs).transpose(1, 2)
    return torch.bmm(inputs.transpose(1, 2), grad)


class _MLPFunction(torch.autograd.Function):
    """Forward: z_i = h_{i-1} W_i + b_i, h_i = silu(z_i) except after the last layer.
    Backward: dW_i = h_{i-1}^T g_i, db_i = sum_rows g_i, g_{i-1} = silu'(z_{i-1}) * (g_i W_i^T)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, n_layers: int, *params: torch.Tensor) -> torch.Tensor:
        weights, biases = params[:n_layers], params[n_layers:]
        inputs, pre_activations = [h], []
        last = n_layers - 1
        for i, (weight, bias) in enumerate(zip(weights, biases)):
            z = torch.baddbmm(bias, h, operand(weight))
            if i < last:
                pre_activations.append(z)
                h = functional.silu(z)
                inputs.append(h)
            else:
                h = z
        ctx.n_layers = n_layers
        ctx.save_for_backward(*inputs, *pre_activations, *weights)
        return h

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        n = ctx.n_layers
        saved = ctx.saved_tensors
        inputs, pre_activations, weights = saved[:n], saved[n : 2 * n - 1], saved[2 * n - 1 :]
        weight_grads: list[torch.Tensor | None] = [None] * n
        bias_grads: list[torch.Tensor | None] = [None] * n
        input_grad = None
        grad = grad.contiguous()
        for i in range(n - 1, -1, -1):
            if ctx.needs_input_grad[2 + i]:
                weight_grads[i] = _weight_grad(inputs[i], grad)
            if ctx.needs_input_grad[2 + n + i]:
                bias_grads[i] = grad.sum(dim=1, keepdim=True)
            if i > 0 or ctx.needs_input_grad[0]:
                back = torch.bmm(grad, operand(weights[i]).transpose(1, 2))
                if i == 0:
                    input_grad = back
                else:
                    grad = torch.ops.aten.silu_backward(back, pre_activations[i - 1])
        return (input_grad, None, *weight_grads, *bias_grads)
