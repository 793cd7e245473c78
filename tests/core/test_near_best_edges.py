"""near_best's rule at its edges: a missing standard error, and a difference of exactly z standard errors."""

from core.metrics.near_best import near_best


def test_a_best_T_without_a_standard_error_has_no_near_neighbours():
    assert near_best([0.1, 0.2], [1.0, 1.01], [None, 0.5]) == [0.1]


def test_a_T_without_a_standard_error_is_not_near_the_best():
    assert near_best([0.1, 0.2], [1.0, 1.01], [0.5, None]) == [0.1]


def test_a_difference_of_exactly_z_standard_errors_is_within():
    # 2 sqrt(0.75^2 + 1^2) = 2.5 exactly in floating point, and 3.5 - 1.0 = 2.5.
    assert near_best([0.1, 0.2, 0.3], [1.0, 3.5, 3.5000001], [1.0, 0.75, 0.75]) == [0.1, 0.2]
