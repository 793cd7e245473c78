"""One-file checkpoints users can trust: safetensors tensors plus one JSON document in the header metadata.

Tensors: the model (``model.*``), Adam's moments and step counts (``optim.*``), the training random stream
(``rng.train``), the generated samples of every evaluation (``samples.step_N``) and the reverse trajectory of
the latest evaluation that recorded one (``trajectory.frames``, (F, n, d), and ``trajectory.times``, (F,), both
float32; absent when the run records none). The JSON document
(metadata key ``infogen``) holds the format version, the package version, the full config, the data's
provenance, the whole history (every record, evaluations included), the bound settings and, for a point-data
diffusion run on a CPU, the score MLP's kernel paths (core/kernel_choice.py: a resumed run takes them again, so
it continues exactly). A SHA-256 of the
whole file (computed with its own field zeroed) catches any flipped or missing byte.

Loading never executes code and refuses before it reads (core.io.safe_read): anything but a regular file, a
file over MAX_CHECKPOINT_BYTES, a header over MAX_HEADER_BYTES or without an integrity hash. It checks the
SHA-256 before it parses anything, then parses the header and the document as JSON with a nesting limit, and
validates the document and the tensors against the config (core.checkpoint_validation): tensors are numpy
views of the file's bytes, read by dtype, shape and offsets. Every problem raises CheckpointError naming it. Writes are atomic
(temporary file, fsync, rename), so a crash mid-save leaves the previous checkpoint readable.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save as st_save

from . import __version__
from .checkpoint_validation import (
    device_note, reseeded_state, rng_device, split_tensors, tensor_layout, tensors_from_buffer, validate_document,
)
from .errors import CheckpointError
from .io.atomic import atomic_write_bytes, to_json
from .io.safe_read import MAX_CHECKPOINT_BYTES, check_at_end, file_limit, loads_json, open_regular, read_into

FORMAT = "infogen-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".infogen"
CHECKPOINT_NAME = "checkpoint.infogen"
MAX_HEADER_BYTES = 100 * 2**20  # the document holds every step's record: ~100 bytes each
HASH_PLACEHOLDER = "0" * 64


@dataclass
class Checkpoint:
    """Everything a checkpoint holds, validated (core.checkpoint_validation).

    ``notes`` says what a reader should know, e.g. that a run saved on CUDA continues on the CPU here
    (``train_state_for``); ``infogen info`` and ``infogen resume`` print them.
    """

    doc: dict
    weights: dict[str, np.ndarray]
    train_state: dict | None
    samples: dict[int, np.ndarray]
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    # (frames (F, n, d) float32, times (F,) float32): the latest evaluation's reverse trajectory, frame i at
    # forward time times[i] (from T down to 0); None in a file without one.
    trajectory: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def config(self) -> dict:
        return self.doc["config"]

    @property
    def history(self) -> list[dict]:
        return self.doc["history"]

    @property
    def step(self) -> int:
        return int(self.doc["step"])

    @property
    def model(self) -> str:
        return self.doc.get("model", "dm")

    @property
    def kernel_paths(self) -> dict[str, str]:
        """The score MLP's kernel paths the run trained with (core/kernel_choice.py); empty when not recorded."""
        return dict(self.doc.get("kernel_paths") or {})

    def records(self, kind: str) -> list[dict]:
        return [r for r in self.history if r.get("kind") == kind]

    def resume_device(self) -> str:
        """Where a resume continues: the device the run was saved on when this machine has it, else the CPU."""
        import torch

        device = str(self.config.get("device", "cpu"))
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            return "cpu"
        return device

    def resume_config(self, device: str | None = None) -> dict:
        """The saved config with its device replaced by ``device`` (default: resume_device())."""
        return {**self.config, "device": device or self.resume_device()}

    def train_state_for(self, device: str | None = None) -> dict | None:
        """The training state to resume on ``device`` (default: resume_device()); None if not resumable.

        Weights and Adam's moments are plain arrays that load on any device. The random stream cannot move
        between kinds of device (a CUDA generator's state is its Philox seed and offset, a CPU one's a Mersenne
        Twister state): a state saved on the other kind is replaced by one re-seeded from the run's seed and
        step, and a note in ``notes`` says so. Same kind: the saved state, untouched (an exact continuation).
        """
        if self.train_state is None:
            return None
        import torch

        target = "cuda" if torch.device(device or self.resume_device()).type == "cuda" else "cpu"
        saved = rng_device(self.train_state["rng_train"])
        if saved == target:
            return self.train_state
        seed = int(self.config.get("seed", 0))
        note = device_note(saved, target, seed, self.step)
        if note not in self.notes:
            self.notes.append(note)
        return {**self.train_state, "rng_train": reseeded_state(seed, self.step, target)}


