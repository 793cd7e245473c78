"""Qt test settings: offscreen platform, no thread-pool work left behind, runs saved under tmp_path."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def no_leftover_workers(qapp):
    """Fail a test that leaves work running on Qt's global thread pool (as napari's test suite does)."""
    from PySide6.QtCore import QThreadPool

    yield
    pool = QThreadPool.globalInstance()
    if pool.activeThreadCount():
        pool.waitForDone(20000)
        pytest.fail("the test left work running on the global QThreadPool")


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setenv("INFOGEN_RUNS_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def app_settings(tmp_path, monkeypatch):
    """The app's settings (window layout) in a file of the test's own, never the user's."""
    path = tmp_path / "settings.ini"
    monkeypatch.setenv("INFOGEN_SETTINGS", str(path))
    return path


@pytest.fixture
def window(qtbot, runs_dir):
    """The main window with a tiny default run in the form."""
    from explorer.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    form = win.form
    form.iters.setValue(40)
    form.eval_every.setValue(20)
    form.m.setValue(64)
    form.n_steps.setValue(50)
    form.mc.setValue(20)
    win.show()
    yield win
    win.ask_before_close = False  # a test that leaves runs going is stopped without the confirmation dialog
    win.close()
