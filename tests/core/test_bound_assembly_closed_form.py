"""B(T)'s generator term, its sum of beta under each variant's convention and the checks on its inputs,
against the formulas of docs/diffusion-bound.md written out here (linear schedule beta_min 0.1, beta_max 20)."""

import math

import pytest

from core.bounds.diffusion_bound import EncoderTerms, assemble_bound, generator_term
from core.bounds.variants import get_variant
from core.errors import ConfigError
from core.sde import VPSDE

BETA_MIN, BETA_MAX = 0.1, 20.0


def left_sum_of_beta(T: float, n_steps: int, n_terms: int) -> float:
    """sum_{k < n_terms} beta(k T / N), in closed form: n_terms beta_min + (beta_max - beta_min) (T/N) n_terms (n_terms - 1) / 2."""
    return n_terms * BETA_MIN + (BETA_MAX - BETA_MIN) * (T / n_steps) * n_terms * (n_terms - 1) / 2


def test_generator_term_is_sqrt_of_T_L2_sum_beta_over_2mN():
    T, L, sum_beta, m, N = 0.7, 3.0, 41.0, 12, 25
    assert generator_term(T, L, sum_beta, m, N) == pytest.approx(math.sqrt(T * L**2 * sum_beta / (2 * m * N)), rel=1e-12)


@pytest.mark.parametrize("name,extra_term", [("exact", False), ("reference-2d", False), ("reference-images", True)])
def test_assembled_bound_uses_the_variants_sum_of_beta_and_adds_its_terms(name, extra_term):
    variant = get_variant(name)
    T, L, m, N, R = 0.6, 2.5, 16, 50, 1.7
    encoder = EncoderTerms(encoder_info=-0.8, encoder_info_se=0.01, encoder_prior=0.9)
    bound = assemble_bound(variant, T, 1.3, encoder, L, m, N, R, K=100)

    sum_beta = left_sum_of_beta(T, N, N + 1 if extra_term else N)
    gen = math.sqrt(T * L**2 * sum_beta / (2 * m * N))
    assert bound.sum_beta == pytest.approx(sum_beta, rel=1e-12)
    assert bound.generator == pytest.approx(gen, rel=1e-12)
    assert bound.total == pytest.approx(1.3 - 0.8 + math.sqrt(2) * R * 0.9 + math.sqrt(2) * R * gen, rel=1e-12)
    assert (bound.N, bound.m, bound.K, bound.R) == (N, m, 100, R)


def test_a_small_positive_R_is_accepted():
    bound = assemble_bound(get_variant("exact"), 1.0, 0.0, EncoderTerms(0.0, 0.0, 1.0), 0.0, 2, 10, 0.5, K=1)
    assert bound.total == pytest.approx(math.sqrt(2) * 0.5)


@pytest.mark.parametrize("R", [0.0, -1.0, math.inf, math.nan])
def test_R_must_be_finite_and_positive(R):
    with pytest.raises(ConfigError, match="sub-Gaussian constant R must be a finite number > 0"):
        assemble_bound(get_variant("exact"), 1.0, 0.0, EncoderTerms(0.0, 0.0, 0.0), 1.0, 2, 10, R, K=1)


def test_one_euler_maruyama_step_is_allowed_and_sums_beta_at_zero():
    assert VPSDE().sum_beta(0.8, 1) == pytest.approx(BETA_MIN)
    assert VPSDE().sum_beta(0.8, 1, 2) == pytest.approx(2 * BETA_MIN + (BETA_MAX - BETA_MIN) * 0.8)


def test_an_unknown_variant_lists_the_known_ones():
    with pytest.raises(ConfigError, match="choose one of exact, reference-2d, reference-images"):
        get_variant("paper")
