"""Images from files the user already has: MNIST/Fashion-MNIST IDX files (raw or .gz), CIFAR-10 binary
batches, ``.npy``/``.npz`` arrays and folders of PNG/JPEG images. Nothing is downloaded or unpickled.

Every loader returns float32 images of shape (n, C, H, W) with intensities in [0, 1], or raises a DataError
that names the file and what is wrong with it (wrong magic number, truncated data, inconsistent sizes,
unreadable image, empty folder, NaN, values out of range).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .files import load_numeric_array

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CIFAR_RECORD = 1 + 3 * 32 * 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GZIP_MAGIC = b"\x1f\x8b"


def _read_maybe_gzip(p: Path) -> bytes:
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    raw = p.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{p}: a damaged or truncated gzip file ({exc})") from None


def load_idx_images(path: str | Path) -> np.ndarray:
    """An IDX image file (MNIST, Fashion-MNIST: magic 0x00000803), raw or gzipped, as (n, 1, H, W)."""
    p = Path(path)
    raw = _read_maybe_gzip(p)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{p}: not an IDX file (wrong magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    if ndim == 1:
        raise DataError(f"{p}: an IDX label file (one dimension); give the images file")
    if ndim != 3:
        raise DataError(f"{p}: IDX images have 3 dimensions (count, rows, columns), this file has {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{p}: truncated IDX header")
    n, h, w = (int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = n * h * w * dtype.itemsize
    body = len(raw) - header
    if body < expected:
        raise DataError(f"{p}: truncated: the header promises {n} images of {h}x{w} ({expected} bytes), "
                        f"the file holds {body} bytes")
    if body > expected:
        raise DataError(f"{p}: inconsistent sizes: {body - expected} bytes beyond the {n} images of {h}x{w}")
    if n == 0 or h == 0 or w == 0:
        raise DataError(f"{p}: holds no images (shape {n}x{h}x{w})")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(n, 1, h, w)
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


def load_cifar10(path: str | Path) -> np.ndarray:
    """CIFAR-10 binary batches (records of 1 label byte + 3,072 pixel bytes) as (n, 3, 32, 32)."""
    parts = []
    for f in cifar10_files(path):
        raw = _read_maybe_gzip(f)
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
    return scale_to_unit(to_nchw(arr, str(p)), str(p))


def load_image_folder(path: str | Path) -> np.ndarray:
    """Every PNG/JPEG in a folder (sorted by name), all of one size; grayscale unless some image has colour."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{p}: not a folder")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise DataError(f"{p}: empty folder: no .png, .jpg or .jpeg images in it")
    opened = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.load()
                opened.append(im.copy())
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise DataError(f"{f}: unreadable image ({exc})") from None
    sizes = {im.size for im in opened}
    if len(sizes) > 1:
        first = opened[0].size
        odd, odd_size = next((f, im.size) for f, im in zip(files, opened) if im.size != first)
        raise DataError(f"{p}: images differ in size ({files[0].name} is {first[0]}x{first[1]}, "
                        f"{odd.name} is {odd_size[0]}x{odd_size[1]}); resize them to one size")
    colour = any(im.mode not in ("1", "L", "LA", "I", "I;16", "F") for im in opened)
    mode = "RGB" if colour else "L"
    arrays = [np.asarray(im.convert(mode), dtype=np.uint8) for im in opened]
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
