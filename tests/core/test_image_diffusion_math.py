"""Logit transform against autograd, the ELBO / BPD of a model with a known density, the U-Net ensemble."""

import math

import numpy as np
import pytest
import torch

from core.data.image_transforms import bits_per_dim, dequantize, inverse_logit, logit_transform
from core.diffusion.elbo import elbo, test_bpd as bpd_of
from core.diffusion.unet import EnsembleUNet, unet_spec
from core.errors import ConfigError
from core.sde import VPSDE


def test_logit_logdet_matches_autograd_jacobian():
    x = torch.rand(5, dtype=torch.float64)
    y, logdet = logit_transform(x)
    jac = torch.autograd.functional.jacobian(lambda v: logit_transform(v)[0], x)
    assert torch.allclose(jac, torch.diag(torch.diagonal(jac)))  # elementwise
    assert math.isclose(float(logdet), float(torch.logdet(jac)), rel_tol=1e-10)
    assert torch.allclose(inverse_logit(y), x)


def test_dequantisation_stays_in_the_pixel_bin():
    x = torch.randint(0, 256, (1, 100, 8)).double() / 255
    gens = [torch.Generator().manual_seed(0)]
    u = dequantize(x, gens)
    lower = x * 255 / 256
    assert (u >= lower).all() and (u <= lower + 1 / 256).all()


class ExactGaussianScore(torch.nn.Module):
    """The true drift for data N(0, c^2 I): p_t = N(0, (alpha^2 c^2 + sigma^2) I)."""

    def __init__(self, c: float, sde: VPSDE) -> None:
        super().__init__()
        self.c, self.sde = c, sde

    def forward(self, y, t):
        var = self.sde.alpha(t) ** 2 * self.c**2 + self.sde.var(t)
        return -torch.sqrt(self.sde.beta(t))[..., None] * y / var[..., None]


def test_elbo_of_the_exact_score_matches_the_known_log_density():
    """Unbiased for the exact score (the ELBO is tight up to KL(p_T || pi), ~1e-5 here); single-t estimates
    are noisy, so the check is against the estimate's own standard error."""
    torch.manual_seed(0)
    sde, c, d, n = VPSDE(), 0.5, 4, 20000
    y = torch.randn(1, n, d, dtype=torch.float64) * c
    gens = [torch.Generator().manual_seed(1)]
    T = torch.tensor([1.0], dtype=torch.float64)
    estimates = elbo(ExactGaussianScore(c, sde), sde, y, T, gens, chunk=5000)[0]
    true = (-0.5 * (y[0] ** 2 / c**2).sum(-1) - d * math.log(c) - 0.5 * d * math.log(2 * math.pi))
    gap = (estimates - true).mean()
    se = (estimates - true).std() / math.sqrt(n)
    assert float(se) < 0.5
    assert abs(float(gap)) < 4 * float(se), (float(gap), float(se))


def test_a_wrong_score_gets_a_lower_elbo():
    sde, d = VPSDE(), 4
    y = torch.randn(1, 3000, d, dtype=torch.float64) * 0.5
    T = torch.tensor([2.0], dtype=torch.float64)
    right = elbo(ExactGaussianScore(0.5, sde), sde, y, T, [torch.Generator().manual_seed(2)])[0].mean()
    wrong = elbo(ExactGaussianScore(2.0, sde), sde, y, T, [torch.Generator().manual_seed(2)])[0].mean()
    assert wrong < right - 0.5


def test_bpd_of_a_known_density_through_the_logit_transform():
    """Images whose logit is N(0, c^2 I): BPD equals -log2 of their pixel density per dimension, plus 8."""
    sde, c, d, n = VPSDE(), 0.5, 4, 20000
    torch.manual_seed(3)
    y = torch.randn(1, n, d, dtype=torch.float64) * c
    x = inverse_logit(y)
    gens = [torch.Generator().manual_seed(4)]
    T = torch.tensor([1.0], dtype=torch.float64)
    y_back, logdet = logit_transform(x)
    log_py = (-0.5 * (y_back[0] ** 2 / c**2).sum(-1) - d * math.log(c) - 0.5 * d * math.log(2 * math.pi))
    expected = bits_per_dim(log_py, logdet[0], d)
    estimate = bits_per_dim(elbo(ExactGaussianScore(c, sde), sde, y_back, T, gens, chunk=5000)[0], logdet[0], d)
    se = float((estimate - expected).std()) / math.sqrt(n)
    assert abs(float((estimate - expected).mean())) < 4 * se and se < 0.05
    # With dequantisation the whole pipeline still gives a finite BPD and a standard error.
    mean, se = bpd_of(ExactGaussianScore(c, sde), sde, x, T, gens)
    assert torch.isfinite(mean).all() and (se > 0).all()


def test_unet_presets_shapes_and_member_independence():
    spec = unet_spec("small", 1, 8)
    model = EnsembleUNet(3, spec).initialize([torch.Generator().manual_seed(i) for i in range(3)])
    y, t = torch.randn(3, 5, 64), torch.rand(3, 5)
    out = model(y, t)
    assert out.shape == (3, 5, 64)
    alone = EnsembleUNet(1, spec)
    alone.load_member_state_dict(0, model.member_state_dict(2))
    torch.testing.assert_close(alone(y[2:], t[2:]), out[2:], atol=1e-5, rtol=1e-4)
    again = EnsembleUNet(1, spec).initialize([torch.Generator().manual_seed(2)])
    for a, b in zip(again.parameters(), model.parameters()):
        assert torch.equal(a[0], b[2])
    out.pow(2).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="do not fit"):
        alone.load_member_state_dict(0, {"x": torch.zeros(1)})


def test_unet_preset_checks_the_image_size():
    assert unet_spec("paper-mnist", 1, 28).ch == 32
    assert unet_spec("paper-cifar", 3, 32).ch_mult == (1, 2, 2, 2)
    with pytest.raises(ConfigError, match="divisible by 8"):
        unet_spec("paper-cifar", 3, 28)
    with pytest.raises(ConfigError, match="unknown U-Net preset"):
        unet_spec("huge", 1, 8)
