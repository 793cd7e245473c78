"""Reading a run directory: config.json, history.jsonl, weights.safetensors, samples.safetensors and
trajectory.safetensors.

history.jsonl holds every record the training generator yielded, one JSON object per line, arrays left out
(generated samples are in samples.safetensors, weights in weights.safetensors, the latest evaluation's reverse
trajectory in trajectory.safetensors: ``frames`` (F, n, d) and ``times`` (F,), both float32). core.io.recorder writes it.
Nothing here unpickles: safetensors and JSON only. Every file is checked before it is read
(core.io.safe_read) and every history record is validated (core.records).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load

from ..checkpoint_validation import trajectory_problem
from ..errors import RunFileError
from ..records import RecordError, validate_record
from .safe_read import (
    MAX_HISTORY_BYTES, MAX_HISTORY_LINE_BYTES, MAX_TENSOR_FILE_BYTES, file_limit, loads_json, open_regular,
    read_json_file, read_regular,
)

RUN_FORMAT = "infogen-run"
RUN_FORMAT_VERSION = 1
TRAJECTORY_FILE = "trajectory.safetensors"


@dataclass
class RunFiles:
    """What a run directory holds, read back without executing anything."""

    meta: dict
    history: list[dict]
    weights: dict[str, np.ndarray] | None
    samples: dict[str, np.ndarray]
    # (frames (F, n, d) float32, times (F,) float32): the latest evaluation's reverse trajectory, frame i at forward
    # time times[i]; None when the folder has no trajectory.safetensors (an older run, or one that records none).
    trajectory: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def config(self) -> dict:
        return self.meta["config"]

    def records(self, kind: str) -> list[dict]:
        return [r for r in self.history if r.get("kind") == kind]


def read_run(folder: str | Path) -> RunFiles:
    """Load a run directory, raising RunFileError that names the file and the problem.

    Each file is checked before it is read (core.io.safe_read: a regular file, within its size limit), JSON is
    parsed with a nesting limit, and every history record is validated against core.records.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFileError(f"{folder}: not a run directory")
    meta = _read_meta(folder / "config.json")
    history = _read_history(folder / "history.jsonl")
    weights = _read_tensors(folder / "weights.safetensors", "weights") if _present(folder / "weights.safetensors") else None
    samples = _read_tensors(folder / "samples.safetensors", "samples") if _present(folder / "samples.safetensors") else {}
    trajectory = _read_trajectory(folder / TRAJECTORY_FILE, samples) if _present(folder / TRAJECTORY_FILE) else None
    return RunFiles(meta, history, weights, samples, trajectory)


def _present(path: Path) -> bool:
    return os.path.lexists(path)


def _read_meta(path: Path) -> dict:
    if not _present(path):
        raise RunFileError(f"{path}: missing")
    meta = read_json_file(path, RunFileError, what="run config")
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        raise RunFileError(f"{path}: not an InfoGen run config (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version > RUN_FORMAT_VERSION or version < 1:
        raise RunFileError(f"{path}: run format version {version!r} is not supported (this build reads up to {RUN_FORMAT_VERSION})")
    if not isinstance(meta.get("config"), dict):
        raise RunFileError(f"{path}: has no config object")
    if "model" in meta and meta["model"] not in ("dm", "vae"):
        raise RunFileError(f"{path}: field 'model' must be dm or vae, got {meta['model']!r:.60}")
    return meta


def _read_history(path: Path) -> list[dict]:
    """Every record of history.jsonl, line by line (at most MAX_HISTORY_LINE_BYTES each), each validated; a last
    line cut short by a crash is dropped: everything before it is intact."""
    if not _present(path):
        raise RunFileError(f"{path}: missing")
    raw, _ = open_regular(path, file_limit(MAX_HISTORY_BYTES), RunFileError, "history")
    records = []
    with io.BufferedReader(raw, buffer_size=1 << 20) as fh:
        line, number = _line(fh, path, 1), 1
        while line:
            following = _line(fh, path, number + 1)
            if line.strip():
                try:
                    record = loads_json(line.decode("utf-8"), f"{path}: line {number}", RunFileError)
                except UnicodeDecodeError as exc:
                    raise RunFileError(f"{path}: line {number} is not UTF-8 text ({exc})") from None
                except RunFileError as exc:
                    if not following and "not valid JSON" in str(exc):
                        break  # a last line cut short by a crash
                    raise
                if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
                    raise RunFileError(f"{path}: line {number} is not a record with a 'kind' (a string)")
                try:
                    validate_record(record, f"line {number}")
                except RecordError as exc:
                    raise RunFileError(f"{path}: {exc}") from None
                records.append(record)
            line, number = following, number + 1
    return records


def _line(fh, path: Path, number: int) -> bytes:
    try:
        line = fh.readline(MAX_HISTORY_LINE_BYTES + 1)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if len(line) > MAX_HISTORY_LINE_BYTES:
        raise RunFileError(f"{path}: line {number} is longer than the limit of {MAX_HISTORY_LINE_BYTES:,} bytes")
    return line


def _read_tensors(path: Path, what: str) -> dict[str, np.ndarray]:
    """weights.safetensors (floating-point arrays) or samples.safetensors (float32 arrays named step_N)."""
    data = read_regular(path, file_limit(MAX_TENSOR_FILE_BYTES), RunFileError, f"{what} (safetensors)")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise RunFileError(f"{path}: not a readable safetensors file ({exc})") from None
    for key, arr in tensors.items():
        if what == "samples" and (re.fullmatch(r"step_\d{1,12}", key) is None or arr.dtype != np.float32):
            raise RunFileError(f"{path}: {key!r} ({arr.dtype}) is not float32 samples named step_N")
        if what == "weights" and not np.issubdtype(arr.dtype, np.floating):
            raise RunFileError(f"{path}: weight {key!r} has dtype {arr.dtype}; weights must be floating point")
    return tensors


def _read_trajectory(path: Path, samples: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(frames, times) of trajectory.safetensors: exactly the keys ``frames`` and ``times``, float32, (F, n, d)
    and (F,), times finite, d the dimension of the folder's samples (when it has any)."""
    data = read_regular(path, file_limit(MAX_TENSOR_FILE_BYTES), RunFileError, "trajectory (safetensors)")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise RunFileError(f"{path}: not a readable safetensors file ({exc})") from None
    if set(tensors) != {"frames", "times"}:
        raise RunFileError(f"{path}: holds {sorted(tensors)[:5]}; a trajectory is exactly 'frames' and 'times'")
    dims = {int(np.prod(a.shape[1:])) for a in samples.values() if a.ndim >= 2}
    dim = dims.pop() if len(dims) == 1 else None
    problem = trajectory_problem(tensors["frames"], tensors["times"], dim)
    if problem is not None:
        raise RunFileError(f"{path}: {problem}")
    return tensors["frames"], tensors["times"]
