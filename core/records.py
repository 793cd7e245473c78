"""The records that training yields and that run folders and checkpoints store, in one place.

Training (diffusion or VAE) is a generator of plain dicts, each with a ``kind``. This module names every kind,
the fields each must carry with their types, the fields that hold arrays (kept out of JSON files), and the
two ways a record names its run (docs/records.md):

- ``member``: the index of a run inside a batched training ensemble (records of ``train_diffusion_ensemble``);
- ``run``: the name of a sweep's run (``T0.6_seed1``) in the events a sweep yields.

Readers validate what they load with ``validate_record``, so a file with a wrong-typed field is refused with
the field's name instead of failing later in a plot.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from .errors import InfoGenError

MEMBER = "member"
RUN = "run"
ARRAY_KEYS = ("samples", "frames", "frame_times", "model_state", "train_state")

# The kinds a run's history holds, in the order a run yields them.
START, STEP, EVAL, EPOCH, ERROR, END, CANCELLED, RESUMED = (
    "start", "step", "eval", "epoch", "error", "end", "cancelled", "resumed")
RUN_KINDS = (START, STEP, EVAL, EPOCH, ERROR, END, CANCELLED, RESUMED)
CLOSING_KINDS = (END, CANCELLED)


class RecordError(InfoGenError):
    """A record lacks a field or holds a value of the wrong type; the message names both."""


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    """A finite number, or None (non-finite numbers are stored as null)."""
    if value is None:
        return True
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_integer, "an integer"),
    "number": (_number, "a finite number or null"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
}

# Required fields per kind and their types. Records may carry more fields (terms of every variant, timings);
# these are the ones that readers, the CLI, exports and the app rely on.
FIELDS: dict[str, dict[str, str]] = {
    START: {"config": "dict"},
    STEP: {"step": "int", "loss": "number", "wall": "number"},
    EVAL: {"step": "int", "bound": "number", "variant": "str", "R": "number", "score_matching": "number",
           "encoder_info": "number", "encoder_prior": "number", "generator": "number", "L": "number",
           "test_kl": "number", "dsm_gap": "number", "bounds": "dict"},
    EPOCH: {"epoch": "int", "step": "int", "rec_train": "number", "kl_train": "number", "mi_train": "number",
            "bound_encoder_only": "number", "bound_encoder_generator": "number", "test_curve": "number"},
    ERROR: {"step": "int", "message": "str"},
    END: {"step": "int"},
    CANCELLED: {"step": "int"},
    RESUMED: {"step": "int"},
}
# Optional fields that, when present, must have this type.
OPTIONAL: dict[str, str] = {
    "epoch": "int", "wall": "number", "test_kl_se": "number", "test_bpd": "number", "test_bpd_se": "number",
    "encoder_info_se": "number", "dsm_train": "number", "dsm_test": "number", "test_kl_draws": "int",
    "n_gen": "int", "preview": "bool", MEMBER: "int", "status": "str", "step": "int",
}


def check_field(record: dict, name: str, type_name: str, where: str) -> None:
    """Raise RecordError unless record[name] has the type ``type_name`` (see TYPES)."""
    ok, described = TYPES[type_name]
    if not ok(record[name]):
        raise RecordError(f"{where}: field {name!r} must be {described}, got {record[name]!r:.60}")


def validate_record(record: Any, where: str = "record") -> dict:
    """Return the record if it is a known kind with every required field of the right type; else RecordError."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: not an object")
    kind = record.get("kind")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise RecordError(f"{where}: unknown kind {kind!r:.60}; known kinds: {', '.join(RUN_KINDS)}")
    where = f"{where} ({kind})"
    for name, type_name in FIELDS[kind].items():
        if name not in record:
            raise RecordError(f"{where}: missing field {name!r}")
        check_field(record, name, type_name, where)
    for name, type_name in OPTIONAL.items():
        if name in record and name not in FIELDS[kind]:
            check_field(record, name, type_name, where)
    if "step" in record and record["step"] < 0:
        raise RecordError(f"{where}: field 'step' must be >= 0, got {record['step']}")
    return record


def validate_history(history: Any, where: str = "history") -> list[dict]:
    """Validate every record of a run's history (a list), naming the first bad one by its position."""
    if not isinstance(history, list):
        raise RecordError(f"{where}: must be a list of records, got {type(history).__name__}")
    for i, record in enumerate(history):
        validate_record(record, f"{where}[{i}]")
    return history


def without_arrays(record: dict) -> dict:
    """The record minus its array-valued fields: what JSON files and light events carry."""
    return {k: v for k, v in record.items() if k not in ARRAY_KEYS}


def up_to_step(history: Iterable[dict], step: int) -> list[dict]:
    """The records of a history up to and including ``step``, without closing records: where a resumed run
    continues from. Earlier ``resumed`` records at or below ``step`` stay, so every resume is on record. A
    (kind, step) that appears twice (files written before resumes trimmed their history) is kept once, at its
    first place, with its latest content."""
    kept: list[dict] = []
    index: dict[tuple, int] = {}
    for record in history:
        kind = record.get("kind")
        if kind in CLOSING_KINDS:
            continue
        if kind != START and record.get("step", 0) > step:
            continue
        key = (kind, record.get("step"), record.get(MEMBER))
        if key in index:
            kept[index[key]] = record
        else:
            index[key] = len(kept)
            kept.append(record)
    return kept
