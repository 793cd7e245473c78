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
     ("history.jsonl", b'{"kind": "start"}\nnot json\n{"kind": "end"}\n', "line 2")],
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
