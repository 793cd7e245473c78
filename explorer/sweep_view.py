"""The sweep view, the paper's central figure: the bound (mean ± sd over seeds) and the test metric (mean ± 2 SE)
against T on a labelled twin axis, both T* marked, the T values within 2 SE of the test minimum shaded, and every
member's training curves below. Clicking a T point focuses that T's members (and the T slider's samples).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QSplitter, QVBoxLayout, QWidget,
)

from core.metrics.near_best import near_best

from .model import Entry, Selection, Sweep
from .model.curves import points
from .model.entries import _argmin
from .model.palette import RUN_COLOURS

BOUND_COLOUR, TEST_COLOUR, SHADE = (52, 101, 164), (204, 0, 0), (120, 120, 120, 45)
SEED_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine,
               Qt.PenStyle.DashDotDotLine)
MEMBER_SERIES = (("loss", "training loss"), ("bound", "bound"), ("test", "test metric"))


class SweepView(QWidget):
    """Shows one sweep or T selection; emits ``T_clicked(T)`` when a T point is clicked."""

    T_clicked = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No sweep yet: enter a T grid (e.g. 0.2:1.8:0.2) or several seeds in the form and press "
                            "Run, or open a sweep folder.")
        self.title.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "diffusion time T")
        self.plot.setLabel("left", "bound", color=f"rgb{BOUND_COLOUR}")
        self.legend = self.plot.addLegend(offset=(10, 10), labelTextSize="8pt", brush=(0, 0, 0, 170))
        self.test_view = pg.ViewBox()
        self.plot.scene().addItem(self.test_view)
        self.plot.showAxis("right")
        self.plot.getAxis("right").linkToView(self.test_view)
        self.plot.getAxis("right").setWidth(60)
        self.test_view.setXLink(self.plot.getViewBox())
        self.plot.getViewBox().sigResized.connect(
            lambda: self.test_view.setGeometry(self.plot.getViewBox().sceneBoundingRect()))

        self.bound_lo, self.bound_hi = pg.PlotDataItem(), pg.PlotDataItem()
        self.bound_band = pg.FillBetweenItem(self.bound_lo, self.bound_hi, brush=pg.mkBrush(*BOUND_COLOUR, 50))
        self.plot.addItem(self.bound_band)
        self.bound_curve = pg.PlotDataItem(pen=pg.mkPen(BOUND_COLOUR, width=2), symbol="o", symbolSize=8,
                                           symbolBrush=pg.mkBrush(*BOUND_COLOUR))
        self.plot.addItem(self.bound_curve)
        self.test_lo, self.test_hi = pg.PlotDataItem(), pg.PlotDataItem()
        self.test_band = pg.FillBetweenItem(self.test_lo, self.test_hi, brush=pg.mkBrush(*TEST_COLOUR, 45))
        self.test_view.addItem(self.test_band)
        self.test_curve = pg.PlotDataItem(pen=pg.mkPen(TEST_COLOUR, width=2), symbol="s", symbolSize=8,
                                          symbolBrush=pg.mkBrush(*TEST_COLOUR))
        self.test_view.addItem(self.test_curve)
        self.star_bound = pg.ScatterPlotItem(size=18, symbol="star", brush=pg.mkBrush(*BOUND_COLOUR), pen=pg.mkPen("k"))
        self.star_test = pg.ScatterPlotItem(size=18, symbol="star", brush=pg.mkBrush(*TEST_COLOUR), pen=pg.mkPen("k"))
        for star in (self.star_bound, self.star_test):
            star.setZValue(20)  # above the curves' own markers
        self.plot.addItem(self.star_bound)
        self.test_view.addItem(self.star_test)
        self.shades: list[pg.LinearRegionItem] = []
        self.shade_key = pg.PlotDataItem(pen=None, symbol="s", symbolSize=12, symbolBrush=pg.mkBrush(*SHADE[:3], 90),
                                         symbolPen=None)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((90, 90, 90), style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.cursor, ignoreBounds=True)
        for item in (self.bound_curve, self.test_curve):
            item.sigPointsClicked.connect(lambda _item, pts, *_: self._clicked(pts))

        self.member_series = QComboBox()
        for key, text in MEMBER_SERIES:
            self.member_series.addItem(text, key)
        self.members = QListWidget()
        self.members.setToolTip("tick the members whose training curves are drawn; click a T point above to pick a T")
        self.member_plot = pg.PlotWidget()
        self.member_plot.showGrid(x=True, y=True, alpha=0.2)
        self.member_plot.setLabel("bottom", "step")
        self.member_legend = self.member_plot.addLegend(offset=(-10, 10), labelTextSize="7pt")
        self.caption = QLabel(" ")
        self.caption.setWordWrap(True)

        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("members' training curves:"))
        row.addWidget(self.member_series)
        row.addStretch(1)
        bottom_layout.addLayout(row)
        members_row = QSplitter(Qt.Orientation.Horizontal)
        members_row.addWidget(self.members)
        members_row.addWidget(self.member_plot)
        members_row.setSizes([160, 600])
        members_row.setChildrenCollapsible(False)
        bottom_layout.addWidget(members_row, stretch=1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.plot)
        split.addWidget(bottom)
        split.setSizes([600, 300])
        split.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(split, stretch=1)
        layout.addWidget(self.caption)

        self.entry: Entry | None = None
        self.table: dict[str, list[float]] = {}
        self.near: list[float] = []
        self.focused_T: float | None = None
        self._member_items: dict[str, pg.PlotDataItem] = {}
        self.members.itemChanged.connect(lambda *_: self._draw_members())
        self.member_series.currentIndexChanged.connect(lambda *_: self._draw_members())

    # -- the sweep -----------------------------------------------------------------------------------
    def set_entry(self, entry: Entry | None) -> None:
        """Show ``entry`` (a Sweep or a Selection) and redraw."""
        if entry is not self.entry:
            self.entry, self.focused_T = entry, None
            self.members.clear()
        self.refresh()

    def refresh(self) -> None:
        entry = self.entry
        if not isinstance(entry, (Sweep, Selection)):
            return
        spec = entry.spec
        self.table = table = entry.table()
        T = np.array(table["T"], dtype=float)
        bound, sd = np.array(table["bound"], dtype=float), np.array(table["bound_sd"], dtype=float)
        test, se = np.array(table["test"], dtype=float), np.array(table["test_se"], dtype=float)
        self.title.setText(f"<b>{entry.name}</b> — bound (mean ± sd over seeds) and {spec.test_label} "
                           f"(mean ± 2 SE) against T" + ("" if isinstance(entry, Sweep) else ": the trained points")
                           + ("" if len(T) else " — waiting for the first model to finish training"))
        self.plot.getAxis("right").setLabel(spec.test_label, color=f"rgb{TEST_COLOUR}")
        self.bound_curve.setData(*points(T, bound))
        self.test_curve.setData(*points(T, test))
        sd0, se0 = np.nan_to_num(sd), np.nan_to_num(se)
        self.bound_lo.setData(*points(T, bound - sd0))
        self.bound_hi.setData(*points(T, bound + sd0))
        self.test_lo.setData(*points(T, test - 2 * se0))
        self.test_hi.setData(*points(T, test + 2 * se0))
        for shade in self.shades:
            self.plot.removeItem(shade)
        self.shades = []
        self.near = near_best(list(T), list(test), list(se)) if len(T) else []
        step = float(np.min(np.diff(np.unique(T)))) if len(np.unique(T)) > 1 else 0.1
        for t in self.near:
            shade = pg.LinearRegionItem((t - step / 2, t + step / 2), movable=False, brush=pg.mkBrush(*SHADE),
                                        pen=pg.mkPen(None))
            shade.setZValue(-10)
            self.plot.addItem(shade, ignoreBounds=True)
            self.shades.append(shade)
        self.legend.clear()
        self.legend.addItem(self.bound_curve, "bound ± sd")
        self.legend.addItem(self.test_curve, f"{spec.test_label} ± 2 SE (right axis)")
        stars = "no run finished yet"
        if len(T) and np.isfinite(bound).any() and np.isfinite(test).any():
            ib, it = _argmin(bound), _argmin(test)
            self.star_bound.setData([T[ib]], [bound[ib]])
            self.star_test.setData([T[it]], [test[it]])
            self.legend.addItem(self.star_bound, f"T* by bound = {T[ib]:g}")
            self.legend.addItem(self.star_test, f"T* by {spec.test_label} = {T[it]:g}")
            near = ", ".join(f"{t:g}" for t in self.near)
            stars = (f"T* by bound {T[ib]:g}; T* by {spec.test_label} {T[it]:g}; within 2 SE of the test minimum "
                     f"(shaded): {near or 'none'}")
        else:
            self.star_bound.setData([], [])
            self.star_test.setData([], [])
        if self.near:
            self.legend.addItem(self.shade_key, "within 2 SE of the test minimum")
        self.caption.setText(stars + (f" — {entry.message}" if entry.message else ""))
        if len(T):
            self._fit(self.plot.getViewBox(), T, bound, sd0)
            self._fit(self.test_view, T, test, 2 * se0)
        self._fill_members()
        self._draw_members()

    @staticmethod
    def _fit(box: pg.ViewBox, T: np.ndarray, y: np.ndarray, spread: np.ndarray) -> None:
        """The curve and its band in view, with room above for the legend (it lists up to five entries)."""
        lo, hi = y - spread, y + spread
        keep = np.isfinite(lo) & np.isfinite(hi)
        if not keep.any():
            return
        y0, y1 = float(lo[keep].min()), float(hi[keep].max())
        span = (y1 - y0) or max(abs(y1), 1.0) * 0.1
        box.setYRange(y0 - 0.05 * span, y1 + 0.6 * span, padding=0)
        t0, t1 = float(T.min()), float(T.max())
        pad = 0.05 * ((t1 - t0) or 1.0)
        box.setXRange(t0 - pad, t1 + pad, padding=0)

    def _clicked(self, pts) -> None:
        if len(pts):
            self.focus_T(float(pts[0].pos().x()))
            self.T_clicked.emit(self.focused_T)

    def focus_T(self, T: float) -> None:
        """Highlight the members trained at the grid T nearest ``T``."""
        if not self.table.get("T"):
            return
        grid = np.array(self.table["T"])
        self.focused_T = float(grid[int(np.argmin(np.abs(grid - T)))])
        self.cursor.setValue(self.focused_T)
        self._draw_members()

    # -- the members ---------------------------------------------------------------------------------
    def _member_names(self) -> list[str]:
        entry = self.entry
        if isinstance(entry, Sweep):
            return [n for n in entry.members if n in entry.member_evals or n in entry.member_steps]
        if isinstance(entry, Selection):
            return [f"T{p['T']:g}" for p in sorted(entry.points, key=lambda p: p["T"])]
        return []

    def _fill_members(self) -> None:
        names = self._member_names()
        present = {self.members.item(i).text() for i in range(self.members.count())}
        self.members.blockSignals(True)
        for name in names:
            if name not in present:
                item = QListWidgetItem(name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
                self.members.addItem(item)
        self.members.blockSignals(False)

    def checked_members(self) -> list[str]:
        return [self.members.item(i).text() for i in range(self.members.count())
                if self.members.item(i).checkState() == Qt.CheckState.Checked]

    def member_curve(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A member's chosen series against its steps."""
        entry = self.entry
        series = self.member_series.currentData()
        if isinstance(entry, Selection):
            p = next((p for p in entry.points if f"T{p['T']:g}" == name), None)
            key = {"loss": "dsm_train", "bound": "bound", "test": entry.spec.test_key}[series]
            return points([0 if p is None else p.get("step", 0)], [None if p is None else p.get(key)])
        if series == "loss":
            steps, losses = entry.member_steps.get(name, ([], []))
            return points(steps, losses)
        key = "bound" if series == "bound" else entry.spec.test_key
        evals = entry.member_evals.get(name, [])
        return points([ev["step"] for ev in evals], [ev.get(key) for ev in evals])

    def _member_T(self, name: str) -> float | None:
        entry = self.entry
        if isinstance(entry, Sweep):
            return entry.member_T.get(name)
        try:
            return float(name[1:])
        except ValueError:
            return None

    def _member_seed(self, name: str) -> int:
        """The member's seed index in the sweep's seed list (0 for a selection)."""
        entry = self.entry
        if isinstance(entry, Sweep) and "_seed" in name:
            try:
                return entry.seeds.index(int(name.rsplit("_seed", 1)[1]))
            except ValueError:
                return 0
        return 0

    def _draw_members(self) -> None:
        checked = self.checked_members()
        for name in [n for n in self._member_items if n not in checked]:
            self.member_plot.removeItem(self._member_items.pop(name))
        Ts = sorted({t for t in (self._member_T(n) for n in self._member_names()) if t is not None})
        self.member_legend.clear()
        for name in checked:
            T = self._member_T(name)
            colour = RUN_COLOURS[Ts.index(T) % len(RUN_COLOURS)] if T in Ts else (100, 100, 100)
            focused = self.focused_T is not None and T is not None and abs(T - self.focused_T) < 1e-9
            faded = self.focused_T is not None and not focused
            seed = self._member_seed(name)  # the seeds of one T share its colour and differ by dash
            pen = pg.mkPen((*colour, 60) if faded else colour, width=3 if focused else 1.3,
                           style=SEED_STYLES[seed % len(SEED_STYLES)])
            item = self._member_items.get(name)
            if item is None:
                item = self._member_items[name] = pg.PlotDataItem()
                self.member_plot.addItem(item)
            item.setPen(pen)
            item.setData(*self.member_curve(name))
            if focused or (self.focused_T is None and len(checked) <= 12):
                self.member_legend.addItem(item, name)
        self.member_plot.setLabel("left", self.member_series.currentText())
        focus = f"focused: T = {self.focused_T:g}" if self.focused_T is not None else "click a T point to focus it"
        summary = getattr(self.entry, "summary", None)  # a selection has none
        untrained = summary is not None and summary.get("iters") == 0
        title = ("one network evaluated at each T (Open model…): nothing was trained" if untrained
                 else f"{len(checked)} member(s); {focus}")
        self.member_plot.setTitle(title, size="9pt")
        self.member_plot.getViewBox().autoRange()

    def bound_points(self) -> tuple[np.ndarray, np.ndarray]:
        """The drawn bound points (T, mean), for tests and export."""
        x, y = self.bound_curve.getData()
        return (np.array([]), np.array([])) if x is None else (np.asarray(x), np.asarray(y))

    def test_points(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self.test_curve.getData()
        return (np.array([]), np.array([])) if x is None else (np.asarray(x), np.asarray(y))

    def summary_text(self) -> str:
        return self.caption.text() if self.entry is not None else ""

