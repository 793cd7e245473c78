"""The member-batched MLP's forward and backward passes, written for the speed of small batched matmuls.

Four things made the score MLP's steps cost up to twice their matmul floor on a CPU
(benchmarks/bench_sweep.py measures the floor):

- the wide (128) products have two implementations: torch's batched matmul (MKL) over the member axis, and
  oneDNN's linear layer member by member with the SiLU fused (core/onednn.py). Which is faster depends on the
  CPU (twice as fast either way on the machines we measured), so inference and training each time both once per
  process and keep the faster (core/kernel_choice.py); the oneDNN inference takes the weights laid out for it
  once per pass (``Workspace.packed``);
- MKL's batched gemm is 2.5-5x slower on an operand 2 or 3 wide stored row-major than on the same values
  stored transposed; the thin first and last layers run with their weights transposed (``operand``) and the
  backward pass picks the fast layout for each product (``_MLPFunction``);
- fresh multi-megabyte activations in every Euler-Maruyama step cost page faults: an inference pass can
  write into reused buffers (``Workspace``);
- autograd recorded every layer separately; one autograd node for the whole network does the same products
  (the gradients equal autograd's up to float rounding; tests/core/test_ensemble_mlp_kernels.py).

Every product is per member (batched over the member axis, or member by member), so one member's numbers do not
depend on the others.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from .. import kernel_choice, onednn

THIN = 16  # a layer this narrow on either side runs with its weight transposed
ROWS_PER_CALL = 14336  # batched path: at most this many rows (members x points) per call (see inference_chunk)
ROWS_PER_MEMBER_CALL = 4096  # oneDNN path: one member's rows per call


CHOICE_WIDTHS = [3, 128, 128, 128, 2]  # the paper's score MLP: the workload the kernel paths are timed on
TRAINING_PASS, INFERENCE_PASS = "score MLP training", "score MLP inference"  # their names in core/kernel_choice.py


def inference_chunk(n_members: int, like: torch.Tensor) -> int:
    """At most this many points per member per network call in an inference pass (the sampler splits its rows
    into calls of one size within it). On a GPU all at once: each call there costs a kernel launch. On the CPU's
    batched path 14,336 rows (1,024 points for each of 14 members, so a pass of 1,000 points is one call)
    measured fastest: 7-10% faster per Euler-Maruyama step than 4,096 (each call has a fixed cost, and larger
    products run nearer their peak), and faster than larger calls, whose activations no longer stay in the
    caches (14 members x 7,000 points: 70 ms a step in calls of 1,000 points, 80 ms in calls of 2,000;
    14 x 4,000 points with the probe: 73 ms in calls of 1,000 points, 107 ms in one call)."""
    if like.device.type != "cpu":
        return 1 << 30
    if onednn_inference(like):
        return ROWS_PER_MEMBER_CALL
    return max(1, ROWS_PER_CALL // n_members)


def _timing_params(members: int = 4) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    widths = CHOICE_WIDTHS
    weights = [torch.randn(members, a, b, generator=gen) / a**0.5 for a, b in zip(widths, widths[1:])]
    biases = [torch.randn(members, 1, b, generator=gen) * 0.1 for b in widths[1:]]
    return weights, biases


def onednn_inference(*tensors: torch.Tensor) -> bool:
    """Whether inference passes on ``tensors`` take oneDNN member by member: it works here (CPU float32) and,
    timed once per process on the paper's MLP (4 members x 1,024 points), it is the faster path."""
    if not onednn.usable(*tensors, activation="swish"):
        return False

    def timed(path):
        weights, biases = _timing_params()
        h, workspace = torch.randn(weights[0].shape[0], 1024, CHOICE_WIDTHS[0]), Workspace()
        run = _inference_onednn if path == "onednn" else _inference_batched

        def go():
            with torch.no_grad():
                run(h, weights, biases, workspace)

        return go

    return kernel_choice.fastest(INFERENCE_PASS, timed) == "onednn"


def mlp_kernel_paths() -> dict[str, str]:
    """The path of each score-MLP pass on this CPU, timed now if not yet: what a sweep hands its workers
    (kernel_choice.adopt) so that all its runs take the same paths."""
    like = torch.zeros(1)
    return {
        TRAINING_PASS: "onednn" if onednn_training(like) else "torch",
        INFERENCE_PASS: "onednn" if onednn_inference(like) else "torch",
    }


def onednn_training(*tensors: torch.Tensor) -> bool:
    """Whether training steps on ``tensors`` run their wide products through oneDNN member by member: it works
    here (CPU float32) and, timed once per process (forward and backward of the paper's MLP, 4 members x 200
    points), it is the faster path."""
    if not onednn.usable(*tensors):
        return False

    def timed(path):
        weights, biases = _timing_params()
        params = [p.requires_grad_() for p in (*weights, *biases)]
        h = torch.randn(weights[0].shape[0], 200, CHOICE_WIDTHS[0])
        member_wise = path == "onednn"

        def go():
            with torch.enable_grad():
                out = _MLPFunction.apply(h, len(weights), member_wise, *params)
                torch.autograd.grad(out.sum(), params)

        return go

    return kernel_choice.fastest(TRAINING_PASS, timed) == "onednn"


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
        self._packed: list = []
        self._packed_key: tuple | None = None

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        key = (name, tuple(shape), like.dtype, like.device)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return buffer

    def packed(self, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
        """Per layer, per member: (weight as (out, in) contiguous, bias (out,)), made once and reused while the
        parameters are unchanged (their version counters say so)."""
        key = tuple((id(t), t._version) for t in (*weights, *biases))
        if self._packed_key != key:
            self._packed = [
                [(w[e].t().contiguous(), b[e, 0]) for e in range(w.shape[0])] for w, b in zip(weights, biases)
            ]
            self._packed_key = key
        return self._packed


def mlp_inference(
    h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor], workspace: Workspace
) -> torch.Tensor:
    """The MLP (SiLU between layers) on input h (E, n, k); the result is a ``workspace`` buffer (E, n, out).

    Where oneDNN is the faster path here (``onednn_inference``) each member goes through its fused linear + SiLU;
    otherwise the members are batched (baddbmm) and every activation is written into the workspace."""
    if torch.is_grad_enabled():
        raise RuntimeError("a workspace is for inference: call under torch.no_grad()")
    if onednn_inference(h, *weights):
        return _inference_onednn(h, weights, biases, workspace)
    return _inference_batched(h, weights, biases, workspace)


