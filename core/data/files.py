"""Points from the user's own files: .npy, .npz or .csv/.txt, read without executing anything.

np.load runs with allow_pickle=False, so an object array (which would need unpickling) is refused; the array's
header is checked against the file's size and the machine's memory before np.load allocates it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..seeding import numpy_rng
from .validation import validate_points

POINT_FILE_SUFFIXES = (".npy", ".npz", ".csv", ".txt")


def load_points_file(path: str | Path) -> np.ndarray:
    """An (n, d) float32 array from ``path``, validated, or a DataError naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        arr = load_numeric_array(p, ("x", "data"), "points")
    elif suffix in (".csv", ".txt"):
        try:
            arr = _read_text(p)
        except DataError:
            raise
        except (ValueError, OSError) as exc:
            raise DataError(f"{p}: cannot be read as an array ({exc})") from None
    else:
        raise DataError(f"{p}: unsupported file type {suffix or '(none)'}; use {', '.join(POINT_FILE_SUFFIXES)}")
    return validate_points(arr, name=str(p))


def load_numeric_array(p: Path, names: tuple[str, ...], what: str) -> np.ndarray:
    """A numeric array from .npy, or from .npz (the first of ``names`` present, or its only array), read with
    allow_pickle=False so that nothing in the file is executed; a DataError names the file and the problem."""
    from .peek import check_numeric_file

    check_numeric_file(p)  # the declared shapes fit the file and the machine's memory, before anything is allocated
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            with np.load(p, allow_pickle=False) as archive:
                keys = list(archive.keys())
                if not keys:
                    raise DataError(f"{p}: the archive holds no arrays")
                key = next((k for k in names if k in keys), keys[0] if len(keys) == 1 else None)
                if key is None:
                    raise DataError(f"{p}: holds several arrays ({', '.join(keys)}); name the {what} "
                                    f"{' or '.join(repr(n) for n in names[:2])}")
                arr = archive[key]
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{p}: holds {arr.dtype} values, not numbers")
    return arr


def _read_text(p: Path) -> np.ndarray:
    from .peek import check_fits

    # np.loadtxt holds every number as a Python float and then in float64: about 8 bytes of memory per byte of text.
    check_fits(str(p), 8 * p.stat().st_size, f"its {p.stat().st_size:,} bytes of text")
    delimiter = "," if p.suffix.lower() == ".csv" else None
    with open(p, encoding="utf-8", errors="strict") as fh:
        first = fh.readline()
    skip = 0
    try:
        [float(v) for v in first.replace(",", " ").split()]
    except ValueError:
        skip = 1  # a header line
    arr = np.loadtxt(p, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64)
    if arr.size == 0:
        raise DataError(f"{p}: holds no data rows")
    return arr


def split_points(points: np.ndarray, m: int, n_test: int, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split: m training points and up to n_test test points from the rest."""
    n = points.shape[0]
    if m + 2 > n:
        raise DataError(f"{name}: has {n} points; m = {m} training points leave fewer than 2 for testing")
    order = numpy_rng(seed, "data").permutation(n)
    return points[order[:m]], points[order[m : m + min(n_test, n - m)]]
