"""Live curves: loss, bound (total or terms) and test gap, with smoothing, log-y, x-axis choice and a linked cursor."""

from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGraphicsItem, QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider

from core.smoothing import MAX_WEIGHT, debiased_ema, decimate

from .run_state import RunState, fmt, metric_text
from .sticky_range import sticky_interval

MAX_DISPLAY_POINTS = 2000
TERM_STYLES = {
    "score_matching": Qt.PenStyle.DashLine,
    "encoder_info": Qt.PenStyle.DotLine,
    "encoder_prior": Qt.PenStyle.DashDotLine,
    "generator": Qt.PenStyle.DashDotDotLine,
}


VAE_BOUND_CURVES = (
    ("bound_encoder_generator", "encoder+generator bound", Qt.PenStyle.SolidLine, 2.5),
    ("bound_encoder_only", "encoder-only bound", Qt.PenStyle.DashLine, 1.5),
    ("test_curve", "test curve", Qt.PenStyle.DotLine, 2.0),
)


LEFT_AXIS_WIDTH = 58


def cache_axes(plot: pg.PlotItem) -> None:
    """Paint each axis into a cached pixmap: repainting a curve then only blits the axes, and an axis is
    re-rendered only when its range (which sticky_range keeps still) changes. The left axis has a fixed width:
    a tick label growing wider would otherwise re-lay out the whole plot column and repaint every axis."""
    for name in ("left", "bottom", "right", "top"):
        plot.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        plot.getAxis(name).setStyle(maxTextLevel=1)  # label major ticks only: half the text to lay out
    left = plot.getAxis("left")
    left.setStyle(autoExpandTextSpace=False)
    left.setWidth(LEFT_AXIS_WIDTH)


def _num(value) -> float:
    """A stored number as a float: None (a NaN stored as null) becomes NaN."""
    return float("nan") if value is None else float(value)


def points(x, values) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) points that have a value: None (NaN stored as null) and non-finite values are skipped."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(values, dtype=float)  # None becomes NaN
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def bound_terms(ev: dict) -> dict[str, float]:
    """The bound's four contributions as they add up: the two R terms already multiplied by sqrt(2) R (NaN where
    a term was stored as null)."""
    scale = math.sqrt(2.0) * _num(ev.get("R"))
    return {"score_matching": _num(ev.get("score_matching")), "encoder_info": _num(ev.get("encoder_info")),
            "encoder_prior": scale * _num(ev.get("encoder_prior")), "generator": scale * _num(ev.get("generator"))}


