"""The explorer's model without Qt: the run collection and its events, entries, labels, curves per kind, the view
state, the sweep table and reopened files (no QApplication is ever created here)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from core.errors import ConfigError
from core.io.recorder import RunRecorder
from core.training.config import DiffusionConfig, image_config
from core.training.diffusion import train_diffusion
from core.vae.config import VAEConfig
from explorer.model import (
    EVALS, IMAGES, POINTS, RUN_COLOURS, STATUS, STEPS, TERM_COLOURS, VAE, RunCollection, Selection, Sweep,
    TrainingRun, ViewState, legend_labels, run_colour,
)
from explorer.model.curves import build_curves, data_bounds, shown_runs, style_key
from explorer.model.loading import load_entry
from fake_records import fake_records


def test_the_model_imports_no_qt():
    code = ("import sys, explorer.model, explorer.model.curves, explorer.model.loading; "
            "bad = [m for m in ('PySide6', 'pyqtgraph', 'superqt', 'qasync') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def make_run(run_id: int, config=None, evals: int = 2, steps: int = 10, **eval_values) -> TrainingRun:
    config = config or DiffusionConfig(T=0.2 * run_id)
    run = TrainingRun(run_id, f"#{run_id}", config, None, run_colour(run_id))
    for record in fake_records(isinstance(config, VAEConfig), steps, evals, **eval_values):
        run.add_record(record)
    return run


# -- the collection and its events ----------------------------------------------------------------------
def test_folding_records_emits_one_event_per_kind_of_change():
    runs = RunCollection()
    seen, failed = [], []
    runs.added.connect(lambda rid: seen.append(("added", rid)))
    runs.changed.connect(lambda rid, what: seen.append((what, rid)))
    runs.failed.connect(lambda rid, message: failed.append(message))
    run_id, colour = runs.reserve()
    run = runs.add(TrainingRun(run_id, "#1", DiffusionConfig(iters=4), None, colour))
    runs.fold(run_id, [{"kind": "step", "step": 1, "loss": 0.5, "wall": 0.1},
                       {"kind": "step", "step": 2, "loss": 0.4, "wall": 0.2}])
    assert seen == [("added", 1), (STEPS, 1)]
    assert run.steps == [1, 2] and run.progress == 0.5 and run.status == "running"
    runs.fold(run_id, [{"kind": "eval", "step": 2, "bound": 3.0, "samples": np.zeros((4, 2)),
                        "frames": np.zeros((3, 4, 2)), "frame_times": np.array([0.6, 0.3, 0.0])}])
    assert seen[-1] == (EVALS, 1) and run.frames.shape == (3, 4, 2) and "samples" not in run.evals[0]
    runs.fold(run_id, [{"kind": "error", "message": "NaN loss at step 3"}])
    runs.fold(run_id, [{"kind": "error", "message": "again"}])
    assert run.status == "failed" and failed == ["NaN loss at step 3"]  # reported once
    runs.remove(run_id)
    assert len(runs) == 0 and runs.fold(run_id, [{"kind": "step", "step": 3, "loss": 1.0}]) == set()


def test_cut_at_forgets_what_came_after_a_checkpoint():
    run = make_run(1, evals=2, steps=10)
    run.samples = [np.zeros((2, 2)), np.ones((2, 2))]
    run.cut_at(5)
    assert run.steps == [1, 2, 3, 4, 5] and [ev["step"] for ev in run.evals] == [5] and len(run.samples) == 1


def test_colours_do_not_repeat_for_the_first_20_runs():
    assert len({run_colour(i) for i in range(1, 21)}) == 20 and run_colour(21) == run_colour(1)
    assert len(set(RUN_COLOURS)) == 20 and len(set(TERM_COLOURS)) == len(TERM_COLOURS)


# -- legends --------------------------------------------------------------------------------------------
def test_legend_labels_name_only_what_tells_runs_apart():
    runs = [make_run(i, DiffusionConfig(T=t, seed=s)) for i, (t, s) in enumerate([(0.2, 0), (0.6, 0), (0.6, 1)], 1)]
    assert legend_labels(runs) == {1: "#1 T=0.2 seed=0", 2: "#2 T=0.6 seed=0", 3: "#3 T=0.6 seed=1"}
    assert legend_labels(runs[:1]) == {1: "#1 swissroll m=200 T=0.2"}
    many = [make_run(i, DiffusionConfig(T=0.1 * i, seed=i, m=100 + i, lr=1e-3 * i, batch=64 + i, R=1.0 + i,
                                        variant="exact" if i % 2 else "reference-points")) for i in range(1, 4)]
    assert all(len(label) <= 32 for label in legend_labels(many).values())


def test_five_runs_make_five_legend_entries_per_plot_and_terms_differ_by_dash_style():
    runs = [make_run(i) for i in range(1, 6)]
    view = ViewState(kind=POINTS)
    curves = build_curves(runs, view)
    for plot in ("loss", "bound", "gap"):
        legend = [c.legend for c in curves if c.plot == plot and c.legend]
        assert legend == [f"#{i} T={0.2 * i:g}" for i in range(1, 6)]
    run1 = [c for c in curves if c.run_id == 1 and c.plot == "bound"]
    assert {c.colour for c in run1} == {run_colour(1)}
    assert len({c.style for c in run1}) == len(run1) == 5  # the bound and four terms: five dash styles
    assert "dashed: score matching" in style_key(runs[0].spec, "bound", view)


def test_the_focused_run_mode_tells_terms_apart_by_colour():
    runs = [make_run(i) for i in range(1, 4)]
    view = ViewState(kind=POINTS, focus_mode=True, focused=2)
    curves = build_curves(runs, view)
    assert {c.run_id for c in curves} == {2}
    bound = [c for c in curves if c.plot == "bound"]
    assert len({c.colour for c in bound}) == len(bound) == 5
    assert [c.legend for c in bound] == ["bound", "score matching", "encoder info", "√2R·encoder prior", "√2R·generator"]
    assert style_key(runs[0].spec, "bound", view) == ""


def test_terms_modes_and_the_scaled_terms():
    run = make_run(1)
    total = build_curves([run], ViewState(kind=POINTS, terms_mode="total"))
    assert [c.key for c in total if c.plot == "bound"] == ["bound"]
    terms = {c.key: c.y for c in build_curves([run], ViewState(kind=POINTS)) if c.plot == "bound"}
    assert terms["generator"] == pytest.approx([math.sqrt(2) * 2.0 * 0.1] * 2)  # √2 R × generator, R = 2
    stacked = {c.key: c.y for c in build_curves([run], ViewState(kind=POINTS, terms_mode="stacked")) if c.plot == "bound"}
    assert stacked["generator"] == pytest.approx([1.0 + 0.5 + math.sqrt(2) * 2 * (0.25 + 0.1)] * 2)


def test_preview_evaluations_are_drawn_apart_from_the_full_ones():
    """Issue #12: a preview's test KL (fewer samples, one draw) is not joined to the full evaluations' line."""
    run = make_run(1, evals=3)
    for ev, preview in zip(run.evals, (True, True, False)):
        ev["preview"] = preview
    gap = {c.key: c for c in build_curves([run], ViewState(kind=POINTS)) if c.plot == "gap"}
    assert list(gap["test_kl"].x) == [10.0] and list(gap["test_kl:preview"].x) == [3.0, 6.0]
    assert gap["test_kl:preview"].style == "none" and gap["test_kl:preview"].symbol == "t"
    assert list(gap["dsm_gap"].x) == [3.0, 6.0, 10.0]  # the DSM gap does not depend on the samples
    focused = build_curves([run], ViewState(kind=POINTS, focus_mode=True, focused=1))
    assert "test KL (preview)" in [c.legend for c in focused]
    assert "triangles" in style_key(run.spec, "gap", ViewState(kind=POINTS))
    plain = {c.key for c in build_curves([make_run(2)], ViewState(kind=POINTS)) if c.plot == "gap"}
    assert "test_kl:preview" not in plain


