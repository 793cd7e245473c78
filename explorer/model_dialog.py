"""File → Open model…: a user's own score network (a Python file and the function that builds it, optional
safetensors weights, what it outputs), evaluated at every T of the run form's grid (core.api)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton,
    QVBoxLayout, QWidget,
)

from core.api import OUTPUTS

OUTPUT_TEXT = {"score": "the score s(y, t)", "eps": "the noise ε (score = −ε/σ(t))", "drift": "the drift a (score = a/√β(t))"}


class ModelDialog(QDialog):
    """Asks for FILE.py, the function in it, the weights and the output kind; ``spec()`` is FILE.py:FUNCTION."""

    def __init__(self, parent: QWidget | None = None, what: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Open your own score network")
        self.file = QLineEdit()
        self.file.setPlaceholderText("my_net.py")
        self.function = QLineEdit("build")
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("optional: weights.safetensors")
        self.output = QComboBox()
        for name in OUTPUTS:
            self.output.addItem(OUTPUT_TEXT[name], name)
        self.error = QLabel()
        self.error.setStyleSheet("color: #c0392b;")
        self.error.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Python file", _with_browse(self.file, lambda: self._browse(self.file, "Python files (*.py)")))
        form.addRow("Function that builds it", self.function)
        form.addRow("Weights", _with_browse(self.weights, lambda: self._browse(self.weights, "safetensors (*.safetensors)")))
        form.addRow("It returns", self.output)
        note = QLabel("The file is run as Python code (your code). The network is called as net(y, t) with points "
                      f"y (n, d) and times t (n,), and evaluated at every T of the run form's grid{what}. "
                      "Weights are read from safetensors only.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def spec(self) -> str:
        return f"{self.file.text().strip()}:{self.function.text().strip()}"

    def weights_path(self) -> Path | None:
        text = self.weights.text().strip()
        return Path(text) if text else None

    def output_kind(self) -> str:
        return self.output.currentData()

    def problem(self) -> str:
        """Why the fields cannot be used yet, in words, or ""."""
        path = Path(self.file.text().strip())
        if path.suffix != ".py" or not path.is_file():
            return "Python file: choose an existing .py file."
        if not self.function.text().strip().isidentifier():
            return "Function: type the name of the function in the file that returns the network."
        weights = self.weights_path()
        if weights is not None and (weights.suffix != ".safetensors" or not weights.is_file()):
            return "Weights: choose an existing .safetensors file, or leave it empty."
        return ""

    def _accept(self) -> None:
        problem = self.problem()
        self.error.setText(problem)
        if not problem:
            self.accept()

    def _browse(self, field: QLineEdit, kinds: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", "", f"{kinds};;All files (*)")
        if path:
            field.setText(path)


def _with_browse(field: QLineEdit, browse) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(field)
    button = QPushButton("Browse…")
    button.clicked.connect(browse)
    row.addWidget(button)
    return row
