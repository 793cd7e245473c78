"""The T slider: the encoder's view E_T#P (closed form, instant), a run's reverse trajectory, and for a sweep
the bound and test KL against T with the samples of the nearest grid T. Nothing is sampled on a slider move:
the encoder view uses noise drawn once, trajectories and sweep samples were recorded during the runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider

from core.encoder_view import encoder_view, encoder_view_images, fixed_noise
from core.errors import RunFileError
from core.io.run_dir import read_run
from core.metrics.near_best import mean_se, near_best

from .run_state import RunState, fmt, metric_text
from .samples_panel import MAX_GRID, as_images, image_grid
from .training_points import training_points

ENCODER, TRAJECTORY = "Encoder E_T#P̂ (closed form)", "Generator trajectory (reverse SDE)"
T_MAX = 2.0
MIN_SLIDER_WIDTH = 200  # px: a T slider you can drag precisely
PLAY_FPS = 20


def test_metric(run: RunState) -> tuple[str, str]:
    """The test metric a diffusion run is judged by: BPD for images, the KDE test KL for points."""
    return ("test_bpd", "test BPD") if not run.is_vae and run.config.is_images else ("test_kl", "test KL")


class TExplorer(QWidget):
    """A labeled float slider for T with play, and the views it drives."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0.0, T_MAX)
        self.slider.setDecimals(3)
        self.slider.setValue(0.6)
        self.play = QPushButton("▶ Play")
        self.play.setCheckable(True)
        self.view = QComboBox()
        self.view.addItems([ENCODER, TRAJECTORY])
        self.slider.setMinimumWidth(MIN_SLIDER_WIDTH)
        top = QHBoxLayout()
        top.addWidget(QLabel("T"))
        top.addWidget(self.slider, stretch=1)
        top.addWidget(self.play)
        view_row = QHBoxLayout()
        view_row.addWidget(QLabel("View"))
        view_row.addWidget(self.view, stretch=1)

        self.scatter_plot = pg.PlotWidget()
        self.scatter_plot.setAspectLocked(True)
        self.scatter = pg.ScatterPlotItem(size=3, pen=None)
        self.scatter_plot.addItem(self.scatter)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setVisible(False)
        self.scatter_plot.addItem(self.image)
        self.sweep_plot = pg.PlotWidget(title="Sweep against T")
        self.sweep_plot.showGrid(x=True, y=True, alpha=0.2)
        self.bound_curve = self.sweep_plot.plot(pen=pg.mkPen((52, 101, 164), width=2), symbol="o", symbolSize=6)
        self.bound_band = pg.ErrorBarItem(pen=pg.mkPen((52, 101, 164, 120)))
        self.sweep_plot.addItem(self.bound_band)
        self.kl_view = pg.ViewBox()
        self.sweep_plot.scene().addItem(self.kl_view)
        self.sweep_plot.getAxis("right").linkToView(self.kl_view)
        self.sweep_plot.showAxis("right")
        self.sweep_plot.getAxis("right").setLabel("test KL")
        self.sweep_plot.getAxis("left").setLabel("bound")
        self.kl_view.setXLink(self.sweep_plot)
        self.kl_curve = pg.PlotDataItem(pen=pg.mkPen((204, 0, 0), width=2), symbol="s", symbolSize=6)
        self.kl_view.addItem(self.kl_curve)
        self.kl_band = pg.ErrorBarItem(pen=pg.mkPen((204, 0, 0, 120)))  # +-2 SE of the test metric's seed mean
        self.kl_view.addItem(self.kl_band)
        self.sweep_plot.getViewBox().sigResized.connect(
            lambda: self.kl_view.setGeometry(self.sweep_plot.getViewBox().sceneBoundingRect()))
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((90, 90, 90), style=Qt.PenStyle.DashLine))
        self.sweep_plot.addItem(self.cursor, ignoreBounds=True)
        self.star_bound = pg.ScatterPlotItem(size=16, symbol="star", brush=pg.mkBrush(52, 101, 164))
        self.star_kl = pg.ScatterPlotItem(size=16, symbol="star", brush=pg.mkBrush(204, 0, 0))
        self.sweep_plot.addItem(self.star_bound)
        self.kl_view.addItem(self.star_kl)
        self.caption = QLabel(" ")
        self.caption.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(view_row)
        layout.addWidget(self.scatter_plot, stretch=2)
        layout.addWidget(self.sweep_plot, stretch=1)
        layout.addWidget(self.caption)

        self.timer = QTimer(self)
        self.timer.setInterval(1000 // PLAY_FPS)
        self.timer.timeout.connect(self._advance)
        self.play.toggled.connect(self._toggle_play)
        self.slider.valueChanged.connect(lambda *_: self.update_view())
        self.view.currentIndexChanged.connect(lambda *_: self.update_view())
        self._run: RunState | None = None
        self._noise: np.ndarray | None = None
        self._sample_cache: dict[tuple, np.ndarray | None] = {}
        self._drawn_revision = None
        self._sweep_stars: tuple[float | None, float | None] = (None, None)
        self._near_best: list[float] = []
        self.sweep_plot.setVisible(False)

    def set_run(self, run: RunState | None) -> None:
        """Follow the selected run (a single run or a sweep)."""
        if run is not self._run:
            self._run, self._noise, self._drawn_revision = run, None, None
            self.view.setEnabled(run is not None and not run.is_sweep)
            self.sweep_plot.setVisible(run is not None and run.is_sweep)
        if run is not None and run.eval_revision != self._drawn_revision:
            self._drawn_revision = run.eval_revision
            if run.is_sweep:
                self._draw_sweep_curves(run)
            self.update_view()

    def update_view(self) -> None:
        """Redraw the scatter for the slider's T (cheap: no sampling)."""
        run, T = self._run, float(self.slider.value())
        self.cursor.setValue(T)
        if run is None or run.is_vae:
            self._clear()
            self.caption.setText("select a run" if run is None else "T is a diffusion setting: a VAE run has no T views")
            return
        if run.is_sweep:
            self._show_sweep_samples(run, T)
        elif self.view.currentText() == TRAJECTORY:
            self._show_trajectory(run, T)
        else:
            self._show_encoder(run, T)

    def _clear(self) -> None:
        self.scatter.setData(pos=np.zeros((0, 2)))
        self.image.setVisible(False)

    def _show_points(self, run: RunState, pts: np.ndarray) -> None:
        """Generated points as a scatter over the plane, or image runs' samples as an image grid."""
        if not run.is_vae and run.config.is_images:
            self.scatter.setData(pos=np.zeros((0, 2)))
            self.image.setImage(image_grid(as_images(np.asarray(pts)[:MAX_GRID]))[::-1], levels=(0.0, 1.0))
            self.image.setVisible(True)
            return
        self.image.setVisible(False)
        self.scatter.setData(pos=np.asarray(pts)[:, :2], brush=pg.mkBrush(*run.colour, 150))

    def _show_encoder(self, run: RunState, T: float) -> None:
        pts = training_points(run)
        if pts is not None and run.config.is_images:
            if self._noise is None or self._noise.shape != pts.shape:
                self._noise = fixed_noise(pts.shape)
            self._show_points(run, encoder_view_images(pts, T, self._noise))
            self.caption.setText(f"E_T#P̂ at T = {T:.3f}: each training image's logit mapped to α(T)·y + σ(T)·ε and "
                                 f"back to pixels (closed form; the encoder forgets the image as T grows)")
            return
        if pts is None or pts.shape[1] != 2:
            self._clear()
            self.caption.setText("the encoder view needs 2-D training data that loads")
            return
        if self._noise is None or self._noise.shape != pts.shape:
            self._noise = fixed_noise(pts.shape)
        self.scatter.setData(pos=encoder_view(pts, T, self._noise), brush=pg.mkBrush(*run.colour, 150))
        self.caption.setText(f"E_T#P̂ at T = {T:.3f}: one draw of α(T)·x + σ(T)·ε per training point "
                             f"(closed form; the encoder forgets x as T grows)")

    def _show_trajectory(self, run: RunState, T: float) -> None:
        if run.frames is None:
            self._clear()
            self.caption.setText("the reverse trajectory appears after the first evaluation")
            return
        i = int(np.argmin(np.abs(run.frame_times - T)))
        self._show_points(run, run.frames[i])
        self.caption.setText(f"reverse SDE at forward time t = {run.frame_times[i]:.3f} "
                             f"(from π at t = {run.config.T:g} down to the samples at t = 0), "
                             f"frame {i + 1}/{len(run.frame_times)}")

    def _sweep_table(self, run: RunState) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
        """Per grid T: bound mean, bound std, test metric mean over the seeds finished so far and its Monte Carlo
        standard error (or the T selection's trained points, in T order)."""
        metric = test_metric(run)[0]
        if run.mode == "select":
            points = sorted(run.selection_points, key=lambda p: p["T"])
            return ([p["T"] for p in points], [_float(p["bound"]) for p in points], [0.0] * len(points),
                    [_float(p.get(metric, p["test_kl"])) for p in points], [mean_se([p.get(f"{metric}_se")]) for p in points])
        Ts, bounds, stds, kls, ses = [], [], [], [], []
        for T in run.Ts:
            finals = [ev for ev in run.sweep_finals.values() if abs(ev["T"] - T) < 1e-9]
            if finals:
                b = np.array([ev["bound"] for ev in finals], dtype=float)
                Ts.append(T)
                bounds.append(float(b.mean()))
                stds.append(float(b.std(ddof=1)) if len(b) > 1 else 0.0)
                kls.append(float(np.mean(np.array([ev.get(metric, ev["test_kl"]) for ev in finals], dtype=float))))
                ses.append(mean_se([ev.get(f"{metric}_se") for ev in finals]))
        return Ts, bounds, stds, kls, ses

    def _draw_sweep_curves(self, run: RunState) -> None:
        label = test_metric(run)[1]
        self.sweep_plot.setTitle(f"Sweep: bound, {label}")
        self.sweep_plot.getAxis("right").setLabel(label)
        Ts, bounds, stds, kls, ses = self._sweep_table(run)
        x = np.array(Ts)
        self.bound_curve.setData(x, bounds)
        self.kl_curve.setData(x, kls)
        self._near_best = near_best(Ts, kls, ses)
        if len(x):
            self.bound_band.setData(x=x, y=np.array(bounds), height=2 * np.array(stds))
            self.kl_band.setData(x=x, y=np.array(kls), height=4 * np.nan_to_num(np.array(ses, dtype=float)))
            ib, ik = _argmin(bounds), _argmin(kls)
            self.star_bound.setData([x[ib]], [bounds[ib]])
            self.star_kl.setData([x[ik]], [kls[ik]])
            self.kl_view.enableAutoRange()
            self._sweep_stars = (float(x[ib]), float(x[ik]))

    def _show_sweep_samples(self, run: RunState, T: float) -> None:
        if run.mode == "select":
            self._show_selection_samples(run, T)
            return
        grid = np.array(run.Ts)
        nearest = float(grid[int(np.argmin(np.abs(grid - T)))])
        seed = run.seeds[0]
        samples = self._grid_samples(run.folder / f"T{nearest:g}_seed{seed}")
        stars = self._sweep_stars
        near = ", ".join(f"{t:g}" for t in self._near_best) or "none"
        star_text = (f"T* by bound {stars[0]}, T* by {test_metric(run)[1]} {stars[1]} (within 2 SE of it: {near})"
                     if stars[0] is not None else "no run finished yet")
        if samples is None:
            self._clear()
            self.caption.setText(f"grid T = {nearest:g} (seed {seed}) has no samples yet; {star_text}")
            return
        self._show_points(run, samples)
        self.caption.setText(f"samples of the model at grid T = {nearest:g} (seed {seed}); {star_text}")

    def _show_selection_samples(self, run: RunState, T: float) -> None:
        points = run.selection_points
        if not points:
            self._clear()
            self.caption.setText("selecting T by the bound: the first models are training")
            return
        nearest = min(points, key=lambda p: abs(p["T"] - T))
        samples = self._grid_samples(Path(nearest["run_dir"]))
        if samples is not None:
            self._show_points(run, samples)
        done = (f"T* = {run.selection['T_star']:g} (bound {fmt(run.selection.get('bound_at_T_star'), '.3f')}) after "
                f"{run.selection['trainings']} trainings" if run.selection else f"{len(points)} trained so far")
        self.caption.setText(f"model trained at T = {nearest['T']:g} (bound {fmt(nearest.get('bound'), '.3f')}, "
                             f"{metric_text(nearest)}); {done}")

    def _grid_samples(self, folder: Path) -> np.ndarray | None:
        path = folder / "samples.safetensors"
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            return None
        if key not in self._sample_cache:
            try:
                samples = read_run(folder).samples
                last = max(samples, key=lambda k: int(k.split("_")[1])) if samples else None
                self._sample_cache[key] = samples[last] if last else None
            except RunFileError:
                self._sample_cache[key] = None
        return self._sample_cache[key]

    def _toggle_play(self, on: bool) -> None:
        self.play.setText("❚❚ Pause" if on else "▶ Play")
        if on:
            self.timer.start()
        else:
            self.timer.stop()

    def play_range(self) -> tuple[float, float]:
        """What Play loops over: the run's own T range (0 to its T; a sweep's grid), else the whole slider."""
        lo, hi = self.slider.minimum(), self.slider.maximum()
        run = self._run
        if run is None or run.is_vae:
            return lo, hi
        if run.is_sweep:
            return (min(run.Ts), max(run.Ts)) if run.Ts else (lo, hi)
        return lo, min(hi, float(run.config.T))

    def _advance(self) -> None:
        lo, hi = self.play_range()
        value = self.slider.value() + (hi - lo) / 100
        self.slider.setValue(lo if value > hi + 1e-9 or value < lo else value)  # loop


def _argmin(values) -> int:
    """Index of the smallest finite value (0 when none is finite: a sweep whose every run went NaN)."""
    arr = np.asarray(values, dtype=float)
    finite = np.isfinite(arr)
    return int(np.nanargmin(np.where(finite, arr, np.nan))) if finite.any() else 0


def _float(value) -> float:
    """A stored number as a float, NaN for None (a NaN stored as null): pyqtgraph skips it."""
    return float("nan") if value is None else float(value)
