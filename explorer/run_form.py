"""The run setup panel: every setting of a diffusion run, a sweep or a VAE run, validated by core as you type.

The controls are honest: what a user types stays in its field (the number fields accept far more than core
allows), core's validation decides whether it is valid, and an invalid field is tinted red with its label, the
reason is shown in plain English naming the field, and Run and "Select T by bound" stay disabled until it is fixed. Settings
that are valid but make little sense (evaluations that never happen, T beyond the paper's grids, very long sweeps)
are named in an amber warning; Run stays enabled for them.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field as dataclass_field

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
    QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from core.bounds.variants import VARIANTS
from core.cost_estimate import estimate_diffusion_time, matmul_gflops
from core.data.toy2d import TOY_DATASETS
from core.errors import ConfigError, InfoGenError
from core.grids import MAX_GRID, parse_float_grid, parse_seeds
from core.data.images import IMAGE_SOURCES, PATH_SOURCES
from core.data.peek import KNOWN, peek_dataset
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
FILE_KINDS = {"file": "a points file (.npy, .npz, .csv or .txt)", "idx": "an IDX images file (raw or .gz)",
              "cifar10": "a CIFAR-10 data_batch_*.bin or the folder holding them",
              "image-file": "an images array (.npy or .npz)", "image-folder": "a folder of PNG/JPEG images"}
FOLDER_SOURCES = ("cifar10", "image-folder")
DEFAULT_SELECTION_RANGE = (0.1, 2.0)

VAE_EPOCHS = 20  # the form's VAE default: a run of minutes on a CPU (the paper trains VAEConfig().epochs)
VAE_TEST_IMAGES = VAEConfig().n_test
COUNT_MAX = 999_999_999  # the number fields take any count a user types; core says which are allowed
INVALID_COLOR, INVALID_BACKGROUND = "#c0392b", "#fdecea"
WARN_T = 2.0  # the paper's T grids end at 2 (docs/experiments.md)
MANY_RUNS = 50  # a sweep above this many runs gets a warning that it will take long

# form field -> (its label, what it is in a sentence); "iters" reads "Epochs" for a VAE
FIELDS = {
    "dataset": ("Dataset", "the dataset"),
    "path": ("File", "the data file"),
    "m": ("Training points m", "the number of training points m"),
    "T": ("Diffusion time T", "the diffusion time T"),
    "iters": ("Iterations", "the number of iterations"),
    "seeds": ("Seeds", "a seed"),
    "R": ("R (sub-Gaussian)", "the sub-Gaussian constant R"),
    "variant": ("Bound variant", "the bound variant"),
    "preset": ("Preset", "the preset"),
    "eval_every": ("Evaluate every", "the interval between evaluations"),
    "n_gen": ("Samples per evaluation", "the number of generated samples per evaluation"),
    "lr": ("Learning rate", "the learning rate"),
    "n_steps": ("EM steps N", "the number of Euler-Maruyama steps N"),
    "mc": ("MC samples K", "the number of Monte Carlo samples K"),
    "batch": ("Batch size", "the batch size"),
}
NUMBER_FIELDS = ("m", "iters", "eval_every", "n_gen", "R", "lr", "n_steps", "mc", "batch")
# the setting names in core's messages (core.config_checks, core.sde) -> the form field that sets them
CORE_NAMES = {
    "m (training set size)": "m", "diffusion time T": "T", "iters": "iters", "epochs": "iters", "seed": "seeds",
    "R": "R", "eval_every": "eval_every", "logpx_every": "eval_every", "lr (learning rate)": "lr",
    "number of Euler-Maruyama steps N": "n_steps", "N (Euler-Maruyama steps)": "n_steps", "mc_samples (K)": "mc",
    "batch": "batch", "n_gen": "n_gen",
}
_AT_LEAST = re.compile(r"^(?P<name>.+?) must be an integer >= (?P<low>-?\d+), got (?P<got>.+)$", re.S)
_POSITIVE = re.compile(r"^(?P<name>.+?) must be a finite number > 0, got (?P<got>.+)$", re.S)
_AT_MOST = re.compile(r"^(?P<name>.+?) must be <= (?P<high>[^,]+), got (?P<got>[^:]+): (?P<why>.+)$", re.S)
_ABOVE_LIMIT = re.compile(r"^(?P<name>.+?) = (?P<got>\S+) is above the limit of (?P<high>\d+): (?P<why>.+)$", re.S)
_MEMORY = re.compile(r"needs? at least .+ of memory, .+ of it for (?P<what>.+?); ", re.S)
SEEDS_HELP = "use 0, 0,1,2 or 0-4"
T_HELP = "use a time such as 0.6, a list 0.2,0.6,1.0 or a grid start:stop:step such as 0.2:1.8:0.2"


@dataclass(frozen=True)
class Problem:
    """One invalid setting: the form field it is in (None when no single field is to blame) and why, in words."""

    field: str | None
    message: str


@dataclass
class Check:
    """The outcome of checking the form: problems (none: ``result`` is what Run starts) and warnings."""

    problems: list[Problem] = dataclass_field(default_factory=list)
    warnings: list[str] = dataclass_field(default_factory=list)
    result: tuple | None = None


class SpinBox(QSpinBox):
    """A QSpinBox that says when the user steps it (arrows, wheel, Up/Down keys), which valueChanged cannot tell
    apart from a value set by the program."""

    stepped = Signal()

    def stepBy(self, steps: int) -> None:
        super().stepBy(steps)
        self.stepped.emit()


class DoubleSpinBox(QDoubleSpinBox):
    """QDoubleSpinBox with SpinBox's ``stepped``."""

    stepped = Signal()

    def stepBy(self, steps: int) -> None:
        super().stepBy(steps)
        self.stepped.emit()


