"""What B(T) refuses: a sub-Gaussian constant R that is not a finite number > 0, and an unknown variant."""

import math

import pytest

from core.bounds.diffusion_bound import EncoderTerms, assemble_bound
from core.bounds.variants import get_variant
from core.errors import ConfigError


@pytest.mark.parametrize("R", [0.0, -1.0, math.inf, math.nan])
def test_R_must_be_finite_and_positive(R):
    with pytest.raises(ConfigError, match="sub-Gaussian constant R must be a finite number > 0"):
        assemble_bound(get_variant("exact"), 1.0, 0.0, EncoderTerms(0.0, 0.0, 0.0), 1.0, 2, 10, R, K=1)


def test_a_small_positive_R_scales_the_prior_term():
    bound = assemble_bound(get_variant("exact"), 1.0, 0.0, EncoderTerms(0.0, 0.0, 1.0), 0.0, 2, 10, 0.5, K=1)
    assert bound.total == pytest.approx(math.sqrt(2) * 0.5)  # sqrt(2) R encoder_prior, L = 0


def test_an_unknown_variant_lists_the_known_ones():
    with pytest.raises(ConfigError, match="choose one of exact, reference-2d, reference-images"):
        get_variant("paper")
