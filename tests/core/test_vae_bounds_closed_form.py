"""The VAE's bounds and its generator information against their formulas (docs/vae-bound.md)."""

import math

import numpy as np
import pytest
import torch

from core.vae.model import VAE
from core.vae.train import bounds, train_vae
from core.vae.config import VAEConfig


def test_the_worked_example_gives_nine():
    # rec + (1 + r) sqrt(kl) + (1 + r) sqrt(mi / m) = 1 + 2 * 2 + 2 * sqrt(100 / 25) = 9; encoder-only 1 + 2 = 3.
    b = bounds(rec=1.0, kl=4.0, mi=100.0, m=25, r=1.0)
    assert b["bound_encoder_generator"] == pytest.approx(9.0, rel=1e-12)
    assert b["bound_encoder_only"] == pytest.approx(3.0, rel=1e-12)


@pytest.mark.parametrize("rec,kl,mi,m,r", [(80.0, 25.0, 3000.0, 4000, 1.0), (1.5, 9.0, 2.0, 8, 0.5), (10.0, 0.25, 400.0, 100, 3.0)])
def test_vae_bounds_formula(rec, kl, mi, m, r):
    b = bounds(rec, kl, mi, m, r)
    assert b["bound_encoder_only"] == pytest.approx(rec + math.sqrt(kl), rel=1e-12)
    assert b["bound_encoder_generator"] == pytest.approx(rec + (1 + r) * math.sqrt(kl) + (1 + r) * math.sqrt(mi / m), rel=1e-12)


def test_negative_mi_and_kl_count_as_zero_under_the_roots():
    # A Monte Carlo average of mi can dip below 0 early on; the square roots take max(., 0).
    assert bounds(2.0, -0.1, -5.0, 10, 1.0) == {"bound_encoder_only": 2.0, "bound_encoder_generator": 2.0}


def small_vae(seed: int = 0) -> VAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(64, (32, 16), 4, "bernoulli", reference_seed=seed + 1)


def test_mi_is_log_p_minus_log_p0_and_zero_when_the_decoder_is_the_reference():
    model = small_vae()
    x = torch.bernoulli(torch.full((10, 64), 0.4), generator=torch.Generator().manual_seed(0))
    terms = model.terms(x, torch.Generator().manual_seed(1))
    # Rebuild z from the same stream and compare with both decoders' log-likelihoods written out here.
    mean, logvar = model.encode(x)
    eps = torch.randn(mean.shape, generator=torch.Generator().manual_seed(1))
    z = mean + torch.exp(0.5 * logvar) * eps

    def bernoulli_log_p(decoder):
        p = torch.sigmoid(decoder.net(z)).double().detach().numpy()
        xs = x.double().numpy()
        return (xs * np.log(p) + (1 - xs) * np.log1p(-p)).sum(-1)

    np.testing.assert_allclose(terms["rec"].detach().numpy(), -bernoulli_log_p(model.decoder), rtol=1e-4)
    np.testing.assert_allclose(terms["mi"].numpy(), bernoulli_log_p(model.decoder) - bernoulli_log_p(model.reference),
                               rtol=1e-4, atol=1e-3)
    kl = 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(-1)
    np.testing.assert_allclose(terms["kl"].detach().numpy(), kl.detach().numpy(), rtol=1e-5)
    model.reference.load_state_dict(model.decoder.state_dict())
    same = model.terms(x, torch.Generator().manual_seed(1))
    assert torch.equal(same["mi"], torch.zeros_like(same["mi"]))


def test_training_makes_the_decoder_more_likely_than_the_reference_and_the_record_follows_the_formulas():
    cfg = VAEConfig(data="digits", m=300, n_test=100, epochs=2, batch=64, preset="small", logpx_every=0)
    epochs = [r for r in train_vae(cfg) if r["kind"] == "epoch"]
    # The trained decoder explains its data better than the untrained reference, more so with every epoch.
    assert 0 < epochs[0]["mi_train"] < epochs[1]["mi_train"]
    for r in epochs:
        m, rr = r["m"], r["r"]
        assert m == 300 and rr == 1.0
        assert r["bound_encoder_generator"] == pytest.approx(
            r["rec_train"] + (1 + rr) * math.sqrt(r["kl_train"]) + (1 + rr) * math.sqrt(r["mi_train"] / m), rel=1e-12)
        assert r["bound_encoder_only"] == pytest.approx(r["rec_train"] + math.sqrt(r["kl_train"]), rel=1e-12)
        assert r["test_curve"] == pytest.approx(r["rec_test"] + math.sqrt(r["kl_test"]), rel=1e-12)
        assert r["gap"] == pytest.approx(r["test_curve"] - r["bound_encoder_only"], rel=1e-12)
        assert r["rec_gap"] == pytest.approx(r["rec_test"] - r["rec_train"], rel=1e-12)
        assert r["neg_elbo_gap"] == pytest.approx(r["rec_test"] + r["kl_test"] - r["rec_train"] - r["kl_train"], rel=1e-12)