class RunForm(QWidget):
    """Emits ``run_requested(config, Ts, seeds)`` when Run is pressed on valid settings, ``select_requested(config,
    (T_lo, T_hi))`` for "Select T by bound".

    For tests and the window: ``error`` (QLabel: why the settings are invalid, one line per problem), ``warning``
    (QLabel: valid but questionable settings), ``run_button``, ``select_button`` and ``invalid_fields()`` (the
    names of the invalid fields, e.g. ``["m"]``; each is tinted red, and so is its label in ``row_labels``).

    Defaults when the model or the data kind changes. Each model and data kind has its own defaults: diffusion on
    points (DiffusionConfig: the paper's Swiss roll settings), diffusion on images (image_config: m = 16, R = 4000,
    K = 100, a U-Net preset...), and the VAE (VAEConfig: m = 4000 on mnist5k, all but 1,000 test images on
    digits, batch 64, log p(x) every 5 epochs; 20 epochs here). On a switch, a field changes to the new default only
    when (1) its default differs between the two and (2) the user has not edited it (typed into it, stepped it,
    picked from it). So what you typed always stays, and a field you never touched follows the model and the data.
    Seeds, T, the bound variant and the file path have one default everywhere, so they never change. The dataset
    you picked stays when the other model has it too (digits, mnist5k, the image files); otherwise the model's
    default dataset (swissroll, mnist5k) is chosen.
    """

    run_requested = Signal(object, list, list)
    select_requested = Signal(object, tuple)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        d = DiffusionConfig()
        self._edited: set[str] = set()  # fields the user has edited (see the class docstring)
        self._picked_dataset: str | None = None  # the dataset the user last picked
        self._syncing = False
        self._problems: list[Problem] = []
        self.model = QComboBox()
        self.model.addItem("Diffusion (VP-SDE)", "dm")
        self.model.addItem("VAE (MLP, images)", "vae")
        self.dataset = QComboBox()
        for label, name in DM_DATASETS:
            self.dataset.addItem(label, name)
        self.iters_label = QLabel("Iterations")
        self.path = QLineEdit()
        self.path.setPlaceholderText("points file: .npy, .npz, .csv, .txt")
        self.browse = QPushButton("Browse…")
        self.m = _spin(d.m)
        self.T = QLineEdit(f"{d.T:g}")
        self.T.setToolTip("one value for a single run, or a grid for a sweep: 0.2:1.8:0.2 or 0.2,0.6,1.0")
        self.iters = _spin(d.iters)
        self.seeds = QLineEdit(str(d.seed))
        self.seeds.setToolTip("one seed, a list 0,1,2 or a range 0-4; several seeds make a sweep")
        self.R = _double_spin(0, 1e6, 3, d.R)
        self.variant = QComboBox()
        self.variant.addItems(list(VARIANTS))
        self.preset = QComboBox()
        self.preset.addItems(list(PRESETS))
        self.eval_every = _spin(d.eval_every)
        self.eval_every.setToolTip("evaluate the bound and the test gap every k iterations (0: only at the end)")
        self.n_gen = _spin(d.n_gen)
        self.n_gen.setToolTip("generated samples per draw of each evaluation (the test KL uses several draws); the "
                              "evaluation's time grows with it: see the estimate above Run")
        self.previews = QCheckBox("Full evaluation only at the end")
        self.previews.setToolTip(
            f"evaluations before the last are light previews ({d.preview_samples} samples, one draw, no error bar); "
            "the last one is in full, so the final numbers are the same")
        self.lr = _double_spin(0, 1000, 6, d.lr)
        self.n_steps = _spin(d.n_steps)
        self.mc = _spin(d.mc_samples)
        self.batch = _spin(d.batch)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b;")
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b9770e;")
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        self.estimate.setStyleSheet("color: #5d6d7e;")
        self.estimate.setToolTip("what the run or sweep should take on this machine: the network's FLOPs at the "
                                 "matmul speed measured here (core/cost_estimate.py); other work on the machine "
                                 "makes it longer")
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
        form.addRow("Samples per evaluation", self.n_gen)
        form.addRow("", self.previews)
        advanced = QGroupBox("Advanced")
        adv = QFormLayout(advanced)
        adv.addRow("Learning rate", self.lr)
        adv.addRow("EM steps N", self.n_steps)
        adv.addRow("MC samples K", self.mc)
        adv.addRow("Batch size", self.batch)
        self.row_labels: dict[str, QLabel] = {}  # each field's label, turned red with its field when invalid
        for name in FIELDS:
            item = path_row if name == "path" else getattr(self, name)
            self.row_labels[name] = form.labelForField(item) or adv.labelForField(item)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(advanced)
        layout.addStretch(1)
        # The messages and buttons live in their own widget, which the window pins below the scrolling fields:
        # Run stays in view at any window height.
        self.actions = QWidget()
        actions = QVBoxLayout(self.actions)
        actions.setContentsMargins(6, 2, 6, 4)
        actions.addWidget(self.error)
        actions.addWidget(self.warning)
        actions.addWidget(self.estimate)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, stretch=2)
        buttons.addWidget(self.select_button, stretch=1)
        actions.addLayout(buttons)

        for name in NUMBER_FIELDS:
            box = getattr(self, name)
            box.lineEdit().textEdited.connect(lambda _text, name=name: self._edited.add(name))
            box.stepped.connect(lambda name=name: self._edited.add(name))
            box.lineEdit().textChanged.connect(self.revalidate)  # also when the text is not a number (yet)
            box.valueChanged.connect(self.revalidate)
        for name in ("T", "seeds", "path"):
            getattr(self, name).textEdited.connect(lambda _text, name=name: self._edited.add(name))
            getattr(self, name).textChanged.connect(self.revalidate)
        for name in ("variant", "preset"):
            getattr(self, name).activated.connect(lambda _index, name=name: self._edited.add(name))
        self.previews.toggled.connect(self.revalidate)
        self.dataset.activated.connect(self._dataset_picked)
        self.model.currentIndexChanged.connect(self._model_changed)
        self.dataset.currentIndexChanged.connect(self._dataset_changed)
        for w in (self.variant, self.preset):
            w.currentIndexChanged.connect(self.revalidate)
        self.browse.clicked.connect(self._browse)
        self.run_button.clicked.connect(self._run)
        self.select_button.clicked.connect(self._select)
        self._applied = self._defaults()
        # Measured now, before any run shares the CPU: the matmul rate (20 ms each), then, in the first estimate,
        # which kernel path the score MLP takes here (about 0.1 s once, core/kernel_choice.py).
        matmul_gflops("cpu"), matmul_gflops("cpu", 1)
        self.revalidate()

    # --- model, dataset and their defaults -------------------------------------------------------------------

    @property
    def is_vae(self) -> bool:
        return self.model.currentData() == "vae"

    @property
    def data_name(self) -> str:
        """The core name of the chosen dataset."""
        return self.dataset.currentData() or self.dataset.currentText()

    def _kind(self) -> str:
        """"vae", "images" (diffusion on images) or "points" (diffusion on points)."""
        if self.is_vae:
            return "vae"
        return "images" if self.data_name in IMAGE_SOURCES else "points"

    def _defaults(self) -> dict[str, object]:
        """The default of each field that depends on the model and the data kind (the class docstring)."""
        kind = self._kind()
        if kind == "vae":
            v = VAEConfig()
            known = KNOWN.get(self.data_name)
            m = known[0] - VAE_TEST_IMAGES if known else v.m  # all but the test images, as VAEConfig(m=None)
            return {"m": m, "iters": VAE_EPOCHS, "eval_every": v.logpx_every, "lr": v.lr, "batch": v.batch,
                    "preset": v.preset}
        d = image_config() if kind == "images" else DiffusionConfig()
        return {"m": d.m, "iters": d.iters, "eval_every": d.eval_every, "R": d.R, "mc": d.mc_samples, "lr": d.lr,
                "batch": d.batch, "n_steps": d.n_steps, "n_gen": d.n_gen,
                "preset": IMAGE_DEFAULTS["preset"] if kind == "images" else next(iter(PRESETS))}

    def _dataset_picked(self) -> None:
        self._picked_dataset = self.data_name

    def _model_changed(self) -> None:
        """Swap the dataset list and the settings that apply to the chosen model; keep what the user set."""
        vae = self.is_vae
        choices = VAE_DATASETS if vae else DM_DATASETS
        names = [name for _, name in choices]
        default = VAEConfig().data if vae else DiffusionConfig().data
        keep = self._picked_dataset if self._picked_dataset in names else default
        self.dataset.blockSignals(True)
        self.dataset.clear()
        for label, name in choices:
            self.dataset.addItem(label, name)
        self.dataset.setCurrentIndex(names.index(keep))
        self.dataset.blockSignals(False)
        self.iters_label.setText("Epochs" if vae else "Iterations")
        self.eval_every.setToolTip("importance-sampled log p(x) every k epochs (0: never)" if vae else
                                   "evaluate the bound and the test gap every k iterations (0: only at the end)")
        for w in (self.T, self.R, self.variant, self.mc, self.n_gen, self.previews):
            w.setEnabled(not vae)
        self._dataset_changed()

    def _dataset_changed(self) -> None:
        """Switching between points, images and the VAE swaps the network presets and the defaults that differ."""
        kind = self._kind()
        self.path.setPlaceholderText(PATH_HINTS.get(self.data_name, ""))
        self._apply_defaults()
        self.n_steps.setEnabled(kind == "points")
        self.n_steps.setToolTip("images use a fixed EM step of 0.001: N = round(1000 T)" if kind == "images" else "")
        self.revalidate()

    def _apply_defaults(self) -> None:
        """Set each field the user has not edited to the new default where it differs from the one before."""
        new, old = self._defaults(), self._applied
        self._syncing = True
        try:
            for name, value in new.items():
                if name != "preset" and name not in self._edited and old.get(name) != value:
                    getattr(self, name).setValue(value)
            names = list(UNET_PRESETS) if self._kind() == "images" else list(PRESETS)
            current = self.preset.currentText()
            keep = current in names and ("preset" in self._edited or old.get("preset") == new["preset"])
            if [self.preset.itemText(i) for i in range(self.preset.count())] != names:
                self.preset.clear()
                self.preset.addItems(names)
            self.preset.setCurrentText(current if keep else str(new["preset"]))
        finally:
            self._syncing = False
        self._applied = new

    # --- checking -------------------------------------------------------------------------------------------

    def request(self) -> tuple[DiffusionConfig | VAEConfig, list[float], list[int]]:
        """The validated settings (config, Ts, seeds), or ConfigError with the reasons in plain English."""
        check = self.check()
        if check.problems:
            raise ConfigError("\n".join(p.message for p in check.problems))
        return check.result

    def invalid_fields(self) -> list[str]:
        """The names of the fields found invalid at the last check (attributes of the form: "m", "seeds"...)."""
        return list(dict.fromkeys(p.field for p in self._problems if p.field))

    def revalidate(self) -> bool:
        """Check the settings with core; mark invalid fields, show the reasons and warnings, enable Run when valid."""
        if self._syncing:
            return False
        return self._show(self.check())

    def _show(self, check: Check) -> bool:
        needs_path = self.data_name == "file" or self.data_name in PATH_SOURCES
        self.path.setEnabled(needs_path)
        self.browse.setEnabled(needs_path)
        self._problems = check.problems
        bad = set(self.invalid_fields())
        for name in FIELDS:
            for widget, style in ((getattr(self, name), _invalid_style(getattr(self, name))),
                                  (self.row_labels[name], f"color: {INVALID_COLOR};")):
                style = style if name in bad else ""
                if widget.styleSheet() != style:
                    widget.setStyleSheet(style)
        self.error.setText("\n".join(p.message for p in check.problems))
        self.error.setVisible(bool(check.problems))
        self.warning.setText("\n".join(check.warnings))
        self.warning.setVisible(bool(check.warnings))
        said = self._estimate(check)
        self.estimate.setText(said)
        self.estimate.setVisible(bool(said))
        ok = not check.problems
        self.run_button.setEnabled(ok)
        self.select_button.setEnabled(ok and not self.is_vae)
        return ok

    def check(self) -> Check:
        """Read every field as typed, let core validate the settings, and explain what it refuses.

        A field that cannot be read, or that core refuses, is replaced by its default for the rest of the check,
        so core goes on to judge the other fields and every invalid field is found, not only the first."""
        check = Check()
        vae = self.is_vae
        defaults = self._defaults()
        values: dict[str, object] = {"data": self.data_name, "variant": self.variant.currentText(),
                                     "preset": self.preset.currentText()}
        needs_path = values["data"] == "file" or values["data"] in PATH_SOURCES
        values["data_path"] = self.path.text().strip() if needs_path else ""
        used = {"vae": ("m", "iters", "eval_every", "lr", "batch"),  # the fields this kind of run reads
                "images": tuple(n for n in NUMBER_FIELDS if n != "n_steps")}.get(self._kind(), NUMBER_FIELDS)
        for name in used:
            box = getattr(self, name)
            text = box.lineEdit().text()
            if box.validate(text, 0)[0] == QValidator.State.Acceptable:
                values[name] = box.value()
            else:
                what = "whole number" if isinstance(box, QSpinBox) else "number"
                said = "the field is empty" if not text.strip() else f"{text.strip()!r} is not a {what}"
                check.problems.append(Problem(name, f"{self._label(name)}: {said}; type a {what}."))
                values[name] = self._fallback(name, defaults)
        Ts = [DiffusionConfig().T]
        if not vae:
            try:
                Ts = parse_float_grid(self.T.text(), "T")
            except InfoGenError as exc:
                check.problems.append(Problem("T", _t_grid_problem(self.T.text(), exc)))
        try:
            seeds = parse_seeds(self.seeds.text())
        except InfoGenError as exc:
            check.problems.append(Problem("seeds", _seeds_problem(self.seeds.text(), exc)))
            seeds = [0]
        values["Ts"], values["seeds"] = Ts, seeds
        if "m" not in _invalid(check):
            too_many = self._data_size_problem(values)
            if too_many:
                check.problems.append(too_many)
                values["m"] = self._fallback("m", defaults)
        for _ in range(len(FIELDS) + 1):  # at most one round per field
            try:
                check.result = self._build(values)
                break
            except (InfoGenError, TypeError, OSError) as exc:
                problem = self._explain(exc)
                if problem.field is not None and problem.field in _invalid(check):
                    break  # its replacement did not help: it is shown already
                check.problems.append(problem)
                if problem.field is None:
                    break
                self._substitute(values, problem.field, defaults)
        if check.problems:
            check.result = None
            order = list(FIELDS)
            check.problems.sort(key=lambda p: order.index(p.field) if p.field in order else len(order))
        check.warnings = self._warnings(values, _invalid(check))
        return check

    def _build(self, v: dict) -> tuple[DiffusionConfig | VAEConfig, list[float], list[int]]:
        """The config of the values ``v``, validated by core (each T of a grid); raises core's error."""
        seeds = v["seeds"]
        if self.is_vae:
            config = VAEConfig(
                data=v["data"], data_path=v["data_path"], m=v["m"], epochs=v["iters"], seed=seeds[0],
                preset=v["preset"], lr=v["lr"], batch=v["batch"], logpx_every=v["eval_every"],
                n_test=_vae_test_images(v["data"], v["m"]),
            ).validate()
            return config, [], seeds[:1]
        Ts = v["Ts"]
        common = dict(
            data=v["data"], data_path=v["data_path"], m=v["m"], T=Ts[0], iters=v["iters"], seed=seeds[0],
            eval_every=v["eval_every"], variant=v["variant"], R=v["R"], lr=v["lr"], mc_samples=v["mc"],
            batch=v["batch"], n_gen=v["n_gen"], preview_evals=self.previews.isChecked(),
        )
        if v["data"] in IMAGE_SOURCES:
            config = image_config(**common, preset=v["preset"])
        else:
            config = DiffusionConfig(**common, hidden=PRESETS.get(v["preset"], 128), n_steps=v["n_steps"])
        for T in Ts:
            config.with_(T=T).validate()
        return config, Ts, seeds

    def _fallback(self, name: str, defaults: dict) -> object:
        if name in defaults:
            return defaults[name]
        d = DiffusionConfig()
        return {"R": d.R, "mc": d.mc_samples, "n_steps": d.n_steps}[name]

    def _substitute(self, values: dict, name: str, defaults: dict) -> None:
        """Replace the invalid field ``name`` by a valid value so that core can judge the others."""
        if name in ("path", "dataset"):
            values["data"] = "digits" if self._kind() != "points" else DiffusionConfig().data
            values["data_path"] = ""
        elif name == "T":
            values["Ts"] = [DiffusionConfig().T]
        elif name == "seeds":
            values["seeds"] = [0]
        elif name == "variant":
            values["variant"] = DiffusionConfig().variant
        elif name == "preset":
            values["preset"] = defaults["preset"]
        else:
            values[name] = self._fallback(name, defaults)

    def _data_size_problem(self, v: dict) -> Problem | None:
        """m against the size of the dataset, where it is known cheaply (digits, mnist5k, a file's header): a run
        whose training and test sets do not fit in it would fail as soon as it loads the data."""
        name, m = v["data"], v["m"]
        try:
            shape = peek_dataset(name, v["data_path"])
        except InfoGenError:
            return None  # core names what is wrong with the file
        if shape is None or shape.count is None or not isinstance(m, int):
            return None
        n = shape.count
        label = f"{name} has" if name in KNOWN else "the file holds"
        if name == "file":
            if m + 2 > n:
                return Problem("m", f"Training points m: {label} {n:,} points; {m:,} training points would leave fewer "
                                    f"than 2 for testing, so use at most {max(n - 2, 0):,}.")
            return None
        n_test = _vae_test_images(name, m) if self.is_vae else IMAGE_DEFAULTS["n_test"]
        if n_test < 1 or m + n_test > n:
            n_test = max(n_test, 1)
            return Problem("m", f"Training points m: {label} {n:,} images; {m:,} training plus "
                                f"{_count(n_test, 'test image')} do not fit, so use at most {max(n - n_test, 0):,}.")
        return None

    def _estimate(self, check: Check) -> str:
        """The expected time of the valid settings (diffusion on points), as a sweep would run it (explorer/jobs.py)."""
        if check.result is None or self.is_vae:
            return ""
        config, Ts, seeds = check.result
        runs = len(Ts) * len(seeds)
        workers = 1 if runs == 1 else max(1, min(os.cpu_count() or 1, runs))
        estimate = estimate_diffusion_time(config, runs, workers)
        if estimate is None:
            return ""
        what = f"{runs} runs on {workers} worker{'s' if workers > 1 else ''}" if runs > 1 else "this run"
        return f"Estimated time for {what} {estimate.describe()}"

    def _warnings(self, v: dict, bad: set[str]) -> list[str]:
        """Valid settings that make little sense or cost much: shown in amber, Run stays enabled."""
        found = []
        vae = self.is_vae
        if not bad & {"iters", "eval_every"} and v["eval_every"] > v["iters"]:
            if vae:
                found.append(f"Evaluate every: {v['eval_every']:,} is more than the {v['iters']:,} epochs, so log p(x) "
                             "is computed only once, after the last epoch.")
            else:
                found.append(f"Evaluate every: {v['eval_every']:,} is more than the {v['iters']:,} iterations, so the "
                             "bound and the test gap are evaluated only once, at the end.")
        if not vae and "T" not in bad:
            large = [T for T in v["Ts"] if T > WARN_T]
            if large:
                shown = ", ".join(f"{T:g}" for T in large[:5]) + (", …" if len(large) > 5 else "")
                found.append(f"Diffusion time T: {shown} {'is' if len(large) == 1 else 'are'} beyond {WARN_T:g}, where "
                             "the paper's T grids end; the forward process has long reached its stationary N(0, I), so "
                             "a larger T mostly adds to the generator term and to the Euler-Maruyama step size.")
        if not vae and not bad & {"T", "seeds"}:
            runs = len(v["Ts"]) * len(v["seeds"])
            if runs > MANY_RUNS:
                Ts, seeds = _count(len(v["Ts"]), "value"), _count(len(v["seeds"]), "seed")
                found.append(f"Sweep: {runs:,} runs ({Ts} of T × {seeds}), each training a model from scratch, so "
                             "this sweep will take a long time.")
        if vae and "seeds" not in bad and len(v["seeds"]) > 1:
            found.append(f"Seeds: a VAE run uses one seed, so only seed {v['seeds'][0]} runs (sweeps over seeds are "
                         "for diffusion runs).")
        if vae and "m" not in bad and v["data"] == "digits":
            n_test = _vae_test_images("digits", v["m"])
            if 0 < n_test < VAE_TEST_IMAGES:
                found.append(f"Training points m: digits has {KNOWN['digits'][0]:,} images, so m = {v['m']:,} leaves "
                             f"{n_test:,} (not {VAE_TEST_IMAGES:,}) for the test set.")
        return found

    # --- core's messages in plain English --------------------------------------------------------------------

    def _label(self, name: str) -> str:
        return self.iters_label.text() if name == "iters" else FIELDS[name][0]

    def _what(self, name: str) -> str:
        if name == "iters":
            return f"the number of {self.iters_label.text().lower()}"
        return FIELDS[name][1]

    def _explain(self, exc: Exception) -> Problem:
        """Core's reason as a sentence that starts with the form's name of the field."""
        msg = str(exc).strip()
        if not isinstance(exc, InfoGenError):
            return Problem(None, f"These settings could not be checked: {msg}")
        for pattern in (_AT_LEAST, _POSITIVE, _AT_MOST, _ABOVE_LIMIT):
            match = pattern.match(msg)
            name = CORE_NAMES.get(match["name"]) if match else None
            if name is None:
                continue
            label, what, got = self._label(name), self._what(name), _as_typed(match["got"])
            if pattern is _AT_LEAST:
                return Problem(name, f"{label}: {got} is too small; {what} must be a whole number of at least "
                                     f"{match['low']}.")
            if pattern is _POSITIVE:
                return Problem(name, f"{label}: {got} is not allowed; {what} must be a finite number above 0.")
            high = match["high"] if pattern is _AT_MOST else f"{int(match['high']):,}"
            return Problem(name, f"{label}: {got} is too large; {what} must be <= {high}: {_sentence(match['why'])}")
        memory = _MEMORY.search(msg)
        if memory:
            name = _memory_field(memory["what"])
            prefix = self._label(name) if name else "Memory"
            return Problem(name, f"{prefix}: too large for this machine's memory: {_sentence(msg)}")
        if "data_path" in msg or msg.startswith(("data file ", "data path ")):
            path = self.path.text().strip()
            hint = FILE_KINDS.get(self.data_name, "the data file")
            if not path:
                return Problem("path", f"File: no file chosen (the data_path is empty); choose {hint} with Browse… "
                                       "or type its path.")
            return Problem("path", f"File: {path} does not exist; choose {hint} with Browse… or type its path.")
        if msg.startswith("bound variant ") or "variant" in msg:
            return Problem("variant", f"Bound variant: {_sentence(msg.removeprefix('bound variant '))}")
        if "preset" in msg:
            return Problem("preset", f"Preset: {_sentence(msg)}")
        path = self.path.text().strip()
        if path and path in msg:
            return Problem("path", f"File: {_sentence(msg)}")
        return Problem(None, _sentence(msg[0].upper() + msg[1:]))

    # --- actions ------------------------------------------------------------------------------------------------

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
            self._edited.add("path")
            self.path.setText(path)

    def _select(self) -> None:
        check = self.check()
        if self._show(check) and not self.is_vae:
            self.select_requested.emit(check.result[0], self.selection_range())

    def _run(self) -> None:
        check = self.check()
        if self._show(check):
            self.run_requested.emit(*check.result)


