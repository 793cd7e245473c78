"""A data file's size from its header, read without decoding the data.

The loaders check what a header declares against the file's real size and against the machine's memory before
they allocate anything, and ``peek_dataset`` gives core.resources a run's data shape cheaply. Images are capped
at MAX_IMAGE_PIXELS pixels each, checked on the header before any image is decoded.
"""

from __future__ import annotations

import gzip
import math
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .. import resources
from ..resources import format_bytes

MAX_IMAGE_PIXELS = 2**26  # 8192 x 8192 per image: far above any U-Net or VAE here, far below a decompression bomb
GZIP_MAGIC = b"\x1f\x8b"
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CIFAR_RECORD = 1 + 3 * 32 * 32
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
KNOWN = {"digits": (1797, (1, 8, 8)), "mnist5k": (5000, (1, 28, 28))}


@dataclass(frozen=True)
class DataShape:
    """How many examples a dataset holds (None: unknown without decoding), the shape of one example ((d,) for
    points, (C, H, W) for images) and the bytes per stored value."""

    count: int | None
    example: tuple[int, ...]
    itemsize: int = 1


def check_fits(name: str, nbytes: int, what: str) -> None:
    """DataError when loading needs more memory than the machine has."""
    limit = resources.machine_memory_bytes()
    if limit and nbytes > limit:
        raise DataError(f"{name}: {what} need about {format_bytes(nbytes)} of memory to load; this machine has "
                        f"{format_bytes(limit)}")


class ImageTooLargeError(DataError):
    """An image above MAX_IMAGE_PIXELS, found from its header before it is decoded."""


def check_image_pixels(name: str, height: int, width: int) -> None:
    """ImageTooLargeError for images above MAX_IMAGE_PIXELS, before they are decoded."""
    if height * width > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(f"{name}: images of {width}x{height} = {height * width:,} pixels are above the limit of "
                        f"{MAX_IMAGE_PIXELS:,} pixels (8192x8192) per image")


# --- numpy files -------------------------------------------------------------------------------------------

