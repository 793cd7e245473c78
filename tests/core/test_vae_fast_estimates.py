"""The VAE's inference path (issue #12): without autograd, float32 CPU decoders and encoders run through oneDNN's
fused linear(+ReLU) and the Bernoulli likelihood as x l - softplus(l), and log p(x) goes through the decoder a few
samples at a time. Pinned here against the autograd path, a float64 recomputation from the same draws and, for a
tiny model, a brute-force integral of p(x) = ∫ P(x|z) N(z; 0, I) dz on a grid.
"""

import math

import numpy as np
import pytest
import torch

from core.onednn import fused_linear_works
from core.vae.model import VAE, mlp, mlp_no_grad


def float32_vae(likelihood: str = "bernoulli", data_dim: int = 12, seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    return VAE(data_dim, (10, 6), 3, likelihood, reference_seed=seed + 1)


def binary_data(n: int, d: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand(n, d, generator=gen), generator=gen)


def numpy_mlp(net: torch.nn.Sequential, h: np.ndarray) -> np.ndarray:
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for i, layer in enumerate(linears):
        h = h @ layer.weight.detach().double().numpy().T + layer.bias.detach().double().numpy()
        if i < len(linears) - 1:
            h = np.maximum(h, 0.0)
    return h


def test_mlp_no_grad_is_the_mlp_with_relu_between_layers_only():
    torch.manual_seed(2)
    net = mlp([5, 7, 6, 4])
    with torch.no_grad():
        net[-1].bias.fill_(-1.0)  # negative outputs, which a fused ReLU on the last layer would zero
    h = torch.randn(3, 50, 5)  # a leading sample axis
    got = mlp_no_grad(net, h)
    assert got.shape == (3, 50, 4) and got.dtype == torch.float32 and (got < 0).any()
    np.testing.assert_allclose(got.numpy(), numpy_mlp(net, h.double().numpy()), rtol=1e-5, atol=1e-5)
    h64 = h.double()
    assert torch.equal(mlp_no_grad(net.double(), h64), net.double()(h64))  # float64 keeps the plain path


def test_the_onednn_path_is_taken_on_this_build():
    # The speed of issue #12 depends on it; the pinned torch CPU wheel has oneDNN.
    assert fused_linear_works("relu") and fused_linear_works("swish") and fused_linear_works("none")


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_terms_without_autograd_equal_the_training_path(likelihood):
    model = float32_vae(likelihood)
    x = binary_data(40, 12, 3) if likelihood == "bernoulli" else torch.rand(40, 12, generator=torch.Generator().manual_seed(3))
    trained = model.terms(x, torch.Generator().manual_seed(4))
    with torch.no_grad():
        evaluated = model.terms(x, torch.Generator().manual_seed(4))
    for key in ("rec", "kl", "mi"):
        np.testing.assert_allclose(evaluated[key].numpy(), trained[key].detach().numpy(), rtol=1e-5, atol=1e-4)
    model.reference.load_state_dict(model.decoder.state_dict())
    with torch.no_grad():
        assert torch.equal(model.terms(x, torch.Generator().manual_seed(4))["mi"], torch.zeros(40))


def float64_log_px(model: VAE, x: torch.Tensor, K: int, seed: int, chunk: int) -> np.ndarray:
    """log p(x) written out in float64 numpy, with the draws log_px makes: chunks of ``chunk`` samples."""
    xs = x.double().numpy()
    out = numpy_mlp(model.encoder, xs)
    mean, logvar = out[:, :model.latent], np.clip(out[:, model.latent:], -30.0, 20.0)
    gen = torch.Generator().manual_seed(seed)
    eps = np.concatenate([torch.randn((min(chunk, K - s), *mean.shape), generator=gen).double().numpy()
                          for s in range(0, K, chunk)])
    z = mean + np.exp(0.5 * logvar) * eps
    logits = numpy_mlp(model.decoder.net, z)
    log_p = (xs * logits - np.logaddexp(0.0, logits)).sum(-1)
    log_w = log_p + (-0.5 * z**2).sum(-1) - (-0.5 * eps**2 - 0.5 * logvar).sum(-1)
    top = log_w.max(0)
    return top + np.log(np.exp(log_w - top).mean(0))


@pytest.mark.parametrize("rows", [1, 25, 2048])
def test_log_px_is_the_float64_formula_with_the_same_draws_however_many_rows_per_pass(rows):
    model = float32_vae()
    x = binary_data(30, 12, 5)
    got = model.log_px(x, 200, torch.Generator().manual_seed(6), chunk=64, rows=rows)
    np.testing.assert_allclose(got.numpy(), float64_log_px(model, x, 200, 6, 64), rtol=1e-5)


def brute_force_log_px(model: VAE, x: np.ndarray, half_width: float = 7.0, n: int = 701) -> np.ndarray:
    """log ∫ P(x|z) N(z; 0, I) dz for a 2-d latent, by the trapezoid rule on an n x n grid."""
    grid = np.linspace(-half_width, half_width, n)
    z = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    logits = numpy_mlp(model.decoder.net, z)
    log_prior = (-0.5 * (z**2 + math.log(2 * math.pi))).sum(-1)
    log_joint = x @ logits.T - np.logaddexp(0.0, logits).sum(-1) + log_prior  # (points, grid)
    weights = np.outer(*(2 * [np.where((grid == grid[0]) | (grid == grid[-1]), 0.5, 1.0) * (grid[1] - grid[0])]))
    top = log_joint.max(1, keepdims=True)
    return top[:, 0] + np.log((np.exp(log_joint - top) * weights.reshape(-1)).sum(1))


def test_log_px_of_a_tiny_vae_matches_the_integral_within_monte_carlo_error():
    torch.manual_seed(7)
    model = VAE(5, (8,), 2)
    x = binary_data(4, 5, 8)
    exact = brute_force_log_px(model, x.double().numpy())
    K = 4096
    gen = torch.Generator().manual_seed(9)
    runs = torch.stack([model.log_px(x, K, gen) for _ in range(8)])
    # Each estimate is a log-mean of K weights; 8 independent ones give its mean and standard error.
    se = runs.std(0) / math.sqrt(len(runs))
    assert float(se.max()) < 0.02
    np.testing.assert_array_less(np.abs(runs.mean(0).numpy() - exact), 5 * se.numpy() + 1e-4)


def test_the_fast_bernoulli_likelihood_holds_for_logits_far_from_zero():
    torch.manual_seed(10)
    model = VAE(81, (6,), 2)
    with torch.no_grad():
        model.decoder.net[-1].bias.copy_(torch.linspace(-40.0, 40.0, 81))  # softplus's linear and exp regimes
    x, z = binary_data(7, 81, 11), torch.randn(3, 7, 2, generator=torch.Generator().manual_seed(12))
    logits = numpy_mlp(model.decoder.net, z.double().numpy())
    expected = (x.double().numpy() * logits - np.logaddexp(0.0, logits)).sum(-1)
    with torch.no_grad():
        got = model.decoder.log_prob(x, z)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
