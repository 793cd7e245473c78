"""The one writer of training records: a run folder and its checkpoint, kept consistent (docs/records.md).

Every path that trains (``infogen train`` and ``resume``, sweeps on local workers or Ray, the VAE, the app)
writes through a RunRecorder. The checkpoint is the source of truth; the run folder beside it holds the same
history (``history.jsonl``, one record per line), the latest weights, every evaluation's samples and the latest
evaluation's reverse trajectory (``trajectory.safetensors``; in the checkpoint ``trajectory.frames`` and
``trajectory.times``).

The trajectory kept is that of the latest evaluation record that carries ``frames`` and ``frame_times``: points
keep every one of its n_gen samples per frame (1000 2-d points and 51 frames are 0.4 MB), image runs only the first
TRAJECTORY_MAX_IMAGES (16) images of each frame, so a trajectory of 51 frames of 32x32 colour images stays near
10 MB instead of n_gen's 60 MB in every checkpoint.

- A folder that already holds a run is refused, unless ``overwrite`` moves the old run aside first: two runs
  never mix in one history.
- A lock file refuses a second writer into the same folder while the first is alive.
- Resuming rewrites the folder from the checkpoint: its history up to the checkpoint's step (each step once,
  no closing records), then a ``resumed`` record; earlier samples are kept, and so is the checkpoint's trajectory
  until the continued run's first evaluation replaces it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as st_save

from .. import __version__
from ..checkpoint import CHECKPOINT_NAME, Checkpoint, save_checkpoint
from ..data.images import IMAGE_SOURCES
from ..errors import ConfigError
from ..records import CLOSING_KINDS, EPOCH, ERROR, EVAL, RESUMED, up_to_step, validate_record, without_arrays
from .atomic import atomic_write_bytes, atomic_write_json, to_json
from .run_dir import RUN_FORMAT, RUN_FORMAT_VERSION, TRAJECTORY_FILE

LOCK_NAME = ".infogen.lock"
LOCK_GRACE_SECONDS = 10.0
TRAJECTORY_MAX_IMAGES = 16  # images per frame an image run's stored trajectory keeps (points keep all)
# What marks a folder as holding work: a run's files, a sweep's plan, a T selection's result or first round.
WORK_MARKERS = ("config.json", "history.jsonl", CHECKPOINT_NAME, "weights.safetensors", "samples.safetensors",
                TRAJECTORY_FILE, "sweep.json", "selection.json", "round0")


def holds_work(folder: str | Path) -> bool:
    """True when ``folder`` already holds (part of) a run, a sweep or a T selection.

    A run that never wrote a record (refused at its start, e.g. by its data: config.json and an empty history,
    nothing else) holds nothing that could be lost, so it does not block the next try."""
    folder = Path(folder)
    present = [name for name in WORK_MARKERS if (folder / name).exists()]
    if set(present) <= {"config.json", "history.jsonl"} and "history.jsonl" in present:
        try:
            return (folder / "history.jsonl").stat().st_size > 0
        except OSError:
            return True
    return bool(present)


def aside_name(folder: Path) -> Path:
    """Where --overwrite moves an existing run: a sibling named after the folder and the time."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = folder.with_name(f"{folder.name}.replaced-{stamp}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = folder.with_name(f"{folder.name}.replaced-{stamp}-{n}")
    return candidate


def claim_folder(folder: str | Path, overwrite: bool = False, what: str = "run") -> Path | None:
    """Make ``folder`` ready for a new run; returns where an old run was moved (or None).

    A folder that holds a run is refused unless ``overwrite``; then the whole folder is moved aside (renamed),
    never deleted and never mixed with the new run. A folder that a live writer holds (itself, or one of its
    run folders, as in a sweep) is never moved. Unwritable places get a ConfigError naming them."""
    folder = Path(folder).resolve()
    moved = None
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} exists and is not a folder; choose another output folder")
    if folder.is_dir() and holds_work(folder):
        lock = live_lock_in(folder)
        if lock is not None:
            raise ConfigError(f"{folder} is being written by another InfoGen process ({lock}); choose another folder")
        if not overwrite:
            raise ConfigError(f"{folder} already holds a {what}; choose another output folder, or pass --overwrite "
                              "to move the old one aside (it is renamed, never deleted)")
        cwd = Path.cwd().resolve()
        if cwd == folder or folder in cwd.parents:
            raise ConfigError(f"{folder} is the current folder (or holds it) and cannot be moved aside; "
                              "choose another output folder")
        moved = aside_name(folder)
        try:
            folder.rename(moved)
        except OSError as exc:
            raise ConfigError(f"cannot move the old {what} in {folder} aside ({exc.strerror})") from None
    make_folder(folder)
    return moved


