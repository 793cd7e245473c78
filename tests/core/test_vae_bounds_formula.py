"""The VAE's two bounds (docs/vae-bound.md#bounds), computed here from their formulas:
encoder-only rec + sqrt(kl); encoder+generator rec + (1 + r) sqrt(kl) + (1 + r) sqrt(mi / m), negative kl and mi read as 0."""

import math

import pytest

from core.vae.train import bounds


@pytest.mark.parametrize(
    "rec,kl,mi,m,r",
    [(1.5, 4.0, 18.0, 2, 0.5), (90.0, 0.25, 0.5, 8, 0.0), (3.0, 0.49, 0.04, 4, 2.0), (7.0, -0.3, -2.0, 10, 1.0)],
)
def test_both_bounds_follow_their_formulas(rec, kl, mi, m, r):
    sqrt_kl, sqrt_mi_m = math.sqrt(max(kl, 0.0)), math.sqrt(max(mi, 0.0) / m)
    got = bounds(rec, kl, mi, m, r)
    assert got["bound_encoder_only"] == pytest.approx(rec + sqrt_kl, rel=1e-12)
    assert got["bound_encoder_generator"] == pytest.approx(rec + (1 + r) * sqrt_kl + (1 + r) * sqrt_mi_m, rel=1e-12)


def test_worked_numbers():
    # kl = 4, mi / m = 9, r = 0.5: 1.5 + 2 and 1.5 + 1.5 * 2 + 1.5 * 3.
    assert bounds(1.5, 4.0, 18.0, 2, 0.5) == pytest.approx({"bound_encoder_only": 3.5, "bound_encoder_generator": 9.0})
