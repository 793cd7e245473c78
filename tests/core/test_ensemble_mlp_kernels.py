"""The member-batched MLP's hand-written backward and its reused-buffer inference against plain autograd."""

import pytest
import torch
from torch.nn import functional

from core.diffusion.ensemble_mlp_kernels import Workspace, mlp_inference, mlp_train, operand
from core.diffusion.score_mlp import EnsembleMLP


def reference(h, weights, biases):
    """The same network, layer by layer with row-major weights, differentiated by autograd."""
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b, h, w)
        if i < len(weights) - 1:
            h = functional.silu(h)
    return h


def params(widths, E=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(E, a, b, generator=gen, dtype=torch.float64) / a**0.5 for a, b in zip(widths, widths[1:])]
    biases = [torch.randn(E, 1, b, generator=gen, dtype=torch.float64) for b in widths[1:]]
    return [w.requires_grad_() for w in weights], [b.requires_grad_() for b in biases]


@pytest.mark.parametrize("widths", [[3, 32, 32, 2], [5, 20, 4], [3, 17, 17, 17, 2]])
def test_gradients_equal_autograd_layer_by_layer(widths):
    weights, biases = params(widths)
    x = torch.randn(3, 11, widths[0], dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(3, 11, widths[-1], dtype=torch.float64)
    ours = torch.autograd.grad((mlp_train(x, weights, biases) * upstream).sum(), [x, *weights, *biases])
    theirs = torch.autograd.grad((reference(x, weights, biases) * upstream).sum(), [x, *weights, *biases])
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_gradcheck_in_float64():
    weights, biases = params([3, 6, 5, 2], E=2)
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *p: mlp_train(x, list(p[:3]), list(p[3:])), (x, *weights, *biases))


def test_inference_with_reused_buffers_equals_the_training_forward():
    weights, biases = params([3, 32, 32, 2])
    x = torch.randn(3, 9, 3, dtype=torch.float64)
    workspace = Workspace()
    with torch.no_grad():
        first = mlp_inference(x, weights, biases, workspace).clone()
        again = mlp_inference(x * 2, weights, biases, workspace)
        torch.testing.assert_close(first, reference(x, weights, biases), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(again, reference(x * 2, weights, biases), rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="no_grad"):
        mlp_inference(x, weights, biases, workspace)


def test_thin_operands_keep_their_values():
    w = torch.randn(2, 128, 2)
    assert torch.equal(operand(w), w) and operand(w).stride() != w.stride()
    square = torch.randn(2, 32, 32)
    assert operand(square) is square


def test_one_member_trains_alike_alone_and_beside_others():
    """Gradients of member 0 do not depend on the other members (every product is per member)."""
    gens = [torch.Generator().manual_seed(s) for s in (4, 5, 6)]
    big = EnsembleMLP(3, 2, hidden=32).initialize(gens)
    small = EnsembleMLP(1, 2, hidden=32).initialize([torch.Generator().manual_seed(4)])
    y, t = torch.randn(3, 50, 2), torch.rand(3, 50)
    big(y, t).pow(2).sum().backward()
    small(y[:1], t[:1]).pow(2).sum().backward()
    for p_big, p_small in zip(big.parameters(), small.parameters()):
        torch.testing.assert_close(p_big.grad[:1], p_small.grad, rtol=1e-5, atol=1e-6)


def test_the_allocator_setting_applies_once_on_linux_with_glibc():
    import sys

    from core.allocator import keep_freed_memory

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt is Linux-only")
    assert keep_freed_memory() is True and keep_freed_memory() is True


@pytest.mark.parametrize("n", [3, 5000])
def test_the_samplers_first_recorded_norm_is_the_exact_mean_over_every_chunk(n):
    """Step 0 records the mean score norm at y0, T: over all n points, also when they go through the network in
    chunks (n = 5000 is more than one oneDNN call of 4096 points)."""
    from core.diffusion.sampler import euler_maruyama
    from core.sde import VPSDE

    sde = VPSDE()
    model = EnsembleMLP(2, 2, hidden=16).initialize([torch.Generator().manual_seed(s) for s in (1, 2)])
    y0 = torch.randn(2, n, 2, generator=torch.Generator().manual_seed(3))
    T = torch.tensor([0.5, 1.0])
    result = euler_maruyama(model, sde, y0, T, 3, [torch.Generator().manual_seed(s) for s in (4, 5)])
    with torch.no_grad():
        expected = model.score(y0, T[:, None].expand(2, n), sde).norm(dim=-1).mean(dim=1)
    torch.testing.assert_close(result.mean_score_norm[:, 0], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n,limit", [(1000, 1024), (1000, 292), (7000, 1024), (5, 2), (1, 7), (4097, 4096)])
def test_sampler_chunks_are_as_few_as_the_limit_allows_and_of_one_size(n, limit):
    """Calls of at most ``limit`` points, no more calls than needed, and no small remainder call: sizes differ
    by less than the number of calls (1,000 points under a limit of 292 go as 4 x 250, not 3 x 292 + 124)."""
    from core.diffusion.sampler import even_chunk

    chunk = even_chunk(n, limit)
    sizes = [min(chunk, n - start) for start in range(0, n, chunk)]
    assert sum(sizes) == n and max(sizes) <= limit
    assert len(sizes) == -(-n // limit)
    assert max(sizes) - min(sizes) < len(sizes)


def test_sampler_chunk_is_at_least_one_point_even_for_no_points_or_no_limit():
    from core.diffusion.sampler import even_chunk

    assert even_chunk(0, 1024) == 1 and even_chunk(5, 0) == 1 and even_chunk(0, 0) == 1


@pytest.mark.parametrize("path", ["torch", "onednn"])
def test_sampling_in_many_calls_gives_what_one_call_gives(path, monkeypatch):
    """The sampler's row chunks change only how the points are grouped into network calls: samples and
    recorded norms (with the reverse-clock probe) match one call per pass, on either kernel path."""
    from core import kernel_choice, onednn
    from core.diffusion import ensemble_mlp_kernels as kernels
    from core.diffusion.sampler import euler_maruyama
    from core.sde import VPSDE

    if path == "onednn" and not onednn.usable(torch.zeros(1), activation="swish"):
        pytest.skip("this torch build has no usable oneDNN linear")
    sde = VPSDE()
    model = EnsembleMLP(3, 2, hidden=16).initialize([torch.Generator().manual_seed(s) for s in (1, 2, 3)])
    y0 = torch.randn(3, 250, 2, generator=torch.Generator().manual_seed(4))
    T = torch.tensor([0.4, 0.8, 1.2])

    def sample():
        gens = [torch.Generator().manual_seed(s) for s in (5, 6, 7)]
        return euler_maruyama(model, sde, y0, T, 6, gens, probe_reverse_clock=True)

    with kernel_choice.forced(path):
        whole = sample()
        monkeypatch.setattr(kernels, "ROWS_PER_CALL", 3 * 40)
        monkeypatch.setattr(kernels, "ROWS_PER_MEMBER_CALL", 40)
        assert kernels.inference_chunk(3, y0) == 40
        chunked = sample()
    torch.testing.assert_close(chunked.samples, whole.samples, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunked.mean_score_norm, whole.mean_score_norm, rtol=1e-5, atol=1e-6)
