"""The main window: run setup and runs list on the left, live plots in the middle, samples and T on the right."""

from __future__ import annotations

import os
import sys
import time

import torch
import torch._dynamo  # noqa: F401  (torch.optim imports it on first use: ~2 s holding the GIL in the worker,
# which froze the window at the start of the first run; paid here once, before the window shows)
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QLabel, QMainWindow, QScrollArea, QSplitter, QVBoxLayout, QWidget

from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig

from .file_actions import FileActions
from .plots import MetricPlots
from .run_form import RunForm
from .run_manager import RunManager
from .run_state import RunState
from .runs_table import RunsTable
from .samples_panel import SamplesPanel
from .t_explorer import TExplorer

REDRAW_HZ = 20
# The GUI thread may spend at most this share of the time redrawing; the rest is left to training, which
# shares the interpreter lock with it.
MAX_REDRAW_DUTY = 0.06
FRAMES_PER_TRAJECTORY = 50
REDRAW_PARTS = ("loss", "bound", "gap", "samples", "t")


GIL_SWITCH_SECONDS = 0.0005


def leave_gui_a_core() -> None:
    """Keep the event loop responsive beside a training thread.

    Torch's intra-op threads are process-wide: leave one core to the GUI. And hand the interpreter lock over
    sooner than Python's default 5 ms: pyqtgraph paints in Python between Qt calls that release the lock, so
    each hand-over would otherwise wait for the training thread's switch interval.
    """
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    sys.setswitchinterval(GIL_SWITCH_SECONDS)


MIN_PLOTS_WIDTH = 350  # the two control rows of the plots fit in it
SETTINGS_ENV = "INFOGEN_SETTINGS"


