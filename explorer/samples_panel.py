"""Generated samples over the training points, with a slider through every evaluation (all are kept)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSlider, QVBoxLayout, QWidget

from .model import IMAGES, Entry, TrainingRun
from .model.text import fmt, metric_text
from .training_points import training_points


class SamplesPanel(QWidget):
    """Scatter of the focused run's generated points at the chosen evaluation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget(title="Samples (grey: training points)")
        self.plot.setAspectLocked(True)
        self.train_item = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(120, 120, 120, 120))
        self.gen_item = pg.ScatterPlotItem(size=3, pen=None)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image_item)
        self.plot.addItem(self.train_item)
        self.plot.addItem(self.gen_item)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.label = QLabel("no evaluation yet")
        self.label.setWordWrap(True)  # long captions wrap instead of widening the window
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, stretch=1)
        layout.addWidget(self.slider)
        layout.addWidget(self.label)
        self.slider.valueChanged.connect(self._show_index)
        self._run: Entry | None = None
        self._count = 0
        self._follow_latest = True

    def refresh(self, run: Entry | None) -> None:
        """Follow the selected run; jump to the newest evaluation unless the user scrubbed back."""
        if run is not self._run:
            self._run, self._count, self._follow_latest = run, -1, True
            self.image_item.setVisible(False)
            pts = training_points(run, lambda r=run: self._points_ready(r)) if run is not None else None
            self.train_item.setData(pos=pts if pts is not None and pts.shape[1] == 2 else np.zeros((0, 2)))
        samples = run.samples if isinstance(run, TrainingRun) else []
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
            self.label.setText("a sweep: see the Sweep tab, and the T slider for the samples at each grid T")

    def _points_ready(self, run: Entry) -> None:
        """The training points arrived from their worker: draw them if the run is still shown."""
        if run is self._run:
            pts = training_points(run)
            self.train_item.setData(pos=pts if pts is not None and pts.shape[1] == 2 else np.zeros((0, 2)))

    def _show_index(self, index: int) -> None:
        run = self._run
        if not isinstance(run, TrainingRun) or not run.samples or index >= len(run.samples):
            self.gen_item.setData(pos=np.zeros((0, 2)))
            if run is None or not run.is_sweep:
                self.label.setText("no evaluation yet")
            return
        self._follow_latest = index == len(run.samples) - 1
        pts = run.samples[index]
        ev = run.evals[index]
        if pts.ndim == 2 and run.kind == IMAGES:  # image diffusion: flat pixels in [0, 1]
            pts = as_images(pts)
        if pts.ndim in (3, 4):  # images: a grid, shown upright
            self.gen_item.setData(pos=np.zeros((0, 2)))
            self.image_item.setImage(image_grid(pts[:MAX_GRID])[::-1], levels=(0.0, 1.0))
            self.image_item.setVisible(True)
            if run.kind == IMAGES:
                self.label.setText(f"evaluation {index + 1}/{len(run.samples)} at step {ev['step']}: generated images; "
                                   f"test BPD {fmt(ev.get('test_bpd'), '.3f')}, bound {fmt(ev.get('bound'), '.4g')} "
                                   f"(R={fmt(ev.get('R'), 'g')})")
            else:
                self.label.setText(f"epoch {ev['epoch']} ({index + 1}/{len(run.samples)}): generated images; bounds "
                                   f"{fmt(ev.get('bound_encoder_only'), '.2f')} / {fmt(ev.get('bound_encoder_generator'), '.2f')}, "
                                   f"test curve {fmt(ev.get('test_curve'), '.2f')}")
            return
        self.image_item.setVisible(False)
        self.gen_item.setData(pos=pts[:, :2], brush=pg.mkBrush(*run.colour, 160))
        self.label.setText(f"evaluation {index + 1}/{len(run.samples)} at step {ev['step']}: "
                           f"{metric_text(ev)}, bound {fmt(ev.get('bound'), '.3f')} (R={fmt(ev.get('R'), 'g')})")


MAX_GRID = 64


def as_images(flat: np.ndarray) -> np.ndarray:
    """Flat (n, C*H*W) square images back to (n, H, W) for one channel or (n, H, W, 3) for colour."""
    n, d = flat.shape
    side = int(round(np.sqrt(d)))
    if side * side == d:
        return flat.reshape(n, side, side)
    side = int(round(np.sqrt(d / 3)))
    if 3 * side * side == d:
        return flat.reshape(n, 3, side, side).transpose(0, 2, 3, 1)
    raise ValueError(f"samples of dimension {d} are not square images")


def image_grid(images: np.ndarray, pad: int = 1) -> np.ndarray:
    """(n, h, w) or (n, h, w, c) images tiled into a near-square grid with a pad of 1 between them."""
    n, h, w = images.shape[:3]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.ones((rows * (h + pad) - pad, cols * (w + pad) - pad, *images.shape[3:]), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return grid
