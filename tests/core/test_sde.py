import math

import pytest

from core.errors import ConfigError
from core.sde import VPSDE

TABLE = {  # docs/diffusion-model.md#vp-sde: T -> (alpha(T), sigma^2(T))
    0.2: (0.811, 0.342), 0.4: (0.442, 0.805), 0.6: (0.162, 0.974), 0.8: (0.0398, 0.9984),
    1.0: (6.6e-3, 0.99996), 1.4: (5.4e-5, 1.0), 2.0: (2.1e-9, 1.0),
}


@pytest.mark.parametrize("T", sorted(TABLE))
def test_alpha_and_variance_match_the_spec_table(T):
    sde = VPSDE()
    alpha, var = TABLE[T]
    assert sde.alpha(T) == pytest.approx(alpha, rel=0.02)
    assert sde.var(T) == pytest.approx(var, abs=6e-4)
    assert sde.alpha(T) ** 2 + sde.var(T) == pytest.approx(1.0)


def test_integral_of_beta_at_one():
    assert VPSDE().integral_beta(1.0) == pytest.approx(10.05)
    assert VPSDE().beta(2.0) == pytest.approx(39.9)


@pytest.mark.parametrize("T", [0.2, 1.0, 1.8])
def test_riemann_sum_of_beta_tends_to_the_integral(T):
    sde = VPSDE()
    errors = [abs(T / n * sde.sum_beta(T, n) - sde.integral_beta(T)) for n in (10, 100, 1000, 10000)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-3 * sde.integral_beta(T)
    # Left Riemann sum of an increasing function under-estimates: the error is (T/N) * (beta(T) - beta(0)) / 2.
    assert sde.integral_beta(T) - T / 1000 * sde.sum_beta(T, 1000) == pytest.approx(
        T / 1000 * (sde.beta(T) - sde.beta(0)) / 2, rel=1e-6
    )


def test_reference_image_convention_adds_one_term():
    sde = VPSDE()
    assert sde.sum_beta(1.0, 1000, 1001) - sde.sum_beta(1.0, 1000) == pytest.approx(sde.beta(1.0))


@pytest.mark.parametrize("T", [0.0, -1.0, math.nan, math.inf])
def test_bad_T_is_refused(T):
    with pytest.raises(ConfigError, match="diffusion time T"):
        VPSDE().sum_beta(T, 10)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_bad_step_count_is_refused(n):
    with pytest.raises(ConfigError, match="Euler-Maruyama steps N"):
        VPSDE().sum_beta(1.0, n)
