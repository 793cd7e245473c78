"""Runs and sweeps as TensorBoard event files, through torch.utils.tensorboard (the `tensorboard` extra).

Scalars, at the record's training step (docs/records.md#tensorboard):

- ``train/loss`` for every step of a diffusion run, ``vae/<field>`` for every number of a VAE epoch;
- ``bound/<variant>/total`` and ``bound/<variant>/<term>`` for every bound variant an evaluation computed
  (score_matching, encoder_info and its ``encoder_info_se``, encoder_prior, generator, L), and ``bound/chosen``;
- ``test/<metric>``: the test KL with ``test/test_kl_se``, test BPD with its SE, the DSM gap and its parts, the
  nearest-training-neighbour distance;

and the evaluation's generated samples as an image ``samples`` (a scatter over the training points' range for
points, a grid of up to 16 images for images). A sweep writes each run into its own sub-folder and, in the
folder itself, the summary against T: ``sweep/bound_mean`` and ``sweep/<test>_mean`` at step round(1000 T)
(TensorBoard's x axis is an integer step: read it as T in thousandths) and the exported bound-vs-T figure as an
image. TensorBoard smooths with the same debiased moving average as the app (core/smoothing.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import ConfigError

BOUND_TERMS = ("total", "score_matching", "encoder_info", "encoder_info_se", "encoder_prior", "generator", "L")
TEST_FIELDS = ("test_kl", "test_kl_se", "test_bpd", "test_bpd_se", "dsm_gap", "dsm_train", "dsm_test", "nn_dist_mean")
GRID_IMAGES = 16
INSTALL_HINT = "pip install 'infogen-explorer[tensorboard]' (or: pip install tensorboard)"


def summary_writer(folder: str | Path):
    """A torch.utils.tensorboard SummaryWriter on ``folder``, or ConfigError saying how to install it."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(f"writing TensorBoard files needs the tensorboard package: {INSTALL_HINT}") from None
    return SummaryWriter(log_dir=str(folder))