def _spin(value: int) -> SpinBox:
    """A count field that keeps whatever whole number from 0 up the user types; core judges it."""
    box = SpinBox()
    box.setRange(0, COUNT_MAX)
    box.setValue(value)
    return box


def _double_spin(low: float, high: float, decimals: int, value: float) -> DoubleSpinBox:
    box = DoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(low, high)
    box.setValue(value)
    return box


def _invalid_style(widget: QWidget) -> str:
    """A tinted background and red text (a red frame for a text field), scoped to the widget's own type so that
    the arrows of spin boxes and combo boxes keep the platform's look."""
    if isinstance(widget, QLineEdit):
        kind, frame = "QLineEdit", f" border: 1px solid {INVALID_COLOR};"
    else:
        kind, frame = ("QAbstractSpinBox" if isinstance(widget, QAbstractSpinBox) else "QComboBox"), ""
    return f"{kind} {{ background-color: {INVALID_BACKGROUND}; color: {INVALID_COLOR};{frame} }}"


def _invalid(check: Check) -> set[str]:
    return {p.field for p in check.problems if p.field}


def _vae_test_images(data: str, m: int) -> int:
    """The VAE's test set: 1,000 images, or what digits (1,797) leaves after m."""
    return min(VAE_TEST_IMAGES, KNOWN["digits"][0] - m) if data == "digits" else VAE_TEST_IMAGES


