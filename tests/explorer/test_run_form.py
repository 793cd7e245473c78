"""The run form's controls are honest (issue "The explorer for exploring", item 7): what the user types stays, an
invalid value is marked and explained in plain English with Run disabled, odd but valid settings get a warning, and
switching the model or the data kind keeps what the user set. No training: the form alone, driven by keystrokes."""

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import QApplication

from core.errors import ConfigError

# Fragments of Python's own error messages that must never reach the user.
PYTHON_WORDS = ("invalid literal", "base 10", "could not convert", "int()", "float()", "Traceback", "ValueError")


@pytest.fixture
def form(qtbot):
    from explorer.run_form import RunForm

    widget = RunForm()
    qtbot.addWidget(widget)
    widget.show()
    return widget


def type_into(qtbot, widget, text):
    """Replace the field's contents with ``text``, typed key by key as a user would."""
    widget.selectAll()
    if text:
        qtbot.keyClicks(widget, text)
    else:
        qtbot.keyClick(widget, Qt.Key.Key_Backspace)


def leave(widget):
    """The field loses the keyboard focus (where QSpinBox used to put back its last in-range value)."""
    QApplication.sendEvent(widget, QFocusEvent(QEvent.Type.FocusOut, Qt.FocusReason.TabFocusReason))


def pick(combo, text):
    """Choose an entry of a combo box as a user does: the index changes, then ``activated``."""
    index = combo.findText(text)
    assert index >= 0, text
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def assert_plain(message):
    assert message and not any(word in message for word in PYTHON_WORDS), message


def test_m_of_1_stays_in_the_field_is_marked_and_cannot_be_run(qtbot, form):
    type_into(qtbot, form.m, "1")
    leave(form.m)
    assert form.m.text() == "1" and form.m.value() == 1  # not put back to 2 or to 200
    assert form.invalid_fields() == ["m"] and "#c0392b" in form.m.styleSheet()
    assert "#c0392b" in form.row_labels["m"].styleSheet() and form.row_labels["m"].text() == "Training points m"
    message = form.error.text()
    assert "Training points m" in message and "1 is too small" in message and "at least 2" in message
    assert_plain(message)
    assert form.error.isVisibleTo(form.actions)
    assert not form.run_button.isEnabled() and not form.select_button.isEnabled()
    with qtbot.assertNotEmitted(form.run_requested), qtbot.assertNotEmitted(form.select_requested):
        qtbot.mouseClick(form.run_button, Qt.MouseButton.LeftButton)
        form._run()  # even called directly, the form starts nothing
        form._select()
    with pytest.raises(ConfigError, match="Training points m"):
        form.request()

    type_into(qtbot, form.m, "64")
    assert form.invalid_fields() == [] and form.m.styleSheet() == form.row_labels["m"].styleSheet() == ""
    assert form.error.text() == "" and not form.error.isVisibleTo(form.actions)
    assert form.run_button.isEnabled() and form.select_button.isEnabled()
    with qtbot.waitSignal(form.run_requested, timeout=1000) as signal:
        qtbot.mouseClick(form.run_button, Qt.MouseButton.LeftButton)
    config, Ts, seeds = signal.args
    assert config.m == 64 and Ts == [0.6] and seeds == [0]


def test_an_emptied_number_field_is_invalid_not_its_previous_value(qtbot, form):
    type_into(qtbot, form.m, "")
    assert form.m.text() == ""
    assert form.invalid_fields() == ["m"] and not form.run_button.isEnabled()
    assert "Training points m: the field is empty" in form.error.text()


def test_the_other_counts_keep_what_is_typed_and_core_explains(qtbot, form):
    type_into(qtbot, form.iters, "0")
    type_into(qtbot, form.n_steps, "0")
    leave(form.iters)
    leave(form.n_steps)
    assert form.iters.text() == "0" and form.n_steps.text() == "0"
    assert form.invalid_fields() == ["iters", "n_steps"]  # every invalid field, not only the first core meets
    lines = form.error.text().splitlines()
    assert lines[0].startswith("Iterations: 0 is too small") and lines[1].startswith("EM steps N: 0 is too small")
    type_into(qtbot, form.n_steps, "200000")
    assert "EM steps N: 200000 is too large" in form.error.text() and "100,000" in form.error.text()
    type_into(qtbot, form.lr, "0")
    assert "Learning rate: 0 is not allowed" in form.error.text()
    assert form.invalid_fields() == ["iters", "lr", "n_steps"] and not form.run_button.isEnabled()


