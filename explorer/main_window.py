"""The main window: run setup and runs table on the left; training curves and the sweep view in tabs in the
middle; samples and the T slider on the right. It subscribes to the model's events (explorer.model) and redraws
what they touched; nothing polls."""

from __future__ import annotations

import sys
import time

import torch
import torch._dynamo  # noqa: F401  (torch.optim imports it on first use: ~2 s holding the GIL in the worker,
# which froze the window at the start of the first run; paid here once, before the window shows)
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget

from core.allocator import keep_freed_memory
from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

from .app_settings import settings
from .file_actions import FileActions
from .jobs import app_threads
from .model import EVALS, STEPS, Entry, TrainingRun, ViewState
from .plots import MetricPlots
from .run_form import RunForm
from .run_manager import RunManager
from .runs_table import RunsTable
from .samples_panel import SamplesPanel
from .sweep_view import SweepView
from .t_explorer import TExplorer

REDRAW_HZ = 20
# The GUI thread may spend at most this share of the time redrawing; the rest is left to training, which
# shares the interpreter lock with it.
MAX_REDRAW_DUTY = 0.06
PLOT_PARTS = ("loss", "bound", "gap")
REDRAW_PARTS = (*PLOT_PARTS, "samples", "t", "sweep")
# What each kind of change makes stale.
STALE = {STEPS: ("loss",), EVALS: REDRAW_PARTS}
TRAINING_TAB, SWEEP_TAB = 0, 1

GIL_SWITCH_SECONDS = 0.0005


def leave_gui_a_core() -> None:
    """Keep the event loop responsive beside a training thread.

    Torch's intra-op threads are process-wide: leave one core to the GUI. And hand the interpreter lock over
    sooner than Python's default 5 ms: pyqtgraph paints in Python between Qt calls that release the lock, so
    each hand-over would otherwise wait for the training thread's switch interval.
    """
    torch.set_num_threads(app_threads())
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    keep_freed_memory()  # training and sampling steps reuse their memory, as in the CLI (core/allocator.py)


MIN_PLOTS_WIDTH = 350  # the two control rows of the plots fit in it