class TensorBoardRun:
    """Writes one run's records as they come (train --tensorboard) or from its folder (export --tensorboard)."""

    def __init__(self, folder: str | Path, images: bool = False) -> None:
        self.writer = summary_writer(folder)
        self.images = images  # image samples (a grid) rather than points (a scatter of the first two coordinates)

    def write(self, record: dict) -> None:
        kind = record.get("kind")
        step = record.get("step")
        if kind == "step" and _finite(record.get("loss")):
            self.writer.add_scalar("train/loss", float(record["loss"]), int(step))
        elif kind == "eval":
            self._eval(record, int(step))
        elif kind == "epoch":
            for key, value in record.items():
                if key not in ("kind", "step", "epoch", "member") and _finite(value):
                    self.writer.add_scalar(f"vae/{key}", float(value), int(step))

    def _eval(self, record: dict, step: int) -> None:
        if _finite(record.get("bound")):
            self.writer.add_scalar("bound/chosen", float(record["bound"]), step)
        for variant, terms in (record.get("bounds") or {}).items():
            for term in BOUND_TERMS:
                if _finite(terms.get(term)):
                    self.writer.add_scalar(f"bound/{variant}/{term}", float(terms[term]), step)
        for key in TEST_FIELDS:
            if _finite(record.get(key)):
                self.writer.add_scalar(f"test/{key}", float(record[key]), step)
        samples = record.get("samples")
        if samples is not None:
            self.add_samples(np.asarray(samples), step)

    def add_samples(self, samples: np.ndarray, step: int, train: np.ndarray | None = None) -> None:
        """Generated samples as one image: a scatter for 2-D points, a grid for images (pixels in [0, 1])."""
        flat = samples.reshape(len(samples), -1)
        shape = image_shape(flat.shape[1]) if self.images else None
        if shape is not None:
            self.writer.add_image("samples", _grid(flat[:GRID_IMAGES], shape), step, dataformats="HWC")
        elif not self.images and flat.shape[1] >= 2:
            self.writer.add_image("samples", _scatter(flat[:, :2], train), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


def image_shape(d: int) -> tuple[int, int, int] | None:
    """(C, H, W) of square images of d values, one channel or three; None when d fits neither."""
    for channels in (1, 3):
        side = math.isqrt(d // channels)
        if d % channels == 0 and side * side * channels == d:
            return channels, side, side
    return None


def _grid(images: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Up to 16 images tiled 4 wide, HWC uint8."""
    c, h, w = shape
    n = len(images)
    cols = min(4, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1, 3), dtype=np.float64)
    for i, image in enumerate(images):
        tile = np.clip(image.reshape(c, h, w), 0.0, 1.0).transpose(1, 2, 0)
        r, k = divmod(i, cols)
        grid[1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + k * (w + 1): 1 + k * (w + 1) + w] = tile if c == 3 else tile.repeat(3, 2)
    return (grid * 255).round().astype(np.uint8)


def _scatter(points: np.ndarray, train: np.ndarray | None) -> np.ndarray:
    """A small matplotlib scatter of the generated points (and the training points in grey), HWC uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3, 3), dpi=80)
    ax = fig.add_subplot()
    if train is not None:
        ax.scatter(train[:, 0], train[:, 1], s=3, c="0.7")
    ax.scatter(points[:, 0], points[:, 1], s=3, c="tab:blue")
    ax.set_aspect("equal", adjustable="datalim")
    fig.tight_layout()
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def is_image_run(meta: dict) -> bool:
    """A VAE or an image diffusion run (from its config.json), whose samples are images."""
    from ..data.images import IMAGE_SOURCES

    return meta.get("model") == "vae" or meta.get("config", {}).get("data") in IMAGE_SOURCES


def check_target(folder: str | Path) -> None:
    """Before a long run: the tensorboard package is there and ``folder`` can be written (ConfigError if not)."""
    from ..resources import check_writable_folder

    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError(f"writing TensorBoard files needs the tensorboard package: {INSTALL_HINT}") from None
    check_writable_folder(folder, "--tensorboard")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def export_run(folder: str | Path, out: str | Path) -> int:
    """A run folder (history and samples) into TensorBoard files in ``out``; returns how many records it read."""
    from ..io.run_dir import read_run

    run = read_run(folder)
    board = TensorBoardRun(out, images=is_image_run(run.meta))
    try:
        for record in run.history:
            board.write(record)
        for key, samples in run.samples.items():  # stored as step_<step>
            board.add_samples(samples, int(key.split("_")[1]))
    finally:
        board.close()
    return len(run.history)


def export_sweep(folder: str | Path, out: str | Path) -> int:
    """Every run of a sweep folder into ``out/<run>``, and its summary against T into ``out``; returns the runs."""
    from ..errors import RunFileError
    from ..io.safe_read import read_json_file

    folder, out = Path(folder), Path(out)
    summary = read_json_file(folder / "summary.json", RunFileError, what="sweep summary")
    runs = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "history.jsonl").exists())
    for run in runs:
        export_run(run, out / run.name)
    write_summary(summary, out)
    return len(runs)


def write_summary(summary: dict, out: str | Path) -> None:
    """A sweep summary's bound and test metric (mean over seeds) against T, at step round(1000 T)."""
    writer = summary_writer(out)
    try:
        test = "bpd" if "bpd_mean" in summary else "test_kl"
        for i, T in enumerate(summary["T"]):
            step = int(round(1000 * T))
            for tag, key in (("sweep/bound_mean", "bound_mean"), ("sweep/bound_std", "bound_std"),
                             (f"sweep/{test}_mean", f"{test}_mean"), (f"sweep/{test}_std", f"{test}_std")):
                value = summary[key][i]
                if _finite(value):
                    writer.add_scalar(tag, float(value), step)
    finally:
        writer.flush()
        writer.close()
