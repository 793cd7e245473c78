"""File menu: open (dialog, drag and drop, recent files) a checkpoint or a sweep directory, save, save as,
resume and export. Opening reads the file on a worker (as an asyncio task on qasync's loop when it runs,
else on the thread pool), so the window never freezes on a large file."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QInputDialog, QMenu,
)
from superqt.utils import thread_worker

from core.checkpoint import CHECKPOINT_NAME
from core.errors import ConfigError, InfoGenError
from core.export.figures import FORMATS, RUN_FIGURES, SWEEP_FIGURES, export_figure
from core.io.atomic import atomic_write_bytes

from .app_settings import settings
from .model import TrainingRun
from .model.loading import load_entry

if TYPE_CHECKING:
    from .main_window import MainWindow

MAX_RECENT = 8
log = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """What the banner says about an error: our own errors (InfoGenError) and OS errors as they are, anything
    else with its type (its traceback goes to the log)."""
    if isinstance(exc, (InfoGenError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (an unexpected error; the traceback is in the log)"


class FileActions:
    """Builds the File menu on ``window`` and carries out its commands."""

    def __init__(self, window: "MainWindow") -> None:
        self.window = window
        self.settings = settings()
        menu = window.menuBar().addMenu("&File")
        self.open_action = self._action(menu, "&Open checkpoint…", self.open_dialog, QKeySequence.StandardKey.Open)
        self._action(menu, "Open &sweep folder…", self.open_folder_dialog)
        self._action(menu, "Open &model…", self.open_model_dialog)
        self.recent_menu: QMenu = menu.addMenu("Open &recent")
        menu.addSeparator()
        self.save_action = self._action(menu, "&Save", self.save, QKeySequence.StandardKey.Save)
        self._action(menu, "Save &as…", self.save_as, QKeySequence.StandardKey.SaveAs)
        self._action(menu, "&Resume training…", self.resume)
        self._action(menu, "&Export figure…", self.export_dialog)
        self._refresh_recent()
        self._pending = set()

    def _action(self, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    # -- opening --------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open checkpoint", "", "InfoGen checkpoints (*.infogen);;All files (*)")
        if path:
            self.open_path(path)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open a sweep or run folder")
        if path:
            self.open_path(path)

    def open_model_dialog(self) -> None:
        """Ask for a user's own score network and evaluate it on the run form's data at every T of its grid."""
        from .model_dialog import ModelDialog

        try:
            config, Ts, _ = self.window.form.request()
        except ConfigError as exc:
            self.window.show_error(f"Open model: the run form's settings are not valid: {exc}")
            return
        dialog = ModelDialog(self.window, f" (now {config.data}, m = {config.m}, T = {', '.join(f'{T:g}' for T in Ts[:6])}"
                                          f"{'…' if len(Ts) > 6 else ''})")
        if dialog.exec():
            self.open_model(dialog.spec(), dialog.weights_path(), dialog.output_kind())

    def open_model(self, spec: str, weights: Path | None, output: str) -> None:
        """Evaluate FILE.py:FUNCTION at every T of the form's grid, as a sweep entry (errors go to its banner)."""
        try:
            config, Ts, _ = self.window.form.request()
        except ConfigError as exc:
            self.window.show_error(f"Open model: the run form's settings are not valid: {exc}")
            return
        if getattr(config, "is_images", True):
            self.window.show_error("Open model: choose a points dataset in the run form (the network's bound is "
                                   "evaluated on points; for images use core.api from Python)")
            return
        self.window.manager.start_model(spec, weights, output, config, Ts)
        self.window.clear_error()
        self.window.statusBar().showMessage(f"Evaluating {spec} at {len(Ts)} value(s) of T…")

    def open_path(self, path: str | Path) -> None:
        """Read ``path`` off the GUI thread; the run appears when it is loaded, or the reason it cannot be (any
        error, ours or not, ends in the banner with its traceback in the log). The run number is taken only once
        the file has loaded."""
        self.window.statusBar().showMessage(f"Opening {path}…")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:  # qasync: an asyncio task on Qt's loop, the file read in its executor
            task = loop.create_task(self._open_async(loop, path))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        worker = thread_worker(load_entry, start_thread=False, ignore_errors=True)(path)
        worker.returned.connect(lambda state: self.opened(path, state))
        worker.errored.connect(lambda exc: self.open_failed(path, exc))
        worker.start()

    async def _open_async(self, loop, path) -> None:
        try:
            state = await loop.run_in_executor(None, load_entry, path)
        except asyncio.CancelledError:
            return
        except Exception as exc:  # noqa: BLE001 (every error is shown, none is lost in the loop)
            self.open_failed(path, exc)
            return
        self.opened(path, state)

    def opened(self, path, state) -> None:
        """Show a loaded run under the next run number; clears an earlier error from the banner."""
        same = next((e for e in self.window.runs if e.status == "loaded" and e.folder == state.folder
                     and getattr(e, "checkpoint_path", None) == getattr(state, "checkpoint_path", None)), None)
        if same is not None:  # already open: show it rather than a second copy
            self.window.view.focused = same.run_id
            self.window.clear_error()
            self.window.statusBar().showMessage(f"{path} is already open as {same.name.split(' ', 1)[0]}")
            return
        try:
            self.window.manager.add_loaded(state)
            self._remember(str(path))
        except Exception as exc:  # noqa: BLE001
            self.open_failed(path, exc)
            return
        self.window.clear_error()
        notes = f" (note: {state.message})" if state.message else ""
        self.window.statusBar().showMessage(f"Opened {path}{notes}")

    def open_failed(self, path, exc: BaseException) -> None:
        log.error("cannot open %s", path, exc_info=(type(exc), exc, exc.__traceback__))
        reason = error_text(exc)
        for named in (f"{path}: ", f"{Path(path) / CHECKPOINT_NAME}: "):  # core names the file too: once is enough
            if reason.startswith(named):
                reason = reason[len(named):]
        self.window.show_error(f"Cannot open {path}: {reason}")

    def _remember(self, path: str) -> None:
        recent = [p for p in self.recent() if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self._refresh_recent()

    def recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda *_, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.recent()))

    # -- saving, resuming, exporting ------------------------------------------------------------------
    def _selected_checkpoint(self) -> Path | None:
        run = self.window.selected_run
        if not isinstance(run, TrainingRun):
            self.window.show_error("Select a single run first (sweeps are saved as their folder of runs).")
            return None
        path = run.checkpoint_path or run.folder / CHECKPOINT_NAME
        if not Path(path).is_file():
            self.window.show_error(f"{run.name} has no checkpoint yet: one is written at each evaluation.")
            return None
        return Path(path)

    def save(self) -> None:
        """Runs are autosaved at each evaluation; Save says where (or saves as, for a loaded copy)."""
        path = self._selected_checkpoint()
        if path is not None:
            self.window.statusBar().showMessage(f"Saved (autosaved at each evaluation): {path}")

    def save_as(self, target: str | Path | None = None) -> Path | None:
        path = self._selected_checkpoint()
        if path is None:
            return None
        if target is None:
            target, _ = QFileDialog.getSaveFileName(self.window, "Save checkpoint as", "", "InfoGen checkpoints (*.infogen)")
            if not target:
                return None
        target = Path(target)
        if target.suffix != ".infogen":
            target = target.with_suffix(".infogen")
        try:
            atomic_write_bytes(target, path.read_bytes())
        except OSError as exc:
            log.error("cannot save %s", target, exc_info=(type(exc), exc, exc.__traceback__))
            self.window.show_error(f"Cannot save {target}: {error_text(exc)}")
            return None
        self._remember(str(target))
        self.window.statusBar().showMessage(f"Saved {target}")
        return target

    def resume(self, iters: int | None = None) -> None:
        run = self.window.selected_run
        if run is None:
            self.window.show_error("Select a run to resume.")
            return
        if not run.spec.resumable:
            self.window.show_error(f"Cannot resume {run.name}: {run.spec.title} runs cannot be resumed (their files hold no "
                                   "optimizer state yet); train a new run with more epochs.")
            return
        if iters is None:
            iters, ok = QInputDialog.getInt(self.window, "Resume training", "Train up to iteration:",
                                            run.config.iters * 2, 1, 100_000_000)
            if not ok:
                return
        try:
            self.window.manager.resume(run.run_id, iters)
        except Exception as exc:  # noqa: BLE001 (every error is shown in the banner, its traceback logged)
            log.error("cannot resume %s", run.name, exc_info=(type(exc), exc, exc.__traceback__))
            self.window.show_error(f"Cannot resume {run.name}: {error_text(exc)}")
            return
        self.window.clear_error()

    def export_dialog(self, figure: str | None = None) -> None:
        run = self.window.selected_run
        if run is None:
            self.window.show_error("Select a run or sweep to export.")
            return
        dialog = QDialog(self.window)
        dialog.setWindowTitle("Export figure")
        form = QFormLayout(dialog)
        figures = QComboBox()
        figures.addItems(list(SWEEP_FIGURES if run.is_sweep else RUN_FIGURES))
        if figure:
            figures.setCurrentText(figure)
        formats = QComboBox()
        formats.addItems(list(FORMATS))
        width = QDoubleSpinBox()
        width.setRange(0.5, 20)
        width.setValue(3.25)
        dpi = QDoubleSpinBox()
        dpi.setRange(20, 2400)
        dpi.setValue(300)
        form.addRow("Figure", figures)
        form.addRow("Format", formats)
        form.addRow("Width (in)", width)
        form.addRow("DPI (PNG)", dpi)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        form.addRow(buttons)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        target, _ = QFileDialog.getSaveFileName(self.window, "Export to", f"{figures.currentText()}.{formats.currentText()}")
        if target:
            force = self.confirm_export_targets(target, formats.currentText())
            if force is not None:
                self.export(run, figures.currentText(), formats.currentText(), width.value(), dpi.value(), target,
                            force=force, wait=False)

    def confirm_export_targets(self, target: str | Path, fmt: str) -> bool | None:
        """Whether the export may overwrite (True), needs not (False), or was cancelled (None). The file dialog
        has asked about the file chosen in it; the CSV and the script written beside it (and the figure, when
        the format's suffix was added to the chosen name) are asked about here, so none is replaced silently."""
        import os

        from PySide6.QtWidgets import QMessageBox

        from core.export.figures import export_paths

        paths = export_paths(target, fmt)
        present = [p for p in paths.values() if os.path.lexists(p)]
        ask = [p for p in present if p != Path(target)]
        if ask:
            names = ", ".join(p.name for p in ask)
            one = len(ask) == 1
            answer = QMessageBox.question(
                self.window, "Replace files?",
                f"{names} already {'exists' if one else 'exist'} in {paths['figure'].parent}. "
                f"The export writes the figure with its CSV and script; replace {'it' if one else 'them'}?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return None
        return bool(present)

    def export(self, run, figure: str, fmt: str, width_in: float, dpi: float, target: str | Path,
               force: bool = False, wait: bool = True) -> dict | None:
        """Export with the view's smoothing, log-y and terms mode; existing files are replaced only with ``force``
        (after the user confirmed), symbolic links never (core.export.figures). The run's files are read and the
        figure drawn on a worker thread; ``wait`` (scripts, tests) blocks until it is done and returns the paths,
        otherwise the status bar reports when it is."""
        source = run.folder if (run.folder / "history.jsonl").exists() or run.is_sweep else run.checkpoint_path
        view = self.window.view  # the figure shows what the screen shows
        settings = dict(smoothing=view.smoothing, log_y=figure in view.log_y, terms=view.terms_mode, force=force)
        done: dict = {}
        worker = thread_worker(export_figure, start_thread=False, ignore_errors=True)(
            source, figure, fmt, width_in, dpi, target, **settings)
        worker.returned.connect(lambda paths: done.update(paths=paths) or self._exported(paths))
        worker.errored.connect(lambda exc: done.update(error=exc) or self._export_failed(run, exc))
        self.window.statusBar().showMessage(f"Exporting {figure} of {run.name}…")
        worker.start()
        if wait:
            while not done:
                QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        return done.get("paths")

    def _exported(self, paths: dict) -> None:
        self.window.clear_error()
        self.window.statusBar().showMessage(f"Exported {paths['figure']} with {paths['csv'].name} and {paths['script'].name}")

    def _export_failed(self, run, exc: BaseException) -> None:
        log.error("export of %s failed", run.name, exc_info=(type(exc), exc, exc.__traceback__))
        self.window.show_error(f"Export failed: {error_text(exc)}")