def kernel_paths_of(model: str, config: dict) -> dict[str, str]:
    """The score MLP's kernel paths this process takes (core/kernel_choice.py) for a point-data diffusion run on
    a CPU, saved so that a resumed run takes them again (they differ only in float rounding); else none."""
    from .data.images import IMAGE_SOURCES

    if model != "dm" or config.get("data") in IMAGE_SOURCES or not str(config.get("device", "cpu")).startswith("cpu"):
        return {}
    from .diffusion.ensemble_mlp_kernels import mlp_kernel_paths

    return mlp_kernel_paths()


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
    trajectory: tuple[np.ndarray, np.ndarray] | None = None,
) -> bytes:
    """The checkpoint file's bytes (see the module docstring); ``trajectory`` is (frames, times) or None."""
    tensors: dict[str, np.ndarray] = {f"model.{k}": np.ascontiguousarray(v) for k, v in weights.items()}
    step = 0
    if train_state is not None:
        step = int(train_state["step"])
        for k, v in train_state["optimizer"].items():
            tensors[f"optim.{k}"] = np.ascontiguousarray(np.asarray(v))
        tensors["rng.train"] = np.ascontiguousarray(np.asarray(train_state["rng_train"], dtype=np.uint8))
    for s, arr in samples.items():
        tensors[f"samples.step_{int(s)}"] = np.ascontiguousarray(arr, dtype=np.float32)
    if trajectory is not None:
        tensors["trajectory.frames"] = np.ascontiguousarray(trajectory[0], dtype=np.float32)
        tensors["trajectory.times"] = np.ascontiguousarray(trajectory[1], dtype=np.float32)
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "package_version": __version__, "model": model,
        "config": config, "provenance": provenance(config), "step": step, "history": history,
        "bound": {k: config.get(k) for k in ("variant", "R", "n_steps", "mc_samples", "kde_bandwidth")},
    }
    paths = kernel_paths_of(model, config)
    if paths:
        doc["kernel_paths"] = paths
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
    """Read and verify a checkpoint; CheckpointError says what is wrong with a bad file.

    Refused before reading: anything but a regular file (a FIFO, a device such as /dev/zero behind a link, a
    folder), a file over MAX_CHECKPOINT_BYTES ($INFOGEN_MAX_FILE_BYTES raises it), a header over
    MAX_HEADER_BYTES or one without an InfoGen integrity hash. Then the whole file is read once and checked by
    parse_checkpoint: the SHA-256 first, then the document, then the tensors against the config.
    """
    p = Path(path)
    fh, size = open_regular(p, file_limit(MAX_CHECKPOINT_BYTES), CheckpointError, "checkpoint")
    with fh:
        head = bytearray(min(size, 8))
        read_into(fh, memoryview(head), p, CheckpointError)
        header = bytearray(_header_size(head, size, str(p)))
        read_into(fh, memoryview(header), p, CheckpointError)
        _stored_hash(header, str(p))  # no integrity hash: refused before the rest is read
        _check_layout_fills_file(header, size, str(p))  # a file padded or cut: refused before the rest is read
        data = bytearray(size)
        fh.seek(0)
        read_into(fh, memoryview(data), p, CheckpointError)
        check_at_end(fh, p, CheckpointError)
    ckpt = parse_checkpoint(data, str(p))
    ckpt.path = p
    return ckpt


def _check_layout_fills_file(header: bytes | bytearray, size: int, name: str) -> None:
    """CheckpointError unless the tensors the header declares end exactly where the file does."""
    layout = loads_json(bytes(header), f"{name}: header", CheckpointError)
    end = 0
    if isinstance(layout, dict):
        for key, entry in layout.items():
            offsets = entry.get("data_offsets") if isinstance(entry, dict) and key != "__metadata__" else None
            if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
                end = max(end, offsets[1])
    expected = 8 + len(header) + end
    if expected != size:
        raise CheckpointError(f"{name}: corrupt: its header describes {expected} bytes but the file has {size} "
                              "(padded, cut short or not a checkpoint)")


