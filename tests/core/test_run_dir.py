import json

import numpy as np
import pytest

from core.errors import RunFileError
from core.io.atomic import atomic_write_bytes
from core.io.recorder import RunRecorder
from core.io.run_dir import read_run


def write_run(folder):
    with RunRecorder(folder, {"T": 0.6}) as w:
        w.write({"kind": "start", "config": {"T": 0.6}})
        w.write({"kind": "step", "step": 1, "loss": 0.5, "wall": 0.01})
        w.write({"kind": "eval", "step": 1, "bound": float("nan"), "variant": "exact", "R": 5.0, "score_matching": 0.5,
                 "encoder_info": -0.1, "encoder_prior": 0.2, "generator": 0.3, "L": 2.0, "test_kl": 0.4,
                 "dsm_gap": 0.01, "bounds": {}, "samples": np.ones((3, 2), np.float32),
                 "model_state": {"layers.0.weight": np.zeros((2, 3), np.float32)}})


def test_round_trip(tmp_path):
    write_run(tmp_path / "r")
    run = read_run(tmp_path / "r")
    assert run.config == {"T": 0.6}
    assert [r["kind"] for r in run.history] == ["start", "step", "eval"]
    assert run.history[2]["bound"] is None  # NaN is stored as null: JSON has no NaN
    np.testing.assert_array_equal(run.samples["step_1"], np.ones((3, 2)))
    assert run.weights["layers.0.weight"].shape == (2, 3)


def test_a_history_line_cut_short_by_a_crash_is_dropped(tmp_path):
    write_run(tmp_path / "r")
    with open(tmp_path / "r" / "history.jsonl", "a") as fh:
        fh.write('{"kind": "step", "st')
    assert len(read_run(tmp_path / "r").history) == 3


@pytest.mark.parametrize(
    "file,content,message",
    [("config.json", b"{not json", "not valid JSON"),
     ("config.json", json.dumps({"format": "infogen-run", "format_version": 99, "config": {}}).encode(), "version 99"),
     ("config.json", json.dumps({"format": "other"}).encode(), "not an InfoGen run"),
     ("weights.safetensors", b"\x00\x01garbage", "not a readable safetensors"),
     ("history.jsonl", b'{"kind": "start", "config": {}}\nnot json\n{"kind": "end", "step": 1}\n', "line 2")],
)
def test_corrupt_files_get_a_clear_error(tmp_path, file, content, message):
    write_run(tmp_path / "r")
    (tmp_path / "r" / file).write_bytes(content)
    with pytest.raises(RunFileError, match=message):
        read_run(tmp_path / "r")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    import core.io.atomic as atomic

    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


# -- hostile run folders: refused before reading, naming the file and the problem, within seconds -------------
def _refused(fn, match, seconds=5.0):
    """``fn()`` raises RunFileError matching ``match`` within ``seconds`` (in a daemon thread: a reader that
    blocks on a FIFO fails the test instead of hanging it)."""
    import re
    import threading

    outcome = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            outcome["exc"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still reading after {seconds} s"
    assert isinstance(outcome.get("exc"), RunFileError), repr(outcome.get("exc"))
    assert re.search(match, str(outcome["exc"])), str(outcome["exc"])


def _replace(path, how):
    path.unlink()
    how(path)


HOSTILE = {
    "history a FIFO": ("history.jsonl", lambda p: __import__("os").mkfifo(p), r"history.jsonl: is a named pipe"),
    "weights a link to /dev/zero": ("weights.safetensors", lambda p: p.symlink_to("/dev/zero"),
                                    r"a link to /dev/zero\): is a character device"),
    "config a folder": ("config.json", lambda p: p.mkdir(), "config.json: is a folder"),
    "config nested deep": ("config.json", lambda p: p.write_text("[" * 5000 + "]" * 5000),
                           "nested deeper than the limit of 64"),
    "config with NaN": ("config.json", lambda p: p.write_text('{"format": "infogen-run", "format_version": 1, "config": {"T": NaN}}'),
                        "holds NaN"),
    "config format_version true": ("config.json", lambda p: p.write_text(
        '{"format": "infogen-run", "format_version": true, "config": {}}'), "version True is not supported"),
    "history record missing a field": ("history.jsonl", lambda p: p.write_text(
        '{"kind": "start", "config": {}}\n{"kind": "step", "step": 1, "loss": 0.5}\n'), r"line 2 \(step\): missing field 'wall'"),
    "history step 1.5": ("history.jsonl", lambda p: p.write_text(
        '{"kind": "start", "config": {}}\n{"kind": "step", "step": 1.5, "loss": 0.5, "wall": 0}\n{"kind": "end", "step": 1}\n'),
        r"line 2 \(step\): field 'step' must be an integer, got 1.5"),
    "history kind a list": ("history.jsonl", lambda p: p.write_text('{"kind": ["start"]}\n{"kind": "end", "step": 1}\n'),
                            "line 1 is not a record with a 'kind'"),
    "history of unknown kind": ("history.jsonl", lambda p: p.write_text('{"kind": "teleport"}\n{"kind": "end", "step": 1}\n'),
                                "line 1: unknown kind 'teleport'"),
    "history line nested deep": ("history.jsonl", lambda p: p.write_text("[" * 3000 + "]" * 3000 + "\n{\"kind\": \"end\", \"step\": 1}\n"),
                                 "line 1: JSON nested deeper"),
    "int weights": ("weights.safetensors", lambda p: p.write_bytes(__import__("safetensors.numpy", fromlist=["save"]).save(
        {"layers.0.weight": np.zeros((2, 3), np.int8)})), "weight 'layers.0.weight' has dtype int8; weights must be floating point"),
    "samples misnamed": ("samples.safetensors", lambda p: p.write_bytes(__import__("safetensors.numpy", fromlist=["save"]).save(
        {"last": np.zeros((2, 2), np.float32)})), "'last' .* is not float32 samples named step_N"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_run_folders_are_refused_by_file_and_problem(tmp_path, case):
    name, how, match = HOSTILE[case]
    write_run(tmp_path / "r")
    _replace(tmp_path / "r" / name, how)
    _refused(lambda: read_run(tmp_path / "r"), match)


def test_run_files_over_their_size_limit_are_refused_naming_how_to_raise_it(tmp_path, monkeypatch):
    write_run(tmp_path / "r")
    monkeypatch.setenv("INFOGEN_MAX_FILE_BYTES", "64")
    _refused(lambda: read_run(tmp_path / "r"), r"over the 64-byte limit.*INFOGEN_MAX_FILE_BYTES")


def test_a_history_line_over_its_limit_is_refused(tmp_path, monkeypatch):
    import core.io.run_dir as run_dir

    write_run(tmp_path / "r")
    monkeypatch.setattr(run_dir, "MAX_HISTORY_LINE_BYTES", 40)
    _refused(lambda: read_run(tmp_path / "r"), r"line \d is longer than the limit of 40 bytes")
