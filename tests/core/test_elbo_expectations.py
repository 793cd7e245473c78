"""The ELBO estimator's expectation and the BPD's normalisation and error bar, against closed forms.

Linear schedule: beta(t) = 0.1 + 19.9 t, B(t) = 0.1 t + 9.95 t^2, alpha^2 = exp(-B), sigma^2 = 1 - exp(-B).
"""

import math

import numpy as np
import pytest
import torch

from core.diffusion.elbo import elbo, test_bpd as bpd_of
from core.sde import VPSDE

LAM = 0.05  # the logit transform's lambda (docs/diffusion-bound.md#images)


def beta(t):
    return 0.1 + 19.9 * t


def alpha2(t):
    return np.exp(-(0.1 * t + 9.95 * t * t))


def time_average(f, T, n=200_001):
    t = np.linspace(0.0, T, n)
    return np.trapezoid(f(t), t) / T


class LinearDrift(torch.nn.Module):
    """a(y, t) = A y: the Jacobian of mu = sqrt(beta) a + beta y / 2 is sqrt(beta) A + beta / 2 I."""

    def __init__(self, A: np.ndarray) -> None:
        super().__init__()
        self.A = torch.from_numpy(A)

    def forward(self, y, t):
        return y @ self.A.T


def test_elbo_of_a_linear_drift_has_its_closed_form_expectation():
    # E[ELBO(y0)] = -1/2 (alpha_T^2 |y0|^2 + d sigma_T^2 + d log 2 pi)
    #               - T E_t[sqrt(beta) tr A + beta d / 2 + 1/2 (alpha^2 |A y0|^2 + sigma^2 |A|_F^2)],  t ~ U(0, T).
    # A is not symmetric and sum(A) != tr(A): a probe other than Rademacher would not average to the trace.
    A = np.array([[0.5, 1.5], [-0.4, 0.2]])
    y0 = np.array([0.8, -0.3])
    T, d, n = 0.5, 2, 20_000
    a2T = alpha2(T)
    log_prior = -0.5 * (a2T * y0 @ y0 + d * (1 - a2T) + d * math.log(2 * math.pi))
    Ay0 = A @ y0
    integrand = (
        time_average(lambda t: np.sqrt(beta(t)), T) * np.trace(A)
        + time_average(beta, T) * d / 2
        + 0.5 * (time_average(alpha2, T) * Ay0 @ Ay0 + (1 - time_average(alpha2, T)) * (A**2).sum())
    )
    expected = log_prior - T * integrand

    y = torch.from_numpy(y0).expand(1, n, d).clone()
    est = elbo(LinearDrift(A), VPSDE(), y, torch.tensor([T], dtype=torch.float64), [torch.Generator().manual_seed(0)],
               chunk=10_000)[0]
    se = float(est.std()) / math.sqrt(n)
    assert se < 0.05
    assert float(est.mean()) == pytest.approx(expected, abs=5 * se)


class ExactGaussianDrift(torch.nn.Module):
    """The true drift for y ~ N(0, c^2 I): p_t = N(0, (alpha^2 c^2 + sigma^2) I), a = sqrt(beta) * score."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, y, t):
        B = 0.1 * t + 9.95 * t * t
        v = torch.exp(-B) * self.c**2 + 1 - torch.exp(-B)
        return -torch.sqrt(0.1 + 19.9 * t)[..., None] * y / v[..., None]


def expected_bpd(x: np.ndarray, c: float) -> float:
    """Mean over images of -(log N(y; 0, c^2 I) + logdet) / (d ln 2) + 8, averaged over the dequantisation noise
    u = x 255/256 + U(0, 1/256) by quadrature (the ELBO of the exact score is tight in expectation)."""
    d = x.shape[-1]
    U = (np.arange(400) + 0.5) / 400 / 256  # midpoints over the pixel's bin
    s = LAM + (1 - 2 * LAM) * (x[..., None] * 255 / 256 + U)
    y = np.log(s) - np.log1p(-s)
    log_density = -0.5 * y**2 / c**2 - math.log(c) - 0.5 * math.log(2 * math.pi)
    logdet = math.log(1 - 2 * LAM) - np.log(s) - np.log1p(-s)
    per_image = (log_density + logdet).mean(-1).sum(-1)  # average over U, sum over pixels
    return float((-per_image / (d * math.log(2)) + 8).mean())


def test_bpd_is_normalised_per_pixel_not_per_image():
    # 3 pixels, 3000 images: BPD divides by the 3 pixels. With c = 0.25 the BPD is about 15, far from the 8 that
    # dividing by the number of images would give.
    c, n, d = 0.25, 3000, 3
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(1, n, d, generator=gen, dtype=torch.float64) * 0.8 + 0.1
    T = torch.tensor([1.0], dtype=torch.float64)
    mean, se = bpd_of(ExactGaussianDrift(c), VPSDE(), x, T, [torch.Generator().manual_seed(2)], chunk=1000)
    assert float(se) < 0.6
    assert float(mean) == pytest.approx(expected_bpd(x[0].numpy(), c), abs=5 * float(se))


def test_bpd_error_bar_is_the_standard_error_of_the_mean_over_images():
    # Over independent sets of n images, the spread of the mean BPD is what the reported SE says.
    c, n, d, reps = 0.5, 40, 2, 60
    gen = torch.Generator().manual_seed(3)
    T = torch.tensor([1.0], dtype=torch.float64)
    means, ses = [], []
    for _ in range(reps):
        x = torch.rand(1, n, d, generator=gen, dtype=torch.float64)
        mean, se = bpd_of(ExactGaussianDrift(c), VPSDE(), x, T, [gen])
        means.append(float(mean))
        ses.append(float(se))
    ratio = float(np.std(means, ddof=1)) / float(np.sqrt(np.mean(np.square(ses))))
    assert 0.7 < ratio < 1.4


def test_bpd_error_bar_is_zero_for_one_image_and_positive_for_two():
    model, sde, T = ExactGaussianDrift(0.5), VPSDE(), torch.tensor([1.0], dtype=torch.float64)
    x = torch.full((1, 1, 3), 0.5, dtype=torch.float64)
    _, se = bpd_of(model, sde, x, T, [torch.Generator().manual_seed(4)])
    assert se.shape == (1,) and float(se) == 0.0
    _, se = bpd_of(model, sde, x.expand(1, 2, 3).clone(), T, [torch.Generator().manual_seed(4)])
    assert float(se) > 0
