import numpy as np
import pytest

from core.smoothing import debiased_ema, decimate


def test_matches_tensorboards_formula():
    y = [1.0, 2.0, 4.0, 3.0]
    w = 0.6
    last, expected = 0.0, []
    for n, v in enumerate(y, start=1):
        last = last * w + (1 - w) * v
        expected.append(last / (1 - w**n))
    np.testing.assert_allclose(debiased_ema(y, w), expected)
    assert debiased_ema(y, w)[0] == 1.0  # debiasing: the first point is itself


def test_non_finite_points_pass_through_and_do_not_count():
    out = debiased_ema([1.0, np.nan, 3.0, np.inf], 0.5)
    assert np.isnan(out[1]) and np.isinf(out[3])
    np.testing.assert_allclose(out[[0, 2]], [1.0, (0.25 + 1.5) / 0.75])


def test_constant_series_and_zero_weight_are_unchanged():
    np.testing.assert_array_equal(debiased_ema([0.1] * 50, 0.99), [0.1] * 50)
    np.testing.assert_array_equal(debiased_ema([1.0, 5.0], 0.0), [1.0, 5.0])


def test_weight_is_clamped():
    y = np.random.default_rng(0).normal(size=100)
    np.testing.assert_allclose(debiased_ema(y, 5.0), debiased_ema(y, 0.999))


def test_decimate_keeps_ends_and_bounds_the_count():
    x = np.arange(10_000)
    dx, dy = decimate(x, x * 2.0, 500)
    assert len(dx) <= 501 and dx[0] == 0 and dx[-1] == 9999
    np.testing.assert_array_equal(dy, dx * 2.0)
    assert len(decimate(x[:10], x[:10], 500)[0]) == 10


@pytest.mark.parametrize("w", [0.0, 0.3, 0.9])
def test_empty_series(w):
    assert debiased_ema([], w).size == 0


def test_encoder_view_is_the_closed_form():
    from core.encoder_view import encoder_view, fixed_noise
    from core.sde import VPSDE

    x = np.random.default_rng(1).normal(size=(20000, 2)).astype(np.float32) + 3.0
    eps = fixed_noise(x.shape)
    sde = VPSDE()
    for T in (0.2, 0.6, 1.5):
        view = encoder_view(x, T, eps)
        np.testing.assert_allclose(view.mean(0), sde.alpha(T) * x.mean(0), atol=0.03)
        np.testing.assert_allclose(view.var(0), sde.alpha(T) ** 2 * x.var(0) + sde.var(T), rtol=0.05)
    np.testing.assert_array_equal(encoder_view(x, 0.0, eps), x)
