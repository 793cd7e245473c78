"""Every term of the diffusion bound against its formula, computed here with numpy (docs/diffusion-bound.md).

The expected values never call the code's own helpers: the schedule, the Gaussian KL, the Riemann sum and the
mixture KL are written out below, so a careless edit of any of them changes a number that these tests pin.
"""

import math

import numpy as np
import pytest
import torch

from core.bounds.diffusion_bound import EncoderTerms, assemble_bound, encoder_terms, generator_term
from core.bounds.variants import MINIBATCH_MIXTURE_SIZE, VARIANTS
from core.training.config import DiffusionConfig

BETA_MIN, BETA_MAX = 0.1, 20.0


def alpha_var(T: float) -> tuple[float, float]:
    """alpha(T) and sigma^2(T) of the VP-SDE with the linear schedule, from the integral of beta."""
    integral = BETA_MIN * T + 0.5 * (BETA_MAX - BETA_MIN) * T * T
    return math.exp(-0.5 * integral), 1.0 - math.exp(-integral)


def kl_to_prior(x: np.ndarray, T: float) -> np.ndarray:
    """KL(N(alpha x_i, sigma^2 I) || N(0, I)) per row: 1/2 (|mu|^2 + d v - d - d log v)."""
    a, v = alpha_var(T)
    d = x.shape[1]
    return 0.5 * ((a * x) ** 2).sum(1) + 0.5 * d * (v - 1.0 - math.log(v))


def sum_beta(T: float, N: int, terms: int) -> float:
    """sum_{k < terms} beta(k T / N) in closed form: terms beta_min + (beta_max - beta_min) (T / N) terms (terms - 1) / 2."""
    return terms * BETA_MIN + (BETA_MAX - BETA_MIN) * (T / N) * terms * (terms - 1) / 2


def points(m: int, d: int, seed: int, scale: float = 2.0) -> np.ndarray:
    """Training points with unequal norms, so that mean sqrt(KL) and sqrt(mean KL) differ."""
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((m, d)) * rng.uniform(0.2, 1.5, size=(m, 1))


def terms_for(x: np.ndarray, T: float, variant: str, K: int = 10, seed: int = 0):
    return encoder_terms(torch.from_numpy(x), T, VARIANTS[variant], K, torch.Generator().manual_seed(seed))


# --- encoder_prior ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [0.2, 0.45, 1.0])
@pytest.mark.parametrize("variant", ["exact", "reference-2d"])
def test_encoder_prior_is_the_mean_of_the_root_kl(T, variant):
    x = points(9, 3, seed=1)
    expected = float(np.sqrt(kl_to_prior(x, T)).mean())
    assert terms_for(x, T, variant).encoder_prior == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("T", [0.2, 0.7])
def test_reference_images_encoder_prior_is_the_mean_kl_without_a_root(T):
    x = points(9, 3, seed=2)
    expected = float(kl_to_prior(x, T).mean())
    assert terms_for(x, T, "reference-images").encoder_prior == pytest.approx(expected, rel=1e-9)


def test_encoder_prior_of_the_spec_example():
    # One point x = (3, 4) at T = 0.2: alpha = exp(-0.5 (0.02 + 0.398)), |alpha x|^2 = 25 alpha^2.
    a2 = math.exp(-(0.1 * 0.2 + 0.5 * 19.9 * 0.04))
    v = 1 - a2
    kl = 0.5 * (25 * a2 + 2 * v - 2 - 2 * math.log(v))
    x = np.array([[3.0, 4.0], [3.0, 4.0]])
    assert terms_for(x, 0.2, "exact").encoder_prior == pytest.approx(math.sqrt(kl), rel=1e-9)
    assert kl == pytest.approx(8.6452, abs=1e-3)  # 0.5 (16.460 + 0.683 - 2 + 2.148), worked out by hand


# --- generator and sum of beta ------------------------------------------------------------------------------

@pytest.mark.parametrize("T,L,sb,m,N", [(0.7, 3.0, 123.4, 50, 200), (1.8, 0.4, 2000.0, 7, 1000), (0.2, 12.0, 5.0, 200, 10)])
def test_generator_term_formula(T, L, sb, m, N):
    assert generator_term(T, L, sb, m, N) == pytest.approx(math.sqrt(T * L**2 * sb / (2 * m * N)), rel=1e-12)


