"""The training plots: loss, bound (total, terms or stacked) and test gap of the runs on show, drawn from the
model's curves (explorer.model.curves) under the view state, with a linked cursor.

The widgets here only set view-state fields and map curves to pyqtgraph items; what is drawn is decided in the
Qt-free model, so the same state drives the screen and the exported figure.
"""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QGraphicsItem, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget,
)
from superqt import QLabeledDoubleSlider

from core.smoothing import MAX_WEIGHT

from .model import PLOTS, SPECS, Entry, TrainingRun, ViewState
from .model.curves import Curve, build_curves, data_bounds, eval_x, log_ticks, loss_x, shown_runs, style_key
from .model.kinds import KINDS
from .model.labels import legend_labels
from .model.text import fmt, metric_text
from .sticky_range import sticky_interval

PEN_STYLES = {"solid": Qt.PenStyle.SolidLine, "dash": Qt.PenStyle.DashLine, "dot": Qt.PenStyle.DotLine,
              "dashdot": Qt.PenStyle.DashDotLine, "dashdotdot": Qt.PenStyle.DashDotDotLine}
TITLES = {"loss": "Loss", "bound": "Bound", "gap": "Test gap"}
X_AXES = (("step", "Step / epoch"), ("wall", "Wall time (s)"))
TERMS = (("total", "Total"), ("terms", "Terms"), ("stacked", "Stacked"))
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


def _combo(items) -> QComboBox:
    box = QComboBox()
    for key, text in items:
        box.addItem(text, key)
    return box


