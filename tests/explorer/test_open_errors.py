"""Every error from opening or resuming a file reaches the banner (message in the window, traceback in the log);
a failed open uses up no run number; a later good open clears the banner; NaN values (stored as null) are
skipped by the plots and shown as n/a."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct

import numpy as np
import pytest
from checkpoint_files import tiny_checkpoint_bytes
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

import core.checkpoint as cp


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def good_bytes() -> bytes:
    return tiny_checkpoint_bytes()


def rewritten(change_doc=None, change_tensors=None) -> bytes:
    """The good checkpoint with its document and tensors changed, re-hashed as core.checkpoint does."""
    data = good_bytes()
    size = int.from_bytes(data[:8], "little")
    doc = json.loads(json.loads(data[8 : 8 + size])["__metadata__"]["infogen"])
    tensors = st_load(data)
    if change_doc:
        change_doc(doc)
    if change_tensors:
        change_tensors(tensors)
    raw = st_save(tensors, metadata={"infogen": json.dumps(doc), "infogen_sha256": cp.HASH_PLACEHOLDER})
    return cp._replace_hash(raw, cp.HASH_PLACEHOLDER, hashlib.sha256(raw).hexdigest())


def _nan_last_eval(doc):
    last = [r for r in doc["history"] if r["kind"] == "eval"][-1]
    for key in ("bound", "generator", "L", "test_kl", "test_kl_se", "dsm_gap", "dsm_test"):
        last[key] = None
    [r for r in doc["history"] if r["kind"] == "step"][-1]["loss"] = None


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.infogen"
    path.write_bytes(good_bytes())
    return path


def opened_or_failed(qtbot, window, count: int) -> None:
    qtbot.waitUntil(lambda: window.banner.isVisible() or len(window.manager.runs) == count, timeout=30_000)


def test_an_unexpected_error_shows_in_the_banner_uses_no_run_number_and_a_good_open_clears_it(
        qtbot, window, tmp_path, good, monkeypatch, caplog):
    import explorer.file_actions as fa

    real = fa.load_entry

    def broken(path):
        if str(path).endswith("bad.infogen"):
            raise RuntimeError("the disk said no")
        return real(path)

    monkeypatch.setattr(fa, "load_entry", broken)
    bad = tmp_path / "bad.infogen"
    bad.write_bytes(b"whatever")
    with caplog.at_level(logging.ERROR, logger="explorer.file_actions"):
        window.files.open_path(bad)
        qtbot.waitUntil(window.banner.isVisible, timeout=30_000)
    assert f"Cannot open {bad}: RuntimeError: the disk said no" in window.banner.text()
    assert "traceback is in the log" in window.banner.text()
    assert not window.statusBar().currentMessage().startswith("Opening")
    assert "RuntimeError" in window.statusBar().currentMessage()
    (logged,) = [r for r in caplog.records if r.name == "explorer.file_actions"]
    assert logged.exc_info and logged.exc_info[0] is RuntimeError  # the traceback goes to the log
    assert len(window.manager.runs) == 0 and window.manager.runs._next_id == 1  # no run number used up

    window.files.open_path(good)
    qtbot.waitUntil(lambda: len(window.manager.runs) == 1, timeout=30_000)
    (run,) = window.manager.runs.values()
    assert run.run_id == 1 and run.name.startswith("#1 ")
    assert not window.banner.isVisible() and window.banner.text() == ""
    assert window.statusBar().currentMessage().startswith("Opened")


def test_our_errors_show_their_message_and_hostile_files_do_not_hang(qtbot, window, tmp_path, good):
    fifo = tmp_path / "pipe.infogen"
    os.mkfifo(fifo)
    window.files.open_path(fifo)
    qtbot.waitUntil(window.banner.isVisible, timeout=10_000)
    assert "named pipe (FIFO)" in window.banner.text() and "traceback" not in window.banner.text()
    assert window.banner.text().count(str(fifo)) == 1  # the path is named once, not once by the app and again by core
    typed = tmp_path / "typed.infogen"
    typed.write_bytes(rewritten(lambda doc: doc.update(step=299.5)))
    window.files.open_path(typed)
    qtbot.waitUntil(lambda: "299.5" in window.banner.text(), timeout=10_000)
    assert "field 'step' must be an integer" in window.banner.text()
    assert window.manager.runs._next_id == 1


def test_under_qasync_an_unexpected_error_reaches_the_banner(qtbot, window, tmp_path, monkeypatch):
    import asyncio

    import qasync
    from PySide6.QtWidgets import QApplication

    import explorer.file_actions as fa

    def broken(path):
        raise KeyError("config")

    monkeypatch.setattr(fa, "load_entry", broken)
    loop = qasync.QEventLoop(QApplication.instance(), already_running=False)
    try:
        async def open_and_wait():
            window.files.open_path(tmp_path / "x.infogen")
            assert window.files._pending
            while not window.banner.isVisible():
                await asyncio.sleep(0.02)

        loop.run_until_complete(asyncio.wait_for(open_and_wait(), 20))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert "KeyError: 'config'" in window.banner.text()
    assert not window.statusBar().currentMessage().startswith("Opening")
    assert window.manager.runs._next_id == 1


def test_an_error_raised_by_resume_reaches_the_banner(qtbot, window, good, monkeypatch, caplog):
    window.files.open_path(good)
    qtbot.waitUntil(lambda: len(window.manager.runs) == 1, timeout=30_000)

    def broken(run_id, iters=None):
        raise AttributeError("'NoneType' object has no attribute 'step'")

    monkeypatch.setattr(window.manager, "resume", broken)
    with caplog.at_level(logging.ERROR, logger="explorer.file_actions"):
        window.files.resume(iters=12)
    assert window.banner.isVisible()
    assert "Cannot resume #1 " in window.banner.text() and "AttributeError" in window.banner.text()
    assert any(r.exc_info for r in caplog.records if r.name == "explorer.file_actions")


def test_nan_values_are_skipped_by_the_plots_and_shown_as_n_a(qtbot, window, tmp_path):
    path = tmp_path / "nan.infogen"
    path.write_bytes(rewritten(_nan_last_eval))
    window.files.open_path(path)
    opened_or_failed(qtbot, window, 1)
    assert not window.banner.isVisible(), window.banner.text()
    run = window.selected_run
    assert [e["bound"] is None for e in run.evals] == [False, True]
    window.redraw(force=True)
    items = window.plots._items
    assert list(items[(run.run_id, "bound", "bound")].xData) == [3.0]  # the NaN evaluation is skipped
    assert list(items[(run.run_id, "gap", "test_kl")].xData) == [3.0]
    assert len(items[(run.run_id, "loss", "smooth")].xData) == 5  # 6 steps, the last one NaN
    assert "bound n/a" in window.samples.label.text() and "test KL n/a" in window.samples.label.text()
    window.plots.set_cursor(6.0)
    assert "bound n/a" in window.plots.cursor_label.text()
    for mode in ("Total", "Stacked"):
        window.plots.terms_mode.setCurrentText(mode)
        window.redraw(force=True)


def test_a_cuda_checkpoint_opens_with_its_note(qtbot, window, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks a machine without CUDA")
    cuda_rng = np.frombuffer(struct.pack("<Qq", 99, 4), dtype=np.uint8).copy()
    path = tmp_path / "cuda.infogen"
    path.write_bytes(rewritten(lambda doc: doc["config"].update(device="cuda"),
                               lambda tensors: tensors.update({"rng.train": cuda_rng})))
    window.files.open_path(path)
    opened_or_failed(qtbot, window, 1)
    assert not window.banner.isVisible(), window.banner.text()
    assert "saved on CUDA, continues on CPU" in window.statusBar().currentMessage()
    assert "saved on CUDA" in window.selected_run.message