def _inference_onednn(
    h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor], workspace: Workspace
) -> torch.Tensor:
    last = len(weights) - 1
    out = workspace.get("output", (*h.shape[:-1], weights[-1].shape[2]), h)
    packed = workspace.packed(weights, biases)
    for e in range(h.shape[0]):
        x = h[e]
        for i, layer in enumerate(packed):
            weight, bias = layer[e]
            x = onednn.linear(x, weight, bias, "swish" if i < last else "none")
        out[e].copy_(x)
    return out


def _inference_batched(
    h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor], workspace: Workspace
) -> torch.Tensor:
    last = len(weights) - 1
    for i, (weight, bias) in enumerate(zip(weights, biases)):
        out = workspace.get(f"layer{i}", (*h.shape[:-1], weight.shape[2]), h)
        h = torch.baddbmm(bias, h, operand(weight), out=out)
        if i < last:
            functional.silu(h, inplace=True)
    return h


def mlp_train(h: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> torch.Tensor:
    """The MLP (SiLU between layers) on input h (E, n, k) as one autograd node (see _MLPFunction); its wide
    products go through oneDNN member by member where that is the faster path here (``onednn_training``)."""
    return _MLPFunction.apply(h, len(weights), onednn_training(h, *weights), *weights, *biases)


def _wide(member_wise: bool, *tensors: torch.Tensor) -> bool:
    """``member_wise`` (oneDNN chosen and working) and both sides of every (E, a, b) operand at least THIN wide."""
    return member_wise and all(min(t.shape[1], t.shape[2]) >= THIN for t in tensors)


def _forward_product(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, member_wise: bool) -> torch.Tensor:
    """h @ weight + bias per member: oneDNN member by member for a wide layer when chosen, else one baddbmm."""
    if _wide(member_wise, h, weight):  # the (out, in) weight as a transposed view: oneDNN reads it in place
        return torch.stack([onednn.linear(h[e], weight[e].t(), bias[e, 0]) for e in range(h.shape[0])])
    return torch.baddbmm(bias, h, operand(weight))


def _input_grad(grad: torch.Tensor, weight: torch.Tensor, member_wise: bool) -> torch.Tensor:
    """grad @ weight^T per member, (E, n, fan_in)."""
    if _wide(member_wise, grad, weight):
        return torch.stack([onednn.linear(grad[e], weight[e], None) for e in range(grad.shape[0])])
    return torch.bmm(grad, operand(weight).transpose(1, 2))


def weight_grad(inputs: torch.Tensor, grad: torch.Tensor, member_wise: bool = False) -> torch.Tensor:
    """inputs^T @ grad per member, (E, k, n_out); computed transposed when the output side is thin."""
    if _wide(member_wise, inputs, grad):
        return torch.stack([onednn.linear(inputs[e].t(), grad[e].t(), None) for e in range(grad.shape[0])])
    if grad.shape[-1] < THIN:
        return torch.bmm(grad.transpose(1, 2), inputs).transpose(1, 2)
    return torch.bmm(inputs.transpose(1, 2), grad)


class _MLPFunction(torch.autograd.Function):
    """Forward: z_i = h_{i-1} W_i + b_i, h_i = silu(z_i) except after the last layer.
    Backward: dW_i = h_{i-1}^T g_i, db_i = sum_rows g_i, g_{i-1} = silu'(z_{i-1}) * (g_i W_i^T).
    The wide products go member by member through oneDNN on the CPU (core/onednn.py), the rest batched."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, n_layers: int, member_wise: bool, *params: torch.Tensor) -> torch.Tensor:
        weights, biases = params[:n_layers], params[n_layers:]
        inputs, pre_activations = [h], []
        last = n_layers - 1
        for i, (weight, bias) in enumerate(zip(weights, biases)):
            z = _forward_product(h, weight, bias, member_wise)
            if i < last:
                pre_activations.append(z)
                h = functional.silu(z)
                inputs.append(h)
            else:
                h = z
        ctx.n_layers, ctx.member_wise = n_layers, member_wise
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
            if ctx.needs_input_grad[3 + i]:
                weight_grads[i] = weight_grad(inputs[i], grad, ctx.member_wise)
            if ctx.needs_input_grad[3 + n + i]:
                bias_grads[i] = grad.sum(dim=1, keepdim=True)
            if i > 0 or ctx.needs_input_grad[0]:
                back = _input_grad(grad, weights[i], ctx.member_wise)
                if i == 0:
                    input_grad = back
                else:
                    grad = torch.ops.aten.silu_backward(back, pre_activations[i - 1])
        return (input_grad, None, None, *weight_grads, *bias_grads)
