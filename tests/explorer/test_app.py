"""The app driven as a user would: pytest-qt, offscreen, tiny runs."""

import numpy as np
import pytest

from core.encoder_view import encoder_view

from explorer.runs_table import PROGRESS, REMOVE, STOP
from helpers import RUN_TIMEOUT_MS, run_and_wait


def test_the_default_run_fills_loss_bound_and_gap_plots_and_renders_samples(qtbot, window):
    assert window.form.dataset.currentText() == "swissroll" and window.form.T.text() == "0.6"
    run = run_and_wait(qtbot, window)
    assert len(run.steps) == 40 and [ev["step"] for ev in run.evals] == [20, 40]
    items = window.plots._items
    assert len(items[(run.run_id, "loss", "smooth")].xData) == 40
    assert len(items[(run.run_id, "loss", "held-out")].xData) == 2
    assert len(items[(run.run_id, "bound", "bound")].yData) == 2
    assert np.allclose(items[(run.run_id, "bound", "bound")].yData, [ev["bound"] for ev in run.evals])
    assert len(items[(run.run_id, "gap", "test_kl")].yData) == 2
    generated = window.samples.gen_item.getData()
    assert len(generated[0]) == 1000
    assert window.samples.slider.maximum() == 1
    assert "evaluation 2/2" in window.samples.label.text()
    assert run.frames is not None and run.frames.shape[1:] == (1000, 2)
    assert (run.folder / "history.jsonl").exists() and (run.folder / "weights.safetensors").exists()
    assert "100%" in window.runs_table.cellWidget(0, PROGRESS).format()


def test_scrubbing_back_through_evaluations(qtbot, window):
    run = run_and_wait(qtbot, window)
    window.samples.slider.setValue(0)
    assert "evaluation 1/2 at step 20" in window.samples.label.text()
    np.testing.assert_array_equal(np.column_stack(window.samples.gen_item.getData()), run.samples[0])


def test_stop_ends_the_run_within_one_step(qtbot, window, monkeypatch):
    import explorer.jobs as jobs

    seen = {"step": 0}
    real = jobs.train_diffusion

    def counting(config, should_stop=None, resume=None):
        for record in real(config, should_stop, resume):
            if record["kind"] == "step":
                seen["step"] = record["step"]
            yield record

    monkeypatch.setattr(jobs, "train_diffusion", counting)
    window.form.iters.setValue(1_000_000)
    window.form.eval_every.setValue(0)
    window.form.run_button.click()
    run = window.selected_run
    qtbot.waitUntil(lambda: len(run.steps) >= 5, timeout=RUN_TIMEOUT_MS)
    window.runs_table.cellWidget(0, STOP).click()  # sets the run's stop event before returning
    at_stop = seen["step"]  # the last step the worker had finished by then (or later)
    qtbot.waitUntil(lambda: run.status == "cancelled" and not window.manager.busy, timeout=10_000)
    assert run.steps[-1] <= at_stop + 1  # at most the step in progress when Stop was pressed
    assert run.progress < 0.01


def test_the_T_slider_changes_the_encoder_view(qtbot, window):
    run = run_and_wait(qtbot, window)
    t = window.t_explorer
    t.view.setCurrentIndex(0)
    t.slider.setValue(0.2)
    early = np.column_stack(t.scatter.getData())
    t.slider.setValue(1.5)
    late = np.column_stack(t.scatter.getData())
    assert early.shape == late.shape == (64, 2)
    assert late.std() < early.std() * 1.5 and abs(late.mean()) < abs(early.mean()) + 0.5
    from explorer.training_points import training_points

    pts = training_points(run)
    np.testing.assert_allclose(late, encoder_view(pts, 1.5, t._noise), rtol=1e-5)
    assert "T = 1.500" in t.caption.text()
    t.view.setCurrentIndex(1)
    t.slider.setValue(0.0)
    assert "frame" in t.caption.text()
    np.testing.assert_allclose(np.column_stack(t.scatter.getData()), run.frames[-1])