def test_seeds_that_are_not_numbers_are_explained_in_plain_english(qtbot, form):
    type_into(qtbot, form.seeds, "a")
    assert form.seeds.text() == "a"
    assert form.error.text() == "Seeds: 'a' is not a whole number; use 0, 0,1,2 or 0-4."
    assert form.invalid_fields() == ["seeds"] and "border" in form.seeds.styleSheet()
    assert "#c0392b" in form.row_labels["seeds"].styleSheet()
    assert not form.run_button.isEnabled()
    with qtbot.assertNotEmitted(form.run_requested):
        form.run_button.click()


@pytest.mark.parametrize("field, label, text, expected", [
    ("seeds", "Seeds", "", "Seeds: the field is empty"),
    ("seeds", "Seeds", "0-x", "'x' in the range '0-x' is not a whole number"),
    ("seeds", "Seeds", "1.5", "'1.5' is not a whole number"),
    ("seeds", "Seeds", "4-0", "the range 4-0 runs backwards"),
    ("seeds", "Seeds", "-1", "-1 is negative"),
    ("seeds", "Seeds", "1,2,1", "1 appears more than once"),
    ("seeds", "Seeds", "0-5000", "more than 1,000 seeds"),
    ("T", "Diffusion time T", "", "the field is empty"),
    ("T", "Diffusion time T", "abc", "'abc' is not a number"),
    ("T", "Diffusion time T", "0.6,x", "'x' is not a number"),
    ("T", "Diffusion time T", "0.2:1.8", "has 2 parts"),
    ("T", "Diffusion time T", "0.2:x:0.2", "'x' in the T grid"),
    ("T", "Diffusion time T", "0.2:1.8:0", "needs a step above 0"),
    ("T", "Diffusion time T", "1.8:0.2:0.2", "runs backwards"),
    ("T", "Diffusion time T", "0.2:1000:0.01", "at most 1,000"),
    ("T", "Diffusion time T", "0.6,0.6", "0.6 appears more than once"),
    ("T", "Diffusion time T", "0", "0 is not allowed"),
    ("T", "Diffusion time T", "10", "10 is too large"),
])
def test_every_seeds_and_t_message_names_the_field_and_what_is_allowed(qtbot, form, field, label, text, expected):
    type_into(qtbot, getattr(form, field), text)
    message = form.error.text()
    assert message.startswith(f"{label}: ") and expected in message
    assert_plain(message)
    assert form.invalid_fields() == [field] and not form.run_button.isEnabled()


def test_a_missing_file_names_the_file_field(qtbot, form, tmp_path):
    pick(form.dataset, "points file…")
    assert form.invalid_fields() == ["path"] and form.error.text().startswith("File: no file chosen")
    type_into(qtbot, form.path, str(tmp_path / "missing.npy"))
    assert form.error.text().startswith(f"File: {tmp_path / 'missing.npy'} does not exist")
    assert not form.run_button.isEnabled()


def test_m_beyond_what_the_dataset_holds_is_refused_with_the_size(qtbot, form):
    pick(form.dataset, "digits 8x8 (images)")
    type_into(qtbot, form.m, "1750")
    assert form.invalid_fields() == ["m"] and not form.run_button.isEnabled()
    assert "digits has 1,797 images" in form.error.text() and "at most 1,697" in form.error.text()
    type_into(qtbot, form.m, "1697")
    assert form.run_button.isEnabled() and form.error.text() == ""


def test_evaluating_less_often_than_the_run_is_long_warns_but_runs(qtbot, form):
    type_into(qtbot, form.iters, "100")
    type_into(qtbot, form.eval_every, "500")
    assert form.error.text() == "" and form.run_button.isEnabled()
    assert form.warning.isVisibleTo(form.actions)
    assert "Evaluate every: 500 is more than the 100 iterations" in form.warning.text()
    assert "only once, at the end" in form.warning.text()
    with qtbot.waitSignal(form.run_requested, timeout=1000) as signal:
        form.run_button.click()
    assert signal.args[0].iters == 100 and signal.args[0].eval_every == 500  # as typed, nothing replaced
    type_into(qtbot, form.eval_every, "50")
    assert form.warning.text() == "" and not form.warning.isVisibleTo(form.actions)


def test_t_beyond_the_papers_grids_warns_but_runs(qtbot, form):
    type_into(qtbot, form.T, "4")
    assert form.error.text() == "" and form.run_button.isEnabled()
    assert "Diffusion time T: 4 is beyond 2" in form.warning.text()
    type_into(qtbot, form.T, "0.2:1.8:0.2")
    assert form.warning.text() == ""


def test_a_long_sweep_warns_with_its_number_of_runs(qtbot, form):
    type_into(qtbot, form.T, "0.2:2.0:0.2")
    type_into(qtbot, form.seeds, "0-5")
    assert form.run_button.isEnabled()
    assert "Sweep: 60 runs (10 values of T × 6 seeds)" in form.warning.text()
    type_into(qtbot, form.seeds, "0-2")
    assert form.warning.text() == ""