@pytest.mark.parametrize("T,N", [(0.6, 1000), (1.8, 37), (0.2, 5)])
def test_exact_and_reference_2d_sum_beta_has_N_terms(T, N):
    enc = EncoderTerms(-0.3, 0.01, 0.7)
    for name in ("exact", "reference-2d"):
        b = assemble_bound(VARIANTS[name], T, 0.5, enc, 2.5, 200, N, 5.0, 100)
        assert b.sum_beta == pytest.approx(N * BETA_MIN + (BETA_MAX - BETA_MIN) * T * (N - 1) / 2, rel=1e-12)
        assert b.generator == pytest.approx(math.sqrt(T * 2.5**2 * b.sum_beta / (2 * 200 * N)), rel=1e-12)
        assert b.N == N


@pytest.mark.parametrize("T,N", [(0.6, 600), (0.3, 299), (2.0, 7)])
def test_reference_images_sum_beta_has_N_plus_one_terms(T, N):
    b = assemble_bound(VARIANTS["reference-images"], T, 0.5, EncoderTerms(-0.3, 0.01, 0.7), 2.5, 16, N, 4000.0, 100)
    assert b.sum_beta == pytest.approx((N + 1) * BETA_MIN + (BETA_MAX - BETA_MIN) * T * (N + 1) / 2, rel=1e-12)
    assert b.sum_beta == pytest.approx(sum_beta(T, N, N + 1), rel=1e-12)
    assert b.generator == pytest.approx(math.sqrt(T * 2.5**2 * b.sum_beta / (2 * 16 * N)), rel=1e-12)


@pytest.mark.parametrize("T", [0.3, 0.6, 1.4, 0.7, 1.2])
def test_step_count_rules_of_the_variants(T):
    cfg = DiffusionConfig(data="digits", T=T, step_size=0.001)
    # exact: N = round(T / step); the published image code: int(T / step), which float rounding can cut by one.
    assert cfg.bound_steps(truncate=VARIANTS["exact"].truncate_steps) == round(T / 0.001)
    assert cfg.bound_steps(truncate=VARIANTS["reference-images"].truncate_steps) == int(T / 0.001)
    assert DiffusionConfig(T=T, n_steps=1000).bound_steps(truncate=True) == 1000  # points: N fixed


def test_int_truncation_really_differs_from_rounding_at_T_1_4():
    assert int(1.4 / 0.001) == 1399 and round(1.4 / 0.001) == 1400
    assert DiffusionConfig(data="digits", T=1.4, step_size=0.001).bound_steps(truncate=True) == 1399


# --- the assembled bound ------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("R", [5.0, 1.0, 4000.0])
def test_assembled_bound_is_the_sum_with_root_two_R_factors(variant, R):
    T, N, m, L, sm = 0.8, 300, 40, 1.7, 0.62
    enc = EncoderTerms(encoder_info=-1.25, encoder_info_se=0.02, encoder_prior=0.31)
    b = assemble_bound(VARIANTS[variant], T, sm, enc, L, m, N, R, 50)
    terms = N + 1 if variant == "reference-images" else N
    gen = math.sqrt(T * L * L * sum_beta(T, N, terms) / (2 * m * N))
    expected = sm + (-1.25) + math.sqrt(2) * R * 0.31 + math.sqrt(2) * R * gen
    assert b.total == pytest.approx(expected, rel=1e-12)
    assert (b.score_matching, b.encoder_info, b.encoder_prior, b.L, b.m, b.R, b.K) == (sm, -1.25, 0.31, L, m, R, 50)
    assert b.generator == pytest.approx(gen, rel=1e-12)


# --- encoder_info -------------------------------------------------------------------------------------------

