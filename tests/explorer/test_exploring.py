"""Exploring many runs: one check per item of the explorer's redesign, each on the data or state shown."""

import csv
import math

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from core.training.config import DiffusionConfig
from core.vae.config import VAEConfig
from explorer.model import POINTS, VAE, Sweep

from helpers import fake_run, run_and_wait


def test_five_runs_give_one_legend_entry_each_labelled_by_what_differs(qtbot, window):
    runs = [fake_run(window) for _ in range(5)]
    window.redraw(force=True)
    for plot in ("loss", "bound", "gap"):
        labels = window.plots.legend_entries(plot)
        assert labels == [f"#{r.run_id} T={r.config.T:g}" for r in runs]
        assert len(window.plots.plots[plot].legend.items) == 5
    assert "dashed: score matching" in window.plots.keys["bound"]
    assert len({r.colour for r in runs}) == 5
    window.plots.focus.setChecked(True)  # the focused run's curves, told apart by colour
    window.redraw(force=True)
    assert window.plots.legend_entries("bound") == ["bound", "score matching", "encoder info", "√2R·encoder prior",
                                                    "√2R·generator"]


def test_a_vae_run_and_a_diffusion_run_never_share_an_axis(qtbot, window):
    dm = fake_run(window)
    vae = fake_run(window, VAEConfig(m=10, batch=5, epochs=2), steps=4)
    window.redraw(force=True)
    assert window.view.kind == VAE  # the latest run is focused, and its kind shown
    shown = {key[0] for key in window.plots._items}
    assert shown == {vae.run_id}
    assert window.plots.plots["loss"].getAxis("bottom").labelText == "epoch"
    assert "1 run(s) of another kind" in window.plots.note.text()
    window.view.focused = dm.run_id
    window.redraw(force=True)
    assert window.view.kind == POINTS and {key[0] for key in window.plots._items} == {dm.run_id}
    assert window.plots.plots["loss"].getAxis("bottom").labelText == "step"


def test_the_sweep_view_draws_the_summary_and_clicking_a_T_focuses_it(qtbot, window, tmp_path):
    sweep = Sweep(0, "sweep", DiffusionConfig(iters=10), tmp_path, (0, 0, 0), status="loaded", Ts=[0.2, 0.6, 1.0],
                  seeds=[0, 1])
    summary = {"T": [0.2, 0.6, 1.0], "bound_mean": [5.0, 3.0, 4.0], "bound_std": [0.5, 0.2, 0.3],
               "test_kl_mean": [0.6, 0.4, 0.41], "test_kl_std": [0.1] * 3, "test_kl_se": [0.01, 0.01, 0.01]}
    for T in (0.2, 0.6, 1.0):
        for seed in (0, 1):
            sweep.add_event({"kind": "eval", "run": f"T{T:g}_seed{seed}", "T": T, "seed": seed, "step": 10,
                             "iters": 10, "bound": 1.0, "test_kl": 1.0})
    sweep.add_event({"kind": "summary", "summary": summary})
    window.manager.add_loaded(sweep)
    window.redraw(force=True)
    view = window.sweep_view
    assert window.tabs.currentWidget() is view and view.entry is sweep
    np.testing.assert_array_equal(view.bound_points()[0], summary["T"])
    np.testing.assert_array_equal(view.bound_points()[1], summary["bound_mean"])
    np.testing.assert_array_equal(view.test_points()[1], summary["test_kl_mean"])
    np.testing.assert_allclose(view.bound_hi.getData()[1], np.array(summary["bound_mean"]) + summary["bound_std"])
    assert view.near == [0.6, 1.0] and len(view.shades) == 2  # 0.41 is within 2 sqrt(2) 0.01 of 0.40
    legend = [item[1].text for item in view.legend.items]
    assert "T* by bound = 0.6" in legend and "T* by test KL = 0.6" in legend
    assert len(view.checked_members()) == 6
    view.focus_T(1.02)
    view.T_clicked.emit(view.focused_T)
    assert view.focused_T == 1.0 and window.t_explorer.slider.value() == pytest.approx(1.0)