class TimedGraphicsLayoutWidget(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget that adds up the time its paints take, so the window's redraw budget can count
    painting (Python item code holding the interpreter lock) and not only the data updates that cause it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.paint_seconds = 0.0

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        start = time.perf_counter()
        super().paintEvent(event)
        self.paint_seconds += time.perf_counter() - start

    def take_paint_seconds(self) -> float:
        """Paint time since the last call."""
        spent, self.paint_seconds = self.paint_seconds, 0.0
        return spent


class MetricPlots(QWidget):
    """Three linked plots fed from RunStates; ``refresh`` redraws whatever changed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.x_axis = QComboBox()
        self.x_axis.addItems(["Step", "Wall time (s)"])
        self.smoothing = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0.0, MAX_WEIGHT)
        self.smoothing.setValue(0.9)
        self.terms_mode = QComboBox()
        self.terms_mode.addItems(["Total", "Terms", "Stacked"])
        self.terms_mode.setCurrentText("Terms")
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit every plot's range to its data")
        # Two short rows rather than one long one, so that the plots fit beside the form in a 1024 px window.
        controls = QHBoxLayout()
        controls.addWidget(QLabel("x:"))
        controls.addWidget(self.x_axis)
        controls.addWidget(QLabel("bound:"))
        controls.addWidget(self.terms_mode)
        controls.addStretch(1)
        controls.addWidget(self.fit_button)

        self.graphics = TimedGraphicsLayoutWidget()
        self.loss = self.graphics.addPlot(row=0, col=0, title="Loss (train; held-out at evaluations)")
        self.bound = self.graphics.addPlot(row=1, col=0, title="Bound and its terms")
        self.gap = self.graphics.addPlot(row=2, col=0, title="Test gap")
        self.plots = {"loss": self.loss, "bound": self.bound, "gap": self.gap}
        self.log_boxes: dict[str, QCheckBox] = {}
        log_row = QHBoxLayout()
        log_row.addWidget(QLabel("smoothing:"))
        log_row.addWidget(self.smoothing, stretch=1)
        log_row.addWidget(QLabel("log-y:"))
        for name, plot in self.plots.items():
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.addLegend(offset=(-10, 10))
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.disableAutoRange()
            plot.hideButtons()
            cache_axes(plot)
            plot.vb.sigRangeChangedManually.connect(lambda *_, n=name: self._user_zoomed.add(n))
            box = QCheckBox(name)
            box.toggled.connect(lambda on, p=plot, n=name: self._set_log(n, p, on))
            log_row.addWidget(box)
            self.log_boxes[name] = box
        self.bound.setXLink(self.loss)
        self.gap.setXLink(self.loss)
        self.cursor_label = QLabel(" ")
        self.cursors = {}
        for name, plot in self.plots.items():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
            plot.addItem(line, ignoreBounds=True)
            self.cursors[name] = line
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(log_row)
        layout.addWidget(self.graphics, stretch=1)
        layout.addWidget(self.cursor_label)
        self._items: dict[tuple, pg.PlotDataItem] = {}
        self._ranges: dict[str, tuple] = {}
        self._user_zoomed: set[str] = set()
        self.fit_button.clicked.connect(self.fit_to_data)
        self._runs: list[RunState] = []
        self._selected: RunState | None = None
        for w in (self.x_axis, self.terms_mode):
            w.currentIndexChanged.connect(lambda *_: self.refresh(self._runs, self._selected, force=True))
        self.x_axis.currentIndexChanged.connect(lambda *_: self.fit_to_data())
        self.smoothing.valueChanged.connect(lambda *_: self.refresh(self._runs, self._selected, force=True))
        self._drawn: dict[tuple, tuple] = {}

    def refresh(self, runs: list[RunState], selected: RunState | None, force: bool = False,
                which: tuple[str, ...] = ("loss", "bound", "gap")) -> None:
        """Redraw the named plots' curves for visible single runs whose data changed since the last call.

        The loss plot follows every step; the bound and gap plots change only at evaluations.
        """
        self._runs, self._selected = runs, selected
        shown = [r for r in runs if r.visible and not r.is_sweep]
        shown_ids = {r.run_id for r in shown}
        settings = (self.x_axis.currentIndex(), self.terms_mode.currentIndex(), self.smoothing.value())
        for run in shown:
            for plot in which:
                key = (run.revision if plot == "loss" else run.eval_revision, settings)
                if force or self._drawn.get((run.run_id, plot)) != key:
                    self._drawn[(run.run_id, plot)] = key
                    self._draw_run(run, plot)
        for k in [k for k in self._items if k[0] not in shown_ids]:
            self._drop(k)
        self._drawn = {k: v for k, v in self._drawn.items() if k[0] in shown_ids}
        self._update_ranges(which)

    def prepare(self, runs: list[RunState], selected: RunState | None) -> None:
        """At a run's start (on the click, not while it trains): create its curves and legend entries and fix
        the x axes to its planned steps, so that the first data repaint only curves, not the axes."""
        self.refresh(runs, selected, force=True)
        planned = self._planned_x()
        if planned is None:
            return
        for name, plot in self.plots.items():
            if name in self._user_zoomed:
                continue
            old = self._ranges.get(name, (None, None))
            self._ranges[name] = ((0.0, planned), old[1])
            plot.setXRange(0.0, planned, padding=0)

    def fit_to_data(self) -> None:
        """Forget the user's zoom and fit every plot to its data again."""
        self._user_zoomed.clear()
        self._ranges.clear()
        self._update_ranges()

    def _set_log(self, name: str, plot, on: bool) -> None:
        plot.setLogMode(y=on)
        self._ranges.pop(name, None)
        self._update_ranges()

    def _update_ranges(self, which: tuple[str, ...] = ("loss", "bound", "gap")) -> None:
        """Move a plot's view only when its data left the current range (see sticky_range)."""
        xs, ys = {n: [] for n in self.plots}, {n: [] for n in self.plots}
        for (rid, plot, series), item in self._items.items():
            if plot not in which:
                continue
            x, y = item.getData()
            if x is None or not len(x):
                continue
            x, y = np.asarray(x, float), np.asarray(y, float)
            if self.log_boxes[plot].isChecked():
                y = np.log10(y[y > 0]) if np.any(y > 0) else np.array([])
            xs[plot].append(x[np.isfinite(x)])
            ys[plot].append(y[np.isfinite(y)])
        for name, plot in self.plots.items():
            if name not in which or name in self._user_zoomed or not xs[name]:
                continue
            x, y = np.concatenate(xs[name]), np.concatenate(ys[name])
            if not len(x) or not len(y):
                continue
            old = self._ranges.get(name, (None, None))
            planned = self._planned_x()
            if planned is not None and float(x.max()) <= planned:
                # the whole run's steps are known: fix the x axis once, so no x axis repaints while it trains
                new_x = None if old[0] == (0.0, planned) else (0.0, planned)
            else:
                new_x = sticky_interval(old[0], float(x.min()), float(x.max()), anchor_zero=True)
            new_y = sticky_interval(old[1], float(y.min()), float(y.max()))
            if new_x is None and new_y is None:
                continue
            rx, ry = new_x or old[0], new_y or old[1]
            self._ranges[name] = (rx, ry)
            plot.setRange(xRange=rx, yRange=ry, padding=0, update=True)

    def _planned_x(self) -> float | None:
        """The x extent of the shown runs when it is known up front: their planned steps on the step axis."""
        if self.x_axis.currentIndex() != 0:
            return None
        planned = [r.planned_steps for r in self._runs if r.visible and not r.is_sweep]
        if not planned or any(p is None for p in planned):
            return None
        return float(max(planned))

    def _curve(self, run: RunState, plot: str, series: str, **style) -> pg.PlotDataItem:
        key = (run.run_id, plot, series)
        if key not in self._items:
            name = style.pop("name", None)
            item = pg.PlotDataItem(name=name, **style)
            self.plots[plot].addItem(item)
            self._items[key] = item
        return self._items[key]

    def _drop(self, key: tuple) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.plots[key[1]].removeItem(item)
            if self.plots[key[1]].legend is not None:
                self.plots[key[1]].legend.removeItem(item)

    def _x_of_evals(self, run: RunState) -> np.ndarray:
        key = "wall" if self.x_axis.currentIndex() == 1 else "step"
        return np.array([_num(ev.get(key)) for ev in run.evals], dtype=float)

    def _draw_run(self, run: RunState, plot: str) -> None:
        colour = run.colour
        label = f"#{run.run_id}"
        ex = self._x_of_evals(run)
        if plot == "loss":
            self._draw_loss(run, colour, label, ex)
        elif plot == "bound" and len(ex):
            self._draw_bound(run, colour, label, ex)
        elif plot == "gap" and len(ex):
            self._draw_gap(run, colour, label, ex)

    def _draw_loss(self, run: RunState, colour, label: str, ex: np.ndarray) -> None:
        x, y = points(run.walls if self.x_axis.currentIndex() == 1 else run.steps, run.losses)
        raw = self._curve(run, "loss", "raw", pen=pg.mkPen((*colour, 35)))
        smooth = self._curve(run, "loss", "smooth", pen=pg.mkPen(colour, width=2), name=f"{label} train")
        if len(x):
            sx, sy = decimate(x, debiased_ema(y, self.smoothing.value()), MAX_DISPLAY_POINTS)
            rx, ry = decimate(x, y, MAX_DISPLAY_POINTS)
            raw.setData(rx, ry, skipFiniteCheck=True)
            smooth.setData(sx, sy, skipFiniteCheck=True)
        if not len(ex):
            return
        held = self._curve(run, "loss", "held-out", pen=None, symbol="o", symbolSize=7,
                           symbolBrush=colour, name=f"{label} held-out")
        if run.is_vae:
            held.setData(*points(ex, [_num(ev.get("rec_test")) + _num(ev.get("kl_test")) for ev in run.evals]))
        else:
            held.setData(*points(ex, [ev.get("dsm_test") for ev in run.evals]))

    def _draw_bound(self, run: RunState, colour, label: str, ex: np.ndarray) -> None:
        if run.is_vae:
            for key, text, style, width in VAE_BOUND_CURVES:
                self._curve(run, "bound", key, pen=pg.mkPen(colour, width=width, style=style),
                            name=f"{label} {text}").setData(*points(ex, [ev.get(key) for ev in run.evals]))
            return
        self._curve(run, "bound", "total", pen=pg.mkPen(colour, width=2.5), symbol="o", symbolSize=5,
                    symbolBrush=colour, name=f"{label} bound (R={run.config.R:g})").setData(
                        *points(ex, [ev.get("bound") for ev in run.evals]))
        mode = self.terms_mode.currentText()
        if mode == "Total":
            for name in TERM_STYLES:
                self._drop((run.run_id, "bound", name))
        else:
            terms = [bound_terms(ev) for ev in run.evals]
            cumulative = np.zeros(len(ex))
            for name, style in TERM_STYLES.items():
                values = np.array([t[name] for t in terms])
                cumulative = cumulative + values
                ys = cumulative.copy() if mode == "Stacked" else values
                label_text = name if name in ("score_matching", "encoder_info") else f"√2R·{name}"
                self._curve(run, "bound", name, pen=pg.mkPen(colour, width=1.2, style=style),
                            name=f"{label} {label_text}").setData(*points(ex, ys))

    def _draw_gap(self, run: RunState, colour, label: str, ex: np.ndarray) -> None:
        if run.is_vae:
            for key, text, style in (("gap", "test curve − encoder-only bound", Qt.PenStyle.SolidLine),
                                     ("rec_gap", "rec test − train", Qt.PenStyle.DashLine),
                                     ("neg_elbo_gap", "−ELBO test − train", Qt.PenStyle.DotLine)):
                self._curve(run, "gap", key, pen=pg.mkPen(colour, width=1.5, style=style),
                            name=f"{label} {text}").setData(*points(ex, [ev.get(key) for ev in run.evals]))
            return
        metric, text = ("test_bpd", "test BPD") if "test_bpd" in run.evals[-1] else ("test_kl", "test KL")
        self._curve(run, "gap", metric, pen=pg.mkPen(colour, width=2), symbol="s", symbolSize=6,
                    symbolBrush=colour, name=f"{label} {text}").setData(*points(ex, [ev.get(metric) for ev in run.evals]))
        self._curve(run, "gap", "dsm_gap", pen=pg.mkPen(colour, width=1, style=Qt.PenStyle.DashLine),
                    name=f"{label} DSM gap").setData(*points(ex, [ev.get("dsm_gap") for ev in run.evals]))

    def set_cursor(self, x: float) -> None:
        """Move the linked cursor of all three plots to x and show the selected run's values there."""
        for line in self.cursors.values():
            line.setValue(x)
        run = self._selected
        if run is None or run.is_sweep:
            self.cursor_label.setText(f"x = {x:.4g}")
            return
        parts = [f"x = {x:.4g}"]
        xs = np.asarray(run.walls if self.x_axis.currentIndex() == 1 else run.steps, dtype=float)
        if len(xs):
            i = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
            parts.append(f"loss {fmt(run.losses[i])}")
        ex = self._x_of_evals(run)
        if len(ex):
            j = int(np.argmin(np.abs(ex - x)))
            ev = run.evals[j]
            if run.is_vae:
                parts.append(f"epoch {ev['epoch']}: bounds {fmt(ev.get('bound_encoder_only'), '.2f')} / "
                             f"{fmt(ev.get('bound_encoder_generator'), '.2f')}, test curve {fmt(ev.get('test_curve'), '.2f')}")
            else:
                parts.append(f"eval @ {ev['step']}: bound {fmt(ev.get('bound'), '.3f')}, {metric_text(ev)}")
        self.cursor_label.setText("   ".join(parts))

    def _mouse_moved(self, pos) -> None:
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(pos):
                x = plot.vb.mapSceneToView(pos).x()
                if plot.ctrl.logXCheck.isChecked():
                    x = 10**x
                self.set_cursor(x)
                return