def make_folder(folder: Path) -> None:
    """mkdir -p with a message instead of a traceback when the place is not writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".infogen-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to {folder} ({exc.strerror or exc}); choose a writable output folder") from None


def read_lock(folder: Path) -> str | None:
    """The description of a live writer holding ``folder``, or None (no lock, or a stale one).

    A lock that cannot be parsed counts as live for LOCK_GRACE_SECONDS (a writer may be starting), then as
    stale; a lock whose process is gone is stale."""
    path = Path(folder) / LOCK_NAME
    try:
        text, age = path.read_text(), time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"an unreadable lock ({exc.strerror})"
    try:
        info = json.loads(text)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return "a writer that is starting" if age < LOCK_GRACE_SECONDS else None
    if host != socket.gethostname():
        return f"pid {pid} on {host}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # the writer died: a stale lock
    except PermissionError:
        pass
    return f"pid {pid}"


def live_lock_in(folder: Path) -> str | None:
    """A live writer in ``folder`` or in one of its direct subfolders (a sweep's runs), described; else None."""
    holder = read_lock(folder)
    if holder is not None:
        return holder
    try:
        children = [c for c in folder.iterdir() if c.is_dir()]
    except OSError:
        return None
    for child in children:
        holder = read_lock(child)
        if holder is not None:
            return f"{holder}, in {child.name}"
    return None


class FolderLock:
    """An exclusive lock file in a folder: one writer at a time; a dead writer's lock is taken over.

    The lock appears with its content in one step (written to a temporary name, then hard-linked into place),
    so no other writer ever reads it half-written; release removes it only if it is still this writer's."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._inode: int | None = None

    @property
    def held(self) -> bool:
        return self._inode is not None

    def acquire(self) -> None:
        body = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        staged = self.path.with_name(f"{LOCK_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
        staged.write_bytes(body)
        try:
            for _ in range(2):
                try:
                    os.link(staged, self.path)
                except FileExistsError:
                    holder = read_lock(self.path.parent)
                    if holder is not None:
                        raise ConfigError(f"{self.path.parent} is being written by another InfoGen process "
                                          f"({holder}); wait for it to finish or choose another folder") from None
                    self._remove_stale()
                    continue
                self._inode = os.stat(self.path).st_ino
                return
        finally:
            staged.unlink(missing_ok=True)
        raise ConfigError(f"{self.path.parent}: could not take the writer's lock {LOCK_NAME}")

    def _remove_stale(self) -> None:
        """Remove a dead writer's lock, unless another writer replaced it meanwhile."""
        try:
            stale = os.stat(self.path).st_ino
            aside = self.path.with_name(f"{LOCK_NAME}.stale.{os.getpid()}")
            os.rename(self.path, aside)
            if os.stat(aside).st_ino != stale:  # a live writer's lock got moved: put it back
                os.link(aside, self.path)
            aside.unlink()
        except (FileNotFoundError, FileExistsError):
            pass

    def release(self) -> None:
        if self._inode is None:
            return
        try:
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass
        self._inode = None


class RunRecorder:
    """Writes one run's records to its folder and its checkpoint; use as a context manager.

    ``resume`` continues the run of a checkpoint (see the module docstring). Array fields go to safetensors
    files, everything else to JSON; nothing is pickled. A checkpoint is saved at every evaluation that carries
    weights, and when the run ends, fails or is cancelled. VAE records carry no weights yet, so a VAE run has
    its run folder but no checkpoint (and cannot be resumed).
    """

    def __init__(self, folder: str | Path, config: dict, model: str = "dm", *, overwrite: bool = False,
                 resume: Checkpoint | None = None, in_place: bool = False) -> None:
        """``in_place``: ``resume`` is this folder's own checkpoint, and the run continues where it is."""
        self.folder = Path(folder)
        self.config = config
        self.model = model
        self.moved_aside = None
        if resume is not None and in_place:
            make_folder(self.folder)
        else:
            self.moved_aside = claim_folder(self.folder, overwrite)
        self._lock = FolderLock(self.folder)
        self._lock.acquire()
        self.history: list[dict] = []
        self.samples: dict[int, np.ndarray] = {}
        self.weights: dict[str, np.ndarray] | None = None
        self.train_state: dict | None = None
        self.trajectory: tuple[np.ndarray, np.ndarray] | None = None
        try:
            atomic_write_json(self.folder / "config.json", {
                "format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "model": model, "version": __version__,
                "config": config})
            if resume is not None:
                self.history = [to_json(without_arrays(r)) for r in up_to_step(resume.history, resume.step)]
                self.history.append({"kind": RESUMED, "step": resume.step})
                self.samples = {s: a for s, a in resume.samples.items() if s <= resume.step}
                self.weights, self.train_state = resume.weights, resume.train_state
                self.trajectory = resume.trajectory
                self._write_samples()
                self._write_trajectory()
                self._write_weights(resume.step)
            text = "".join(json.dumps(r) + "\n" for r in self.history)
            atomic_write_bytes(self.folder / "history.jsonl", text.encode())
            self._file = open(self.folder / "history.jsonl", "a", encoding="utf-8")
            if resume is not None and self.weights is not None:
                self.save_checkpoint()  # the new folder is resumable before its first evaluation
        except BaseException:
            self._lock.release()
            raise

    @property
    def checkpoint_path(self) -> Path:
        return self.folder / CHECKPOINT_NAME

    def write(self, record: dict) -> None:
        """Append the record (arrays stripped, checked against core.records) to the history; store its samples
        and weights if it has them."""
        plain = validate_record(to_json(without_arrays(record)), f"record for {self.folder}")
        self.history.append(plain)
        self._file.write(json.dumps(plain) + "\n")
        kind = record.get("kind")
        if "samples" in record:
            self.samples[int(record["step"])] = np.ascontiguousarray(record["samples"], dtype=np.float32)
            self._write_samples()
        if "frames" in record and "frame_times" in record:
            self.trajectory = self._stored_trajectory(record["frames"], record["frame_times"])
            self._write_trajectory()
        if "model_state" in record:
            self.weights = {k: np.ascontiguousarray(v) for k, v in record["model_state"].items()}
            self.train_state = record.get("train_state")
            self._write_weights(int(record["step"]))
        if kind in (EVAL, EPOCH, ERROR, *CLOSING_KINDS):
            self._file.flush()
            if self.weights is not None:
                self.save_checkpoint()

    def save_checkpoint(self) -> None:
        save_checkpoint(self.checkpoint_path, model=self.model, config=self.config, history=self.history,
                        weights=self.weights, train_state=self.train_state, samples=self.samples,
                        trajectory=self.trajectory)

    def _stored_trajectory(self, frames, times) -> tuple[np.ndarray, np.ndarray]:
        """(frames, times) as float32 arrays, an image run's frames cut to TRAJECTORY_MAX_IMAGES images."""
        frames = np.asarray(frames, dtype=np.float32)
        if self.config.get("data") in IMAGE_SOURCES and frames.ndim == 3:
            frames = frames[:, :TRAJECTORY_MAX_IMAGES]
        return np.ascontiguousarray(frames), np.ascontiguousarray(times, dtype=np.float32)

    def _write_trajectory(self) -> None:
        """trajectory.safetensors (``frames``, ``times``) as the recorder holds it; none held: no file (a stale
        one of a folder resumed in place is removed, so the folder never shows another state's trajectory)."""
        path = self.folder / TRAJECTORY_FILE
        if self.trajectory is None:
            path.unlink(missing_ok=True)
            return
        frames, times = self.trajectory
        atomic_write_bytes(path, st_save({"frames": frames, "times": times}))

    def _write_samples(self) -> None:
        if self.samples:
            arrays = {f"step_{s}": np.ascontiguousarray(a, dtype=np.float32) for s, a in sorted(self.samples.items())}
            atomic_write_bytes(self.folder / "samples.safetensors", st_save(arrays))

    def _write_weights(self, step: int) -> None:
        if self.weights is not None:
            meta = {"format": RUN_FORMAT, "format_version": str(RUN_FORMAT_VERSION), "step": str(step)}
            atomic_write_bytes(self.folder / "weights.safetensors", st_save(self.weights, metadata=meta))

    def close(self) -> None:
        """Flush and close the history and release the folder."""
        if not self._file.closed:
            self._file.flush()
            self._file.close()
        self._lock.release()

    def __enter__(self) -> "RunRecorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
