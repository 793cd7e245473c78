"""The run setup panel: every setting of a diffusion run or sweep, validated by core as you type."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from core.bounds.variants import VARIANTS
from core.data.toy2d import TOY_DATASETS
from core.errors import InfoGenError
from core.grids import parse_float_grid, parse_seeds
from core.data.images import IMAGE_SOURCES, PATH_SOURCES
from core.diffusion.unet import UNET_PRESETS
from core.training.config import IMAGE_DEFAULTS, DiffusionConfig, image_config
from core.vae.config import VAEConfig

PRESETS = {"paper": 128, "small": 64}  # diffusion: MLP width; VAE: the presets of core.vae.model
VAE_DATASETS = [("mnist5k", "mnist5k"), ("digits", "digits"), ("MNIST/Fashion IDX file…", "idx"),
                ("CIFAR-10 batches…", "cifar10"), ("image array .npy/.npz…", "image-file"), ("image folder…", "image-folder")]
FILE_DATASET = "file…"
# (label, core dataset name) of diffusion datasets; path-based ones get the file chooser
DM_DATASETS = [*((name, name) for name in TOY_DATASETS), ("points file…", "file"),
               ("digits 8x8 (images)", "digits"), ("mnist5k (images)", "mnist5k"), ("MNIST/Fashion IDX file…", "idx"),
               ("CIFAR-10 batches…", "cifar10"), ("image array .npy/.npz…", "image-file"), ("image folder…", "image-folder")]
PATH_HINTS = {"file": "points file: .npy, .npz, .csv, .txt", "idx": "IDX images file (raw or .gz)",
              "cifar10": "a CIFAR-10 data_batch_*.bin or the folder holding them",
              "image-file": "images array: .npy or .npz", "image-folder": "a folder of PNG/JPEG images"}
FOLDER_SOURCES = ("cifar10", "image-folder")
DEFAULT_SELECTION_RANGE = (0.1, 2.0)


class RunForm(QWidget):
    """Emits ``run_requested(config, Ts, seeds)`` when Run is pressed on valid settings."""

    run_requested = Signal(object, list, list)
    select_requested = Signal(object, tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        d = DiffusionConfig()
        self.model = QComboBox()
        self.model.addItem("Diffusion (VP-SDE)", "dm")
        self.model.addItem("VAE (MLP, images)", "vae")
        self.dataset = QComboBox()
        for label, name in DM_DATASETS:
            self.dataset.addItem(label, name)
        self._images_mode = False
        self.iters_label = QLabel("Iterations")
        self.path = QLineEdit()
        self.path.setPlaceholderText("points file: .npy, .npz, .csv, .txt")
        self.browse = QPushButton("Browse…")
        self.m = _spin(2, 1_000_000, d.m)
        self.T = QLineEdit(f"{d.T:g}")
        self.T.setToolTip("one value for a single run, or a grid for a sweep: 0.2:1.8:0.2 or 0.2,0.6,1.0")
        self.iters = _spin(1, 10_000_000, d.iters)
        self.seeds = QLineEdit(str(d.seed))
        self.seeds.setToolTip("one seed, a list 0,1,2 or a range 0-4; several seeds make a sweep")
        self.R = QDoubleSpinBox()
        self.R.setRange(1e-3, 1e6)
        self.R.setDecimals(3)
        self.R.setValue(d.R)
        self.variant = QComboBox()
        self.variant.addItems(list(VARIANTS))
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.eval_every = _spin(0, 10_000_000, d.eval_every)
        self.eval_every.setToolTip("evaluate the bound and the test gap every k iterations (0: only at the end)")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1e12)
        self.lr.setValue(d.lr)
        self.n_steps = _spin(1, 100_000, d.n_steps)
        self.mc = _spin(1, 100_000, d.mc_samples)
        self.batch = _spin(1, 1_000_000, d.batch)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        self.run_button = QPushButton("Run")
        self.run_button.setDefault(True)
        self.select_button = QPushButton("Select T by bound")
        self.select_button.setToolTip(
            "find T* by minimizing the bound with a few trainings (coarse points, then refinement) over the range "
            "of the T grid, or 0.1..2.0 for a single T")

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("Dataset", self.dataset)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path)
        path_row.addWidget(self.browse)
        form.addRow("File", path_row)
        form.addRow("Training points m", self.m)
        form.addRow("Diffusion time T", self.T)
        form.addRow(self.iters_label, self.iters)
        form.addRow("Seeds", self.seeds)
        form.addRow("R (sub-Gaussian)", self.R)
        form.addRow("Bound variant", self.variant)
        form.addRow("Preset", self.preset)
        form.addRow("Evaluate every", self.eval_every)
        advanced = QGroupBox("Advanced")
        adv = QFormLayout(advanced)
        adv.addRow("Learning rate", self.lr)
        adv.addRow("EM steps N", self.n_steps)
        adv.addRow("MC samples K", self.mc)
        adv.addRow("Batch size", self.batch)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addWidget(self.error)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, stretch=2)
        buttons.addWidget(self.select_button, stretch=1)
        layout.addLayout(buttons)

        for w in (self.path, self.T, self.seeds):
            w.textChanged.connect(self.revalidate)
        self.model.currentIndexChanged.connect(self._model_changed)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        for w in (self.dataset, self.variant, self.preset):
            w.currentIndexChanged.connect(self.revalidate)
        for w in (self.m, self.iters, self.eval_every, self.n_steps, self.mc, self.batch):
            w.valueChanged.connect(self.revalidate)
        for w in (self.R, self.lr):
            w.valueChanged.connect(self.revalidate)
        self.browse.clicked.connect(self._browse)
        self.run_button.clicked.connect(self._run)
        self.select_button.clicked.connect(self._select)
        self.revalidate()

    @property
    def is_vae(self) -> bool:
        return self.model.currentData() == "vae"

    def _model_changed(self) -> None:
        """Swap the dataset list and the settings that apply to the chosen model."""
        vae = self.is_vae
        self.dataset.blockSignals(True)
        self.dataset.clear()
        for label, name in (VAE_DATASETS if vae else DM_DATASETS):
            self.dataset.addItem(label, name)
        self.dataset.blockSignals(False)
        self._set_presets(list(PRESETS))
        self._images_mode = False
        self.iters_label.setText("Epochs" if vae else "Iterations")
        self.iters.setValue(20 if vae else DiffusionConfig().iters)
        self.eval_every.setValue(5 if vae else DiffusionConfig().eval_every)
        self.eval_every.setToolTip("importance-sampled log p(x) every k epochs (0: never)" if vae else
                                   "evaluate the bound and the test gap every k iterations (0: only at the end)")
        for w in (self.T, self.R, self.variant, self.n_steps, self.mc, self.select_button):
            w.setEnabled(not vae)
        self._dataset_changed()

    @property
    def data_name(self) -> str:
        """The core name of the chosen dataset."""
        return self.dataset.currentData() or self.dataset.currentText()

    def _set_presets(self, names: list[str]) -> None:
        self.preset.blockSignals(True)
        self.preset.clear()
        self.preset.addItems(names)
        self.preset.blockSignals(False)

    def _dataset_changed(self) -> None:
        """Switching between points and images swaps the network presets and the paper's defaults for each."""
        images = not self.is_vae and self.data_name in IMAGE_SOURCES
        self.path.setPlaceholderText(PATH_HINTS.get(self.data_name, ""))
        if images != self._images_mode:
            self._images_mode = images
            self._set_presets(list(UNET_PRESETS) if images else list(PRESETS))
            if images:
                self.preset.setCurrentText(IMAGE_DEFAULTS["preset"])
            d = image_config() if images else DiffusionConfig()
            for spin, value in ((self.m, d.m), (self.iters, d.iters), (self.R, d.R), (self.mc, d.mc_samples),
                                (self.lr, d.lr), (self.batch, d.batch)):
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
            self.n_steps.setEnabled(not images)
            self.n_steps.setToolTip("images use a fixed EM step of 0.001: N = round(1000 T)" if images else "")
        self.revalidate()

    def vae_request(self) -> tuple[VAEConfig, list[float], list[int]]:
        seeds = parse_seeds(self.seeds.text())
        config = VAEConfig(
            data=self.data_name, data_path=self.path.text().strip() if self.data_name in PATH_SOURCES else "",
            m=self.m.value(), epochs=self.iters.value(), seed=seeds[0],
            preset=self.preset.currentText(), lr=self.lr.value(), batch=min(self.batch.value(), 1024),
            logpx_every=self.eval_every.value(), n_test=min(1000, 1797 - self.m.value()) if self.data_name == "digits" else 1000,
        ).validate()
        return config, [], seeds[:1]

    def request(self) -> tuple[DiffusionConfig | VAEConfig, list[float], list[int]]:
        """The validated settings, or InfoGenError with the reason."""
        if self.is_vae:
            return self.vae_request()
        Ts = parse_float_grid(self.T.text(), "T")
        seeds = parse_seeds(self.seeds.text())
        name = self.data_name
        needs_path = name == "file" or name in PATH_SOURCES
        common = dict(
            data=name, data_path=self.path.text().strip() if needs_path else "",
            m=self.m.value(), T=Ts[0], iters=self.iters.value(), seed=seeds[0], eval_every=self.eval_every.value(),
            variant=self.variant.currentText(), R=self.R.value(), lr=self.lr.value(), mc_samples=self.mc.value(),
            batch=self.batch.value(),
        )
        if name in IMAGE_SOURCES:
            config = image_config(**common, preset=self.preset.currentText())
        else:
            config = DiffusionConfig(**common, hidden=PRESETS.get(self.preset.currentText(), 128), n_steps=self.n_steps.value())
        for T in Ts:
            config.with_(T=T).validate()
        return config, Ts, seeds

    def revalidate(self) -> bool:
        """Check the settings with core; show the reason and disable Run when they are invalid."""
        needs_path = self.data_name == "file" or self.data_name in PATH_SOURCES
        self.path.setEnabled(needs_path)
        self.browse.setEnabled(needs_path)
        try:
            self.request()
        except InfoGenError as exc:
            self.error.setText(str(exc))
            self.run_button.setEnabled(False)
            self.select_button.setEnabled(False)
            return False
        self.error.setText("")
        self.run_button.setEnabled(True)
        self.select_button.setEnabled(not self.is_vae)
        return True

    def selection_range(self) -> tuple[float, float]:
        """The T range to search: the grid's span, or the default 0.1..2.0 for a single T."""
        Ts = parse_float_grid(self.T.text(), "T")
        return (min(Ts), max(Ts)) if len(Ts) > 1 else DEFAULT_SELECTION_RANGE

    def _browse(self) -> None:
        name = self.data_name
        if name in FOLDER_SOURCES:
            path = QFileDialog.getExistingDirectory(self, PATH_HINTS[name])
        else:
            filters = {"file": "Points (*.npy *.npz *.csv *.txt)", "idx": "IDX images (*ubyte* *.idx* *.gz);;All files (*)",
                       "image-file": "Arrays (*.npy *.npz)"}
            path, _ = QFileDialog.getOpenFileName(self, PATH_HINTS.get(name, "Data file"), "", filters.get(name, "All files (*)"))
        if path:
            self.path.setText(path)

    def _select(self) -> None:
        if self.revalidate():
            config = self.request()[0]
            self.select_requested.emit(config, self.selection_range())

    def _run(self) -> None:
        if self.revalidate():
            self.run_requested.emit(*self.request())


def _spin(low: int, high: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    return box
