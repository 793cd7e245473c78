"""Every run of the session: colour, status, progress with ETA, show/hide for overlays, stop and remove."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QHeaderView, QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QWidget,
)

from .run_state import RunState

SHOW, NAME, STATUS, PROGRESS, STOP, REMOVE = range(6)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"ETA {seconds // 60}:{seconds % 60:02d}"


class RunsTable(QTableWidget):
    """One row per run; emits the selected run id and the user's stop/remove/visibility requests."""

    selected = Signal(int)
    stop_requested = Signal(int)
    remove_requested = Signal(int)
    visibility_changed = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 6, parent)
        self.setHorizontalHeaderLabels(["Show", "Run", "Status", "Progress", "", ""])
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        for col in (SHOW, STATUS, STOP, REMOVE):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PROGRESS, QHeaderView.ResizeMode.Fixed)
        self.setColumnWidth(PROGRESS, 120)
        self._rows: dict[int, int] = {}
        self.itemSelectionChanged.connect(self._selection_changed)
        self.itemChanged.connect(self._item_changed)

    def add_run(self, run: RunState) -> None:
        row = self.rowCount()
        self.insertRow(row)
        self._rows[run.run_id] = row
        show = QTableWidgetItem()
        show.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        show.setCheckState(Qt.CheckState.Checked)
        show.setData(Qt.ItemDataRole.UserRole, run.run_id)
        self.setItem(row, SHOW, show)
        name = QTableWidgetItem(run.name)
        name.setForeground(QColor(*run.colour))
        name.setData(Qt.ItemDataRole.UserRole, run.run_id)
        self.setItem(row, NAME, name)
        self.setItem(row, STATUS, QTableWidgetItem(run.status))
        bar = QProgressBar()
        bar.setRange(0, 1000)
        self.setCellWidget(row, PROGRESS, bar)
        stop = QPushButton("Stop")
        stop.clicked.connect(lambda _=False, rid=run.run_id: self.stop_requested.emit(rid))
        self.setCellWidget(row, STOP, stop)
        remove = QPushButton("Remove")
        remove.clicked.connect(lambda _=False, rid=run.run_id: self.remove_requested.emit(rid))
        self.setCellWidget(row, REMOVE, remove)
        self.selectRow(row)

    def update_run(self, run: RunState) -> None:
        row = self._rows.get(run.run_id)
        if row is None:
            return
        status = self.item(row, STATUS)
        status.setText(run.status)
        status.setToolTip(run.message)
        status.setForeground(QColor(192, 57, 43) if run.status == "failed" else QColor(40, 40, 40))
        bar: QProgressBar = self.cellWidget(row, PROGRESS)
        bar.setValue(int(run.progress * 1000))
        bar.setFormat(f"{run.progress:.0%} {format_eta(run.eta_seconds())}".strip())
        self.cellWidget(row, STOP).setEnabled(run.active)

    def remove_run(self, run_id: int) -> None:
        row = self._rows.pop(run_id, None)
        if row is None:
            return
        self.removeRow(row)
        self._rows = {rid: (r - 1 if r > row else r) for rid, r in self._rows.items()}

    def run_id_at(self, row: int) -> int:
        return self.item(row, NAME).data(Qt.ItemDataRole.UserRole)

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedIndexes()}
        if rows:
            self.selected.emit(self.run_id_at(min(rows)))

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == SHOW:
            self.visibility_changed.emit(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)
