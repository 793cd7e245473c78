"""Reading a run directory: config.json, history.jsonl, weights.safetensors and samples.safetensors.

history.jsonl holds every record the training generator yielded, one JSON object per line, arrays left out
(generated samples are in samples.safetensors, weights in weights.safetensors). core.io.recorder writes it.
Nothing here unpickles: safetensors and JSON only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load

from ..errors import RunFileError

RUN_FORMAT = "infogen-run"
RUN_FORMAT_VERSION = 1


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