class MetricPlots(QWidget):
    """Three linked plots; ``refresh(entries)`` redraws the runs whose data or labels changed."""

    def __init__(self, view: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.x_axis = _combo(X_AXES)
        self.kind = _combo([(k, SPECS[k].title) for k in KINDS])
        self.kind.setToolTip("runs of different kinds never share an axis: choose which kind the plots show")
        self.terms_mode = _combo(TERMS)
        self.terms_mode.setCurrentIndex(1)
        self.focus = QCheckBox("focused run")
        self.focus.setToolTip("show only the focused run, its curves told apart by colour")
        self.smoothing = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.smoothing.setRange(0.0, MAX_WEIGHT)
        self.smoothing.setValue(view.smoothing)
        self.fit_button = QPushButton("Fit")
        self.fit_button.setToolTip("Fit every plot's range to its data")
        # Short rows rather than one long one, so that the plots fit beside the form in a 1024 px window.
        for box in (self.kind, self.x_axis, self.terms_mode):
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(7)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("show:"))
        row1.addWidget(self.kind, stretch=1)
        row1.addWidget(self.focus)
        row1.addWidget(self.fit_button)
        row1b = QHBoxLayout()
        for label, widget in (("x:", self.x_axis), ("bound:", self.terms_mode)):
            row1b.addWidget(QLabel(label))
            row1b.addWidget(widget, stretch=1)
        row2 = QHBoxLayout()
        row2.addWidget(QLabel("smoothing:"))
        row2.addWidget(self.smoothing, stretch=1)
        row2.addWidget(QLabel("log-y:"))

        self.graphics = TimedGraphicsLayoutWidget()
        self.plots: dict[str, pg.PlotItem] = {}
        self.log_boxes: dict[str, QCheckBox] = {}
        self.keys: dict[str, str] = {name: "" for name in PLOTS}  # which dash style is which curve, per plot
        for row, name in enumerate(PLOTS):
            plot = self.graphics.addPlot(row=row, col=0, title=TITLES[name])
            self.plots[name] = plot
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.addLegend(offset=(-10, 10), labelTextSize="8pt", brush=(0, 0, 0, 170))
            plot.setClipToView(True)
            plot.setDownsampling(auto=True, mode="peak")
            plot.disableAutoRange()
            plot.hideButtons()
            cache_axes(plot)
            plot.vb.sigRangeChangedManually.connect(lambda *_, n=name: self._user_zoomed.add(n))
            plot.vb.sigYRangeChanged.connect(lambda *_, n=name: self._label_log_axis(n))
            box = QCheckBox(name)
            box.toggled.connect(lambda on, n=name: view.set_log_y(n, on))
            row2.addWidget(box)
            self.log_boxes[name] = box
        self.loss, self.bound, self.gap = (self.plots[n] for n in PLOTS)
        self.bound.setXLink(self.loss)
        self.gap.setXLink(self.loss)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.key_label = QLabel("")  # below the plots, wrapped: a long line inside the plots would widen them
        self.key_label.setWordWrap(True)
        self.key_label.setStyleSheet("color: #555; font-size: 8pt;")
        self.cursor_label = QLabel(" ")
        self.cursor_label.setWordWrap(True)
        self.cursors = {}
        for name, plot in self.plots.items():
            line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((150, 150, 150), style=Qt.PenStyle.DashLine))
            plot.addItem(line, ignoreBounds=True)
            self.cursors[name] = line
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row1)
        layout.addLayout(row1b)
        layout.addLayout(row2)
        layout.addWidget(self.note)
        layout.addWidget(self.graphics, stretch=1)
        layout.addWidget(self.key_label)
        layout.addWidget(self.cursor_label)
        self._items: dict[tuple, pg.PlotDataItem] = {}
        self._curves: dict[tuple[int, str], list[Curve]] = {}
        self._signatures: dict[tuple[int, str], tuple] = {}
        self._legend_rows: dict[str, list] = {n: [] for n in PLOTS}
        self._ranges: dict[str, tuple] = {}
        self._user_zoomed: set[str] = set()
        self._entries: list[Entry] = []
        self.fit_button.clicked.connect(self.fit_to_data)
        self.x_axis.currentIndexChanged.connect(lambda *_: setattr(view, "x_axis", self.x_axis.currentData()))
        self.kind.currentIndexChanged.connect(lambda *_: setattr(view, "kind", self.kind.currentData()))
        self.terms_mode.currentIndexChanged.connect(lambda *_: setattr(view, "terms_mode", self.terms_mode.currentData()))
        self.focus.toggled.connect(lambda on: setattr(view, "focus_mode", on))
        self.smoothing.valueChanged.connect(lambda value: setattr(view, "smoothing", float(value)))
        view.events.all.connect(self._view_changed)
        self._sync_widgets()

    # -- the view state ------------------------------------------------------------------------------
    def _sync_widgets(self) -> None:
        """Show the view state in the controls (it may be set from elsewhere: a test, a restored session)."""
        v = self.view
        for box, value in ((self.x_axis, v.x_axis), (self.terms_mode, v.terms_mode), (self.kind, v.kind)):
            index = box.findData(value)
            if index >= 0 and index != box.currentIndex():
                box.blockSignals(True)
                box.setCurrentIndex(index)
                box.blockSignals(False)
        for widget, value in [(self.focus, v.focus_mode)] + [(self.log_boxes[n], n in v.log_y) for n in PLOTS]:
            if widget.isChecked() != value:
                widget.blockSignals(True)
                widget.setChecked(value)
                widget.blockSignals(False)
        if abs(self.smoothing.value() - v.smoothing) > 1e-9:
            self.smoothing.blockSignals(True)
            self.smoothing.setValue(v.smoothing)
            self.smoothing.blockSignals(False)

    def _view_changed(self, info) -> None:
        self._sync_widgets()
        name = info.signal.name
        if name == "log_y":
            for plot_name, plot in self.plots.items():
                on = plot_name in self.view.log_y
                if plot.ctrl.logYCheck.isChecked() != on:
                    plot.setLogMode(y=on)
                    self._ranges.pop(plot_name, None)
                    self._user_zoomed.discard(plot_name)
                    self._label_log_axis(plot_name)
        if name in ("x_axis", "kind"):
            self._ranges.clear()
            self._user_zoomed.clear()
        if name in ("selected", "hidden"):
            return  # the window redraws what these change
        if name != "focused" or self.view.focus_mode:
            self.refresh(self._entries, force=True)

    def _label_log_axis(self, name: str) -> None:
        """A log y axis gets a few readable labels (log_ticks); a linear one, pyqtgraph's own."""
        axis = self.plots[name].getAxis("left")
        if name not in self.view.log_y:
            axis.setTicks(None)
            return
        lo, hi = self.plots[name].vb.viewRange()[1]
        axis.setTicks([log_ticks(lo, hi), []])

    # -- drawing -------------------------------------------------------------------------------------
    def refresh(self, entries: list[Entry], force: bool = False, which: tuple[str, ...] = PLOTS) -> None:
        """Redraw, in the named plots, the runs on show whose data, label or view settings changed."""
        self._entries = list(entries)
        self._update_kinds()
        runs = shown_runs(self._entries, self.view)
        settings = (self.view.x_axis, self.view.terms_mode, self.view.smoothing, self.view.focus_mode, self.view.kind)
        labels = legend_labels(runs)
        keep_ids = set(labels)
        for plot in which:
            stale = set()
            for run in runs:
                data = (len(run.steps), len(run.evals)) if plot == "loss" else (len(run.evals),)
                signature = (data, settings, labels[run.run_id])
                if force or self._signatures.get((run.run_id, plot)) != signature:
                    self._signatures[(run.run_id, plot)] = signature
                    stale.add(run.run_id)
            if stale:
                fresh = build_curves(self._entries, self.view, (plot,), stale)
                for rid in stale:
                    self._curves[(rid, plot)] = [c for c in fresh if c.run_id == rid]
                    self._draw(rid, plot)
        for key in [k for k in self._items if k[0] not in keep_ids]:
            self._drop(key)
        for key in [k for k in self._curves if k[0] not in keep_ids]:
            self._curves.pop(key)
            self._signatures.pop(key, None)
        self._update_legends()
        self._update_labels(runs)
        self._update_ranges(which)

    def _draw(self, run_id: int, plot: str) -> None:
        curves = self._curves[(run_id, plot)]
        wanted = {(c.run_id, c.plot, c.key) for c in curves}
        for key in [k for k in self._items if k[0] == run_id and k[1] == plot and k not in wanted]:
            self._drop(key)
        for c in curves:
            self._item(c).setData(c.x, c.y, skipFiniteCheck=True)

    def _item(self, c: Curve) -> pg.PlotDataItem:
        key = (c.run_id, c.plot, c.key)
        pen = None if c.style == "none" else pg.mkPen(c.colour, width=c.width, style=PEN_STYLES[c.style])
        look = (pen is None, c.colour, c.width, c.style, c.symbol)
        item = self._items.get(key)
        if item is None:
            item = pg.PlotDataItem()
            self.plots[c.plot].addItem(item)
            self._items[key] = item
        if getattr(item, "_look", None) != look:
            item._look = look
            item.setPen(pen)
            if c.symbol:
                markers_only = pen is None  # e.g. the held-out loss: outlined, so they stand out on the curve
                item.setSymbol(c.symbol)
                item.setSymbolSize(8 if markers_only else 6)
                item.setSymbolBrush(pg.mkBrush(*c.colour[:3]))
                item.setSymbolPen(pg.mkPen((255, 255, 255), width=1.2) if markers_only else None)
            else:
                item.setSymbol(None)
        return item

    def _drop(self, key: tuple) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.plots[key[1]].removeItem(item)

    def legend_entries(self, plot: str) -> list[str]:
        """The legend's labels in the named plot, in order (one per run in the comparison view)."""
        return [label for _, label in self._legend_rows[plot]]

    def _update_legends(self) -> None:
        for name, plot in self.plots.items():
            rows = [(self._items[(c.run_id, c.plot, c.key)], c.legend) for key in sorted(self._curves)
                    for c in self._curves[key]
                    if c.plot == name and c.legend is not None and (c.run_id, c.plot, c.key) in self._items]
            if [(id(i), t) for i, t in rows] != [(id(i), t) for i, t in self._legend_rows[name]]:
                plot.legend.clear()
                plot.legend.setColumnCount(1 if len(rows) <= 2 else 2 if len(rows) <= 8 else 3)  # short, so it fits
                for item, text in rows:
                    plot.legend.addItem(item, text)
                self._legend_rows[name] = rows

    def _update_kinds(self) -> None:
        """Offer only the kinds present; show the focused run's kind when none is chosen yet."""
        present = {e.kind for e in self._entries if isinstance(e, TrainingRun)}
        for i, kind in enumerate(KINDS):
            self.kind.model().item(i).setEnabled(kind in present)
        if self.view.kind not in present and present:
            focused = next((e for e in self._entries if e.run_id == self.view.focused and isinstance(e, TrainingRun)), None)
            self.view.kind = focused.kind if focused else sorted(present, key=KINDS.index)[0]

    def _update_labels(self, runs: list[TrainingRun]) -> None:
        kind = self.view.kind
        spec = SPECS.get(kind) if kind else None
        other = [e for e in self._entries if isinstance(e, TrainingRun) and e.kind != kind]
        notes = []
        if other:
            kinds = sorted({SPECS[e.kind].title for e in other})
            notes.append(f"{len(other)} run(s) of another kind ({', '.join(kinds)}) not shown: choose them under “show”")
        if any(e.is_sweep for e in self._entries):
            notes.append("sweeps are in the Sweep tab")
        self.note.setText("; ".join(notes))
        self.note.setVisible(bool(notes))
        if spec is None:
            return
        x_label = "wall time (s)" if self.view.x_axis == "wall" else spec.x_label
        for name, plot in self.plots.items():
            plot.setLabel("bottom", x_label)
            plot.setLabel("left", spec.gap_unit if name == "gap" else spec.y_unit)
            self.keys[name] = style_key(spec, name, self.view) if runs else ""
        self.key_label.setText("<br>".join(f"<b>{TITLES[n]}</b> — {k}" for n, k in self.keys.items() if k))
        self.key_label.setVisible(any(self.keys.values()))

    def fit_to_data(self) -> None:
        """Forget the user's zoom and fit every plot to its data again."""
        self._user_zoomed.clear()
        self._ranges.clear()
        self._update_ranges(PLOTS, fit=True)

    def _all_curves(self) -> list[Curve]:
        return [c for curves in self._curves.values() for c in curves]

    def _update_ranges(self, which: tuple[str, ...] = PLOTS, fit: bool = False) -> None:
        """Move a plot's view only when its data left the current range (see sticky_range); ``fit`` sets the
        range to the data. Ranges are in view coordinates: log10 of y on a log axis."""
        curves = self._all_curves()
        planned = self._planned_x()
        for name, plot in self.plots.items():
            if name not in which or name in self._user_zoomed:
                continue
            extent = data_bounds(curves, name, name in self.view.log_y)
            if extent is None:
                continue
            (x_lo, x_hi), (y_lo, y_hi) = extent
            old = (None, None) if fit else self._ranges.get(name, (None, None))
            if planned is not None and x_hi <= planned:
                # the whole run's steps are known: fix the x axis once, so no x axis repaints while it trains
                new_x = None if old[0] == (0.0, planned) else (0.0, planned)
            else:
                new_x = sticky_interval(old[0], x_lo, x_hi, anchor_zero=self.view.x_axis == "step")
            entries = len(self._legend_rows[name])
            rows = entries if entries <= 2 else -(-entries // (2 if entries <= 8 else 3))
            if rows:  # room above the data for the legend, so that it does not cover the curves
                y_hi = y_hi + (y_hi - y_lo) * min(0.6, 0.15 * rows)
            new_y = sticky_interval(old[1], y_lo, y_hi)
            if new_x is None and new_y is None:
                continue
            rx, ry = new_x or old[0], new_y or old[1]
            self._ranges[name] = (rx, ry)
            plot.setRange(xRange=rx, yRange=ry, padding=0, update=True)

    def view_range(self, plot: str) -> tuple[tuple[float, float], tuple[float, float]]:
        """The plot's shown x and y range in data units (y un-logged on a log axis)."""
        (x0, x1), (y0, y1) = self.plots[plot].vb.viewRange()
        if plot in self.view.log_y:
            y0, y1 = 10.0**y0, 10.0**y1
        return (x0, x1), (y0, y1)

    def prepare(self, entries: list[Entry]) -> None:
        """At a run's start (on the click, not while it trains): create its curves and legend entries and fix
        the x axes to its planned steps, so that the first data repaint only curves, not the axes."""
        self.refresh(entries, force=True)
        planned = self._planned_x()
        if planned is None:
            return
        for name, plot in self.plots.items():
            if name in self._user_zoomed:
                continue
            old = self._ranges.get(name, (None, None))
            self._ranges[name] = ((0.0, planned), old[1])
            plot.setXRange(0.0, planned, padding=0)

    def _planned_x(self) -> float | None:
        """The x extent of the shown runs while any of them trains, known up front: their planned steps (epochs for
        a VAE)."""
        if self.view.x_axis != "step":
            return None
        runs = shown_runs(self._entries, self.view)
        if not any(r.active for r in runs):
            return None  # finished, stopped or reopened runs: fit their data, not what they had planned
        planned = [None if r.planned_steps is None else r.planned_steps / r.steps_per_epoch for r in runs]
        if not planned or any(p is None for p in planned):
            return None
        return float(max(planned))

    # -- the cursor ----------------------------------------------------------------------------------
    def set_cursor(self, x: float) -> None:
        """Move the linked cursor of all three plots to x and show the focused run's values there."""
        for line in self.cursors.values():
            line.setValue(x)
        run = next((e for e in self._entries if e.run_id == self.view.focused), None)
        parts = [f"x = {x:.4g}"]
        if not isinstance(run, TrainingRun):
            self.cursor_label.setText(parts[0])
            return
        xs = loss_x(run, self.view)
        if len(xs):
            i = int(np.clip(np.searchsorted(xs, x), 0, len(xs) - 1))
            parts.append(f"loss {fmt(run.losses[i])}")
        ex = eval_x(run, self.view)
        if len(ex):
            ev = run.evals[int(np.nanargmin(np.abs(ex - x))) if np.isfinite(ex).any() else 0]
            spec = run.spec
            where = spec.eval_where.format(epoch=ev.get("epoch"), step=ev.get("step"))
            main = spec.bound_total[0]
            parts.append(f"{where}: {main.label} {fmt(ev.get(main.key), '.3f')}, "
                         f"{metric_text(ev, spec.test_key, spec.test_label)}")
        self.cursor_label.setText("   ".join(parts))

    def _mouse_moved(self, pos) -> None:
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(pos):
                self.set_cursor(plot.vb.mapSceneToView(pos).x())
                return
