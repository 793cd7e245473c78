"""Shared test settings: small, fast configs with fixed seeds."""

import pytest
import torch

from core.training.config import DiffusionConfig

torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> DiffusionConfig:
    """A diffusion run that trains and evaluates in about a second."""
    return DiffusionConfig(
        m=32, n_test=64, T=0.6, iters=12, eval_every=6, n_steps=40, mc_samples=20, n_gen=64, dsm_eval_draws=2, hidden=16
    )
