"""Memory budgets of the chunked estimators and the float64 switch of the mixture KL / KDE, against their
formulas: rows = budget // ((n_cols + row_width) * bytes); float64 where 2 eps max_i |x_i|^2 / var > 1e-4, d <= 64."""

import math

import numpy as np
import pytest
import torch

from core.bounds.chunking import DEFAULT_BLOCK_BYTES, rows_per_block
from core.bounds.mixture_kl import log_mixture_density, precise_dtype

EPS32 = 1.2e-7  # float32's relative rounding error, as the docstring's estimate uses it
THRESHOLD = 1e-4 / (2 * EPS32)  # max |x|^2 / var above which float64 is used


def test_rows_per_block_defaults_count_one_input_per_row_at_four_bytes():
    assert DEFAULT_BLOCK_BYTES == 8 * 2**20
    assert rows_per_block(1000) == 8 * 2**20 // ((1000 + 1) * 4)
    assert rows_per_block(1000, 24, 8, budget=10**6) == 10**6 // ((1000 + 24) * 8)


def test_rows_per_block_is_at_least_one_and_never_divides_by_zero():
    assert rows_per_block(10, 0, budget=40) == 1  # exactly one row of 10 float32 fits
    assert rows_per_block(10, 0, budget=39) == 1  # none fits: still one
    assert rows_per_block(10, 0, budget=80) == 2
    assert rows_per_block(0, 0, budget=10) == 10  # an empty row counts as one byte


def test_log_mixture_density_blocks_are_as_wide_as_the_budget_allows(monkeypatch):
    rng = np.random.default_rng(0)
    u, centres, var = rng.normal(size=(5, 2)), rng.normal(size=(23, 2)), 0.4
    widths = []
    real_logsumexp = torch.logsumexp

    def spy(x, dim):
        widths.append(tuple(x.shape))
        return real_logsumexp(x, dim)

    monkeypatch.setattr(torch, "logsumexp", spy)
    budget = 60  # 5 rows x 3 centres x 4 bytes
    got = log_mixture_density(torch.from_numpy(u).float(), torch.from_numpy(centres).float(), var, budget)
    assert widths == [(5, 3)] * 7 + [(5, 2)]
    sq = ((u[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    expected = np.log(np.exp(-sq / (2 * var)).mean(1)) - 0.5 * 2 * math.log(2 * math.pi * var)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_float64_only_up_to_64_dimensions():
    big = torch.full((3, 64), 10.0)
    assert precise_dtype(big, 1e-3) == torch.float64
    assert precise_dtype(torch.full((3, 65), 10.0), 1e-3) == torch.float32


def test_float64_when_the_largest_squared_row_norm_over_var_exceeds_the_threshold():
    # Row squared norms 25 and 1; column sums 9 and 17; all entries squared sum to 26.
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    assert precise_dtype(x, 25 / THRESHOLD * 1.02) == torch.float32  # 25 / var just below the threshold
    assert precise_dtype(x, 25 / THRESHOLD * 0.98) == torch.float64  # just above
    assert precise_dtype(x.double(), 25 / THRESHOLD * 1.02) == torch.float64  # the input's dtype is kept


def test_at_exactly_the_threshold_float32_is_kept():
    # 2 * 1.2e-7 * 1 / 0.0024 is exactly 1e-4 in floating point: the error does not exceed it.
    assert 2 * EPS32 * 1.0 / 0.0024 == 1e-4
    assert precise_dtype(torch.tensor([[1.0, 0.0]]), 0.0024) == torch.float32
