"""Keep freed memory in the process instead of handing it back to the OS after every step (glibc only).

A training or sampling step allocates and frees activations of a few megabytes. With glibc's default
settings each such block is returned to the OS when freed and page-faulted back in on the next step;
on this CPU that cost 10-15% of a training step and up to a third of an Euler-Maruyama step
(benchmarks/bench_sweep.py). Raising the mmap and trim thresholds keeps those blocks on the heap.
The entry points that train (the `infogen` CLI, sweep worker processes, the app) call this once; a library
user may call it too. It changes no numbers, only where memory comes from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20  # blocks below this come from the heap (default: dynamic, from 128 KiB)
TRIM_THRESHOLD_BYTES = 128 << 20  # free heap kept before trimming (default: twice the mmap threshold)

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they were set (Linux with glibc)."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    return _done