def read_npy_header(fh, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) from the header of a .npy stream, which is left at the start of the data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, OSError, EOFError, SyntaxError, struct.error) as exc:
        raise DataError(f"{name}: cannot be read as an array ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"{name}: cannot be read as an array: it holds Python objects, which would need unpickling")
    return tuple(int(v) for v in shape), dtype


def _check_declared(name: str, shape: tuple[int, ...], dtype: np.dtype, available: int) -> None:
    expected = math.prod(shape) * dtype.itemsize
    if expected > available:
        raise DataError(f"{name}: truncated: the header declares an array of shape {shape} ({expected:,} bytes), "
                        f"the file holds {available:,} bytes of data")
    check_fits(name, expected + math.prod(shape) * 2 * 4, f"its array of shape {shape} ({dtype})")


def check_numeric_file(p: Path) -> None:
    """Before np.load: each array's declared shape fits its file and the machine's memory (DataError if not)."""
    if p.suffix.lower() == ".npy":
        with open(p, "rb") as fh:
            shape, dtype = read_npy_header(fh, str(p))
            _check_declared(str(p), shape, dtype, p.stat().st_size - fh.tell())
        return
    try:
        with zipfile.ZipFile(p) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as fh:
                    shape, dtype = read_npy_header(fh, f"{p} ({info.filename})")
                    _check_declared(f"{p} ({info.filename})", shape, dtype, info.file_size - fh.tell())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{p}: cannot be read as an array ({exc})") from None


def _numeric_shape(p: Path) -> tuple[tuple[int, ...], np.dtype] | None:
    if p.suffix.lower() == ".npy":
        with open(p, "rb") as fh:
            return read_npy_header(fh, str(p))
    with zipfile.ZipFile(p) as archive:
        members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
        preferred = [i for i in members if i.filename[:-4] in ("images", "x", "data")]
        chosen = preferred[:1] or (members if len(members) == 1 else [])
        if not chosen:
            return None
        with archive.open(chosen[0]) as fh:
            return read_npy_header(fh, str(p))


# --- IDX and CIFAR -----------------------------------------------------------------------------------------

def open_maybe_gzip(p: Path):
    """A binary stream of the file, decompressed on the fly when it is gzipped."""
    with open(p, "rb") as fh:
        gzipped = fh.read(2) == GZIP_MAGIC
    return gzip.open(p, "rb") if gzipped else open(p, "rb")


def read_idx_header(fh, name: str) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, dimensions) of an IDX stream, left at the start of the data; DataError if it is not IDX."""
    magic = fh.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise DataError(f"{name}: not an IDX file (wrong magic number {magic.hex() or 'empty'})")
    ndim = magic[3]
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{name}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return np.dtype(IDX_TYPES[magic[2]]), dims


# --- the dataset of a run ----------------------------------------------------------------------------------

def peek_dataset(name: str, path: str | Path = "") -> DataShape | None:
    """The dataset's shape from headers alone; None when it cannot be told cheaply (the loader will say why).
    Images above MAX_IMAGE_PIXELS are refused here already (ImageTooLargeError), before anything is decoded."""
    from .toy2d import TOY_DATASETS

    if name in TOY_DATASETS:
        return DataShape(None, (2,), 8)
    if name in KNOWN:
        count, example = KNOWN[name]
        return DataShape(count, example, 4)
    p = Path(path) if path else None
    if p is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape = _peek_file(name, p)
    except ImageTooLargeError:
        raise
    except Exception:  # best effort: whatever else is wrong with the file, its loader names it
        return None
    if shape is not None and len(shape.example) == 3:
        check_image_pixels(str(p), shape.example[1], shape.example[2])
    return shape


def _peek_file(name: str, p: Path) -> DataShape | None:
    if name == "file":
        if p.suffix.lower() in (".npy", ".npz"):
            found = _numeric_shape(p)
            if found is None or len(found[0]) != 2:
                return None
            (n, d), dtype = found
            return DataShape(n, (d,), dtype.itemsize)
        with open(p, encoding="utf-8", errors="replace") as fh:
            first = fh.readline(1 << 16)
        d = len(first.replace(",", " ").split())
        return DataShape(None, (d,), 8) if d else None
    if name == "idx":
        with open_maybe_gzip(p) as fh:
            dtype, dims = read_idx_header(fh, str(p))
        if len(dims) != 3:
            return None
        return DataShape(dims[0], (1, dims[1], dims[2]), dtype.itemsize)
    if name == "cifar10":
        files = sorted(p.glob("data_batch_*.bin")) or sorted(p.glob("*.bin")) if p.is_dir() else [p]
        for f in files[:1]:
            with open(f, "rb") as fh:
                if fh.read(2) == GZIP_MAGIC:
                    return DataShape(None, (3, 32, 32), 1)
        return DataShape(sum(f.stat().st_size for f in files) // CIFAR_RECORD, (3, 32, 32), 1)
    if name == "image-file":
        found = _numeric_shape(p)
        if found is None:
            return None
        shape, dtype = found
        if len(shape) == 3:
            return DataShape(shape[0], (1, shape[1], shape[2]), dtype.itemsize)
        if len(shape) == 4:
            if shape[1] in (1, 3):
                return DataShape(shape[0], shape[1:], dtype.itemsize)
            if shape[3] in (1, 3):
                return DataShape(shape[0], (shape[3], shape[1], shape[2]), dtype.itemsize)
        return None
    if name == "image-folder":
        from PIL import Image

        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        if not files:
            return None
        try:
            with Image.open(files[0]) as im:  # lazy: reads the header only
                width, height = im.size
                channels = 1 if im.mode in GRAY_MODES else 3
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"{files[0]}: refused before decoding, above the limit of {MAX_IMAGE_PIXELS:,} "
                                     f"pixels per image ({exc})") from None
        check_image_pixels(str(files[0]), height, width)
        return DataShape(len(files), (channels, height, width), 1)
    return None
