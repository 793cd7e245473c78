"""Which of two equivalent implementations of a hot network pass is faster on this CPU, measured once per process.

oneDNN's fused linear layer (core/onednn.py) and torch's batched matmul (MKL) compute the same products, but
which is faster depends on the CPU: on one 2-core machine of ours oneDNN ran the score MLP's 128-wide layers at
160-230 GFLOP/s against MKL's 100; on another MKL's batched matmul was the faster, and oneDNN's fused SiLU cost
more than the product itself (README, "Where the time goes"). So each pass that has both paths times them on a
small workload of its own the first time it runs (tens of milliseconds, on one thread: what a sweep's workers
use) and keeps the faster for the rest of the process. The default path (the first candidate, plain torch) is
kept unless another is faster by ``MARGIN``, so a machine where both are about equal does not flip between
processes. A sweep decides once, in the process that starts it, and hands its choices to every worker
(``adopt``), so its numbers do not depend on ``--jobs`` or the engine.

The two paths give the same numbers up to float rounding (tested). ``INFOGEN_KERNELS=onednn`` or ``=torch`` forces
one path for every pass (to compare them, or to reproduce a run bitwise on another machine), and ``forced``
does the same inside a ``with`` block (tests, benchmarks). ``choices()`` says what was chosen.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

ENV = "INFOGEN_KERNELS"
PATHS = ("torch", "onednn")
MARGIN = 0.10  # another path must be at least this much faster than the default to be chosen

_chosen: dict[str, str] = {}
_forced: list[str] = []
_lock = threading.Lock()


def _override() -> str | None:
    if _forced:
        return _forced[-1]
    value = os.environ.get(ENV, "").strip().lower()
    if not value or value == "auto":
        return None
    if value not in PATHS:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(PATHS)} or auto")
    return value


def fastest(name: str, workload: Callable[[str], Callable[[], object]], paths: Sequence[str] = PATHS, rounds: int = 5) -> str:
    """The fastest of ``paths`` for the pass ``name``, timed once per process and then remembered.

    ``workload(path)`` returns a function running a representative workload on that path (called only when
    the pass is timed); each is warmed up once, then the paths run in turn ``rounds`` times on one thread and
    each keeps its best time. The first path is the default. A forced path (``INFOGEN_KERNELS`` or ``forced``)
    is returned without timing.
    """
    override = _override()
    if override is not None and override in paths:
        return override
    chosen = _chosen.get(name)
    if chosen is not None:
        return chosen
    with _lock:
        if name in _chosen:
            return _chosen[name]
        keys = list(paths)
        candidates = {key: workload(key) for key in keys}
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for key in keys:
                candidates[key]()
            best = dict.fromkeys(keys, float("inf"))
            for _ in range(rounds):
                for key in keys:
                    start = time.perf_counter()
                    candidates[key]()
                    best[key] = min(best[key], time.perf_counter() - start)
        finally:
            torch.set_num_threads(threads)
        default = keys[0]
        winner = min(keys, key=best.__getitem__)
        if best[winner] > best[default] * (1 - MARGIN):
            winner = default
        _chosen[name] = winner
        return winner


def adopt(choices: Mapping[str, str]) -> None:
    """Take another process's choices (a sweep's parent's) instead of timing here."""
    for name, path in choices.items():
        if path not in PATHS:
            raise ValueError(f"unknown kernel path {path!r} for {name!r}: expected one of {', '.join(PATHS)}")
    with _lock:
        _chosen.update(choices)


def choices() -> dict[str, str]:
    """The path chosen for each pass timed so far in this process."""
    with _lock:
        return dict(_chosen)


@contextlib.contextmanager
def forced(path: str) -> Iterator[None]:
    """Every pass takes ``path`` ("torch" or "onednn", where usable) inside the block."""
    if path not in PATHS:
        raise ValueError(f"unknown kernel path {path!r}: expected one of {', '.join(PATHS)}")
    _forced.append(path)
    try:
        yield
    finally:
        _forced.pop()