# -- kinds ----------------------------------------------------------------------------------------------
def test_runs_of_different_kinds_never_share_an_axis():
    dm, vae = make_run(1), make_run(2, VAEConfig(m=10, batch=5, epochs=2), evals=2, steps=4)
    images = make_run(3, image_config(), test_bpd=8.0)
    assert (dm.kind, vae.kind, images.kind) == (POINTS, VAE, IMAGES)
    for kind, run in ((POINTS, dm), (VAE, vae), (IMAGES, images)):
        view = ViewState(kind=kind)
        assert shown_runs([dm, vae, images], view) == [run]
        assert {c.run_id for c in build_curves([dm, vae, images], view)} == {run.run_id}
    vae_curves = build_curves([vae], ViewState(kind=VAE))
    loss = next(c for c in vae_curves if c.key == "smooth")
    assert loss.x.max() == pytest.approx(2.0)  # steps on an epoch axis: 4 steps of 2 per epoch
    assert [c.key for c in vae_curves if c.plot == "bound"][0] == "bound_encoder_generator"
    held = next(c for c in vae_curves if c.key == "held-out")
    assert list(held.y) == [45.0, 45.0]  # rec_test + kl_test
    assert [c.key for c in build_curves([images], ViewState(kind=IMAGES)) if c.plot == "gap"][0] == "test_bpd"


