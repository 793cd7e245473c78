"""The closed-form Gaussian KLs per row, for inputs with leading batch axes, against numpy."""

import numpy as np
import torch

from core.bounds.gaussian import kl_diagonal_to_standard, kl_isotropic_to_standard


def test_isotropic_kl_per_row_of_a_batch_of_batches():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(2, 3, 5))
    var = 0.3
    d = mean.shape[-1]
    expected = 0.5 * ((mean**2).sum(-1) + d * var - d - d * np.log(var))
    got = kl_isotropic_to_standard(torch.from_numpy(mean), var)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_diagonal_kl_per_row_of_a_batch_of_batches():
    rng = np.random.default_rng(1)
    mean, logvar = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    var = np.exp(logvar)
    expected = 0.5 * (mean**2 + var - 1.0 - logvar).sum(-1)
    got = kl_diagonal_to_standard(torch.from_numpy(mean), torch.from_numpy(logvar))
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