def settings() -> QSettings:
    """The app's settings: $INFOGEN_SETTINGS (an INI file) when set, as the tests do, else Qt's per-user place."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("InfoGen", "InfoGen Explorer")


class MainWindow(QMainWindow):
    """InfoGen Explorer's window. Training runs in the thread pool; this thread only folds records and draws."""

    def __init__(self, manager: RunManager | None = None) -> None:
        super().__init__()
        self.setWindowTitle("InfoGen Explorer")
        self.resize(1500, 920)
        leave_gui_a_core()
        self.manager = manager or RunManager(parent=self)
        self.form = RunForm()
        self.runs_table = RunsTable()
        self.plots = MetricPlots()
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
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(form_scroll)
        left.addWidget(self.runs_table)
        left.setSizes([560, 300])
        centre = QWidget()
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.banner)
        centre_layout.addWidget(self.plots, stretch=1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.samples)
        right.addWidget(self.t_explorer)
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(left)
        main.addWidget(centre)
        main.addWidget(right)
        main.setSizes([440, 620, 440])
        self.plots.setMinimumWidth(MIN_PLOTS_WIDTH)
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
        self.manager.run_added.connect(self._run_added)
        self.manager.run_changed.connect(self._run_changed)
        self.manager.run_failed.connect(self._run_failed)
        self.manager.run_removed.connect(self._run_removed)
        self.runs_table.selected.connect(self._select)
        self.runs_table.stop_requested.connect(self.manager.stop)
        self.runs_table.remove_requested.connect(self.manager.remove)
        self.runs_table.visibility_changed.connect(self._set_visible)
        self._selected: RunState | None = None
        self._dirty_parts: set[str] = set(REDRAW_PARTS)
        self._next_redraw = 0.0
        self._part = 0
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(1000 // REDRAW_HZ)
        self.redraw_timer.timeout.connect(self.redraw)
        self.redraw_timer.start()

    # -- runs ---------------------------------------------------------------------------------------
    def start_run(self, config: DiffusionConfig | VAEConfig, Ts: list[float], seeds: list[int]) -> RunState:
        """Start what the form asked for; a single run also records its reverse trajectory for the T slider."""
        if isinstance(config, VAEConfig):
            self.banner.setVisible(False)
            state = self.manager.start_vae(config)
            self.statusBar().showMessage(f"Started {state.name}; saving to {state.folder}")
            return state
        if len(Ts) * len(seeds) == 1:
            config = config.with_(frame_every=max(1, config.steps // FRAMES_PER_TRAJECTORY))
        self.banner.setVisible(False)
        state = self.manager.start(config, Ts, seeds)
        self.statusBar().showMessage(f"Started {state.name}; saving to {state.folder}")
        return state

    def start_selection(self, config: DiffusionConfig, t_range: tuple[float, float]) -> RunState:
        """Select T by the bound; each trained point appears in the T explorer as it is evaluated."""
        self.banner.setVisible(False)
        state = self.manager.start_selection(config, t_range)
        self.statusBar().showMessage(f"Started {state.name}; saving to {state.folder}")
        return state

    @property
    def selected_run(self) -> RunState | None:
        return self._selected

    def _run_added(self, run_id: int) -> None:
        run = self.manager.runs[run_id]
        self.runs_table.add_run(run)
        self._select(run_id)
        if not run.is_sweep and run.active:
            self.plots.prepare(list(self.manager.runs.values()), self._selected)

    def _run_changed(self, run_id: int) -> None:
        run = self.manager.runs.get(run_id)
        if run is not None:
            self.runs_table.update_run(run)
            if run.status in ("finished", "cancelled") and run.finished_at:
                self.statusBar().showMessage(f"{run.name}: {run.status}; files in {run.folder}")
        self._dirty_parts.update(REDRAW_PARTS)

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
        run = self.manager.runs.get(run_id)
        name = run.name if run else f"#{run_id}"
        self.show_error(f"{name} failed: {message}")

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
        if self._selected is not None and self._selected.run_id == run_id:
            self._selected = None
        self._dirty_parts.update(REDRAW_PARTS)

    def _select(self, run_id: int) -> None:
        self._selected = self.manager.runs.get(run_id)
        self._dirty_parts.update(REDRAW_PARTS)

    def _set_visible(self, run_id: int, visible: bool) -> None:
        run = self.manager.runs.get(run_id)
        if run is not None:
            run.visible = visible
            self._dirty_parts.update(REDRAW_PARTS)

    def redraw(self, force: bool = False) -> None:
        """Called REDRAW_HZ times a second: progress bars, then one changed panel per tick in turn.

        Painting one panel per tick keeps each event-loop turn short, and the redraw budget keeps the GUI's
        share of the time (it shares the interpreter lock with training) under MAX_REDRAW_DUTY. ``force``
        redraws every panel at once.
        """
        now = time.perf_counter()
        for run in self.manager.runs.values():
            if run.active:
                self.runs_table.update_run(run)
        if force:
            parts = list(REDRAW_PARTS)
        else:
            if not self._dirty_parts or now < self._next_redraw:
                return
            order = REDRAW_PARTS[self._part:] + REDRAW_PARTS[: self._part]
            parts = [next(p for p in order if p in self._dirty_parts)]
            self._part = (REDRAW_PARTS.index(parts[0]) + 1) % len(REDRAW_PARTS)
        runs = list(self.manager.runs.values())
        for part in parts:
            self._dirty_parts.discard(part)
            if part in ("loss", "bound", "gap"):
                self.plots.refresh(runs, self._selected, which=(part,))
            elif part == "samples":
                self.samples.refresh(self._selected)
            else:
                self.t_explorer.set_run(self._selected)
        # the plots' paints since the last redraw count too: they run Python item code under the GIL
        cost = time.perf_counter() - now + self.plots.graphics.take_paint_seconds()
        self._next_redraw = now + max(0.0, cost / MAX_REDRAW_DUTY - 1.0 / REDRAW_HZ)

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

    def closeEvent(self, event: QCloseEvent) -> None:
        """Cancel every run and wait for the workers before the window goes; remember the layout."""
        self._save_layout()
        self.redraw_timer.stop()
        self.t_explorer.timer.stop()
        self.statusBar().showMessage("Stopping runs…")
        self.manager.stop_all_and_wait()
        super().closeEvent(event)
