"""The VAE's likelihoods and estimators on a linear-Gaussian model, where everything has a closed form.

Decoder x | z ~ N(W z + b, s^2 I), prior z ~ N(0, I): p(x) = N(x; b, W W^T + s^2 I). With orthogonal columns of
W the posterior z | x is N(P^-1 W^T (x - b) / s^2, P^-1), P = I + W^T W / s^2 diagonal, so a linear encoder can be
set to the exact posterior. Then every importance weight p(x, z) / q(z | x) equals p(x), and the ELBO's
expectation equals log p(x).
"""

import math

import numpy as np
import pytest
import torch

from core.vae.model import VAE, mlp

LOG_SCALE = 0.2
S2 = math.exp(2 * LOG_SCALE)
W = np.array([[0.8, 0.6], [0.8, -0.6], [0.0, 0.6]])  # orthogonal columns
B = np.array([0.3, -0.2, 0.1])
P = 1.0 + (W * W).sum(0) / S2  # diagonal of the posterior precision
M = (W / P).T / S2  # posterior mean = M (x - b)


def exact_posterior_vae() -> VAE:
    model = VAE(3, hidden=(), latent=2, likelihood="gaussian").double()
    with torch.no_grad():
        enc = model.encoder[0]
        enc.weight.zero_()
        enc.weight[:2] = torch.from_numpy(M)
        enc.bias[:2] = torch.from_numpy(-M @ B)
        enc.bias[2:] = torch.from_numpy(-np.log(P))
        model.decoder.net[0].weight.copy_(torch.from_numpy(W))
        model.decoder.net[0].bias.copy_(torch.from_numpy(B))
        model.decoder.log_scale.fill_(LOG_SCALE)
    return model


def log_marginal(x: np.ndarray) -> np.ndarray:
    cov = W @ W.T + S2 * np.eye(3)
    r = x - B
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (np.einsum("ni,ij,nj->n", r, np.linalg.inv(cov), r) + logdet + 3 * math.log(2 * math.pi))


X = np.array([[0.5, 1.0, -0.4], [-1.2, 0.3, 0.9], [2.0, -1.5, 0.0]])


def test_encoder_is_the_exact_posterior_on_any_batch_shape():
    model = exact_posterior_vae()
    x = np.stack([X, X[::-1]])  # (2, 3, d): leading batch axes
    mean, logvar = model.encode(torch.from_numpy(x))
    np.testing.assert_allclose(mean.detach().numpy(), (x - B) @ M.T, rtol=1e-12)
    np.testing.assert_allclose(logvar.detach().numpy(), np.broadcast_to(-np.log(P), (2, 3, 2)), rtol=1e-12)


def test_gaussian_log_likelihood_with_a_sample_axis():
    model = exact_posterior_vae()
    z = np.random.default_rng(0).normal(size=(4, 3, 2))  # 4 samples for each of 3 points
    out = z @ W.T + B
    expected = (-0.5 * ((X - out) ** 2 / S2 + 2 * LOG_SCALE + math.log(2 * math.pi))).sum(-1)
    got = model.decoder.log_prob(torch.from_numpy(X), torch.from_numpy(z))
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-12)


def test_bernoulli_log_likelihood_with_a_sample_axis():
    torch.manual_seed(0)
    model = VAE(3, hidden=(), latent=2).double()
    x = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    z = np.random.default_rng(1).normal(size=(5, 2, 2))
    w, b = (p.detach().numpy() for p in (model.decoder.net[0].weight, model.decoder.net[0].bias))
    logits = z @ w.T + b
    expected = (x * -np.log1p(np.exp(-logits)) + (1 - x) * -np.log1p(np.exp(logits))).sum(-1)
    got = model.decoder.log_prob(torch.from_numpy(x), torch.from_numpy(z))
    assert got.shape == (5, 2)
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-10)
    assert model.decoder.log_scale is None


def test_importance_sampled_log_px_is_exact_with_the_exact_posterior():
    model = exact_posterior_vae()
    got = model.log_px(torch.from_numpy(X), K=5, generator=torch.Generator().manual_seed(0), chunk=2)
    np.testing.assert_allclose(got.numpy(), log_marginal(X), rtol=1e-10)