class MainWindow(QMainWindow):
    """InfoGen Explorer's window. Training runs in the thread pool; this thread only folds records and draws."""

    def __init__(self, manager: RunManager | None = None) -> None:
        super().__init__()
        self.setWindowTitle("InfoGen Explorer")
        self.resize(1500, 920)
        leave_gui_a_core()
        self.manager = manager or RunManager(parent=self)
        self.runs = self.manager.runs
        self.view = ViewState()
        self.ask_before_close = True
        self.form = RunForm()
        self.runs_table = RunsTable()
        self.plots = MetricPlots(self.view)
        self.sweep_view = SweepView()
        self.samples = SamplesPanel()
        self.t_explorer = TExplorer()
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("background: #fdecea; color: #922b21; padding: 6px; border-radius: 3px;")
        self.banner.setVisible(False)

        # The form scrolls vertically but never shrinks below the width its labels and inputs need; no
        # splitter can collapse a panel (at 1024 x 700 the form, the Run button and the plots stay usable).
        form_scroll = QScrollArea()
        form_scroll.setWidgetResizable(True)
        form_scroll.setWidget(self.form)
        form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        form_scroll.setMinimumWidth(self.form.minimumSizeHint().width()
                                    + form_scroll.verticalScrollBar().sizeHint().width() + 4)
        setup = QWidget()  # the fields scroll; the messages and Run stay pinned below them
        setup_layout = QVBoxLayout(setup)
        setup_layout.setContentsMargins(0, 0, 0, 0)
        setup_layout.setSpacing(0)
        setup_layout.addWidget(form_scroll, stretch=1)
        setup_layout.addWidget(self.form.actions)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(setup)
        left.addWidget(self.runs_table)
        left.setSizes([560, 300])
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Training curves")
        self.tabs.addTab(self.sweep_view, "Sweep against T")
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.banner)
        centre_layout.addWidget(self.tabs, stretch=1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.samples)
        right.addWidget(self.t_explorer)
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(centre)
        main.addWidget(right)
        main.setSizes([440, 620, 440])
        self.plots.setMinimumWidth(MIN_PLOTS_WIDTH)
        self.sweep_view.setMinimumWidth(MIN_PLOTS_WIDTH)
        for splitter in (left, right, main):
            splitter.setChildrenCollapsible(False)
        self.splitters = {"left": left, "right": right, "main": main}
        self.setCentralWidget(main)
        self._restore_layout()
        self.statusBar().showMessage("Ready: Swiss roll diffusion, m = 200, T = 0.6. Press Run.")

        self.files = FileActions(self)
        self.setAcceptDrops(True)
        for name, plot in self.plots.plots.items():
            action = plot.vb.menu.addAction("Export figure (PDF, SVG, PNG)…")
            action.triggered.connect(lambda *_, n=name: self.files.export_dialog(n))
        self.form.run_requested.connect(self.start_run)
        self.form.select_requested.connect(self.start_selection)
        self.runs.added.connect(self._run_added)
        self.runs.changed.connect(self._run_changed)
        self.runs.failed.connect(self._run_failed)
        self.runs.removed.connect(self._run_removed)
        self.view.events.focused.connect(self._focus_changed)
        self.view.events.hidden.connect(lambda *_: self._mark(PLOT_PARTS))
        self.runs_table.selected.connect(self._table_selected)
        self.runs_table.stop_requested.connect(self.manager.stop)
        self.runs_table.remove_requested.connect(self.manager.remove)
        self.runs_table.visibility_changed.connect(self.view.set_visible)
        self.sweep_view.T_clicked.connect(self.t_explorer.slider.setValue)
        self._dirty_parts: set[str] = set()
        self._next_redraw = 0.0
        self._part = 0
        # Redraws are scheduled by events (single shot), spaced by the redraw budget; no timer runs when idle.
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setSingleShot(True)
        self.redraw_timer.timeout.connect(self.redraw)

    # -- runs ---------------------------------------------------------------------------------------
    def start_run(self, config: DiffusionConfig | VAEConfig, Ts: list[float], seeds: list[int]) -> Entry:
        """Start what the form asked for."""
        self.clear_error()
        if isinstance(config, VAEConfig):
            entry = self.manager.start_vae(config)
        else:  # core records the reverse trajectory (config.trajectory_frames) with every evaluation
            entry = self.manager.start(config, Ts, seeds)
        self.statusBar().showMessage(f"Started {entry.name}; saving to {entry.folder}")
        return entry

    def start_selection(self, config: DiffusionConfig, t_range: tuple[float, float]) -> Entry:
        """Select T by the bound; each trained point appears in the sweep view as it is evaluated."""
        self.clear_error()
        entry = self.manager.start_selection(config, t_range)
        self.statusBar().showMessage(f"Started {entry.name}; saving to {entry.folder}")
        return entry

    @property
    def selected_run(self) -> Entry | None:
        """The focused entry: its samples, T views and cursor values are shown, and File acts on it."""
        return self.runs.get(self.view.focused)

    def _run_added(self, run_id: int) -> None:
        entry = self.runs[run_id]
        self.runs_table.add_run(entry)
        self.view.focused = run_id
        if isinstance(entry, TrainingRun):
            self.view.kind = entry.kind
            self.tabs.setCurrentIndex(TRAINING_TAB)
            if entry.active:
                self.plots.prepare(self.runs.values())
        else:
            self.tabs.setCurrentIndex(SWEEP_TAB)
        self._mark(REDRAW_PARTS)

    def _run_changed(self, run_id: int, what: str) -> None:
        entry = self.runs.get(run_id)
        if entry is None:
            return
        if what == STEPS:
            self.runs_table.update_progress(entry)
        else:
            self.runs_table.update_run(entry)
        if not entry.active and entry.finished_at and what == "status":
            self.statusBar().showMessage(f"{entry.name}: {entry.status}; files in {entry.folder}")
        parts = STALE.get(what, ())
        if entry.is_sweep:
            parts = ("sweep", "t") if what == EVALS else ()
        self._mark(parts)

    def _table_selected(self, run_id: int) -> None:
        """A row picked in the runs table: it becomes the selection and the focused run."""
        self.view.selected = (run_id,)
        self.view.focused = run_id

    def _focus_changed(self, *_) -> None:
        entry = self.selected_run
        if entry is not None:
            self.runs_table.select_run(entry.run_id)
            if entry.is_sweep:
                self.sweep_view.set_entry(entry)
            elif isinstance(entry, TrainingRun) and self.view.kind != entry.kind:
                self.view.kind = entry.kind
        self._mark(("samples", "t", "sweep"))

    def _mark(self, parts) -> None:
        """Note what needs a redraw and schedule one (at once, or when the redraw budget allows)."""
        self._dirty_parts.update(parts)
        if self._dirty_parts and not self.redraw_timer.isActive():
            delay = max(0.0, self._next_redraw - time.perf_counter())
            self.redraw_timer.start(int(delay * 1000))

    def show_error(self, message: str) -> None:
        """Show a problem in the window (not a modal box): the app stays usable."""
        self.banner.setText(message)
        self.banner.setVisible(True)
        self.statusBar().showMessage(message.splitlines()[0][:200] if message else "")

    def clear_error(self) -> None:
        """Hide the error banner (after something that worked: a file opened, a run started)."""
        self.banner.clear()
        self.banner.setVisible(False)

    def _run_failed(self, run_id: int, message: str) -> None:
        run = self.runs.get(run_id)
        name = run.name if run else f"#{run_id}"
        self.show_error(message if message.startswith("cannot") else f"{name} failed: {message}")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        """Drop checkpoints or sweep folders on the window to open them."""
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.files.open_path(url.toLocalFile())
        event.acceptProposedAction()

    def _run_removed(self, run_id: int) -> None:
        self.runs_table.remove_run(run_id)
        if self.view.focused == run_id:
            rest = self.runs.values()
            self.view.focused = rest[-1].run_id if rest else None
        if self.sweep_view.entry is not None and self.sweep_view.entry.run_id == run_id:
            self.sweep_view.set_entry(None)
        self._mark(REDRAW_PARTS)

    def redraw(self, force: bool = False) -> None:
        """Redraw what changed: one stale panel per call, then schedule the next when others remain.

        Painting one panel per call keeps each event-loop turn short, and the redraw budget keeps the GUI's
        share of the time (it shares the interpreter lock with training) under MAX_REDRAW_DUTY. ``force``
        redraws every panel at once.
        """
        now = time.perf_counter()
        if force:
            parts = list(REDRAW_PARTS)
            self._dirty_parts.clear()
        else:
            if not self._dirty_parts:
                return
            order = REDRAW_PARTS[self._part:] + REDRAW_PARTS[: self._part]
            parts = [next(p for p in order if p in self._dirty_parts)]
            self._part = (REDRAW_PARTS.index(parts[0]) + 1) % len(REDRAW_PARTS)
        entries = self.runs.values()
        focused = self.selected_run
        for part in parts:
            self._dirty_parts.discard(part)
            if part in PLOT_PARTS:
                self.plots.refresh(entries, force=force, which=(part,))
            elif part == "samples":
                self.samples.refresh(focused)
            elif part == "t":
                self.t_explorer.set_run(focused)
            elif part == "sweep":
                if focused is not None and focused.is_sweep and self.sweep_view.entry is not focused:
                    self.sweep_view.set_entry(focused)
                elif self.sweep_view.entry is not None:
                    self.sweep_view.refresh()
        # the plots' paints since the last redraw count too: they run Python item code under the GIL
        cost = time.perf_counter() - now + self.plots.graphics.take_paint_seconds()
        self._next_redraw = now + max(1.0 / REDRAW_HZ, cost / MAX_REDRAW_DUTY)
        if self._dirty_parts and not self.redraw_timer.isActive():
            self.redraw_timer.start(int(max(0.0, self._next_redraw - time.perf_counter()) * 1000))

    def _restore_layout(self) -> None:
        """Window geometry and splitter sizes as the user left them (QSettings; see settings())."""
        store = settings()
        geometry = store.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        for name, splitter in self.splitters.items():
            state = store.value(f"window/splitter_{name}")
            if state is not None:
                splitter.restoreState(state)

    def _save_layout(self) -> None:
        store = settings()
        store.setValue("window/geometry", self.saveGeometry())
        for name, splitter in self.splitters.items():
            store.setValue(f"window/splitter_{name}", splitter.saveState())
        store.sync()

    def confirm_close(self) -> bool:
        """Ask before closing while runs train (each is stopped and saved at its last checkpoint)."""
        active = self.runs.active
        if not active or not self.ask_before_close:
            return True
        names = ", ".join(e.name for e in active[:3]) + (" …" if len(active) > 3 else "")
        answer = QMessageBox.question(
            self, "Runs in progress",
            f"{len(active)} run(s) still training: {names}.\n\nClose anyway? They stop now; what they saved (the "
            "history, and the checkpoint of the last evaluation) stays in their folders and can be resumed.",
            QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Close

    def closeEvent(self, event: QCloseEvent) -> None:
        """Confirm when runs are training, then cancel every run and wait for the workers; remember the layout."""
        if not self.confirm_close():
            event.ignore()
            return
        self._save_layout()
        self.redraw_timer.stop()
        self.t_explorer.timer.stop()
        self.statusBar().showMessage("Stopping runs…")
        self.manager.stop_all_and_wait()
        super().closeEvent(event)