def _as_typed(got: str) -> str:
    """A value as core quotes it (repr) as a user would write it: 0.0 -> 0, 'abc' stays quoted."""
    try:
        number = float(got)
    except ValueError:
        return got
    return f"{number:g}" if math.isfinite(number) else got.strip("'\"")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "…", "?", "!")) else text + "."


def _memory_field(what: str) -> str | None:
    """The form field that sizes the largest array of a memory estimate (core.resources names them)."""
    for marker, name in (("batch =", "batch"), ("K =", "mc"), ("m + n_test", "m"), ("m =", "m"),
                         ("training points", "m")):
        if marker in what:
            return name
    return None


def _seeds_problem(text: str, exc: Exception) -> str:
    """Why core.grids.parse_seeds refused ``text``, in plain English."""
    if not text.strip():
        return f"Seeds: the field is empty; {SEEDS_HELP}."
    seen: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "-" in part[1:]:
            lo, hi = (v.strip() for v in part.split("-", 1))
            if not lo:
                return f"Seeds: the range {part!r} starts below 0; seeds are whole numbers from 0 up ({SEEDS_HELP})."
            for v in (lo, hi):
                if not _is_int(v):
                    return f"Seeds: {v!r} in the range {part!r} is not a whole number; {SEEDS_HELP}."
            if int(hi) < int(lo):
                return f"Seeds: the range {part} runs backwards; write it from low to high, e.g. 0-4."
            if int(hi) - int(lo) + 1 + len(seen) > MAX_GRID:
                return (f"Seeds: {text.strip()!r} makes more than {MAX_GRID:,} seeds; at most {MAX_GRID:,} "
                        "(each trains a model).")
            seen.extend(range(int(lo), int(hi) + 1))
        else:
            if not _is_int(part):
                return f"Seeds: {part!r} is not a whole number; {SEEDS_HELP}."
            seen.append(int(part))
    negative = [s for s in seen if s < 0]
    if negative:
        return f"Seeds: {negative[0]} is negative; seeds are whole numbers from 0 up ({SEEDS_HELP})."
    repeated = [s for i, s in enumerate(seen) if s in seen[:i]]
    if repeated:
        return f"Seeds: {repeated[0]} appears more than once; list each seed once."
    return f"Seeds: {text.strip()!r} cannot be read; {SEEDS_HELP}, whole numbers from 0 up, none repeated."