# -- the view state -------------------------------------------------------------------------------------
def test_the_view_state_emits_events_and_refuses_what_no_view_can_show():
    view = ViewState()
    changes = []
    view.events.all.connect(lambda info: changes.append(info.signal.name))
    view.set_log_y("bound", True)
    view.smoothing = 0.5
    view.set_visible(3, False)
    assert changes == ["log_y", "smoothing", "hidden"]
    assert view.log_y == {"bound"} and not view.is_visible(3)
    with pytest.raises(ConfigError, match="no plot 'bounds'"):
        view.set_log_y("bounds", True)
    with pytest.raises(ConfigError, match="terms mode"):
        ViewState(terms_mode="all").check()
    with pytest.raises(ConfigError):
        ViewState(smoothing=1.5).check()


def test_log_y_bounds_are_in_log10_and_leave_out_values_that_cannot_be_drawn():
    run = make_run(1)
    run.losses[0] = -1.0  # cannot be drawn on a log axis
    curves = build_curves([run], ViewState(kind=POINTS, smoothing=0.0))
    (x_lo, x_hi), (y_lo, y_hi) = data_bounds(curves, "loss", log_y=True)
    assert (x_lo, x_hi) == (2.0, 10.0)  # step 1 (loss -1) is left out
    assert y_hi == pytest.approx(math.log10(0.6)) and y_lo == pytest.approx(math.log10(0.1))
    (_, _), (lin_lo, _) = data_bounds(curves, "loss", log_y=False)
    assert lin_lo == -1.0


# -- sweeps and selections ------------------------------------------------------------------------------
def test_a_sweep_table_is_the_summary_once_there_is_one():
    sweep = Sweep(1, "s", DiffusionConfig(iters=10), None, (0, 0, 0), Ts=[0.2, 0.6], seeds=[0, 1])
    for T, seed, bound, kl in ((0.2, 0, 4.0, 0.5), (0.2, 1, 6.0, 0.7), (0.6, 0, 3.0, 0.4), (0.6, 1, 3.0, 0.4)):
        assert sweep.add_event({"kind": "eval", "run": f"T{T:g}_seed{seed}", "T": T, "seed": seed, "step": 10,
                                "iters": 10, "bound": bound, "test_kl": kl, "test_kl_se": 0.02}) == EVALS
    live = sweep.table()
    assert live["T"] == [0.2, 0.6] and live["bound"] == [5.0, 3.0] and live["test"] == pytest.approx([0.6, 0.4])
    assert live["bound_sd"][0] == pytest.approx(math.sqrt(2)) and live["test_se"][0] == pytest.approx(0.02 / math.sqrt(2))
    summary = {"T": [0.2, 0.6], "bound_mean": [5.5, 2.5], "bound_std": [1.0, 0.5], "test_kl_mean": [0.61, 0.39],
               "test_kl_se": [0.01, 0.02], "test_kl_std": [0.1, 0.1]}
    sweep.add_event({"kind": "summary", "summary": summary})
    table = sweep.table()
    assert table == {"T": [0.2, 0.6], "bound": [5.5, 2.5], "bound_sd": [1.0, 0.5], "test": [0.61, 0.39],
                     "test_se": [0.01, 0.02]}
    assert sweep.metrics()["T"] == 0.6 and sweep.metrics()["bound"] == 2.5
    sweep.add_event({"kind": "progress", "runs": ["T0.2_seed0", "T0.2_seed1"], "step": 5, "iters": 10,
                     "losses": {"T0.2_seed0": 0.3, "T0.2_seed1": None}})
    assert sweep.member_steps["T0.2_seed0"] == ([5], [0.3]) and math.isnan(sweep.member_steps["T0.2_seed1"][1][0])
    assert sweep.progress == pytest.approx(10 / 40)
    assert sweep.phase == ""


def test_a_sweep_says_it_is_evaluating_until_that_groups_records_arrive():
    sweep = Sweep(1, "s", DiffusionConfig(iters=10), None, (0, 0, 0), Ts=[0.2, 0.6], seeds=[0])
    sweep.status = "running"
    a, b = ["T0.2_seed0"], ["T0.6_seed0"]
    sweep.add_event({"kind": "progress", "runs": a, "step": 10, "iters": 10, "losses": {}, "evaluating": True})
    sweep.add_event({"kind": "progress", "runs": b, "step": 6, "iters": 10, "losses": {}, "evaluating": False})
    assert sweep.phase == "evaluating"
    sweep.add_event({"kind": "eval", "run": "T0.2_seed0", "T": 0.2, "step": 10, "iters": 10})
    assert sweep.phase == ""  # group a's records came; group b still trains
    sweep.add_event({"kind": "progress", "runs": b, "step": 10, "iters": 10, "losses": {}, "evaluating": True})
    assert sweep.phase == "evaluating"
    sweep.status = "finished"
    assert sweep.phase == ""


