"""A run directory: config.json, history.jsonl, weights.safetensors and samples.safetensors.

history.jsonl holds every record the training generator yielded, one JSON object per line, arrays left out
(generated samples go to samples.safetensors, weights to weights.safetensors). It is only ever appended to,
so whatever was written before an error or a crash stays intact. Weight and sample files are replaced
atomically at each evaluation. Nothing here unpickles: safetensors and JSON only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from .. import __version__
from ..errors import RunFileError
from .atomic import atomic_write_bytes, atomic_write_json, to_json

RUN_FORMAT = "infogen-run"
RUN_FORMAT_VERSION = 1
ARRAY_KEYS = ("samples", "frames", "frame_times", "model_state", "train_state")
FLUSH_SECONDS = 1.0


class RunWriter:
    """Writes one run's records as they arrive; use as a context manager so the history is always closed."""

    def __init__(self, folder: str | Path, config: dict, model: str = "dm") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.folder / "config.json",
            {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "model": model, "version": __version__,
             "config": config},
        )
        self._history = open(self.folder / "history.jsonl", "a", encoding="utf-8")
        self._last_flush = time.monotonic()
        self._samples: dict[str, np.ndarray] = {}

    def write(self, record: dict) -> None:
        """Append the record (arrays stripped); store its samples and weights if it carries them."""
        plain = {k: v for k, v in record.items() if k not in ARRAY_KEYS}
        self._history.write(json.dumps(to_json(plain)) + "\n")
        if "samples" in record:
            self._samples[f"step_{record['step']}"] = np.ascontiguousarray(record["samples"], dtype=np.float32)
            atomic_write_bytes(self.folder / "samples.safetensors", st_save(self._samples))
        if "model_state" in record:
            meta = {"format": RUN_FORMAT, "format_version": str(RUN_FORMAT_VERSION), "step": str(record["step"])}
            state = {k: np.ascontiguousarray(v) for k, v in record["model_state"].items()}
            atomic_write_bytes(self.folder / "weights.safetensors", st_save(state, metadata=meta))
        if record.get("kind") != "step" or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._history.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if not self._history.closed:
            self._history.flush()
            self._history.close()

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class RunFiles:
    """What a run directory holds, read back without executing anything."""

    meta: dict
    history: list[dict]
    weights: dict[str, np.ndarray] | None
    samples: dict[str, np.ndarray]

    @property
    def config(self) -> dict:
        return self.meta["config"]

    def records(self, kind: str) -> list[dict]:
        return [r for r in self.history if r.get("kind") == kind]


def read_run(folder: str | Path) -> RunFiles:
    """Load a run directory, raising RunFileError that names the file and the problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFileError(f"{folder}: not a run directory")
    meta = _read_meta(folder / "config.json")
    history = _read_history(folder / "history.jsonl")
    weights = _read_tensors(folder / "weights.safetensors") if (folder / "weights.safetensors").exists() else None
    samples = _read_tensors(folder / "samples.safetensors") if (folder / "samples.safetensors").exists() else {}
    return RunFiles(meta, history, weights, samples)


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path}: missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        raise RunFileError(f"{path}: not an InfoGen run config (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > RUN_FORMAT_VERSION or version < 1:
        raise RunFileError(f"{path}: run format version {version!r} is not supported (this build reads up to {RUN_FORMAT_VERSION})")
    if not isinstance(meta.get("config"), dict):
        raise RunFileError(f"{path}: has no config object")
    return meta


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        raise RunFileError(f"{path}: missing")
    records = []
    lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break  # a last line cut short by a crash: everything before it is intact
            raise RunFileError(f"{path}: line {number} is not valid JSON ({exc})") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise RunFileError(f"{path}: line {number} is not a record with a 'kind'")
        records.append(record)
    return records


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    try:
        return st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise RunFileError(f"{path}: not a readable safetensors file ({exc})") from None
