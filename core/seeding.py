"""Independent, reproducible random streams derived from one user seed.

Every run draws its data, its initialization, its training noise and its evaluation noise from separate
streams, so that changing one (say, the number of evaluations) does not shift the others, and a run's
numbers do not depend on which other runs share its batched ensemble. What this means for the numbers:
docs/README.md#random-streams.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {"data": 0, "init": 1, "train": 2, "eval": 3, "select": 4, "reference": 5, "eval-draws": 6}


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream of ``seed``."""
    state = np.random.SeedSequence([int(seed), STREAMS[stream]]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def torch_generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded for the named stream."""
    gen = torch.Generator(device=device)
    gen.manual_seed(stream_seed(seed, stream))
    return gen


def numpy_rng(seed: int, stream: str) -> np.random.RandomState:
    """A legacy RandomState (what scikit-learn's generators accept) for the named stream."""
    return np.random.RandomState(stream_seed(seed, stream) % (2**32))