def test_elbo_terms_average_to_log_px_and_mi_vanishes_for_an_identical_reference():
    model = exact_posterior_vae()
    model.reference.load_state_dict(model.decoder.state_dict())
    n = 20_000
    x = torch.from_numpy(X[:1]).expand(n, 3).clone()
    terms = model.terms(x, torch.Generator().manual_seed(1))
    neg_elbo = (terms["rec"] + terms["kl"]).detach()
    se = float(neg_elbo.std()) / math.sqrt(n)
    assert se < 0.02
    assert float(neg_elbo.mean()) == pytest.approx(-log_marginal(X[:1])[0], abs=5 * se)
    mean, logvar = (M @ (X[0] - B)), -np.log(P)
    expected_kl = 0.5 * (mean**2 + np.exp(logvar) - 1 - logvar).sum()
    np.testing.assert_allclose(terms["kl"].detach().numpy(), expected_kl, rtol=1e-10)
    assert float(terms["mi"].abs().max()) == 0.0


def test_encoder_log_variance_is_clamped_to_minus_30_and_20():
    model = VAE(2, hidden=(), latent=2).double()
    with torch.no_grad():
        model.encoder[0].weight.zero_()
        model.encoder[0].bias.copy_(torch.tensor([0.0, 0.0, 25.0, -35.0]))
    mean, logvar = model.encode(torch.zeros(1, 2, dtype=torch.float64))
    assert logvar.tolist() == [[20.0, -30.0]]
    with torch.no_grad():
        model.encoder[0].bias.copy_(torch.tensor([0.0, 0.0, 19.5, -29.5]))
    assert model.encode(torch.zeros(1, 2, dtype=torch.float64))[1].tolist() == [[19.5, -29.5]]


def test_mlp_has_relu_between_layers_and_none_after_the_last():
    torch.manual_seed(2)
    net = mlp([3, 4, 5, 2]).double()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        linears[-1].bias.fill_(-1.0)  # negative outputs, which a final ReLU would zero
    x = np.random.default_rng(2).normal(size=(50, 3))
    h = x
    for i, layer in enumerate(linears):
        h = h @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
        if i < len(linears) - 1:
            h = np.maximum(h, 0.0)
    got = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, h, rtol=1e-12)
    assert (got < 0).any()


def test_parameter_counts_default_sizes_and_reference_seed():
    # Encoder 6-4-4 and decoder 2-4-6 are 48 + 42 weights and biases; the Gaussian one adds one log-scale.
    assert sum(p.numel() for p in VAE(6, (4,), 2).trainable_parameters()) == 90
    assert sum(p.numel() for p in VAE(6, (4,), 2, "gaussian").trainable_parameters()) == 91
    paper = VAE(20)  # hidden (512, 256), latent 16
    assert paper.latent == 16
    assert [m.out_features for m in paper.encoder if isinstance(m, torch.nn.Linear)] == [512, 256, 32]
    default, seed0, seed1 = VAE(5, (3,), 2), VAE(5, (3,), 2, reference_seed=0), VAE(5, (3,), 2, reference_seed=1)
    assert all(torch.equal(a, b) for a, b in zip(default.reference.parameters(), seed0.reference.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(default.reference.parameters(), seed1.reference.parameters()))


def test_an_unknown_likelihood_is_named():
    with pytest.raises(ValueError, match="likelihood must be bernoulli or gaussian, got 'poisson'"):
        VAE(4, likelihood="poisson")


def test_log_px_draws_only_from_the_given_generator():
    torch.manual_seed(3)
    model = VAE(4, (3,), 2, "gaussian")
    x = torch.rand(5, 4, generator=torch.Generator().manual_seed(8))
    first = model.log_px(x, 16, torch.Generator().manual_seed(7))
    torch.manual_seed(99)  # the global stream must not matter
    assert torch.equal(model.log_px(x, 16, torch.Generator().manual_seed(7)), first)