def brute_force_mixture_kl(means: np.ndarray, var: float, n: int, seed: int) -> tuple[float, float]:
    """mean_i KL(N(mu_i, var I) || (1/m) sum_j N(mu_j, var I)) by plain Monte Carlo on both densities, with its SE."""
    rng = np.random.default_rng(seed)
    m, d = means.shape
    per_point, variances = [], []
    for i in range(m):
        u = means[i] + math.sqrt(var) * rng.standard_normal((n, d))
        sq = ((u[:, None, :] - means[None, :, :]) ** 2).sum(-1)  # (n, m)
        log_comp = -0.5 * sq / var - 0.5 * d * math.log(2 * math.pi * var)
        top = log_comp.max(1, keepdims=True)
        log_mix = (top + np.log(np.exp(log_comp - top).mean(1, keepdims=True)))[:, 0]
        diff = log_comp[:, i] - log_mix
        per_point.append(diff.mean())
        variances.append(diff.var(ddof=1) / n)
    return float(np.mean(per_point)), math.sqrt(sum(variances)) / m


@pytest.mark.parametrize("T", [0.1, 0.2])
@pytest.mark.parametrize("variant,power", [("exact", 1.0), ("reference-2d", 0.5)])
def test_encoder_info_against_brute_force_monte_carlo(T, variant, power):
    # At these T sigma^2 and sigma differ a lot (0.342 and 0.585 at T = 0.2): each variance gives its own value.
    x = np.array([[0.0, 0.0], [1.0, 0.2], [-0.4, 1.1], [2.0, -1.0], [0.5, 0.6]])
    a, v = alpha_var(T)
    enc_var = v**power
    expected, se_np = brute_force_mixture_kl(a * x, enc_var, 40_000, seed=3)
    got = terms_for(x, T, variant, K=20_000, seed=4)
    assert got.encoder_info_se < 0.01
    assert got.encoder_info == pytest.approx(-expected, abs=4 * math.hypot(got.encoder_info_se, se_np))
    # The other variance is far outside that error: the test tells sigma from sigma^2.
    other, _ = brute_force_mixture_kl(a * x, v ** (1.5 - power), 40_000, seed=5)
    assert abs(other - expected) > 20 * math.hypot(got.encoder_info_se, se_np)


def test_encoder_info_tends_to_minus_log_m_for_far_apart_points():
    # Each point's KL to the mixture is log m; the exact-entropy estimator is off only by its Monte Carlo error.
    m = 6
    x = 1000.0 * np.arange(m, dtype=float)[:, None] * np.ones((1, 2))
    for variant in ("exact", "reference-2d"):
        got = terms_for(x, 0.2, variant, K=4000)
        assert got.encoder_info_se < 0.01
        assert got.encoder_info == pytest.approx(-math.log(m), abs=4 * got.encoder_info_se)


def test_encoder_info_tends_to_zero_when_the_encoder_forgets_x():
    # At T = 2.5 alpha ~ 1e-13: every component is N(0, ~I), so each point's KL to the mixture is 0.
    x = points(8, 2, seed=6)
    for variant in ("exact", "reference-2d"):
        got = terms_for(x, 2.5, variant, K=4000)
        assert got.encoder_info_se < 0.01
        assert got.encoder_info == pytest.approx(0.0, abs=4 * got.encoder_info_se)


def test_reference_images_mixes_over_minibatches_of_128_and_averages_the_batches():
    # 300 far-apart points: batches of 128, 128 and 44, each point's KL is log(its batch size),
    # and the variant averages the three batch means with equal weight, as the published code does.
    assert MINIBATCH_MIXTURE_SIZE == 128
    x = 1000.0 * np.arange(300, dtype=float)[:, None]
    got = terms_for(x, 0.2, "reference-images", K=400)
    expected = -(2 * math.log(128) + math.log(44)) / 3
    assert got.encoder_info_se < 0.004
    assert got.encoder_info == pytest.approx(expected, abs=4 * got.encoder_info_se)
    full = terms_for(x, 0.2, "exact", K=400)
    assert full.encoder_info == pytest.approx(-math.log(300), abs=4 * full.encoder_info_se)


def test_encoder_info_se_is_the_monte_carlo_error_of_the_mean():
    # The reported SE must match the spread of independent estimates (seeds), within sampling error of a SD.
    x = np.array([[0.0, 0.0], [0.8, 0.1], [-0.3, 0.9]])
    runs = [terms_for(x, 0.3, "exact", K=200, seed=s) for s in range(40)]
    spread = float(np.std([r.encoder_info for r in runs], ddof=1))
    reported = float(np.mean([r.encoder_info_se for r in runs]))
    assert reported == pytest.approx(spread, rel=0.35)
