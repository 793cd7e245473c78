"""One-file checkpoints users can trust: safetensors tensors plus one JSON document in the header metadata.

Tensors: the model (``model.*``), Adam's moments and step counts (``optim.*``), the training random stream
(``rng.train``) and the generated samples of every evaluation (``samples.step_N``). The JSON document
(metadata key ``infogen``) holds the format version, the package version, the full config, the data's
provenance, the whole history (every record, evaluations included) and the bound settings. A SHA-256 of the
whole file (computed with its own field zeroed) catches any flipped or missing byte.

Loading never executes code: the header is parsed as JSON after its declared size is checked against the
file, and tensors are read by safetensors. Every problem raises CheckpointError naming it. Writes are atomic
(temporary file, fsync, rename), so a crash mid-save leaves the previous checkpoint readable.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from . import __version__
from .errors import InfoGenError
from .io.atomic import atomic_write_bytes, to_json

FORMAT = "infogen-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".infogen"
CHECKPOINT_NAME = "checkpoint.infogen"
MAX_HEADER_BYTES = 100 * 2**20
HASH_PLACEHOLDER = "0" * 64


class CheckpointError(InfoGenError):
    """The file is not a readable InfoGen checkpoint; the message says why."""


@dataclass
class Checkpoint:
    """Everything a checkpoint holds."""

    doc: dict
    weights: dict[str, np.ndarray]
    train_state: dict | None
    samples: dict[int, np.ndarray]
    path: Path | None = None

    @property
    def config(self) -> dict:
        return self.doc["config"]

    @property
    def history(self) -> list[dict]:
        return self.doc["history"]

    @property
    def step(self) -> int:
        return int(self.doc["step"])

    def records(self, kind: str) -> list[dict]:
        return [r for r in self.history if r.get("kind") == kind]


def provenance(config: dict) -> dict:
    """Where the data came from: the generator and seed, or the user's file or folder with its content hash;
    and the split (docs/records.md#provenance)."""
    split = {"m": config.get("m"), "n_test": config.get("n_test"), "seed": config.get("seed"), "rule": "seeded"}
    data = config.get("data")
    if config.get("data_path"):
        path = Path(config["data_path"])
        return {"dataset": data, "path": str(path.resolve()), "sha256": _cached_sha256(path), "split": split}
    from .data.images import IMAGE_SOURCES

    module = "core.data.images" if data in IMAGE_SOURCES else "core.data.toy2d"
    return {"dataset": data, "generator": f"{module}.{data}", "seed": config.get("seed"), "split": split}


_SHA_CACHE: dict[tuple, str | None] = {}


def _cached_sha256(path: Path) -> str | None:
    """content_sha256, computed once per (path, size, mtime): a checkpoint is saved at every evaluation."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = content_sha256(path)
    return _SHA_CACHE[key]


def content_sha256(path: Path) -> str | None:
    """SHA-256 of a data file, or of a folder's regular files (names and contents, in sorted order); None if
    it cannot be read. Read in blocks, so large datasets are hashed without loading them whole."""
    digest = hashlib.sha256()
    try:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            if f is not path:
                digest.update(str(f.relative_to(path)).encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def build_checkpoint_bytes(
    *, model: str, config: dict, history: list[dict], weights: dict[str, np.ndarray],
    train_state: dict | None, samples: dict[int, np.ndarray],
) -> bytes:
    """The checkpoint file's bytes (see the module docstring)."""
    tensors: dict[str, np.ndarray] = {f"model.{k}": np.ascontiguousarray(v) for k, v in weights.items()}
    step = 0
    if train_state is not None:
        step = int(train_state["step"])
        for k, v in train_state["optimizer"].items():
            tensors[f"optim.{k}"] = np.ascontiguousarray(np.asarray(v))
        tensors["rng.train"] = np.ascontiguousarray(np.asarray(train_state["rng_train"], dtype=np.uint8))
    for s, arr in samples.items():
        tensors[f"samples.step_{int(s)}"] = np.ascontiguousarray(arr, dtype=np.float32)
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__, "model": model,
        "config": config, "provenance": provenance(config), "step": step, "history": history,
        "bound": {k: config.get(k) for k in ("variant", "R", "n_steps", "mc_samples", "kde_bandwidth")},
    }
    meta = {"infogen": json.dumps(to_json(doc)), "infogen_sha256": HASH_PLACEHOLDER}
    raw = st_save(tensors, metadata=meta)
    digest = hashlib.sha256(raw).hexdigest()
    return _replace_hash(raw, HASH_PLACEHOLDER, digest)


