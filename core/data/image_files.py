"""Images from files the user already has: MNIST/Fashion-MNIST IDX files (raw or .gz), CIFAR-10 binary
batches, ``.npy``/``.npz`` arrays and folders of PNG/JPEG images. Nothing is downloaded or unpickled.

Every loader returns float32 images of shape (n, C, H, W) with intensities in [0, 1], or raises a DataError
that names the file and what is wrong with it (wrong magic number, truncated data, inconsistent sizes,
unreadable image, empty folder, NaN, values out of range).
"""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .. import resources
from ..resources import format_bytes
from .files import load_numeric_array
from .peek import (
    CIFAR_RECORD, GRAY_MODES, GZIP_MAGIC, IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, ImageTooLargeError, check_fits,
    check_image_pixels, open_maybe_gzip, read_idx_header,
)

CHUNK = 1 << 20
MAX_EXTRA_COUNTED = 64 << 20  # bytes beyond the data that are counted (not kept) before giving up


def _is_gzip(p: Path) -> bool:
    with open(p, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _gzip_error(p: Path, exc: BaseException) -> DataError:
    return DataError(f"{p}: a damaged or truncated gzip file ({exc})")


def load_idx_images(path: str | Path) -> np.ndarray:
    """An IDX image file (MNIST, Fashion-MNIST: magic 0x00000803), raw or gzipped, as (n, 1, H, W).

    The header's sizes are checked against the file (or the decompressed stream) and the machine's memory
    before the data are read; a gzipped file is never decompressed beyond what its header declares."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    gzipped = _is_gzip(p)
    try:
        with open_maybe_gzip(p) as fh:
            dtype, dims = read_idx_header(fh, str(p))
            ndim = len(dims)
            if ndim == 1:
                raise DataError(f"{p}: an IDX label file (one dimension); give the images file")
            if ndim != 3:
                raise DataError(f"{p}: IDX images have 3 dimensions (count, rows, columns), this file has {ndim}")
            n, h, w = dims
            expected = n * h * w * dtype.itemsize
            header = 4 + 4 * ndim
            if not gzipped:
                body = p.stat().st_size - header
                if body < expected:
                    raise DataError(f"{p}: truncated: the header promises {n} images of {h}x{w} ({expected} bytes), "
                                    f"the file holds {body} bytes")
                if body > expected:
                    raise DataError(f"{p}: inconsistent sizes: {body - expected} bytes beyond the {n} images of {h}x{w}")
            if n == 0 or h == 0 or w == 0:
                raise DataError(f"{p}: holds no images (shape {n}x{h}x{w})")
            check_image_pixels(str(p), h, w)
            check_fits(str(p), expected + n * h * w * 8, f"{n:,} images of {h}x{w}")
            raw = fh.read(expected)
            if len(raw) < expected:
                raise DataError(f"{p}: truncated: the header promises {n} images of {h}x{w} ({expected} bytes), "
                                f"the file holds {len(raw)} bytes")
            extra = 0
            while extra <= MAX_EXTRA_COUNTED:
                more = len(fh.read(CHUNK))
                if not more:
                    break
                extra += more
            if extra:
                counted = f"{extra}" if extra <= MAX_EXTRA_COUNTED else f"more than {MAX_EXTRA_COUNTED}"
                raise DataError(f"{p}: inconsistent sizes: {counted} bytes beyond the {n} images of {h}x{w}")
    except (OSError, EOFError, zlib.error) as exc:
        if gzipped:
            raise _gzip_error(p, exc) from None
        raise DataError(f"{p}: cannot be read ({exc})") from None
    arr = np.frombuffer(raw, dtype=dtype).reshape(n, 1, h, w)
    return scale_to_unit(arr, str(p))


def cifar10_files(path: str | Path) -> list[Path]:
    """A CIFAR-10 batch file, or every data_batch_*.bin (else *.bin) in a folder, sorted."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("data_batch_*.bin")) or sorted(p.glob("*.bin"))
        if not files:
            raise DataError(f"{p}: no CIFAR-10 binary batches (data_batch_*.bin) in this folder")
        return files
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    return [p]


def _read_capped(p: Path, limit: int) -> bytes:
    """The file's bytes, decompressed when gzipped, refusing (before reading on) anything beyond ``limit``."""
    gzipped = _is_gzip(p)
    if not gzipped:
        size = p.stat().st_size
        if limit and size > limit:
            raise DataError(f"{p}: {format_bytes(size)} of data is more than this machine can load "
                            f"({format_bytes(resources.machine_memory_bytes())} of memory)")
        return p.read_bytes()
    parts, total = [], 0
    try:
        with open_maybe_gzip(p) as fh:
            while True:
                part = fh.read(CHUNK)
                if not part:
                    break
                total += len(part)
                if limit and total > limit:
                    raise DataError(f"{p}: decompresses to more than {format_bytes(limit)}, more than this machine can "
                                    f"load ({format_bytes(resources.machine_memory_bytes())} of memory)")
                parts.append(part)
    except (OSError, EOFError, zlib.error) as exc:
        raise _gzip_error(p, exc) from None
    return b"".join(parts)


def load_cifar10(path: str | Path) -> np.ndarray:
    """CIFAR-10 binary batches (records of 1 label byte + 3,072 pixel bytes) as (n, 3, 32, 32)."""
    parts = []
    budget = resources.machine_memory_bytes() // 9  # each byte becomes 8 bytes of float32 work on top of itself
    for f in cifar10_files(path):
        raw = _read_capped(f, budget)
        budget = max(1, budget - len(raw)) if budget else 0
        if not raw:
            raise DataError(f"{f}: empty file")
        if len(raw) % CIFAR_RECORD:
            raise DataError(f"{f}: truncated or not a CIFAR-10 batch: {len(raw)} bytes is not a whole number of "
                            f"{CIFAR_RECORD}-byte records")
        records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
        if records[:, 0].max() > 9:
            raise DataError(f"{f}: not a CIFAR-10 batch (a label byte is {int(records[:, 0].max())}, above 9)")
        parts.append(records[:, 1:].reshape(-1, 3, 32, 32))
    return scale_to_unit(np.concatenate(parts), str(path))


def load_image_array(path: str | Path) -> np.ndarray:
    """Images from .npy/.npz: (n, H, W), (n, C, H, W) or (n, H, W, C) with C in 1, 3; uint8 or floats in [0, 1]."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.suffix.lower() not in (".npy", ".npz"):
        raise DataError(f"{p}: unsupported image array type {p.suffix or '(none)'}; use .npy or .npz")
    arr = load_numeric_array(p, ("images", "x", "data"), "images")
    images = to_nchw(arr, str(p))
    check_image_pixels(str(p), images.shape[2], images.shape[3])
    return scale_to_unit(images, str(p))


def load_image_folder(path: str | Path) -> np.ndarray:
    """Every PNG/JPEG in a folder (sorted by name), all of one size; grayscale unless some image has colour.

    Every header is read first (size, mode) and checked (at most MAX_IMAGE_PIXELS pixels each, one size for
    all, the whole stack within the machine's memory) before any image is decoded."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{p}: not a folder")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise DataError(f"{p}: empty folder: no .png, .jpg or .jpeg images in it")
    unreadable = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError)
    bomb = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    headers = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for f in files:
            try:
                with Image.open(f) as im:  # lazy: only the header is read
                    headers.append((im.size, im.mode))
            except bomb as exc:
                raise ImageTooLargeError(f"{f}: refused before decoding, above the limit of {MAX_IMAGE_PIXELS:,} "
                                         f"pixels per image ({exc})") from None
            except unreadable as exc:
                raise DataError(f"{f}: unreadable image ({exc})") from None
            width, height = headers[-1][0]
            check_image_pixels(str(f), height, width)
        sizes = {size for size, _ in headers}
        if len(sizes) > 1:
            first = headers[0][0]
            odd, odd_size = next((f, size) for f, (size, _) in zip(files, headers) if size != first)
            raise DataError(f"{p}: images differ in size ({files[0].name} is {first[0]}x{first[1]}, "
                            f"{odd.name} is {odd_size[0]}x{odd_size[1]}); resize them to one size")
        colour = any(mode not in GRAY_MODES for _, mode in headers)
        mode = "RGB" if colour else "L"
        width, height = headers[0][0]
        channels = 3 if colour else 1
        check_fits(str(p), len(files) * width * height * channels * 9, f"{len(files):,} images of {width}x{height}")
        arrays = []
        for f in files:
            try:
                with Image.open(f) as im:
                    if im.size != (width, height):  # changed since its header was read
                        raise DataError(f"{f}: changed while the folder was read")
                    arrays.append(np.asarray(im.convert(mode), dtype=np.uint8))
            except DataError:
                raise
            except bomb as exc:
                raise DataError(f"{f}: refused before decoding ({exc})") from None
            except unreadable as exc:
                raise DataError(f"{f}: unreadable image ({exc})") from None
    stacked = np.stack(arrays)
    return scale_to_unit(to_nchw(stacked, str(p)), str(p))


def to_nchw(arr: np.ndarray, name: str) -> np.ndarray:
    """(n, H, W) -> (n, 1, H, W); (n, H, W, C) -> (n, C, H, W) when C in (1, 3) and the layout is clear."""
    if arr.ndim == 3:
        return arr[:, None]
    if arr.ndim == 4:
        if arr.shape[1] in (1, 3):
            return arr
        if arr.shape[3] in (1, 3):
            return np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
        raise DataError(f"{name}: shape {arr.shape} has no channel axis of size 1 or 3 (second or last)")
    raise DataError(f"{name}: images must have shape (n, H, W), (n, C, H, W) or (n, H, W, C); got {arr.shape}")


def scale_to_unit(arr: np.ndarray, name: str) -> np.ndarray:
    """uint8 (or integers in 0..255) / 255; floats must already lie in [0, 1]. NaN or out of range: DataError."""
    if arr.shape[0] == 0 or arr.size == 0:
        raise DataError(f"{name}: holds no images")
    if arr.dtype.kind in "iub":
        if arr.min() < 0 or arr.max() > 255:
            raise DataError(f"{name}: integer pixel values must lie in 0..255, got {arr.min()}..{arr.max()}")
        return (arr.astype(np.float32) / 255.0).astype(np.float32)
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).reshape(len(out), -1).any(axis=1).sum())
        kind = "NaN" if np.isnan(out).any() else "infinite"
        raise DataError(f"{name}: {bad} image(s) contain {kind} values")
    if out.min() < 0.0 or out.max() > 1.0:
        raise DataError(f"{name}: float pixel values must lie in [0, 1], got {out.min():.4g}..{out.max():.4g}")
    return out
