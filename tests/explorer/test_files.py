"""Opening, saving, resuming and exporting from the app."""

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from core.checkpoint import load_checkpoint
from explorer.model.loading import load_entry

from helpers import RUN_TIMEOUT_MS, run_and_wait


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))


def test_a_run_autosaves_a_checkpoint_that_opens_with_its_curves_and_samples(qtbot, window):
    run = run_and_wait(qtbot, window)
    ckpt = run.folder / "checkpoint.infogen"
    assert load_checkpoint(ckpt).step == 40
    window.files.open_path(ckpt)
    qtbot.waitUntil(lambda: len(window.manager.runs) == 2, timeout=30_000)
    opened = window.selected_run
    assert opened is not run and opened.status == "loaded"
    assert opened.steps == run.steps and opened.losses == run.losses
    assert [e["bound"] for e in opened.evals] == [e["bound"] for e in run.evals]
    np.testing.assert_array_equal(opened.samples[-1], run.samples[-1])
    window.redraw(force=True)
    items = window.plots._items
    assert len(items[(opened.run_id, "loss", "smooth")].xData) == 40
    assert len(items[(opened.run_id, "bound", "bound")].xData) == 2
    assert len(window.samples.gen_item.getData()[0]) == 1000
    assert str(ckpt) in window.files.recent()
    window.files.open_path(ckpt)  # already open: focused, not added twice
    qtbot.waitUntil(lambda: "already open" in window.statusBar().currentMessage(), timeout=30_000)
    assert len(window.runs) == 2 and window.selected_run is opened


def test_opening_a_bad_file_shows_why_and_keeps_the_app_usable(qtbot, window, tmp_path):
    bad = tmp_path / "bad.infogen"
    bad.write_bytes(b"\x80\x04not a checkpoint at all")
    window.files.open_path(bad)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=30_000)
    assert "Cannot open" in window.banner.text() and "not a checkpoint" in window.banner.text()
    assert len(window.manager.runs) == 0


def test_drop_a_checkpoint_on_the_window(qtbot, window):
    run = run_and_wait(qtbot, window)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(run.folder / "checkpoint.infogen"))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: len(window.manager.runs) == 2, timeout=30_000)


def test_save_as_and_resume_continue_exactly(qtbot, window, tmp_path):
    run = run_and_wait(qtbot, window)
    saved = window.files.save_as(tmp_path / "copy")
    assert saved.name == "copy.infogen" and load_checkpoint(saved).step == 40
    window.files.resume(iters=60)
    qtbot.waitUntil(lambda: run.status == "finished" and not window.manager.busy, timeout=RUN_TIMEOUT_MS)
    assert run.steps[-1] == 60 and [e["step"] for e in run.evals] == [20, 40, 60]
    assert load_checkpoint(run.folder / "checkpoint.infogen").step == 60


def test_resuming_an_opened_file_continues_in_a_new_run_folder_with_one_history(qtbot, window, tmp_path, runs_dir):
    from core.io.run_dir import read_run

    run = run_and_wait(qtbot, window)
    saved = window.files.save_as(tmp_path / "elsewhere" / "copy")
    window.files.open_path(saved)
    qtbot.waitUntil(lambda: len(window.manager.runs) == 2, timeout=30_000)
    opened = window.selected_run
    assert opened is not run and opened.checkpoint_path == saved
    window.files.resume(iters=60)
    qtbot.waitUntil(lambda: opened.status == "finished" and not window.manager.busy, timeout=RUN_TIMEOUT_MS)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["copy.infogen"]  # nothing written beside the file
    assert opened.folder.parent == runs_dir and opened.folder != run.folder
    folder = read_run(opened.folder)
    assert folder.history == load_checkpoint(opened.folder / "checkpoint.infogen").history
    assert [r["step"] for r in folder.records("step")] == list(range(1, 61))
    assert [r["kind"] for r in folder.history].count("end") == 1
    assert sorted(folder.samples) == ["step_20", "step_40", "step_60"]
    assert load_checkpoint(saved).step == 40  # the opened file is never changed


def test_export_from_the_app(qtbot, window, tmp_path):
    run = run_and_wait(qtbot, window)
    paths = window.files.export(run, "bound", "svg", 3.25, 300, tmp_path / "bound.svg")
    assert paths["figure"].exists() and paths["csv"].exists() and paths["script"].exists()


@pytest.mark.slow
def test_open_a_sweep_folder_restores_the_T_views(qtbot, window):
    window.form.T.setText("0.4,1.0")
    sweep = run_and_wait(qtbot, window)
    state = load_entry(sweep.folder)
    assert state.is_sweep and sorted(e["T"] for e in state.finals.values()) == [0.4, 1.0]
    window.files.open_path(sweep.folder)
    qtbot.waitUntil(lambda: len(window.manager.runs) == 2, timeout=30_000)
    window.redraw(force=True)
    opened = window.selected_run
    assert window.sweep_view.entry is opened and window.tabs.currentIndex() == 1
    assert list(window.sweep_view.bound_points()[0]) == [0.4, 1.0]
    assert set(window.sweep_view.checked_members()) == {"T0.4_seed0", "T1_seed0"}  # every member's curves


def test_under_qasync_opening_is_an_asyncio_task(qtbot, window):
    import asyncio

    import qasync
    from PySide6.QtWidgets import QApplication

    run = run_and_wait(qtbot, window)
    loop = qasync.QEventLoop(QApplication.instance(), already_running=False)
    try:
        async def open_and_wait():
            window.files.open_path(run.folder / "checkpoint.infogen")
            assert window.files._pending, "opening should be an asyncio task on the running loop"
            while len(window.manager.runs) < 2:
                await asyncio.sleep(0.05)

        loop.run_until_complete(asyncio.wait_for(open_and_wait(), 20))
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert window.selected_run.status == "loaded"


def test_an_image_diffusion_checkpoint_opens_as_an_image_grid_with_bpd(qtbot, window, tmp_path):
    from core.io.recorder import RunRecorder
    from core.training.config import image_config
    from core.training.diffusion import train_diffusion

    cfg = image_config(m=8, n_test=6, iters=2, eval_every=0, n_gen=5, mc_samples=8, dsm_eval_draws=1, T=0.05).validate()
    with RunRecorder(tmp_path / "img", cfg.as_dict()) as writer:
        for record in train_diffusion(cfg):
            writer.write(record)
    window.files.open_path(tmp_path / "img" / "checkpoint.infogen")
    qtbot.waitUntil(lambda: len(window.manager.runs) == 1, timeout=30_000)
    window.redraw(force=True)
    assert window.samples.image_item.isVisible()
    assert window.samples.image_item.image.shape == (2 * 9 - 1, 3 * 9 - 1)  # 5 images of 8x8: 2 rows, 3 columns
    assert "test BPD" in window.samples.label.text()
    assert ("test_bpd" in [key[2] for key in window.plots._items if key[1] == "gap"])
