"""The ensemble score MLP against the same network written out in numpy: [y, t] -> SiLU layers -> linear,
score = a / sqrt(beta(t)) with beta(t) = 0.1 + 19.9 t, and its documented architecture and state layout."""

import numpy as np
import pytest
import torch

from core.diffusion.score_mlp import EnsembleMLP, check_state_shapes
from core.sde import VPSDE


def silu(h):
    return h / (1.0 + np.exp(-h))


def numpy_drift(model: EnsembleMLP, e: int, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    h = np.concatenate([y, t[:, None]], axis=1)
    layers = [(w[e].detach().double().numpy(), b[e, 0].detach().double().numpy()) for w, b in zip(model.weights, model.biases)]
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = silu(h)
    return h


@pytest.fixture
def model():
    return EnsembleMLP(2, 3, hidden=5, n_hidden_layers=2).initialize([torch.Generator().manual_seed(s) for s in (0, 1)])


def test_drift_and_score_match_numpy(model):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2, 4, 3)).astype(np.float32)
    t = rng.uniform(0.05, 1.0, size=(2, 4))  # float64 times with float32 points: the network casts t
    drift = model(torch.from_numpy(y), torch.from_numpy(t))
    score = model.score(torch.from_numpy(y), torch.from_numpy(t), VPSDE())
    for e in range(2):
        a = numpy_drift(model, e, y[e].astype(np.float64), t[e])
        np.testing.assert_allclose(drift[e].detach().numpy(), a, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(score[e].detach().numpy(), a / np.sqrt(0.1 + 19.9 * t[e])[:, None], rtol=1e-5, atol=1e-6)


def test_t_net_replaces_only_the_networks_time_input(model):
    rng = np.random.default_rng(1)
    y = rng.normal(size=(2, 4, 3)).astype(np.float32)
    t, s = rng.uniform(0.05, 1.0, size=(2, 4)), rng.uniform(0.05, 1.0, size=(2, 4))
    score = model.score(torch.from_numpy(y), torch.from_numpy(t), VPSDE(), t_net=torch.from_numpy(s))
    for e in range(2):
        expected = numpy_drift(model, e, y[e].astype(np.float64), s[e]) / np.sqrt(0.1 + 19.9 * t[e])[:, None]
        np.testing.assert_allclose(score[e].detach().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_default_architecture_is_the_papers():
    # [x, t] -> 128 -> 128 -> 128 -> d (experiments.md).
    net = EnsembleMLP(1, 2)
    assert [tuple(w.shape) for w in net.weights] == [(1, 3, 128), (1, 128, 128), (1, 128, 128), (1, 128, 2)]
    assert net.config == {"data_dim": 2, "hidden": 128, "n_hidden_layers": 3}
    assert EnsembleMLP(1, 4, 16, 1).config == {"data_dim": 4, "hidden": 16, "n_hidden_layers": 1}


def test_member_state_is_in_linear_layout_and_contiguous(model):
    state = model.member_state_dict(1)
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias", "layers.2.weight", "layers.2.bias"]
    for i, (w, b) in enumerate(zip(model.weights, model.biases)):
        assert state[f"layers.{i}.weight"].is_contiguous()
        assert torch.equal(state[f"layers.{i}.weight"], w[1].detach().t())
        assert torch.equal(state[f"layers.{i}.bias"], b[1, 0].detach())


def test_shape_errors_name_the_wrong_weights_and_at_most_five_of_each_kind():
    expected = {f"k{i}": (2, 2) for i in range(7)}
    with pytest.raises(ValueError, match=r"missing \['k0', 'k1', 'k2', 'k3', 'k4'\], unexpected \[\], wrong shape \[\]"):
        check_state_shapes(expected, {})
    got = {f"k{i}": torch.zeros(3) for i in range(7)} | {f"x{i}": torch.zeros(1) for i in range(7)}
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['x0', 'x1', 'x2', 'x3', 'x4'\], "
                                         r"wrong shape \['k0', 'k1', 'k2', 'k3', 'k4'\]"):
        check_state_shapes(expected, got)
    check_state_shapes({"a": (2,)}, {"a": torch.zeros(2)})  # a fit raises nothing
