import json
import pickle
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.checkpoint import CheckpointError, load_checkpoint, parse_checkpoint, save_checkpoint
from core.io.recorder import RunRecorder
from core.io.run_dir import read_run
from core.records import without_arrays
from core.cli import main
from core.training.diffusion import train_diffusion


@pytest.fixture
def trained(tiny_config, tmp_path):
    """A run with its checkpoint written at each evaluation, and the full list of records."""
    records = []
    with RunRecorder(tmp_path / "run", tiny_config.as_dict()) as writer:
        for record in train_diffusion(tiny_config):
            writer.write(record)
            records.append(record)
    return writer.checkpoint_path, records


def test_round_trip_keeps_weights_config_and_every_metric(trained, tiny_config):
    path, records = trained
    ckpt = load_checkpoint(path)
    assert ckpt.config == tiny_config.as_dict()
    final = [r for r in records if r["kind"] == "eval"][-1]
    assert ckpt.weights.keys() == final["model_state"].keys()
    assert all(np.array_equal(ckpt.weights[k], final["model_state"][k]) for k in ckpt.weights)
    plain = [without_arrays(r) for r in records]  # samples, weights and the trajectory's frames are tensors
    assert ckpt.history == json.loads(json.dumps(plain))
    assert sorted(ckpt.samples) == [6, 12]
    np.testing.assert_array_equal(ckpt.samples[12], final["samples"])
    assert ckpt.doc["provenance"]["dataset"] == "swissroll" and ckpt.doc["provenance"]["seed"] == 0
    assert ckpt.doc["bound"]["variant"] == "exact" and ckpt.step == 12


def test_a_resumed_run_continues_with_exactly_the_uninterrupted_numbers(tiny_config, tmp_path):
    cfg = tiny_config.with_(batch=10)
    full = list(train_diffusion(cfg))
    with RunRecorder(tmp_path / "half", cfg.as_dict()) as writer:
        for record in train_diffusion(cfg.with_(iters=6)):  # the same run, stopped after its first evaluation
            writer.write(record)
    ckpt = load_checkpoint(writer.checkpoint_path)
    resumed = list(train_diffusion(cfg, resume=ckpt.train_state))
    pick = lambda rs: [(r["kind"], r["step"], r.get("loss"), r.get("bound"), r.get("test_kl"))  # noqa: E731
                       for r in rs if r["kind"] in ("step", "eval") and r["step"] > 6]
    assert pick(resumed) == pick(full)


