"""Which of two equivalent implementations of a hot network pass is faster on this CPU, measured once per process.

oneDNN's fused linear layer (core/onednn.py) and torch's batched matmul (MKL) compute the same products, but
which is faster depends on the CPU: on one 2-core machine of ours oneDNN ran the score MLP's 128-wide layers at
160-230 GFLOP/s against MKL's 100; on another MKL's batched matmul was the faster, and oneDNN's fused SiLU cost
more than the product itself (README, "Where the time goes"). So each pass that has both paths times them on a
small workload of its own the first time it runs (about 0.1 s in all, on one thread: what a sweep's workers
use) and keeps the faster for the rest of the process. The default path (the first candidate, plain torch) is
kept unless another is faster by ``MARGIN``, so a machine where both are about equal does not flip between
processes. A sweep decides once, in the process that starts it, and hands its choices to every worker
(``adopt``), so its numbers do not depend on ``--jobs`` or the engine.

The two paths give the same numbers up to float rounding (tested). ``INFOGEN_KERNELS=onednn`` or ``=torch`` forces
one path for every pass (to compare them, or so that separate runs repeat bit for bit); ``forced`` does the same
for one thread inside a ``with`` block (tests, benchmarks), and ``taking`` sets a resumed run's saved paths.
``choices()`` says what was decided.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch

from .errors import ConfigError

ENV = "INFOGEN_KERNELS"
PATHS = ("torch", "onednn")
MARGIN = 0.10  # another path must be at least this much faster than the default to be chosen

_chosen: dict[str, str] = {}  # timed here
_adopted: dict[str, str] = {}  # handed over by a sweep's parent: they win over INFOGEN_KERNELS and timing
_local = threading.local()  # ``forced`` and ``taking`` scopes, per thread
_lock = threading.Lock()


def environment_path() -> str | None:
    """The path ``INFOGEN_KERNELS`` forces, or None (unset, empty or "auto"); a ConfigError names a bad value."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value or value == "auto":
        return None
    if value not in PATHS:
        raise ConfigError(f"{ENV}={value!r} is not a kernel path: use torch, onednn or auto (the default)")
    return value


def _scoped(name: str) -> str | None:
    """This thread's innermost ``forced`` path or ``taking`` entry for ``name``, if any."""
    for scope in reversed(getattr(_local, "scopes", [])):
        path = scope if isinstance(scope, str) else scope.get(name)
        if path is not None:
            return path
    return None


def fastest(name: str, workload: Callable[[str], Callable[[], object]], paths: Sequence[str] = PATHS, rounds: int = 5) -> str:
    """The fastest of ``paths`` for the pass ``name``, timed once per process and then remembered.

    ``workload(path)`` returns a function running a representative workload on that path (called only when
    the pass is timed); each is warmed up once, then the paths run in turn ``rounds`` times on one thread and
    each keeps its best time. The first path is the default. Decided without timing, in this order: this
    thread's ``forced`` or ``taking`` block, a sweep's ``adopt``-ed choice, ``INFOGEN_KERNELS``.
    """
    for decided in (_scoped(name), _adopted.get(name), environment_path()):
        if decided is not None and decided in paths:
            return decided
    chosen = _chosen.get(name)
    if chosen is not None:
        return chosen
    with _lock:
        if name in _chosen:
            return _chosen[name]
        keys = list(paths)
        with torch.inference_mode(False):  # a caller inside inference mode: the workloads still train
            best = _best_times({key: workload(key) for key in keys}, rounds)
        default = keys[0]
        winner = min(keys, key=best.__getitem__)
        if best[winner] > best[default] * (1 - MARGIN):
            winner = default
        _chosen[name] = winner
        return winner


def _best_times(candidates: Mapping[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Each candidate's best time over ``rounds`` turns, after one warm-up, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for run in candidates.values():
            run()
        best = dict.fromkeys(candidates, float("inf"))
        for _ in range(rounds):
            for key, run in candidates.items():
                start = time.perf_counter()
                run()
                best[key] = min(best[key], time.perf_counter() - start)
        return best
    finally:
        torch.set_num_threads(threads)


def adopt(choices: Mapping[str, str]) -> None:
    """Take another process's choices (a sweep's parent's) instead of timing here; they win over
    ``INFOGEN_KERNELS`` too, so that every run of a sweep takes the same paths."""
    for name, path in choices.items():
        if path not in PATHS:
            raise ValueError(f"unknown kernel path {path!r} for {name!r}: expected one of {', '.join(PATHS)}")
    with _lock:
        _adopted.update(choices)


def choices() -> dict[str, str]:
    """The path of each pass decided so far in this process (timed here or adopted)."""
    with _lock:
        return {**_chosen, **_adopted}


@contextlib.contextmanager
def forced(path: str) -> Iterator[None]:
    """Every pass run by this thread takes ``path`` ("torch" or "onednn", where usable) inside the block."""
    if path not in PATHS:
        raise ValueError(f"unknown kernel path {path!r}: expected one of {', '.join(PATHS)}")
    with _scope(path):
        yield


@contextlib.contextmanager
def taking(choices: Mapping[str, str]) -> Iterator[None]:
    """The passes named in ``choices`` take those paths in this thread inside the block (a resumed run: the
    paths it trained with, saved in its checkpoint); others are decided as usual."""
    for name, path in choices.items():
        if path not in PATHS:
            raise ValueError(f"unknown kernel path {path!r} for {name!r}: expected one of {', '.join(PATHS)}")
    with _scope(dict(choices)):
        yield


@contextlib.contextmanager
def _scope(scope: str | dict[str, str]) -> Iterator[None]:
    stack = getattr(_local, "scopes", None)
    if stack is None:
        stack = _local.scopes = []
    stack.append(scope)
    try:
        yield
    finally:
        stack.pop()
