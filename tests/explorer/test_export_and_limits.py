"""The app's side of issue 10 items 3 and 5: the export dialog never replaces the CSV or the script beside a
figure without asking, and the run form shows the reason when a setting is beyond its limit."""

import pytest
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from helpers import run_and_wait


def test_the_run_form_shows_range_and_cost_limits(qtbot, window):
    form = window.form
    form.T.setText("10")
    assert "must be <= 5" in form.error.text() and not form.run_button.isEnabled()
    form.T.setText("0.6")
    form.lr.setValue(5)
    assert "learning rate" in form.error.text() and not form.run_button.isEnabled()
    form.lr.setValue(1e-3)
    assert form.error.text() == "" and form.run_button.isEnabled()


def test_confirmation_covers_the_files_beside_the_figure(window, tmp_path, monkeypatch):
    files = window.files
    target = tmp_path / "fig.svg"
    assert files.confirm_export_targets(target, "svg") is False  # nothing there: no question, no force
    (tmp_path / "fig.py").write_text("mine")
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.No)
    assert files.confirm_export_targets(target, "svg") is None
    assert "fig.py" in asked[-1]
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    assert files.confirm_export_targets(target, "svg") is True
    (tmp_path / "fig.py").unlink()
    (tmp_path / "fig.svg").write_text("old")  # chosen and confirmed in the file dialog: not asked again
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest.fail("asked about the chosen file"))
    assert files.confirm_export_targets(target, "svg") is True


def test_the_export_dialog_replaces_nothing_unless_confirmed(qtbot, window, tmp_path, monkeypatch):
    run = run_and_wait(qtbot, window)
    target = tmp_path / "bound.pdf"  # the dialog's default format
    (tmp_path / "bound.csv").write_text("mine\n")
    monkeypatch.setattr(QDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.files.export_dialog("bound")
    assert (tmp_path / "bound.csv").read_text() == "mine\n" and not target.exists()
    # called without confirmation (force=False), the export refuses and says why
    assert window.files.export(run, "bound", "pdf", 3.25, 300, target) is None
    assert "already exists" in window.banner.text() and (tmp_path / "bound.csv").read_text() == "mine\n"
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.files.export_dialog("bound")  # the export runs on a worker: the status bar says when it is done
    qtbot.waitUntil(lambda: window.statusBar().currentMessage().startswith("Exported"), timeout=30_000)
    assert target.exists() and (tmp_path / "bound.csv").read_text().startswith("step,bound")
    assert not window.banner.isVisible()  # the earlier refusal's banner is gone