def test_switching_to_the_vae_and_back_keeps_what_the_user_typed(qtbot, form):
    type_into(qtbot, form.m, "500")
    type_into(qtbot, form.seeds, "3,4")
    type_into(qtbot, form.lr, "0.002")
    form.model.setCurrentIndex(form.model.findData("vae"))
    assert form.m.value() == 500 and form.seeds.text() == "3,4" and form.lr.value() == 0.002
    assert form.iters_label.text() == "Epochs" and form.iters.value() == 20  # untouched: the VAE's default
    assert form.batch.value() == 64 and form.data_name == "mnist5k"
    assert "only seed 3 runs" in form.warning.text() and form.run_button.isEnabled()
    form.model.setCurrentIndex(form.model.findData("dm"))
    assert form.m.value() == 500 and form.seeds.text() == "3,4" and form.lr.value() == 0.002
    assert form.iters_label.text() == "Iterations" and form.iters.value() == 10000 and form.batch.value() == 256
    assert form.data_name == "swissroll" and form.run_button.isEnabled()


def test_a_dataset_both_models_have_stays_when_the_model_changes(qtbot, form):
    pick(form.dataset, "digits 8x8 (images)")
    type_into(qtbot, form.m, "50")
    form.model.setCurrentIndex(form.model.findData("vae"))
    assert form.data_name == "digits" and form.m.value() == 50
    form.model.setCurrentIndex(form.model.findData("dm"))
    assert form.data_name == "digits" and form.m.value() == 50 and form.preset.currentText() == "small"


def test_untouched_fields_follow_the_data_kind_and_edited_ones_stay(qtbot, form):
    type_into(qtbot, form.mc, "300")
    pick(form.dataset, "digits 8x8 (images)")
    assert form.m.value() == 16 and form.R.value() == 4000 and form.preset.currentText() == "small"
    assert form.mc.value() == 300  # typed by the user: kept
    pick(form.dataset, "mnist5k (images)")  # images to images: nothing changes
    assert form.m.value() == 16 and form.R.value() == 4000
    pick(form.dataset, "moons")
    assert form.m.value() == 200 and form.R.value() == 5 and form.preset.currentText() == "paper"
    assert form.mc.value() == 300 and form.run_button.isEnabled()


def test_a_value_set_by_the_program_between_points_datasets_is_kept(qtbot, form):
    form.m.setValue(64)  # as the app's tests and command line do
    pick(form.dataset, "moons")  # same defaults as swissroll: nothing to change
    assert form.m.value() == 64


def test_steps_with_the_arrows_count_as_edits(qtbot, form):
    form.m.setFocus()
    form.m.stepBy(1)
    assert form.m.value() == 201
    pick(form.dataset, "digits 8x8 (images)")
    assert form.m.value() == 201


def test_the_evaluations_cost_is_shown_and_previews_and_samples_reach_the_config(qtbot, form):
    """Issue #12 item 3: the samples per evaluation and the preview choice are shown with what they cost."""
    from core.cost_estimate import estimate_diffusion_time

    assert form.estimate.isVisibleTo(form.actions)
    full = form.estimate.text()
    assert full.startswith("Estimated time for this run ≈") and "11 evaluations" not in full
    assert "10 evaluations" in full and "8 × 1000 samples × 1000 steps" in full
    config = form.request()[0]
    assert full.endswith(estimate_diffusion_time(config).describe().split(": ", 1)[1])
    type_into(qtbot, form.n_gen, "500")
    assert "8 × 500 samples" in form.estimate.text()
    form.previews.setChecked(True)
    assert "9 previews" in form.estimate.text() and "a full evaluation" in form.estimate.text()
    with qtbot.waitSignal(form.run_requested, timeout=1000) as signal:
        form.run_button.click()
    assert signal.args[0].n_gen == 500 and signal.args[0].preview_evals is True
    type_into(qtbot, form.seeds, "0,1,2")
    assert "3 runs on" in form.estimate.text()
    form.model.setCurrentIndex(form.model.findData("vae"))
    assert not form.estimate.isVisibleTo(form.actions) and not form.previews.isEnabled()


def test_each_app_job_runs_with_the_apps_thread_count(monkeypatch):
    """Torch keeps a thread count per thread: a pool thread that first used torch while a kernel timing had set
    one thread would keep it. Every job the app launches sets its own count first."""
    import threading

    import torch

    from explorer import jobs

    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 4)
    seen = []

    def job():
        yield torch.get_num_threads()

    def pool_thread():
        torch.set_num_threads(1)  # what the thread would have kept
        seen.extend(jobs.in_app_threads(job)())

    before = torch.get_num_threads()
    worker = threading.Thread(target=pool_thread)
    worker.start()
    worker.join()
    torch.set_num_threads(before)
    assert jobs.app_threads() == 3 and seen == [3]
