"""A real checkpoint of a tiny diffusion run, built once per test session, for the tests that take it apart."""

from __future__ import annotations

import functools

from core.checkpoint import build_checkpoint_bytes
from core.io.atomic import to_json
from core.records import without_arrays
from core.training.config import DiffusionConfig
from core.training.diffusion import train_diffusion

TINY_CHECKPOINT_CONFIG = DiffusionConfig(m=24, n_test=40, T=0.6, iters=6, eval_every=3, n_steps=20, mc_samples=10,
                                         n_gen=32, test_kl_draws=2, dsm_eval_draws=1, hidden=16)


@functools.lru_cache(maxsize=1)
def tiny_checkpoint_bytes() -> bytes:
    """The checkpoint file of TINY_CHECKPOINT_CONFIG's run (two evaluations)."""
    history, samples, last = [], {}, None
    for record in train_diffusion(TINY_CHECKPOINT_CONFIG):
        history.append(to_json(without_arrays(record)))
        if record["kind"] == "eval":
            samples[record["step"]] = record["samples"]
            last = record
    return build_checkpoint_bytes(model="dm", config=TINY_CHECKPOINT_CONFIG.as_dict(), history=history,
                                  weights=last["model_state"], train_state=last["train_state"], samples=samples)
