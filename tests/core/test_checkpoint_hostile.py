"""Hostile checkpoints: each is refused before it is read, or after its hash, with a CheckpointError naming the
problem, within 5 s and 200 MB; `infogen info` exits with status 2 and one line. Files with well-formed hashes
are built by rewriting a valid checkpoint's document (or tensors) and recomputing the hash as core.checkpoint
does. A hypothesis test mutates the document at random: the result is a clean CheckpointError or a file that
loads and exports."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import struct
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
from checkpoint_files import TINY_CHECKPOINT_CONFIG, tiny_checkpoint_bytes
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import core.checkpoint as cp
from core.checkpoint import CheckpointError, build_checkpoint_bytes, load_checkpoint, parse_checkpoint, save_checkpoint
from core.cli import main
from core.errors import InfoGenError
from core.io.atomic import STALE_TEMP_SECONDS, to_json
from core.io.safe_read import MAX_CHECKPOINT_BYTES, MAX_FILE_BYTES_ENV, MAX_JSON_DEPTH
from core.training.config import DiffusionConfig
from core.training.diffusion import train_diffusion

SECONDS = 5.0
MAX_BYTES = 200 * 2**20
CONFIG = TINY_CHECKPOINT_CONFIG


# -- building files -------------------------------------------------------------------------------------------
def valid_checkpoint() -> bytes:
    """A real checkpoint of a tiny run (two evaluations), built once."""
    return tiny_checkpoint_bytes()


def split(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(document, tensors) of checkpoint bytes."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    return json.loads(header["__metadata__"]["infogen"]), st_load(bytes(data))


def rebuild(doc: dict | str, tensors: dict[str, np.ndarray]) -> bytes:
    """Checkpoint bytes for this document (a dict, or JSON text as it is) and these tensors, with the hash
    recomputed exactly as core.checkpoint.build_checkpoint_bytes does."""
    text = doc if isinstance(doc, str) else json.dumps(doc)
    raw = st_save(tensors, metadata={"infogen": text, "infogen_sha256": cp.HASH_PLACEHOLDER})
    return cp._replace_hash(raw, cp.HASH_PLACEHOLDER, hashlib.sha256(raw).hexdigest())


def rewritten(change=None, change_tensors=None) -> bytes:
    """The valid checkpoint with ``change(doc)`` and ``change_tensors(tensors)`` applied, re-hashed."""
    doc, tensors = split(valid_checkpoint())
    if change is not None:
        replaced = change(doc)  # a change returns a whole new document, or edits this one and returns None
        doc = doc if replaced is None else replaced
    if change_tensors is not None:
        change_tensors(tensors)
    return rebuild(doc, tensors)


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def with_deep_value(levels: int) -> bytes:
    doc, tensors = split(valid_checkpoint())
    doc["history"][0]["nested"] = "@DEEP@"
    return rebuild(json.dumps(doc).replace('"@DEEP@"', deep(levels)), tensors)


def first(doc: dict, kind: str) -> dict:
    return next(r for r in doc["history"] if r["kind"] == kind)


def cuda_rng(seed: int = 1234, offset: int = 8) -> np.ndarray:
    """What torch.Generator("cuda").get_state() returns: the Philox seed (uint64) and offset (int64)."""
    return np.frombuffer(struct.pack("<Qq", seed, offset), dtype=np.uint8).copy()


# -- the checks every hostile case must pass --------------------------------------------------------------------
def refused(fn, match: str) -> CheckpointError:
    """``fn()`` must raise a CheckpointError matching ``match`` within SECONDS and MAX_BYTES of Python memory.
    It runs in a daemon thread, so a reader that blocks (a FIFO) fails the test instead of hanging it."""
    outcome: dict = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            outcome["exc"] = exc

    tracemalloc.start()
    start = time.monotonic()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(SECONDS)
    elapsed = time.monotonic() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert not worker.is_alive(), f"still reading after {SECONDS} s"
    exc = outcome.get("exc")
    assert isinstance(exc, CheckpointError), f"expected CheckpointError, got {exc!r}"
    assert re.search(match, str(exc)), str(exc)
    assert elapsed < SECONDS and peak < MAX_BYTES, (elapsed, peak)
    return exc


def info_refuses(path: Path, match: str, capsys) -> None:
    """`infogen info PATH` exits with status 2 and one line on stderr naming the problem."""
    capsys.readouterr()
    assert main(["info", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(match, lines[0]), captured.err
    assert captured.out == ""


# -- files that are not regular, or too large -----------------------------------------------------------------
def test_a_fifo_is_refused_without_being_opened(tmp_path, capsys):
    fifo = tmp_path / "pipe.infogen"
    os.mkfifo(fifo)
    refused(lambda: load_checkpoint(fifo), r"named pipe \(FIFO\).*not a regular file")
    info_refuses(fifo, "named pipe", capsys)


def test_a_link_to_dev_zero_is_refused_without_being_read(tmp_path, capsys):
    link = tmp_path / "zero.infogen"
    link.symlink_to("/dev/zero")
    refused(lambda: load_checkpoint(link), r"a link to /dev/zero.*character device")
    info_refuses(link, "character device", capsys)


def test_a_folder_and_a_dangling_link_are_refused(tmp_path):
    refused(lambda: load_checkpoint(tmp_path), "is a folder")
    (tmp_path / "gone.infogen").symlink_to(tmp_path / "nowhere")
    refused(lambda: load_checkpoint(tmp_path / "gone.infogen"), "points to nothing")
    refused(lambda: load_checkpoint(tmp_path / "missing.infogen"), "no such file")


def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, capsys):
    big = tmp_path / "big.infogen"
    with open(big, "wb") as fh:
        fh.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: nothing is written
    refused(lambda: load_checkpoint(big), rf"4,294,967,297 bytes is over the 4,294,967,296-byte limit.*{MAX_FILE_BYTES_ENV}")
    info_refuses(big, "over the .*-byte limit", capsys)


def test_the_size_limit_can_be_lowered_or_raised_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "run.infogen"
    path.write_bytes(valid_checkpoint())
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, "1000")
    refused(lambda: load_checkpoint(path), rf"over the 1,000-byte limit.*set {MAX_FILE_BYTES_ENV}")
    monkeypatch.setenv(MAX_FILE_BYTES_ENV, str(10 * 2**30))
    assert load_checkpoint(path).step == 6


def test_a_3_gib_file_of_zeros_is_refused_after_reading_its_first_bytes(tmp_path):
    zeros = tmp_path / "zeros.infogen"
    with open(zeros, "wb") as fh:
        fh.truncate(3 * 2**30)
    refused(lambda: load_checkpoint(zeros), "not a checkpoint")


def test_a_header_over_its_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge-header.infogen"
    with open(path, "wb") as fh:
        fh.write((cp.MAX_HEADER_BYTES + 1).to_bytes(8, "little"))
        fh.truncate(8 + cp.MAX_HEADER_BYTES + 10)
    refused(lambda: load_checkpoint(path), rf"declares a header of {cp.MAX_HEADER_BYTES + 1} bytes \(limit")


def test_a_92_mib_header_of_braces_is_refused_quickly(tmp_path, capsys):
    size = 92 * 2**20
    path = tmp_path / "braces.infogen"
    with open(path, "wb") as fh:
        fh.write(size.to_bytes(8, "little") + b"{}")
        fh.truncate(8 + size)  # the rest of the header: zero bytes, never written
    refused(lambda: load_checkpoint(path), "no integrity hash")
    info_refuses(path, "no integrity hash", capsys)


# -- JSON nested too deep ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [100, 1000, 100_000])
def test_a_document_nested_too_deep_is_refused_naming_the_limit(tmp_path, levels, capsys):
    path = tmp_path / "deep.infogen"
    path.write_bytes(with_deep_value(levels))
    refused(lambda: load_checkpoint(path), f"nested deeper than the limit of {MAX_JSON_DEPTH} levels")
    info_refuses(path, "nested deeper", capsys)


def test_a_header_nested_too_deep_is_refused_naming_the_limit():
    header = ('{"a":' + deep(5000) + "}").encode()
    refused(lambda: parse_checkpoint(len(header).to_bytes(8, "little") + header), "nested deeper than the limit")


def test_the_hash_is_checked_before_the_document_is_parsed():
    # A broken document under a stale hash: reported as corrupt (the hash), never as bad JSON (the parse).
    data = valid_checkpoint().replace(b'\\"format\\": \\"infogen-checkpoint\\"', b'\\"format\\": [[[[[[[[[[[[[[[')
    refused(lambda: parse_checkpoint(data), "corrupt: its content does not match its SHA-256")


# -- well-formed hashes, wrong types ------------------------------------------------------------------------------
def _set(path, value):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _delete(path):
    def change(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return change


def _eval_without(field):
    def change(doc):
        del first(doc, "eval")[field]
    return change


def _record(which, **values):
    def change(doc):
        first(doc, which).update(values)
    return change


WRONG_TYPES = {
    "format_version true": (_set(["format_version"], True), "field 'format_version' must be an integer"),
    "format_version text": (_set(["format_version"], "1"), "field 'format_version' must be an integer"),
    "step 299.5": (_set(["step"], 299.5), "field 'step' must be an integer"),
    "step true": (_set(["step"], True), "field 'step' must be an integer"),
    "step beyond iters": (_set(["step"], 299), r"field 'step' is 299, but a resumable run's step must be within 1..6"),
    "history not a list": (_set(["history"], {"0": {"kind": "start"}}), "history: must be a list of records"),
    "history of strings": (_set(["history"], ["start"]), r"history\[0\]: not an object"),
    "config not an object": (_set(["config"], [1, 2]), "field 'config' must be an object"),
    "config T text": (_set(["config", "T"], "0.6"), "field 'config.T' must be a finite number"),
    "config m float": (_set(["config", "m"], 24.5), "field 'config.m' must be an integer"),
    "config hidden bool": (_set(["config", "hidden"], True), "field 'config.hidden' must be an integer"),
    "config m 1": (_set(["config", "m"], 1), r"field 'config.m' must be >= 2"),
    "config unknown key": (_set(["config", "colour"], "red"), "unknown settings: colour"),
    "config no T": (_delete(["config", "T"]), "field 'config' has no 'T'"),
    "config unknown data": (_set(["config", "data"], "spiral"), "unknown dataset 'spiral'"),
    "config unknown device": (_set(["config", "device"], "tpu9"), "field 'config'.*device"),
    "config hidden of another network": (_set(["config", "hidden"], 32), r"do not fit the network.*'layers.0.weight' \[16, 3\] \(expected \[32, 3\]\)"),
    "model 5": (_set(["model"], 5), "field 'model' must be one of dm, vae"),
    "no model": (_delete(["model"]), "the document has no 'model'"),
    "no history": (_delete(["history"]), "the document has no 'history'"),
    "bound not an object": (_set(["bound"], [1]), "field 'bound' must be an object"),
    "bound value a list": (_set(["bound", "R"], [5]), r"field 'bound.R' must be a string, a number or null"),
    "provenance a string": (_set(["provenance"], "here"), "field 'provenance' must be an object"),
    "kernel path unknown": (_set(["kernel_paths"], {"score MLP training": "mkl"}), "field 'kernel_paths' must map pass names to one of torch, onednn"),
    "kernel paths a list": (_set(["kernel_paths"], ["torch"]), "field 'kernel_paths' must map"),
    "eval without bound": (_eval_without("bound"), r"history\[\d+\] \(eval\): missing field 'bound'"),
    "eval bound text": (_record("eval", bound="high"), r"\(eval\): field 'bound' must be a finite number or null"),
    "step loss a list": (_record("step", loss=[1]), r"\(step\): field 'loss' must be a finite number or null"),
    "record of unknown kind": (_record("step", kind="teleport"), "unknown kind 'teleport'"),
    "record kind a list": (_record("step", kind=["step"]), r"history\[\d+\]: unknown kind \['step'\]"),
    "start record with a text step": (_record("start", step="one"), r"history\[0\] \(start\): field 'step' must be an integer, got 'one'"),
    "document a list": (lambda doc: [doc], "its document is not a JSON object"),
    "format of another program": (_set(["format"], "other"), r"not an InfoGen checkpoint \(format 'other'\)"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_wrong_typed_metadata_with_a_recomputed_hash_is_refused_by_field(tmp_path, case, capsys):
    change, match = WRONG_TYPES[case]
    path = tmp_path / "typed.infogen"
    path.write_bytes(rewritten(change))
    refused(lambda: load_checkpoint(path), match)
    info_refuses(path, match, capsys)


def test_nan_and_infinity_literals_are_refused():
    doc, tensors = split(valid_checkpoint())
    first(doc, "eval")["bound"] = "@NAN@"
    text = json.dumps(doc)
    refused(lambda: parse_checkpoint(rebuild(text.replace('"@NAN@"', "NaN"), tensors)), "holds NaN.*stored as null")
    refused(lambda: parse_checkpoint(rebuild(text.replace('"@NAN@"', "-Infinity"), tensors)), "holds -Infinity")


def _as(key, dtype=None, shape=None):
    def change(tensors):
        arr = tensors[key]
        if shape is not None:
            arr = np.zeros(shape, dtype=arr.dtype)
        if dtype is not None:
            arr = arr.astype(dtype)
        tensors[key] = arr
    return change


WRONG_TENSORS = {
    "int8 weights": (_as("model.layers.0.weight", np.int8), "model weight 'layers.0.weight' has dtype I8; weights must be floating point"),
    "weights of another shape": (_as("model.layers.1.bias", shape=(17,)), r"wrong shape 'layers.1.bias' \[17\] \(expected \[16\]\)"),
    "a weight missing": (lambda t: t.pop("model.layers.3.bias"), r"missing \['layers.3.bias'\]"),
    "an extra weight": (lambda t: t.update({"model.layers.9.weight": np.zeros(3, np.float32)}), r"unexpected \['layers.9.weight'\]"),
    "no weights": (lambda t: [t.pop(k) for k in list(t) if k.startswith("model.")], "holds no model weights"),
    "Adam moment of another shape": (_as("optim.exp_avg.0", shape=(3, 17)), r"Adam moment 'optim.exp_avg.0' has shape \[3, 17\], but its parameter has shape \[3, 16\]"),
    "Adam moment int": (_as("optim.exp_avg_sq.2", np.int32), "optimizer tensor 'optim.exp_avg_sq.2' has dtype I32"),
    "Adam step missing": (lambda t: t.pop("optim.step.1"), r"lacks optim.step.1"),
    "Adam step negative": (lambda t: t.update({"optim.step.1": np.array([-3.0])}), r"'optim.step.1' must hold one finite count >= 0"),
    "unknown optimizer tensor": (lambda t: t.update({"optim.momentum.0": np.zeros(2, np.float32)}), "unknown optimizer tensor 'optim.momentum.0'"),
    "random state of 100 bytes": (_as("rng.train", shape=(100,)), r"'rng.train' \(U8, shape \[100\]\) is neither a CPU generator state"),
    "random state as float": (_as("rng.train", np.float32), "'rng.train' .*F32.* is neither"),
    "samples float64": (_as("samples.step_3", np.float64), "samples 'samples.step_3' have dtype F64; samples are F32"),
    "samples of 3-d points": (_as("samples.step_6", shape=(32, 3)), r"samples 'samples.step_6' have shape \[32, 3\]; expected \(n, 2\) points"),
    "samples flat": (_as("samples.step_6", shape=(64,)), r"have shape \[64\]"),
    "samples misnamed": (lambda t: t.update({"samples.step_x": np.zeros((2, 2), np.float32)}), "'samples.step_x' is not named samples.step_N"),
}


@pytest.mark.parametrize("case", list(WRONG_TENSORS))
def test_tensors_that_do_not_fit_the_config_are_refused_by_name(tmp_path, case, capsys):
    change, match = WRONG_TENSORS[case]
    path = tmp_path / "tensors.infogen"
    path.write_bytes(rewritten(change_tensors=change))
    refused(lambda: load_checkpoint(path), match)
    info_refuses(path, match, capsys)


def by_hand(change, extra: bytes = b"") -> bytes:
    """The valid checkpoint with its safetensors header edited by ``change(header)`` and ``extra`` bytes after
    its tensor data, written out by hand and re-hashed: layouts that safetensors itself would never write."""
    data = valid_checkpoint()
    size = int.from_bytes(data[:8], "little")
    header, body = json.loads(data[8 : 8 + size]), data[8 + size :] + extra
    header["__metadata__"]["infogen_sha256"] = cp.HASH_PLACEHOLDER
    change(header)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    raw = len(text).to_bytes(8, "little") + text + body
    return cp._replace_hash(raw, cp.HASH_PLACEHOLDER, hashlib.sha256(raw).hexdigest())


def _offsets(key_prefix, shift_begin, shift_end):
    def change(header):
        key = next(k for k in header if k.startswith(key_prefix))
        begin, end = header[key]["data_offsets"]
        header[key]["data_offsets"] = [begin + shift_begin, end + shift_end]
    return change


LAYOUTS = {
    "overlapping tensors": (_offsets("model.layers.1.bias", 4, 4), r"starts at byte \d+ of the data, expected \d+ \(overlapping"),
    "size unlike the shape": (_offsets("model.layers.1.bias", 0, 4), r"needs 64 bytes, its header gives 68"),
    "beyond the data": (_offsets("samples.step_6", 10**9, 10**9), "outside the .* bytes of tensor data"),
    "bfloat16": (lambda h: h["model.layers.1.bias"].update(dtype="BF16"), "dtype 'BF16', which this reader does not support"),
    "negative shape": (lambda h: h["model.layers.1.bias"].update(shape=[-16]), r"invalid shape \[-16\]"),
    "entry not an object": (lambda h: h.update({"model.x": [1, 2]}), "'model.x': its header entry is not dtype"),
}


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_a_tensor_layout_that_does_not_tile_the_data_is_refused(case):
    change, match = LAYOUTS[case]
    refused(lambda: parse_checkpoint(by_hand(change)), match)


def test_bytes_after_the_last_tensor_are_refused_and_a_hand_built_copy_loads():
    refused(lambda: parse_checkpoint(by_hand(lambda h: None, extra=b"\0" * 8)), "truncated or extra bytes")
    assert parse_checkpoint(by_hand(lambda h: None)).step == 6


# -- NaN stored as null ---------------------------------------------------------------------------------------
def nan_checkpoint() -> bytes:
    """A run whose last evaluation went NaN (stored as null, as core.io.atomic.to_json does) and a NaN loss."""
    def change(doc):
        evals = [r for r in doc["history"] if r["kind"] == "eval"]
        for key in ("bound", "score_matching", "generator", "L", "test_kl", "test_kl_se", "dsm_gap", "dsm_test"):
            evals[-1][key] = None
        evals[-1]["bounds"]["exact"]["total"] = None
        steps = [r for r in doc["history"] if r["kind"] == "step"]
        steps[-1]["loss"] = None
    return rewritten(change)


def test_nan_values_stored_as_null_load_and_info_shows_n_a(tmp_path, capsys):
    path = tmp_path / "nan.infogen"
    path.write_bytes(nan_checkpoint())
    ckpt = load_checkpoint(path)
    assert ckpt.records("eval")[-1]["bound"] is None
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "bound n/a, test KL n/a" in out
    assert main(["info", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_eval"]["bound"] is None


@pytest.mark.parametrize("figure", ["loss", "bound", "gap", "samples"])
def test_nan_values_stored_as_null_export(tmp_path, figure):
    from core.export.figures import export_figure

    path = tmp_path / "nan.infogen"
    path.write_bytes(nan_checkpoint())
    paths = export_figure(path, figure, "svg", out=tmp_path / "out" / f"{figure}.svg")
    assert paths["figure"].exists() and paths["csv"].exists()


# -- a run saved on CUDA, continued on a CPU machine -------------------------------------------------------------
def cuda_checkpoint() -> bytes:
    return rewritten(_set(["config", "device"], "cuda"), lambda t: t.update({"rng.train": cuda_rng()}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_cuda_checkpoint_loads_and_resumes_on_cpu_with_a_note(tmp_path, capsys):
    path = tmp_path / "cuda.infogen"
    path.write_bytes(cuda_checkpoint())
    ckpt = load_checkpoint(path)
    assert ckpt.config["device"] == "cuda" and len(ckpt.train_state["rng_train"]) == 16
    assert ckpt.resume_device() == "cpu" and ckpt.resume_config()["device"] == "cpu"
    (note,) = ckpt.notes
    assert "saved on CUDA, continues on CPU" in note and "re-seeded from the run's seed (0)" in note
    assert "not bit-identical" in note
    state = ckpt.train_state_for("cpu")
    assert len(state["rng_train"]) == 5056 and state["step"] == 6 and state["model"] is ckpt.weights
    assert ckpt.notes == [note]  # said once
    # the continuation runs on the CPU from the checkpoint's weights and Adam state
    cfg = DiffusionConfig.from_dict(ckpt.resume_config()).with_(iters=8, eval_every=0)
    records = list(train_diffusion(cfg, resume=state))
    assert [r["step"] for r in records if r["kind"] == "step"] == [7, 8]
    assert records[-1]["kind"] == "end" and np.isfinite(records[-2]["bound"])
    # the same re-seeding every time: two resumes from the file agree with each other
    again = list(train_diffusion(cfg, resume=load_checkpoint(path).train_state_for("cpu")))
    assert [r.get("loss") for r in again if r["kind"] == "step"] == [r.get("loss") for r in records if r["kind"] == "step"]
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    assert "note: saved on CUDA, continues on CPU" in capsys.readouterr().out


def test_a_cpu_checkpoint_resumes_on_cpu_exactly_and_converts_for_cuda(tmp_path):
    ckpt = parse_checkpoint(valid_checkpoint())
    assert ckpt.notes == [] and ckpt.train_state_for("cpu") is ckpt.train_state
    for_cuda = ckpt.train_state_for("cuda")
    assert len(for_cuda["rng_train"]) == 16 and "saved on CPU, continues on CUDA" in ckpt.notes[0]


# -- stale temporary files of killed saves --------------------------------------------------------------------
def test_the_next_save_removes_stale_temporary_files_and_nothing_else(tmp_path):
    target = tmp_path / "checkpoint.infogen"
    old = time.time() - STALE_TEMP_SECONDS - 5
    stale = tmp_path / ".checkpoint.infogen.k1ll3d_x.tmp"
    live = tmp_path / ".checkpoint.infogen.wr1t1ng0.tmp"  # another writer's, just written
    other = tmp_path / ".checkpoint.infogen.bak.abcdefgh.tmp"  # not one of ours
    sibling = tmp_path / ".samples.safetensors.k1ll3d_y.tmp"  # another file's: cleaned by its own next save
    for p in (stale, live, other, sibling):
        p.write_bytes(b"partial")
    for p in (stale, other, sibling):
        os.utime(p, (old, old))
    ckpt = parse_checkpoint(valid_checkpoint())
    save_checkpoint(target, model="dm", config=ckpt.config, history=ckpt.history, weights=ckpt.weights,
                    train_state=ckpt.train_state, samples=ckpt.samples)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["checkpoint.infogen", live.name, other.name, sibling.name])
    assert load_checkpoint(target).step == 6


# -- random mutations of the document -------------------------------------------------------------------------
def _paths() -> list[tuple]:
    doc, _ = split(valid_checkpoint())
    paths = [(k,) for k in doc] + [("config", k) for k in doc["config"]] + [("bound", k) for k in doc["bound"]]
    for kind in ("start", "step", "eval", "end"):
        i = next(i for i, r in enumerate(doc["history"]) if r["kind"] == kind)
        paths += [("history", i, k) for k in doc["history"][i]]
    i = next(i for i, r in enumerate(doc["history"]) if r["kind"] == "eval")
    paths += [("history", i, "bounds", "exact", k) for k in ("total", "generator", "L")]
    paths += [("history", 0), ("history", len(doc["history"]) - 1)]
    return paths


PATHS = _paths()
CONTAINERS = [("config",), ("bound",), ("history", 0), ("history", 3), ("provenance",), ()]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
mutations = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(PATHS), json_values),
    st.tuples(st.just("set"), st.sampled_from(PATHS), st.none()),  # what a NaN is stored as
    st.tuples(st.just("delete"), st.sampled_from(PATHS), st.none()),
    st.tuples(st.just("extra"), st.sampled_from(CONTAINERS), st.tuples(st.text(min_size=1, max_size=8), json_values)),
    st.tuples(st.just("nest"), st.sampled_from(PATHS), st.integers(1, 70) | st.integers(900, 1500)),
)


def _apply(doc, mutation, marks: dict) -> None:
    action, path, value = mutation
    parent = doc
    try:
        for key in path[:-1] if path else ():
            parent = parent[key]
        if action == "extra":
            target = parent[path[-1]] if path else parent
            if isinstance(target, dict):
                target[value[0]] = value[1]
        elif action == "delete":
            del parent[path[-1]]
        elif action == "set":
            parent[path[-1]] = value
        else:  # wrap the value in `value` levels of lists, spliced in as text (json.dumps would recurse)
            mark = f"@NEST{len(marks)}@"
            marks[mark] = (value, json.dumps(parent[path[-1]]))
            parent[path[-1]] = mark
    except (KeyError, IndexError, TypeError):
        pass  # an earlier mutation removed or replaced the path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutations, min_size=1, max_size=3))
def test_a_mutated_document_is_refused_cleanly_or_loads_and_exports(mutation_list):
    doc, tensors = split(valid_checkpoint())
    marks: dict = {}
    for mutation in mutation_list:
        _apply(doc, mutation, marks)
    text = json.dumps(doc)
    for mark, (levels, inner) in marks.items():
        text = text.replace(json.dumps(mark), "[" * levels + inner + "]" * levels)
    data = rebuild(text, tensors)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated.infogen"
        path.write_bytes(data)
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError:
            return
        assert isinstance(ckpt.history, list) and isinstance(ckpt.step, int)
        from core.export.figures import export_figure

        try:
            export_figure(path, "bound", "svg", out=Path(folder) / "bound.svg")
        except InfoGenError:
            pass  # a clean message (e.g. no evaluation left to plot)
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["info", str(path)]) == 0


def test_a_config_from_an_earlier_build_gets_the_defaults_and_exports(tmp_path):
    # A config without a setting added later (here R) loads with that setting's default, and every figure exports.
    from core.export.figures import export_figure
    from core.training.config import DiffusionConfig

    def drop_r(doc):
        del doc["config"]["R"]

    path = tmp_path / "old.infogen"
    path.write_bytes(rewritten(drop_r))
    ckpt = load_checkpoint(path)
    assert ckpt.config["R"] == DiffusionConfig().R
    for figure in ("loss", "bound", "gap"):
        assert export_figure(path, figure, "svg", out=tmp_path / f"{figure}.svg")["figure"].exists()
