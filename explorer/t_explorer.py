"""The T slider: the encoder's view E_T#P (closed form, instant), a run's reverse trajectory, and for a sweep or
a T selection the samples of the model at the nearest grid T. Nothing is sampled on a slider move: the encoder
view uses noise drawn once, trajectories and sweep samples were recorded during the runs.
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

from .model import IMAGES, Entry, Selection, Sweep, TrainingRun
from .model.text import fmt, metric_text
from .samples_panel import MAX_GRID, as_images, image_grid
from .background import BackgroundCache
from .training_points import loading_points, training_points

ENCODER, TRAJECTORY = "Encoder E_T#P̂ (closed form)", "Generator trajectory (reverse SDE)"
T_MAX = 2.0
MIN_SLIDER_WIDTH = 200  # px: a T slider you can drag precisely
PLAY_FPS = 20


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
        self.caption = QLabel(" ")
        self.caption.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(view_row)
        layout.addWidget(self.scatter_plot, stretch=1)
        layout.addWidget(self.caption)

        self.timer = QTimer(self)
        self.timer.setInterval(1000 // PLAY_FPS)
        self.timer.timeout.connect(self._advance)
        self.play.toggled.connect(self._toggle_play)
        self.slider.valueChanged.connect(lambda *_: self.update_view())
        self.view.currentIndexChanged.connect(lambda *_: self.update_view())
        self._run: Entry | None = None
        self._noise: np.ndarray | None = None
        self._samples = BackgroundCache()
        self._drawn: tuple | None = None

    def set_run(self, run: Entry | None) -> None:
        """Follow the focused entry (a run, a sweep or a selection); redraw when its evaluations changed."""
        if run is not self._run:
            self._run, self._noise, self._drawn = run, None, None
            has_T = run is not None and run.spec.has_T  # T is a diffusion setting
            self.view.setEnabled(isinstance(run, (TrainingRun, Sweep)) and has_T)
            if isinstance(run, Sweep) and has_T:
                self.view.setCurrentText(TRAJECTORY)  # a sweep shows its models' samples first; the encoder on demand
            self.slider.setEnabled(has_T)
            self.play.setEnabled(has_T)
            if not has_T:
                self.play.setChecked(False)
            if isinstance(run, TrainingRun) and has_T and run.frames is not None \
                    and self.view.currentText() == ENCODER and run.status == "loaded":
                self.view.setCurrentText(TRAJECTORY)  # a reopened run: show what it stored
        revision = _revision(run)
        if revision != self._drawn:
            self._drawn = revision
            self.update_view()

    def update_view(self) -> None:
        """Redraw the scatter for the slider's T (cheap: no sampling)."""
        run, T = self._run, float(self.slider.value())
        if run is None or not run.spec.has_T:
            self._clear()
            self.caption.setText("select a run" if run is None else
                                 f"T is a diffusion setting: a {run.spec.title} run has no T views")
            return
        if isinstance(run, Sweep) and self.view.currentText() == ENCODER:
            self._show_encoder(run, T)
        elif isinstance(run, Sweep):
            self._show_sweep_samples(run, T)
        elif isinstance(run, Selection):
            self._show_selection_samples(run, T)
        elif self.view.currentText() == TRAJECTORY:
            self._show_trajectory(run, T)
        else:
            self._show_encoder(run, T)

    def _clear(self) -> None:
        self.scatter.setData(pos=np.zeros((0, 2)))
        self.image.setVisible(False)

    def _show_points(self, run: Entry, pts: np.ndarray) -> None:
        """Generated points as a scatter over the plane, or image runs' samples as an image grid."""
        pts = np.asarray(pts)
        if run.kind == IMAGES:
            self.scatter.setData(pos=np.zeros((0, 2)))
            images = pts if pts.ndim in (3, 4) else as_images(pts[:MAX_GRID])
            self.image.setImage(image_grid(images[:MAX_GRID])[::-1], levels=(0.0, 1.0))
            self.image.setVisible(True)
            return
        self.image.setVisible(False)
        self.scatter.setData(pos=pts[:, :2], brush=pg.mkBrush(*run.colour, 150))

    def _show_encoder(self, run: TrainingRun | Sweep, T: float) -> None:
        pts = training_points(run, self.update_view)
        if pts is None and loading_points(run):
            self._clear()
            self.caption.setText("loading the training points…")
            return
        if pts is not None and run.kind == IMAGES:
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

    def _show_trajectory(self, run: TrainingRun, T: float) -> None:
        if run.frames is None or run.frame_times is None or not len(run.frame_times):
            self._clear()
            self.caption.setText("the reverse trajectory appears after the first evaluation" if run.active else
                                 "this run stored no reverse trajectory (it was trained without frames)")
            return
        i = int(np.argmin(np.abs(run.frame_times - T)))
        self._show_points(run, run.frames[i])
        self.caption.setText(f"reverse SDE at forward time t = {run.frame_times[i]:.3f} "
                             f"(from π at t = {run.config.T:g} down to the samples at t = 0), "
                             f"frame {i + 1}/{len(run.frame_times)}")

    def _show_sweep_samples(self, run: Sweep, T: float) -> None:
        if not run.Ts:
            self._clear()
            return
        grid = np.array(run.Ts)
        nearest = float(grid[int(np.argmin(np.abs(grid - T)))])
        seed = run.seeds[0]
        name = f"T{nearest:g}_seed{seed}"
        final = run.finals.get(name)
        carried = final.get("samples") if final is not None else None  # a network opened with Open model…
        samples = np.asarray(carried) if carried is not None else self._grid_samples(run.folder / name)
        score = (f": bound {fmt(final.get('bound'), '.3f')}, {metric_text(final, run.spec.test_key, run.spec.test_label)}"
                 if final else "")
        if samples is None:
            self._clear()
            self.caption.setText(f"grid T = {nearest:g} (seed {seed}): loading its samples…" if self._loading(run.folder / name)
                                 else f"grid T = {nearest:g} (seed {seed}) has no samples yet")
            return
        self._show_points(run, samples)
        self.caption.setText(f"samples of the model at grid T = {nearest:g} (seed {seed}){score}")

    def _show_selection_samples(self, run: Selection, T: float) -> None:
        points = run.points
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

    def _sample_key(self, folder: Path) -> tuple | None:
        path = folder / "samples.safetensors"
        try:
            return (str(path), path.stat().st_mtime_ns)
        except OSError:
            return None

    def _grid_samples(self, folder: Path) -> np.ndarray | None:
        """The last samples of a sweep member or selection point, read on a worker (None until they arrive)."""
        key = self._sample_key(folder)
        if key is None:
            return None
        return self._samples.get(key, lambda: _last_samples(folder), self.update_view)

    def _loading(self, folder: Path) -> bool:
        key = self._sample_key(folder)
        return key is not None and self._samples.loading(key)

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
        if run is None or not run.spec.has_T:
            return lo, hi
        if isinstance(run, Sweep):
            return (min(run.Ts), max(run.Ts)) if run.Ts else (lo, hi)
        if isinstance(run, Selection):
            return run.t_range
        return lo, min(hi, float(run.config.T))

    def _advance(self) -> None:
        lo, hi = self.play_range()
        value = self.slider.value() + (hi - lo) / 100
        self.slider.setValue(lo if value > hi + 1e-9 or value < lo else value)  # loop


def _last_samples(folder: Path) -> np.ndarray | None:
    """The samples of a run folder's last evaluation (None when it has none or cannot be read)."""
    try:
        samples = read_run(folder).samples
    except RunFileError:
        return None
    last = max(samples, key=lambda k: int(k.split("_")[1])) if samples else None
    return samples[last] if last else None


def _revision(run: Entry | None) -> tuple | None:
    """What the T views depend on: the number of evaluations (and trajectory) of the run, or the sweep's."""
    if isinstance(run, TrainingRun):
        return (run.run_id, len(run.evals), id(run.frames), run.status == "loaded")
    if isinstance(run, Sweep):
        return (run.run_id, len(run.finals), run.summary is not None)
    if isinstance(run, Selection):
        return (run.run_id, len(run.points), run.selection is not None)
    return None