def _t_grid_problem(text: str, exc: Exception) -> str:
    """Why core.grids.parse_float_grid refused the T field ``text``, in plain English."""
    t = text.strip()
    if not t:
        return f"Diffusion time T: the field is empty; {T_HELP}."
    if ":" in t:
        parts = [p.strip() for p in t.split(":")]
        if len(parts) != 3:
            return (f"Diffusion time T: the T grid {t!r} has {len(parts)} parts; a T grid has three, start:stop:step, "
                    "e.g. 0.2:1.8:0.2.")
        for p in parts:
            if not _is_float(p):
                return f"Diffusion time T: {p!r} in the T grid {t!r} is not a number; {T_HELP}."
        start, stop, step = (float(p) for p in parts)
        if not all(math.isfinite(v) for v in (start, stop, step)):
            return f"Diffusion time T: the T grid {t!r} holds a value that is not a finite number; {T_HELP}."
        if step <= 0:
            return f"Diffusion time T: the T grid {t!r} needs a step above 0 (start:stop:step, e.g. 0.2:1.8:0.2)."
        if stop < start:
            return (f"Diffusion time T: the T grid {t!r} runs backwards; its start must not be above its stop "
                    "(start:stop:step, e.g. 0.2:1.8:0.2).")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > MAX_GRID:
            return (f"Diffusion time T: the T grid {t!r} has {count:,} values; at most {MAX_GRID:,} "
                    "(each trains a model).")
    else:
        parts = [p.strip() for p in t.split(",") if p.strip()]
        for p in parts:
            if not _is_float(p):
                return f"Diffusion time T: {p!r} is not a number; {T_HELP}."
        if not parts:
            return f"Diffusion time T: {t!r} holds no number; {T_HELP}."
        if len(parts) > MAX_GRID:
            return f"Diffusion time T: {len(parts):,} values; at most {MAX_GRID:,} (each trains a model)."
        values = [float(p) for p in parts]
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        if repeated:
            return f"Diffusion time T: {repeated[0]:g} appears more than once; list each T once."
    if "repeats" in str(exc):
        return f"Diffusion time T: the T grid {t!r} repeats a value; list each T once."
    return f"Diffusion time T: {t!r} cannot be read; {T_HELP}."


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