def test_log_y_and_fit_keep_the_data_in_view_on_every_plot(qtbot, window):
    run = fake_run(window)
    window.redraw(force=True)
    for plot in ("loss", "bound", "gap"):
        window.plots.log_boxes[plot].setChecked(True)
    assert window.view.log_y == {"loss", "bound", "gap"}
    window.redraw(force=True)
    window.plots.fit_to_data()
    checks = {"loss": run.losses, "bound": [e["bound"] for e in run.evals] + [math.sqrt(2) * 2 * 0.1],
              "gap": [0.4, 0.02]}
    for plot, values in checks.items():
        (_, _), (y0, y1) = window.plots.view_range(plot)
        assert y0 <= min(values) and max(values) <= y1, (plot, y0, y1, values)
        assert y1 / y0 < 1e3  # the data fill the view rather than sit in a corner of it
    window.plots.log_boxes["loss"].setChecked(False)
    (_, _), (y0, y1) = window.plots.view_range("loss")
    assert y0 <= min(run.losses) and max(run.losses) <= y1


def test_an_export_has_the_screens_smoothing_log_y_and_terms(qtbot, window, tmp_path):
    run = run_and_wait(qtbot, window)
    window.plots.smoothing.setValue(0.9)
    window.plots.log_boxes["loss"].setChecked(True)
    window.plots.terms_mode.setCurrentIndex(0)  # total
    window.redraw(force=True)
    assert (window.view.smoothing, window.view.log_y, window.view.terms_mode) == (0.9, {"loss"}, "total")
    paths = window.files.export(run, "loss", "svg", 3.25, 300, tmp_path / "loss.svg")
    script = paths["script"].read_text()
    assert "'log_y': True" in script and "'smoothing': 0.9" in script
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    on_screen = 10.0 ** window.plots._items[(run.run_id, "loss", "smooth")].getData()[1]  # drawn as log10
    np.testing.assert_allclose([float(r["loss_smoothed"]) for r in rows], on_screen, rtol=1e-6)
    bound = window.files.export(run, "bound", "svg", 3.25, 300, tmp_path / "bound.svg")
    with open(bound["csv"], newline="") as fh:
        assert next(csv.reader(fh)) == ["step", "bound"]  # "total": the bound without its terms, as on screen


def test_an_opened_checkpoint_shows_its_reverse_trajectory(qtbot, window):
    run = run_and_wait(qtbot, window)
    window.files.open_path(run.folder / "checkpoint.infogen")
    qtbot.waitUntil(lambda: len(window.runs) == 2, timeout=30_000)
    opened = window.selected_run
    window.redraw(force=True)
    assert opened.frames is not None and opened.frames.shape[0] == len(opened.frame_times) > 10
    np.testing.assert_array_equal(opened.frames, run.frames)
    t = window.t_explorer
    assert t.view.currentText().startswith("Generator trajectory")
    t.slider.setValue(0.3)
    assert "reverse SDE at forward time" in t.caption.text()
    assert len(t.scatter.data) == opened.frames.shape[1]


def test_closing_with_runs_in_progress_asks_first(qtbot, window, monkeypatch):
    fake_run(window, status="running")
    window.ask_before_close = True
    answers = []

    def answer(choice):
        def ask(*args, **kwargs):
            answers.append(args[2])
            return choice
        return ask

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Cancel))
    window.close()
    assert window.isVisible() and "1 run(s) still training" in answers[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Close))
    window.close()
    assert not window.isVisible()


def test_the_runs_table_has_sortable_metric_columns_and_tooltips(qtbot, window):
    from PySide6.QtCore import Qt

    from explorer.runs_table import BOUND, NAME, T

    runs = [fake_run(window, DiffusionConfig(T=t)) for t in (1.0, 0.2, 0.6)]
    table = window.runs_table
    table.sortItems(T, Qt.SortOrder.AscendingOrder)
    assert [table.item(r, T).text() for r in range(3)] == ["0.2", "0.6", "1"]
    assert table.item(0, BOUND).text() == "5"  # the last evaluation's bound
    assert runs[1].folder.name in table.item(0, NAME).toolTip()
    table.selectRow(2)  # T = 1.0, the first run
    assert window.view.selected == (runs[0].run_id,) and window.selected_run is runs[0]