def parse_checkpoint(data: bytes | bytearray, name: str = "checkpoint") -> Checkpoint:
    """Verify and decode checkpoint bytes, in this order: the header's size, its integrity hash against the whole
    file, the header (JSON, at most MAX_JSON_DEPTH deep) and its tensor layout, the document (JSON) and its
    fields (core.checkpoint_validation), the tensors against the config. Every failure is a CheckpointError.
    The arrays returned are views of ``data`` (copied first when it is immutable bytes, so they are writable)."""
    if not isinstance(data, bytearray):
        data = bytearray(data)
    view = memoryview(data)
    size = _header_size(view[:8], len(data), name)
    header_bytes = bytes(view[8 : 8 + size])
    stored = _stored_hash(header_bytes, name)
    digest = hashlib.sha256(view[:8])
    digest.update(header_bytes.replace(_hash_field(stored), _hash_field(HASH_PLACEHOLDER)))
    digest.update(view[8 + size :])
    if digest.hexdigest() != stored:
        newer = _NEWER.search(header_bytes)
        if newer is not None and int(newer.group(1)) > FORMAT_VERSION:
            raise CheckpointError(
                f"{name}: written by a newer InfoGen Explorer (checkpoint format {int(newer.group(1))}; this build reads "
                f"up to {FORMAT_VERSION}, package {__version__}): upgrade to open it")
        raise CheckpointError(f"{name}: corrupt: its content does not match its SHA-256 (flipped or missing bytes)")
    header = _parse_header(header_bytes, name)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not isinstance(meta.get("infogen"), str):
        raise CheckpointError(f"{name}: a safetensors file, but not an InfoGen checkpoint (no 'infogen' metadata)")
    entries = tensor_layout(header, len(data) - 8 - size, name)
    doc = loads_json(meta["infogen"], f"{name}: its InfoGen document", CheckpointError)
    cfg = validate_document(doc, name, FORMAT, FORMAT_VERSION, __version__)
    doc["config"] = cfg.as_dict()  # every setting present (a file from an earlier build: its defaults filled in)
    tensors = tensors_from_buffer(data, 8 + size, entries)
    weights, optim, rng, samples, trajectory = split_tensors(tensors, doc["model"], cfg, doc["step"], name)
    train_state = None
    if rng is not None:
        train_state = {"step": doc["step"], "optimizer": optim, "rng_train": rng, "model": weights}
    ckpt = Checkpoint(doc, weights, train_state, samples, trajectory=trajectory)
    ckpt.train_state_for()  # a run saved on CUDA, opened without CUDA: the note says how it continues
    return ckpt


_NEWER = re.compile(rb'\\"format_version\\":\s*(\d{1,9})')
_HASH = re.compile(rb'"infogen_sha256":"([0-9a-f]{64})"')
SNIFF_HEADER_BYTES = 2**20


def _hash_field(value: str) -> bytes:
    return f'"infogen_sha256":"{value}"'.encode()


def _header_size(first: bytes | memoryview, file_size: int, name: str) -> int:
    """The declared header size, checked against MAX_HEADER_BYTES and the file before the header is read."""
    if file_size < 8 or len(first) < 8:
        raise CheckpointError(f"{name}: too short to be a checkpoint ({file_size} bytes)")
    (size,) = struct.unpack("<Q", bytes(first[:8]))
    if size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name}: not a checkpoint: it declares a header of {size} bytes (limit {MAX_HEADER_BYTES})")
    if 8 + size > file_size:
        raise CheckpointError(f"{name}: truncated: the header needs {size} bytes but only {file_size - 8} follow")
    return size


def _stored_hash(header: bytes | bytearray, name: str) -> str:
    """The SHA-256 the header records, found without parsing it; a header without exactly one is refused (a small
    one is parsed first, to say what it is instead)."""
    found = _HASH.findall(header)
    if len(found) == 1:
        return found[0].decode()
    if len(header) <= SNIFF_HEADER_BYTES:
        parsed = _parse_header(header, name)
        meta = parsed.get("__metadata__")
        if not isinstance(meta, dict) or "infogen" not in meta:
            raise CheckpointError(f"{name}: a safetensors file, but not an InfoGen checkpoint (no 'infogen' metadata)")
    if len(found) > 1:
        raise CheckpointError(f"{name}: not a checkpoint: its header holds {len(found)} integrity hashes")
    raise CheckpointError(f"{name}: not an InfoGen checkpoint: its header has no integrity hash")


def _parse_header(header: bytes | bytearray, name: str) -> dict:
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{name}: not a checkpoint: its header is not JSON (a pickle or some other file?)") from None
    try:
        parsed = loads_json(text, f"{name}: its header", CheckpointError)
    except CheckpointError as exc:
        if "nested deeper" in str(exc) or "not a JSON number" in str(exc):
            raise
        raise CheckpointError(f"{name}: not a checkpoint: its header is not JSON (a pickle or some other file?)") from None
    if not isinstance(parsed, dict):
        raise CheckpointError(f"{name}: not a checkpoint: its header is not a JSON object")
    return parsed


def _replace_hash(data: bytes, old: str, new: str) -> bytes:
    """Swap the hash field's value inside the header (same length, so offsets do not move)."""
    needle = f'"infogen_sha256":"{old}"'.encode()
    (size,) = struct.unpack("<Q", data[:8])
    head = data[8 : 8 + size]
    if head.count(needle) != 1:
        raise CheckpointError("checkpoint header has no single integrity hash field")
    return data[:8] + head.replace(needle, f'"infogen_sha256":"{new}"'.encode()) + data[8 + size :]