def test_cli_train_info_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    tiny = ["--m", "24", "--n-test", "40", "--N", "20", "--K", "10"]
    assert main(["train", "dm", *tiny, "--iters", "4", "--eval-every", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    ckpt = out / "checkpoint.infogen"
    assert main(["info", str(ckpt), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format_version"] == 1 and info["model"] == "dm" and info["config"]["m"] == 24
    assert info["history_length"] == len(load_checkpoint(ckpt).history) and info["resumable"]
    assert main(["resume", str(ckpt), "--iters", "8"]) == 0
    again = load_checkpoint(ckpt)
    assert again.step == 8 and [r["step"] for r in again.records("eval")] == [2, 4, 6, 8]
    assert main(["info", str(ckpt)]) == 0 and "step 8" in capsys.readouterr().out
    # The run folder continues too: its history is the checkpoint's, each step once, one end, every sample kept.
    folder = read_run(out)
    assert folder.history == again.history
    assert [r["step"] for r in folder.records("step")] == list(range(1, 9))
    assert [r["kind"] for r in folder.history].count("end") == 1 and folder.history[-1]["kind"] == "end"
    assert sorted(folder.samples) == ["step_2", "step_4", "step_6", "step_8"]
    # Resuming the finished part again from a copy at step 4 into a new folder: trimmed there, nothing mixed.
    assert main(["resume", str(ckpt), "--iters", "8"]) == 2
    assert "pass --iters above it" in capsys.readouterr().err


def _bad_files(good: bytes):
    header_len = int.from_bytes(good[:8], "little")
    flipped_data = bytearray(good)
    flipped_data[-5] ^= 0x40
    flipped_header = bytearray(good)
    flipped_header[8 + header_len // 2] ^= 0x01
    return {
        "truncated": (good[: len(good) // 2], "truncated|corrupt|unreadable"),
        "truncated header": (good[:20], "truncated"),
        "flipped data byte": (bytes(flipped_data), "corrupt"),
        "flipped header byte": (bytes(flipped_header), "corrupt|not valid JSON|not JSON|not an InfoGen"),
        "pickle": (pickle.dumps({"weights": [1, 2, 3]}), "not a checkpoint"),
        "huge header": ((2**62).to_bytes(8, "little") + b"{}" * 10, "declares a header"),
        "empty": (b"", "too short"),
        "json list header": ((2).to_bytes(8, "little") + b"[]", "not a JSON object"),
    }


@pytest.mark.parametrize("case", ["truncated", "truncated header", "flipped data byte", "flipped header byte",
                                  "pickle", "huge header", "empty", "json list header"])
def test_hostile_files_get_a_clear_error(trained, tmp_path, case):
    path, _ = trained
    data, message = _bad_files(path.read_bytes())[case]
    bad = tmp_path / "bad.infogen"
    bad.write_bytes(data)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bad)


def test_a_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "evil.infogen"
    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    assert not marker.exists()


def test_a_newer_format_is_refused_by_name(trained, tmp_path):
    path, _ = trained
    ckpt = load_checkpoint(path)
    import core.checkpoint as cp

    data = path.read_bytes().replace(b'\\"format_version\\": 1', b'\\"format_version\\": 7')
    with pytest.raises(CheckpointError, match="newer InfoGen Explorer.*format 7"):
        parse_checkpoint(data)
    assert cp.FORMAT_VERSION == 1 and ckpt.step == 12


def test_info_on_a_bad_file_exits_non_zero_with_the_reason(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["info", str(bad)]) == 2
    assert "too short" in capsys.readouterr().err
    bad.write_text("hello, this is not a checkpoint at all")
    assert main(["info", str(bad)]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_always_raise_checkpoint_error(data):
    with pytest.raises(CheckpointError):
        parse_checkpoint(data)


def test_a_save_that_fails_at_the_rename_leaves_the_previous_checkpoint_untouched(trained, monkeypatch):
    # The save writes the whole new file beside the target and renames it over the target as its last step.
    # Making that rename fail shows that until then the old file is never touched, and nothing is left behind.
    import os

    import core.io.atomic as atomic

    path, _ = trained
    before = path.read_bytes()
    old = load_checkpoint(path)
    others = sorted(p.name for p in path.parent.iterdir())
    staged = []

    def failing_replace(src, dst):
        staged.append((src, dst, parse_checkpoint(open(src, "rb").read())))  # the new file is complete here
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, model="dm", config=old.config, history=old.history[:3], weights=old.weights,
                        train_state=old.train_state, samples={})
    (src, dst, new), = staged
    assert os.path.dirname(src) == str(path.parent) and str(dst) == str(path)
    assert len(new.history) == 3
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == others  # no temporary file left behind


def test_a_checkpoint_padded_to_gigabytes_is_refused_before_its_body_is_read(trained, tmp_path, capsys):
    import os
    import resource
    import time

    path, _ = trained
    big = tmp_path / "big.infogen"
    big.write_bytes(path.read_bytes())
    os.truncate(big, 3 * 2**30)  # sparse: no disk used
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    assert main(["info", str(big)]) == 2
    assert time.perf_counter() - start < 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: far below 3 GiB
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt" in err[0] and str(3 * 2**30) in err[0]


def test_a_number_too_long_to_read_is_named_not_a_traceback():
    from core.io.safe_read import loads_json

    with pytest.raises(CheckpointError, match="number that cannot be read"):
        loads_json('{"step": 1' + "0" * 5000 + "}", "doc", CheckpointError)