def save_checkpoint(path: str | Path, **parts) -> Path:
    """Write a checkpoint atomically; returns its path."""
    target = Path(path)
    atomic_write_bytes(target, build_checkpoint_bytes(**parts))
    return target


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and verify a checkpoint; CheckpointError says what is wrong with a bad file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{p}: is a folder, not a checkpoint file") from None
    except OSError as exc:
        raise CheckpointError(f"{p}: cannot be read ({exc})") from None
    return parse_checkpoint(data, str(p))


def parse_checkpoint(data: bytes, name: str = "checkpoint") -> Checkpoint:
    """Verify and decode checkpoint bytes."""
    header = _read_header(data, name)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or "infogen" not in meta:
        raise CheckpointError(f"{name}: a safetensors file, but not an InfoGen checkpoint (no 'infogen' metadata)")
    try:
        doc = json.loads(meta["infogen"])
    except (TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{name}: its InfoGen document is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{name}: not an InfoGen checkpoint (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    version = doc.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{name}: invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{name}: written by a newer InfoGen Explorer (checkpoint format {version}; this build reads up to "
            f"{FORMAT_VERSION}, package {__version__}): upgrade to open it")
    stored = meta.get("infogen_sha256")
    if not isinstance(stored, str) or len(stored) != 64:
        raise CheckpointError(f"{name}: has no integrity hash")
    if hashlib.sha256(_replace_hash(data, stored, HASH_PLACEHOLDER)).hexdigest() != stored:
        raise CheckpointError(f"{name}: corrupt: its content does not match its SHA-256 (flipped or missing bytes)")
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as exc:
        raise CheckpointError(f"{name}: tensor data unreadable ({exc})") from None
    for key in ("config", "history", "step"):
        if key not in doc:
            raise CheckpointError(f"{name}: the document has no {key!r}")
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if not weights:
        raise CheckpointError(f"{name}: holds no model weights")
    optim = {k[len("optim."):]: v for k, v in tensors.items() if k.startswith("optim.")}
    train_state = None
    if "rng.train" in tensors:
        train_state = {"step": int(doc["step"]), "optimizer": optim, "rng_train": tensors["rng.train"], "model": weights}
    samples = {int(k.split("_")[-1]): v for k, v in tensors.items() if k.startswith("samples.step_")}
    return Checkpoint(doc, weights, train_state, samples)


def _read_header(data: bytes, name: str) -> dict:
    if len(data) < 8:
        raise CheckpointError(f"{name}: too short to be a checkpoint ({len(data)} bytes)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name}: not a checkpoint: it declares a header of {size} bytes (limit {MAX_HEADER_BYTES})")
    if 8 + size > len(data):
        raise CheckpointError(f"{name}: truncated: the header needs {size} bytes but only {len(data) - 8} follow")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{name}: not a checkpoint: its header is not JSON (a pickle or some other file?)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: not a checkpoint: its header is not a JSON object")
    return header


def _replace_hash(data: bytes, old: str, new: str) -> bytes:
    """Swap the hash field's value inside the header (same length, so offsets do not move)."""
    needle = f'"infogen_sha256":"{old}"'.encode()
    (size,) = struct.unpack("<Q", data[:8])
    head = data[8 : 8 + size]
    if head.count(needle) != 1:
        raise CheckpointError("checkpoint header has no single integrity hash field")
    return data[:8] + head.replace(needle, f'"infogen_sha256":"{new}"'.encode()) + data[8 + size :]

