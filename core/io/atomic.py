"""Atomic file writes: a temporary file in the same folder, fsync, then rename over the target.

A crash at any point leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; first remove the stale temporary files of earlier saves of
    ``path`` that a kill left behind (see remove_stale_temps)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)


# A temporary file untouched for this long belongs to a save that was killed: a live writer writes its file in
# one go, fsyncs and renames it at once (seconds even for a few GB), and a run folder has one writer (its lock).
STALE_TEMP_SECONDS = 60.0


def remove_stale_temps(target: Path, max_age: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete ``.{name}.<8 random characters>.tmp`` siblings of ``target`` (the temporary files atomic_write_bytes makes) last
    modified more than ``max_age`` seconds ago; returns what was removed. Younger ones may be another live
    writer's and are left alone; so are links, folders and names of any other pattern."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}\.tmp")
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        if pattern.fullmatch(entry.name) is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > max_age:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (non-finite floats as null) atomically."""
    atomic_write_bytes(path, (json.dumps(to_json(obj), indent=2) + "\n").encode())


def to_json(obj: Any) -> Any:
    """A JSON-safe copy: non-finite floats become None, numpy scalars and tuples become plain values."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
