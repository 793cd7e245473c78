"""Generated samples over the training points, with a slider through every evaluation (all are kept)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSlider, QVBoxLayout, QWidget

from .run_state import RunState
from .training_points import training_points


class SamplesPanel(QWidget):
    """Scatter of the selected run's generated points at the chosen evaluation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(title="Generated (colour) over training points (grey)")
        self.plot.setAspectLocked(True)
        self.train_item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(120, 120, 120, 120))
        self.gen_item = pg.ScatterPlotItem(size=3, pen=None)
        self.plot.addItem(self.train_item)
        self.plot.addItem(self.gen_item)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.label = QLabel("no evaluation yet")
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, stretch=1)
        layout.addWidget(self.slider)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(self._show_index)
        self._run: RunState | None = None
        self._count = 0
        self._follow_latest = True

    def refresh(self, run: RunState | None) -> None:
        """Follow the selected run; jump to the newest evaluation unless the user scrubbed back."""
        if run is not self._run:
            self._run, self._count, self._follow_latest = run, -1, True
            pts = training_points(run) if run is not None else None
            self.train_item.setData(pos=pts if pts is not None and pts.shape[1] == 2 else np.zeros((0, 2)))
        samples = [] if run is None or run.is_sweep else run.samples
        if len(samples) == self._count:
            return
        follow = self._follow_latest or self.slider.value() == self._count - 1
        self._count = len(samples)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, self._count - 1))
        self.slider.setEnabled(self._count > 1)
        if follow:
            self.slider.setValue(self._count - 1)
        self.slider.blockSignals(False)
        self._show_index(self.slider.value())
        if run is not None and run.is_sweep:
            self.label.setText("a sweep: see the T explorer for the samples at each grid T")

    def _show_index(self, index: int) -> None:
        run = self._run
        if run is None or not run.samples or index >= len(run.samples):
            self.gen_item.setData(pos=np.zeros((0, 2)))
            if run is None or not run.is_sweep:
                self.label.setText("no evaluation yet")
            return
        self._follow_latest = index == len(run.samples) - 1
        pts = run.samples[index]
        self.gen_item.setData(pos=pts[:, :2], brush=pg.mkBrush(*run.colour, 160))
        ev = run.evals[index]
        self.label.setText(f"evaluation {index + 1}/{len(run.samples)} at step {ev['step']}: "
                           f"test KL {ev['test_kl']:.3f}, bound {ev['bound']:.3f} (R={ev['R']:g})")