def test_a_selection_folds_its_trained_points():
    sel = Selection(1, "sel", DiffusionConfig(), None, (0, 0, 0), t_range=(0.1, 2.0))
    assert sel.add_event({"kind": "evaluated", "T": 0.6, "bound": 2.0, "test_kl": 0.4, "trainings": 1,
                          "max_trainings": 4, "run_dir": "x"}) == EVALS
    sel.add_event({"kind": "evaluated", "T": 0.2, "bound": 3.0, "test_kl": 0.5, "trainings": 2, "max_trainings": 4,
                   "run_dir": "y"})
    assert sel.table()["T"] == [0.2, 0.6] and sel.progress == 0.5
    sel.add_event({"kind": "selection", "selection": {"T_star": 0.6, "bound_at_T_star": 2.0}})
    assert sel.metrics()["T"] == 0.6 and sel.add_event({"kind": "other"}) == STATUS


# -- reopened work --------------------------------------------------------------------------------------
def test_a_reopened_checkpoint_has_its_curves_samples_and_trajectory(tmp_path):
    cfg = DiffusionConfig(m=24, n_test=40, T=0.6, iters=4, eval_every=2, n_steps=20, mc_samples=10, n_gen=32,
                          test_kl_draws=1, dsm_eval_draws=1, hidden=16)
    records = []
    with RunRecorder(tmp_path / "run", cfg.as_dict()) as recorder:
        for record in train_diffusion(cfg):
            recorder.write(record)
            records.append(record)
    run = load_entry(tmp_path / "run")
    last = [r for r in records if r["kind"] == "eval"][-1]
    assert run.status == "loaded" and run.steps == [1, 2, 3, 4] and [e["step"] for e in run.evals] == [2, 4]
    assert len(run.samples) == 2 and run.samples[-1].shape == (32, 2)
    np.testing.assert_array_equal(run.frames, last["frames"])
    np.testing.assert_array_equal(run.frame_times, last["frame_times"])
    curves = build_curves([run], ViewState(kind=POINTS))
    assert {c.key for c in curves if c.plot == "bound"} >= {"bound", "generator"}


def test_a_vae_run_folder_reopens_without_a_checkpoint(tmp_path):
    from core.vae.train import train_vae

    cfg = VAEConfig(data="digits", m=200, n_test=50, epochs=2, preset="small", logpx_every=0)
    with RunRecorder(tmp_path / "vae", cfg.as_dict(), model="vae") as recorder:
        for record in train_vae(cfg):
            recorder.write(record)
    run = load_entry(tmp_path / "vae")
    assert run.kind == VAE and run.status == "loaded" and [e["epoch"] for e in run.evals] == [1, 2]
    assert len(run.samples) == 2 and run.samples[-1].ndim >= 2 and "cannot be resumed" in run.message
    assert run.name.startswith("VAE digits m=200 seed=0 (opened vae)")
    assert run.metrics()["wall"] == run.walls[-1] > 0


def test_focused_run_colours_are_visible_on_the_dark_plots():
    # every colour differs clearly from the plots' black background (its brightest channel above 150)
    assert all(max(colour) > 150 for colour in TERM_COLOURS)


def test_log_axis_labels_are_few_and_readable():
    from explorer.model.curves import log_ticks

    assert [t for _, t in log_ticks(-3.2, 1.5)] == ["0.001", "0.01", "0.1", "1", "10"]  # decades
    assert [t for _, t in log_ticks(math.log10(0.3), math.log10(1.2))] == ["0.5", "1"]  # 1-2-5 within a decade
    assert [t for _, t in log_ticks(math.log10(0.31), math.log10(0.49))] == ["0.4"]  # the only nice value there
    assert 2 <= len(log_ticks(-20, 20)) <= 6 and log_ticks(-20, 20)[0][1] == "1e-20"
    assert log_ticks(1.0, 1.0) == []


def test_the_app_without_its_packages_says_what_to_install():
    """Issue #13: installed without the `app` extra, infogen-explorer names the extra instead of a traceback."""
    code = ("import sys; sys.modules['qasync'] = None; from explorer.app import main; sys.exit(main([]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and "infogen-explorer[app]" in done.stderr and "Traceback" not in done.stderr
