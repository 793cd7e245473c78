"""Reading files that may be hostile: refuse before reading.

Every reader of the package (checkpoints, run folders, sweep summaries) goes through these helpers:

- the path is checked with ``os.stat`` (which follows symlinks) before anything is opened: a folder, a named
  pipe (FIFO: opening one blocks until a writer comes), a character or block device (``/dev/zero`` grows
  without end) or a socket is refused by name, without opening it;
- a regular file larger than a stated limit is refused before it is read; the limit can be raised with the
  environment variable ``INFOGEN_MAX_FILE_BYTES`` (bytes), named in the message;
- the file is then opened non-blocking and checked again on the open descriptor (a file swapped for a FIFO
  between the two checks is still refused), and read to exactly the size it had: a file that grows while it is
  read is refused too;
- JSON is parsed with a nesting limit (``MAX_JSON_DEPTH``): deeper documents are refused with that limit named
  instead of raising RecursionError, and the literals NaN and Infinity (which JSON does not have; InfoGen
  stores non-finite numbers as null) are refused.

Each helper takes the error class to raise (CheckpointError, RunFileError...), so the caller's own error type
names the problem.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, Any

MAX_FILE_BYTES_ENV = "INFOGEN_MAX_FILE_BYTES"
# A checkpoint of a mnist-size run is a few hundred MB (weights, Adam's two moments, samples of every
# evaluation): 4 GiB leaves room for the paper's CIFAR U-Net and long runs.
MAX_CHECKPOINT_BYTES = 4 * 2**30
# A history.jsonl holds one line per training step: about 100 bytes each, so 1 GiB is some ten million steps.
MAX_HISTORY_BYTES = 2**30
MAX_HISTORY_LINE_BYTES = 16 * 2**20
# config.json, sweep.json, summary.json and the like: small documents.
MAX_JSON_FILE_BYTES = 64 * 2**20
# Weights and samples of a run folder.
MAX_TENSOR_FILE_BYTES = MAX_CHECKPOINT_BYTES
# InfoGen's own documents nest 5 levels at most (history -> record -> bounds -> variant -> value).
MAX_JSON_DEPTH = 64

_KINDS = (
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
)


def file_limit(default: int) -> int:
    """``default``, or the byte count in $INFOGEN_MAX_FILE_BYTES when that is set to a positive integer."""
    value = os.environ.get(MAX_FILE_BYTES_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return default


def _describe(path: Path) -> str:
    if path.is_symlink():
        return f"{path} (a link to {os.path.realpath(path)})"
    return str(path)


def _kind(mode: int) -> str | None:
    """What a non-regular file is, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike, limit: int, error: type[Exception], what: str = "file") -> os.stat_result:
    """Stat ``path`` (following links) without opening it; raise ``error`` unless it is a regular file of at most
    ``limit`` bytes."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if p.is_symlink():
            raise error(f"{_describe(p)}: the link points to nothing") from None
        raise error(f"{p}: no such file") from None
    except OSError as exc:
        raise error(f"{p}: cannot be read ({exc.strerror or exc})") from None
    kind = _kind(st.st_mode)
    if kind == "a folder":
        raise error(f"{_describe(p)}: is a folder, not a {what} file")
    if kind is not None:
        raise error(f"{_describe(p)}: is {kind}, not a regular file: refused without reading it")
    if st.st_size > limit:
        raise error(too_large(p, st.st_size, limit, what))
    return st


def too_large(path: Path, size: int, limit: int, what: str) -> str:
    return (f"{path}: {size:,} bytes is over the {limit:,}-byte limit for a {what} file; refused without reading "
            f"it (set {MAX_FILE_BYTES_ENV} to a larger byte count to open it anyway)")


def open_regular(path: str | os.PathLike, limit: int, error: type[Exception], what: str = "file") -> tuple[IO[bytes], int]:
    """Open a regular file of at most ``limit`` bytes for reading; returns (binary file, size).

    Checked by ``check_regular`` before opening, opened non-blocking (a FIFO swapped in meanwhile cannot block)
    and checked again on the descriptor."""
    p = Path(path)
    check_regular(p, limit, error, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise error(f"{p}: cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind is not None:
            raise error(f"{_describe(p)}: is {kind}, not a regular file: refused without reading it")
        if st.st_size > limit:
            raise error(too_large(p, st.st_size, limit, what))
        return os.fdopen(fd, "rb", buffering=0), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_into(fh: IO[bytes], view: memoryview, path: Path, error: type[Exception]) -> None:
    """Fill ``view`` from ``fh``; a file that ends early (it shrank while being read) raises ``error``."""
    done = 0
    while done < len(view):
        try:
            n = fh.readinto(view[done:])
        except OSError as exc:
            raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
        if not n:
            raise error(f"{path}: the file shrank while it was being read")
        done += n


def check_at_end(fh: IO[bytes], path: Path, error: type[Exception]) -> None:
    if fh.read(1):
        raise error(f"{path}: the file grew while it was being read")


def read_regular(path: str | os.PathLike, limit: int, error: type[Exception], what: str = "file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see open_regular)."""
    p = Path(path)
    fh, size = open_regular(p, limit, error, what)
    with fh:
        buf = bytearray(size)
        read_into(fh, memoryview(buf), p, error)
        check_at_end(fh, p, error)
    return bytes(buf)


class _NonFinite(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def loads_json(text: str | bytes, where: str, error: type[Exception], max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON, raising ``error`` naming ``where`` for invalid JSON, NaN/Infinity literals, or nesting deeper
    than ``max_depth``."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise error(f"{where}: JSON nested deeper than the limit of {max_depth} levels") from None
    except _NonFinite as exc:
        raise error(f"{where}: holds {exc.args[0]}, which is not a JSON number (non-finite values are stored "
                    "as null)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{where}: not valid JSON ({exc})") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits (Python's int conversion limit)
        raise error(f"{where}: holds a number that cannot be read ({exc})") from None
    if json_depth_exceeds(obj, max_depth):
        raise error(f"{where}: JSON nested deeper than the limit of {max_depth} levels")
    return obj


def json_depth_exceeds(obj: Any, limit: int) -> bool:
    """True when ``obj`` (parsed JSON) nests lists and objects more than ``limit`` deep (no recursion)."""
    stack = [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def read_json_file(path: str | os.PathLike, error: type[Exception], limit: int | None = None, what: str = "JSON") -> Any:
    """A small JSON file (config.json, summary.json...), read with the checks above."""
    p = Path(path)
    data = read_regular(p, file_limit(limit or MAX_JSON_FILE_BYTES), error, what)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not valid JSON (not UTF-8 text: {exc})") from None
    return loads_json(text, str(p), error)
