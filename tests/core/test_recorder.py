"""The one writer: occupied folders, --overwrite, the writer's lock, and resume that never duplicates steps."""

import json
import os

import pytest

from core.checkpoint import load_checkpoint
from core.cli import main
from core.errors import ConfigError
from core.io.recorder import LOCK_NAME, RunRecorder
from core.io.run_dir import read_run
from core.records import RecordError
from core.training.diffusion import train_diffusion

TINY = ["--m", "24", "--n-test", "40", "--N", "20", "--K", "10", "--n-gen", "50", "--test-kl-draws", "2"]


def train_into(folder, cfg, **kw):
    with RunRecorder(folder, cfg.as_dict(), **kw) as rec:
        for record in train_diffusion(cfg):
            rec.write(record)
    return rec


def test_an_occupied_out_is_refused_and_overwrite_moves_it_aside(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dm", *TINY, "--iters", "3", "--eval-every", "0", "--out", str(out)]) == 0
    before = (out / "history.jsonl").read_text()
    capsys.readouterr()
    assert main(["train", "dm", *TINY, "--iters", "5", "--eval-every", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "--overwrite" in err[0]
    assert (out / "history.jsonl").read_text() == before  # untouched
    assert main(["train", "dm", *TINY, "--iters", "5", "--eval-every", "0", "--out", str(out), "--overwrite"]) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and (aside[0] / "history.jsonl").read_text() == before
    steps = [r["step"] for r in read_run(out).records("step")]
    assert steps == [1, 2, 3, 4, 5]  # the new run alone, nothing appended to the old history
    assert str(aside[0]) in capsys.readouterr().err


def test_a_sweep_into_an_occupied_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "dm", *TINY, "--iters", "2", "--T", "0.5", "--seeds", "0", "--jobs", "1", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a sweep" in capsys.readouterr().err


def test_a_second_writer_into_the_same_folder_is_refused(tiny_config, tmp_path):
    with RunRecorder(tmp_path / "run", tiny_config.as_dict()):
        with pytest.raises(ConfigError, match="being written by another InfoGen process"):
            RunRecorder(tmp_path / "run", tiny_config.as_dict(), overwrite=True)
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_dead_writers_lock_is_taken_over(tiny_config, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    with RunRecorder(folder, tiny_config.as_dict()) as rec:
        rec.write({"kind": "start", "config": tiny_config.as_dict()})
    assert read_run(folder).history[0]["kind"] == "start"


def test_an_unwritable_out_gets_a_message(tmp_path, capsys):
    # A folder below a regular file can never be created, whoever runs the test (root included).
    (tmp_path / "f").write_text("x")
    assert main(["train", "dm", *TINY, "--iters", "2", "--out", str(tmp_path / "f" / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot" in err[0] and str(tmp_path / "f" / "run") in err[0]


def test_a_file_as_out_gets_a_message(tiny_config, tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        RunRecorder(tmp_path / "f", tiny_config.as_dict())


def test_records_are_checked_on_write(tiny_config, tmp_path):
    with RunRecorder(tmp_path / "run", tiny_config.as_dict()) as rec:
        with pytest.raises(RecordError, match="field 'step' must be an integer"):
            rec.write({"kind": "step", "step": 2.5, "loss": 0.1, "wall": 0.0})


def test_resume_from_an_earlier_checkpoint_into_a_new_folder_trims_and_keeps_samples(tiny_config, tmp_path):
    cfg = tiny_config.with_(iters=12, eval_every=4)
    rec = train_into(tmp_path / "a", cfg.with_(iters=8))  # stopped at 8, evaluations at 4 and 8
    ckpt = load_checkpoint(rec.checkpoint_path)
    with RunRecorder(tmp_path / "b", cfg.as_dict(), resume=ckpt) as again:
        for record in train_diffusion(cfg, resume=ckpt.train_state):
            again.write(record)
    folder, saved = read_run(tmp_path / "b"), load_checkpoint(tmp_path / "b" / "checkpoint.infogen")
    assert folder.history == saved.history
    assert [r["step"] for r in folder.records("step")] == list(range(1, 13))
    assert [r["step"] for r in folder.records("eval")] == [4, 8, 12]
    assert [r["kind"] for r in folder.history].count("end") == 1
    assert [r["kind"] for r in folder.history].count("resumed") == 1
    assert sorted(folder.samples) == ["step_12", "step_4", "step_8"] and sorted(saved.samples) == [4, 8, 12]
    assert read_run(tmp_path / "a").records("step")[-1]["step"] == 8  # the source run is untouched


@pytest.mark.parametrize("record,message", [
    ({"kind": ["step"]}, "unknown kind"), ({"kind": "nope"}, "unknown kind"), ("text", "not an object"),
    ({"kind": "start", "config": {}, "step": 1.5}, "'step' must be an integer"),
    ({"kind": "step", "step": 3, "loss": float("nan"), "wall": 0.0}, "'loss' must be a finite number or null"),
    ({"kind": "step", "step": True, "loss": 0.1, "wall": 0.0}, "'step' must be an integer"),
    ({"kind": "end", "step": -1}, "'step' must be >= 0"),
    ({"kind": "eval", "step": 1}, "missing field 'bound'"),
])
def test_bad_records_are_named(record, message):
    from core.records import validate_record

    with pytest.raises(RecordError, match=message):
        validate_record(record)


def test_a_running_sweep_cannot_be_moved_aside(tiny_config, tmp_path):
    from core.io.recorder import claim_folder
    from core.sweep import run_sweep

    events = run_sweep(tiny_config.with_(iters=4, eval_every=0), [0.5], [0], tmp_path / "s", jobs=1)
    next(events)  # the sweep is running: its folder and its run's folder are locked
    with pytest.raises(ConfigError, match="being written by another InfoGen process"):
        claim_folder(tmp_path / "s", overwrite=True, what="sweep")
    list(events)
    assert claim_folder(tmp_path / "s", overwrite=True, what="sweep") is not None  # finished: it can be moved


def test_overwrite_never_moves_the_current_folder(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["train", "dm", *TINY, "--iters", "2", "--eval-every", "0", "--out", str(out)]) == 0
    monkeypatch.chdir(out)
    capsys.readouterr()
    assert main(["train", "dm", *TINY, "--iters", "2", "--eval-every", "0", "--out", ".", "--overwrite"]) == 2
    assert "is the current folder" in capsys.readouterr().err
    assert (out / "history.jsonl").exists()


def test_every_resume_stays_on_record_and_a_new_folder_is_resumable_at_once(tiny_config, tmp_path):
    cfg = tiny_config.with_(iters=12, eval_every=2)
    first = train_into(tmp_path / "a", cfg.with_(iters=4))
    for until in (6, 8):  # resume in place twice: from step 4 to 6, then from 6 to 8
        ckpt = load_checkpoint(first.checkpoint_path)
        with RunRecorder(tmp_path / "a", cfg.as_dict(), resume=ckpt, in_place=True) as rec:
            for record in train_diffusion(cfg.with_(iters=until), resume=ckpt.train_state):
                rec.write(record)
    history = read_run(tmp_path / "a").history
    assert [r["step"] for r in history if r["kind"] == "resumed"] == [4, 6]
    assert [r["step"] for r in history if r["kind"] == "step"] == list(range(1, 9))
    ckpt = load_checkpoint(first.checkpoint_path)
    RunRecorder(tmp_path / "b", cfg.as_dict(), resume=ckpt).close()  # killed before its first evaluation
    assert load_checkpoint(tmp_path / "b" / "checkpoint.infogen").step == 8


def test_a_run_refused_at_its_start_does_not_block_the_next_try(tiny_config, tmp_path):
    # A run whose data was refused leaves config.json and an empty history: nothing to lose, so no refusal.
    import numpy as np

    bad = tmp_path / "nan.npy"
    np.save(bad, np.full((100, 2), np.nan, dtype=np.float32))
    cfg = tiny_config.with_(data="file", data_path=str(bad), iters=2, eval_every=0)
    with pytest.raises(Exception, match="NaN"):
        train_into(tmp_path / "run", cfg)
    train_into(tmp_path / "run", tiny_config.with_(iters=2, eval_every=0))
    assert read_run(tmp_path / "run").history[-1]["kind"] == "end"
