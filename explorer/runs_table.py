"""Every run of the session: colour, status, progress with ETA, the final bound and test metric, T, m and wall
time (sortable), show/hide, stop and remove. Full names and messages are in tooltips."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QHeaderView, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QWidget,
)

from .model import Entry
from .model.text import fmt, format_eta

COLUMNS = ("Show", "Run", "Status", "Progress", "Bound", "Test", "T", "m", "Wall (s)", "Stop", "Remove")
SHOW, NAME, STATUS, PROGRESS, BOUND, TEST, T, M, WALL, STOP, REMOVE = range(len(COLUMNS))
METRIC_COLUMNS = {BOUND: ("bound", ".4g"), TEST: ("test", ".4g"), T: ("T", "g"), M: ("m", "d"), WALL: ("wall", ".0f")}
RUN_ID = Qt.ItemDataRole.UserRole


class NumberItem(QTableWidgetItem):
    """A cell that sorts by its number (missing values last), not by its text."""

    def __init__(self) -> None:
        super().__init__("")
        self.value = math.inf

    def set_value(self, value, spec: str) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        self.value = float(value) if ok else math.inf
        self.setText(fmt(value, spec) if ok else "")
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other) -> bool:
        return self.value < other.value if isinstance(other, NumberItem) else super().__lt__(other)


class RunsTable(QTableWidget):
    """One row per entry; emits the selected run id and the user's stop/remove/visibility requests."""

    selected = Signal(int)
    stop_requested = Signal(int)
    remove_requested = Signal(int)
    visibility_changed = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        for col in (SHOW, STATUS, STOP, REMOVE, T, M):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.setColumnWidth(NAME, 150)
        self.setColumnWidth(PROGRESS, 96)
        for col in (BOUND, TEST, WALL):
            self.setColumnWidth(col, 58)
        self.setSortingEnabled(True)
        self.horizontalHeaderItem(TEST).setToolTip("the final test metric: test KL (points), BPD (images) or the "
                                                   "VAE's test curve")
        self.itemSelectionChanged.connect(self._selection_changed)
        self.itemChanged.connect(self._item_changed)

    def row_of(self, run_id: int) -> int | None:
        for row in range(self.rowCount()):
            item = self.item(row, NAME)
            if item is not None and item.data(RUN_ID) == run_id:
                return row
        return None

    def add_run(self, run: Entry) -> None:
        self.setSortingEnabled(False)
        row = self.rowCount()
        self.insertRow(row)
        show = QTableWidgetItem()
        show.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        show.setCheckState(Qt.CheckState.Checked)
        show.setData(RUN_ID, run.run_id)
        self.setItem(row, SHOW, show)
        name = QTableWidgetItem(run.name)
        name.setForeground(QColor(*run.colour))
        name.setData(RUN_ID, run.run_id)
        self.setItem(row, NAME, name)
        self.setItem(row, STATUS, QTableWidgetItem(run.status))
        for col in METRIC_COLUMNS:
            self.setItem(row, col, NumberItem())
        bar = QProgressBar()
        bar.setRange(0, 1000)
        self.setCellWidget(row, PROGRESS, bar)
        stop = QPushButton("Stop")
        stop.clicked.connect(lambda _=False, rid=run.run_id: self.stop_requested.emit(rid))
        self.setCellWidget(row, STOP, stop)
        remove = QPushButton("Remove")
        remove.clicked.connect(lambda _=False, rid=run.run_id: self.remove_requested.emit(rid))
        self.setCellWidget(row, REMOVE, remove)
        self.setSortingEnabled(True)
        self.update_run(run)
        self.select_run(run.run_id)

    def select_run(self, run_id: int) -> None:
        row = self.row_of(run_id)
        if row is not None and self.currentRow() != row:
            self.selectRow(row)

    def update_progress(self, run: Entry) -> None:
        """The progress bar alone: cheap, done for every batch of steps (no cell changes, so no re-sort)."""
        row = self.row_of(run.run_id)
        if row is None:
            return
        bar: QProgressBar = self.cellWidget(row, PROGRESS)
        value = int(run.progress * 1000)
        text = progress_text(run)
        if bar.value() != value or bar.format() != text:
            bar.setValue(value)
            bar.setFormat(text)

    def update_run(self, run: Entry) -> None:
        row = self.row_of(run.run_id)
        if row is None:
            return
        sorting = self.isSortingEnabled()
        self.setSortingEnabled(False)  # a row must not move while its cells are written
        name = self.item(row, NAME)
        name.setText(run.name)
        name.setToolTip(f"{run.name}\n{run.folder}" + (f"\n{run.message}" if run.message else ""))
        status = self.item(row, STATUS)
        status.setText(run.status)
        status.setToolTip(run.message)
        status.setForeground(QColor(192, 57, 43) if run.status == "failed" else QColor(40, 40, 40))
        bar: QProgressBar = self.cellWidget(row, PROGRESS)
        bar.setValue(int(run.progress * 1000))
        bar.setFormat(progress_text(run))
        metrics = run.metrics()
        spec = run.spec
        for col, (key, fmt_spec) in METRIC_COLUMNS.items():
            item: NumberItem = self.item(row, col)
            item.set_value(metrics.get(key), fmt_spec)
        at = " (both at T* by bound)" if run.is_sweep else ""
        self.item(row, BOUND).setToolTip(spec.bound_total[0].label + at)
        self.item(row, TEST).setToolTip(spec.test_label + at)
        self.cellWidget(row, STOP).setEnabled(run.active)
        self.setSortingEnabled(sorting)

    def remove_run(self, run_id: int) -> None:
        row = self.row_of(run_id)
        if row is not None:
            self.removeRow(row)

    def run_id_at(self, row: int) -> int:
        return self.item(row, NAME).data(RUN_ID)

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedIndexes()}
        if rows:
            self.selected.emit(self.run_id_at(min(rows)))

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == SHOW and item.data(RUN_ID) is not None:
            self.visibility_changed.emit(item.data(RUN_ID), item.checkState() == Qt.CheckState.Checked)


def progress_text(run: Entry) -> str:
    """The progress bar's text: the percentage, then what the run is doing (evaluating) or its ETA."""
    return f"{run.progress:.0%} {run.phase or format_eta(run.eta_seconds())}".strip()