def test_play_moves_the_slider_and_stops(qtbot, window):
    t = window.t_explorer
    start = t.slider.value()
    t.play.setChecked(True)
    qtbot.waitUntil(lambda: t.slider.value() != start, timeout=2000)
    t.play.setChecked(False)
    assert not t.timer.isActive()


def test_invalid_settings_are_refused_in_the_form(qtbot, window):
    form = window.form
    form.T.setText("0")
    assert not form.run_button.isEnabled() and "diffusion time T" in form.error.text()
    form.T.setText("0.2:1.8:0")
    assert not form.run_button.isEnabled() and "T grid" in form.error.text()
    form.T.setText("0.6")
    form.dataset.setCurrentText("points file…")
    assert not form.run_button.isEnabled() and "data_path" in form.error.text()
    form.dataset.setCurrentText("moons")
    assert form.run_button.isEnabled() and form.error.text() == ""


def test_a_failing_run_shows_its_error_and_the_app_stays_usable(qtbot, window, tmp_path):
    pts = np.random.default_rng(0).normal(size=(100, 2))
    pts[5, 0] = np.nan
    np.save(tmp_path / "bad.npy", pts)
    window.form.dataset.setCurrentText("points file…")
    window.form.path.setText(str(tmp_path / "bad.npy"))
    run = run_and_wait(qtbot, window, status=("failed",))
    assert window.banner.isVisible() and "NaN" in window.banner.text() and "bad.npy" in window.banner.text()
    assert run.status == "failed"
    window.form.dataset.setCurrentText("swissroll")
    run2 = run_and_wait(qtbot, window)
    assert run2.status == "finished" and not window.banner.isVisible()


def test_a_nan_loss_is_reported_with_its_step(qtbot, window, monkeypatch):
    import core.training.diffusion as training

    real = training.dsm_terms  # lr is capped at 1, so make the loss diverge by hand
    monkeypatch.setattr(training, "dsm_terms", lambda *a: (real(*a)[0] * float("nan"), real(*a)[1]))
    window.form.eval_every.setValue(0)
    run = run_and_wait(qtbot, window, status=("failed",))
    assert "at step" in window.banner.text() and "learning rate" in window.banner.text()
    assert run.status == "failed"


def test_runs_overlay_and_remove(qtbot, window):
    first = run_and_wait(qtbot, window)
    window.form.T.setText("1.0")
    second = run_and_wait(qtbot, window)
    keys = window.plots._items
    assert (first.run_id, "bound", "bound") in keys and (second.run_id, "bound", "bound") in keys
    from PySide6.QtCore import Qt

    window.runs_table.item(0, 0).setCheckState(Qt.CheckState.Unchecked)
    window.redraw(force=True)
    assert (first.run_id, "bound", "bound") not in window.plots._items
    window.runs_table.cellWidget(window.runs_table.row_of(second.run_id), REMOVE).click()
    assert second.run_id not in window.manager.runs and window.runs_table.rowCount() == 1


def test_closing_the_window_cancels_and_waits_for_running_work(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Close)  # "close anyway"
    window.form.iters.setValue(1_000_000)
    window.form.eval_every.setValue(0)
    window.form.run_button.click()
    run = window.selected_run
    qtbot.waitUntil(lambda: len(run.steps) > 2, timeout=RUN_TIMEOUT_MS)
    window.close()
    from PySide6.QtCore import QThreadPool

    assert QThreadPool.globalInstance().activeThreadCount() == 0  # close() waited for the worker
    import json

    last = json.loads((run.folder / "history.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "cancelled"  # and what it had done is saved
    qtbot.waitUntil(lambda: run.status == "cancelled" and not window.manager.busy, timeout=5000)


@pytest.mark.slow
def test_a_sweep_from_the_form_shows_bound_against_T(qtbot, window):
    window.form.T.setText("0.4,1.0")
    run = run_and_wait(qtbot, window)
    assert run.is_sweep and run.summary is not None
    assert sorted(ev["T"] for ev in run.finals.values()) == [0.4, 1.0]
    window.redraw(force=True)
    view = window.sweep_view
    assert view.entry is run and list(view.bound_points()[0]) == [0.4, 1.0] and len(view.test_points()[0]) == 2
    assert list(view.bound_points()[1]) == run.summary["bound_mean"]
    assert set(view.checked_members()) == {"T0.4_seed0", "T1_seed0"}
    assert all(len(view.member_curve(name)[0]) >= 1 for name in view.checked_members())
    t = window.t_explorer
    t.slider.setValue(0.95)
    assert "grid T = 1" in t.caption.text()
    qtbot.waitUntil(lambda: len(t.scatter.getData()[0]) == 1000, timeout=10_000)  # read on a worker


@pytest.mark.slow
def test_select_T_by_bound_shows_points_as_they_are_evaluated(qtbot, window):
    window.form.T.setText("0.2:1.4:0.2")
    assert window.form.selection_range() == (0.2, 1.4)
    window.form.select_button.click()
    run = window.selected_run
    from explorer.model import Selection

    assert isinstance(run, Selection)
    qtbot.waitUntil(lambda: run.selection is not None and not window.manager.busy, timeout=RUN_TIMEOUT_MS)
    window.redraw(force=True)
    sel = run.selection
    assert 3 <= sel["trainings"] <= 4 and len(run.points) == sel["trainings"]
    assert len(window.sweep_view.bound_points()[0]) == sel["trainings"]
    t = window.t_explorer
    t.slider.setValue(sel["T_star"])
    assert f"T* = {sel['T_star']:g}" in t.caption.text()
    qtbot.waitUntil(lambda: len(t.scatter.getData()[0]) == 1000, timeout=10_000)  # read on a worker
    assert run.status == "finished"


def test_a_vae_run_shows_both_bounds_the_test_curve_and_an_image_grid(qtbot, window):
    form = window.form
    form.model.setCurrentIndex(form.model.findData("vae"))
    assert form.dataset.itemText(0) == "mnist5k" and not form.T.isEnabled()
    form.dataset.setCurrentText("digits")
    form.preset.setCurrentText("small")
    form.m.setValue(300)
    form.iters.setValue(2)
    form.eval_every.setValue(0)
    assert form.run_button.isEnabled(), form.error.text()
    run = run_and_wait(qtbot, window)
    assert run.kind == "vae" and [ev["epoch"] for ev in run.evals] == [1, 2]
    items = window.plots._items
    for key in ("bound_encoder_generator", "bound_encoder_only", "test_curve"):
        assert len(items[(run.run_id, "bound", key)].yData) == 2
    assert len(items[(run.run_id, "gap", "gap")].yData) == 2
    assert window.samples.image_item.isVisible() and window.samples.image_item.image.shape == (35, 35)
    assert "epoch 2" in window.samples.label.text()
    assert "no T views" in window.t_explorer.caption.text()


def test_an_image_diffusion_run_from_the_form(qtbot, window):
    form = window.form
    form.dataset.setCurrentText("digits 8x8 (images)")
    assert [form.preset.itemText(i) for i in range(form.preset.count())] == ["paper-mnist", "paper-cifar", "small"]
    assert form.preset.currentText() == "small" and form.R.value() == 4000 and form.m.value() == 16
    assert not form.n_steps.isEnabled()
    form.variant.setCurrentText("reference-2d")
    assert not form.run_button.isEnabled() and "reference-2d" in form.error.text()
    form.variant.setCurrentText("reference-images")
    form.dataset.setCurrentText("MNIST/Fashion IDX file…")
    assert form.path.isEnabled() and not form.run_button.isEnabled() and "data_path" in form.error.text()
    form.dataset.setCurrentText("digits 8x8 (images)")
    form.T.setText("0.05")
    form.iters.setValue(3)
    form.mc.setValue(8)
    config = form.request()[0]
    assert config.is_images and config.steps == 50 and config.variant == "reference-images"
    run = run_and_wait(qtbot, window)
    assert "test_bpd" in run.evals[-1] and run.samples[-1].shape == (100, 64)
    assert window.samples.image_item.isVisible()
    t = window.t_explorer
    t.view.setCurrentIndex(0)  # the encoder's view: encoded training images
    t.slider.setValue(0.3)
    t.update_view()
    qtbot.waitUntil(t.image.isVisible, timeout=10_000)  # the training images are read on a worker
    assert t.image.isVisible() and t.image.image.shape == (4 * 9 - 1, 4 * 9 - 1)  # 16 images, 4 x 4
    form.dataset.setCurrentText("swissroll")
    assert form.preset.currentText() == "paper" and form.R.value() == 5 and form.n_steps.isEnabled()


def test_an_image_sweep_is_judged_by_test_bpd_in_the_sweep_view(qtbot, window, tmp_path):
    from core.training.config import image_config
    from explorer.model import Sweep

    sweep = Sweep(1, "digits sweep", image_config(), tmp_path, (200, 0, 0), status="finished", Ts=[0.2, 0.6], seeds=[0])
    for T, bound, bpd in ((0.2, 9.0, 9.7), (0.6, 5.0, 8.0)):
        sweep.add_event({"kind": "eval", "run": f"T{T:g}_seed0", "T": T, "seed": 0, "step": 10, "iters": 10,
                         "bound": bound, "test_kl": 1e6, "test_bpd": bpd})
    view = window.sweep_view
    view.set_entry(sweep)
    assert list(view.test_points()[1]) == [9.7, 8.0]
    assert view.plot.getAxis("right").labelText == "test BPD"
    assert "T* by bound 0.6; T* by test BPD 0.6" in view.caption.text()


def test_the_sweep_view_shows_the_test_metric_error_bars_and_the_T_values_near_the_best(qtbot, window, tmp_path):
    from core.training.config import DiffusionConfig
    from explorer.model import Sweep

    sweep = Sweep(1, "swissroll sweep", DiffusionConfig(), tmp_path, (200, 0, 0), status="finished",
                  Ts=[0.2, 0.6, 1.0], seeds=[0, 1])
    # T = 0.6 is best (0.40); 1.0 is 0.02 above it, within 2 sqrt(0.01^2 + 0.01^2) = 0.028; 0.2 is 0.1 above it.
    for T, kl in ((0.2, 0.50), (0.6, 0.40), (1.0, 0.42)):
        for seed in (0, 1):
            sweep.add_event({"kind": "eval", "run": f"T{T:g}_seed{seed}", "T": T, "seed": seed, "step": 5, "iters": 5,
                             "bound": 3.0 - T, "test_kl": kl, "test_kl_se": 0.01 * 2**0.5})
    view = window.sweep_view
    view.set_entry(sweep)
    assert list(view.test_points()[1]) == pytest.approx([0.50, 0.40, 0.42])
    # +-2 SE of each seed mean: SE = sqrt(2 (0.01 sqrt 2)^2) / 2 = 0.01, so the band is 0.02 either side.
    assert list(view.test_hi.getData()[1] - view.test_points()[1]) == pytest.approx([0.02, 0.02, 0.02])
    assert view.near == [0.6, 1.0] and len(view.shades) == 2
    assert "T* by test KL 0.6; within 2 SE of the test minimum (shaded): 0.6, 1" in view.caption.text()


def test_at_1024_by_700_the_form_run_button_plots_and_slider_stay_usable(qtbot, window, app_settings):
    window.resize(1024, 700)
    qtbot.wait(200)
    button = window.form.run_button
    assert button.isVisible() and button.isEnabled()
    assert button.visibleRegion().boundingRect().size() == button.size()  # wholly in view, not scrolled away
    assert window.form.m.visibleRegion().boundingRect().width() >= 60  # the inputs are shown, not just labels
    assert window.plots.width() >= window.plots.minimumSizeHint().width() and window.t_explorer.slider.width() >= 200
    main = window.splitters["main"]
    main.setSizes([0, 0, 2000])  # a drag cannot collapse the form or the plots
    assert min(main.sizes()) > 0 and window.plots.width() >= 350
    sizes = main.sizes()
    window.close()
    from explorer.main_window import MainWindow

    from explorer.main_window import settings

    assert {"window/geometry", "window/splitter_main"} <= set(settings().allKeys())
    again = MainWindow()  # the offscreen screen is small, so compare at the same window size
    qtbot.addWidget(again)
    again.show()
    again.resize(1024, 700)
    qtbot.wait(100)
    assert again.splitters["main"].sizes() == sizes  # the layout is remembered
    again.close()


def test_play_loops_over_the_runs_own_T_range_and_colours_do_not_repeat(qtbot, window):
    from explorer.model import run_colour

    assert len({run_colour(i) for i in range(1, 21)}) == 20
    run = run_and_wait(qtbot, window)  # T = 0.6
    t = window.t_explorer
    assert t.play_range() == (0.0, pytest.approx(0.6))
    t.slider.setValue(0.595)
    t._advance()
    assert t.slider.value() == pytest.approx(0.0)  # wrapped at the run's T, not at the slider's end
    t._advance()
    assert t.slider.value() == pytest.approx(0.006)
    assert run.colour == run_colour(run.run_id)


USER_NET = '''
import torch
from torch import nn


class Net(nn.Module):
    """A hand-written score network, [y, t] -> 16 -> 2."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(3, 16), nn.Linear(16, 2)

    def forward(self, y, t):
        return self.out(torch.tanh(self.hidden(torch.cat([y, t[:, None]], dim=1))))


def build():
    return Net()
'''


def test_open_model_evaluates_a_users_network_at_every_T_in_the_sweep_view(qtbot, window, tmp_path):
    """Issue #13: File → Open model… shows a user's own network's bound against T (core.api.bound_against_T)."""
    (tmp_path / "my_net.py").write_text(USER_NET)
    form = window.form
    form.T.setText("0.4,0.8")
    form.m.setValue(40)
    form.n_steps.setValue(20)
    form.mc.setValue(20)
    form.n_gen.setValue(50)
    window.files.open_model(f"{tmp_path / 'my_net.py'}:build", None, "eps")
    entry = window.runs.values()[-1]
    assert entry.is_sweep and entry.name.split(" ", 2)[1] == "model"
    qtbot.waitUntil(lambda: entry.summary is not None and not window.manager.busy, timeout=RUN_TIMEOUT_MS)
    assert entry.summary["T"] == [0.4, 0.8] and entry.progress == 1.0
    assert (entry.folder / "summary.json").is_file()  # exported and reopened like a sweep
    assert np.isnan(entry.summary["variants"]["reference-2d"]["bound_mean"]).all()  # eps: no score at t = 0
    assert np.isfinite(entry.summary["variants"]["exact"]["bound_mean"]).all()
    window.view.focused = entry.run_id
    window.redraw(force=True)
    view = window.sweep_view
    assert view.entry is entry and list(view.bound_points()[0]) == [0.4, 0.8]
    assert list(view.bound_points()[1]) == entry.summary["bound_mean"]
    t = window.t_explorer
    t.slider.setValue(0.8)
    assert "grid T = 0.8" in t.caption.text() and len(t.scatter.getData()[0]) == 50  # its samples, n_gen = 50
    from explorer.t_explorer import ENCODER

    t.view.setCurrentText(ENCODER)  # the encoder views: E_T#P̂ of the form's training points
    qtbot.waitUntil(lambda: len(t.scatter.getData()[0]) == 40, timeout=10_000)
    assert "E_T#P̂ at T = 0.800" in t.caption.text()


def test_open_model_names_a_file_that_cannot_be_used(qtbot, window, tmp_path):
    (tmp_path / "broken.py").write_text("def build():\n    return 42\n")
    window.files.open_model(f"{tmp_path / 'broken.py'}:build", None, "score")
    entry = window.runs.values()[-1]
    qtbot.waitUntil(lambda: not window.manager.busy, timeout=RUN_TIMEOUT_MS)
    assert entry.status == "failed" and "not a network or a callable" in entry.message
