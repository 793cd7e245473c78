"""Diffusion on images end to end (tiny settings): records, both image bound variants, BPD, resume, sweeps."""

import json
import math

import numpy as np
import pytest

from core.cli import main
from core.errors import ConfigError
from core.sweep import group_runs, plan_sweep, run_cost
from core.training.config import image_config
from core.records import MEMBER
from core.training.diffusion import train_diffusion, train_diffusion_ensemble

TINY = dict(m=8, n_test=6, iters=4, eval_every=2, n_gen=5, mc_samples=8, dsm_eval_draws=1, T=0.05)


def test_image_run_records_bpd_both_image_variants_and_pixel_samples():
    cfg = image_config(**TINY).validate()
    assert cfg.is_images and cfg.steps == 50
    records = list(train_diffusion(cfg))
    evals = [r for r in records if r["kind"] == "eval"]
    assert [e["step"] for e in evals] == [2, 4] and records[-1]["kind"] == "end"
    last = evals[-1]
    assert set(last["bounds"]) == {"exact", "reference-images"}
    assert last["N"] == 50 and last["bounds"]["reference-images"]["N"] == int(0.05 / 0.001)
    assert math.isfinite(last["test_bpd"]) and last["test_bpd_se"] > 0
    assert last["samples"].shape == (5, 64) and last["samples"].min() >= 0 and last["samples"].max() <= 1
    assert last["R"] == 4000.0 and last["K"] == 8
    assert -math.log(8) - 4 * last["encoder_info_se"] <= last["encoder_info"] <= 4 * last["encoder_info_se"]


def test_image_resume_continues_exactly():
    cfg = image_config(**TINY).validate()
    full = [r for r in train_diffusion(cfg) if r["kind"] in ("step", "eval")]
    state = next(r for r in full if r["kind"] == "eval" and r["step"] == 2)["train_state"]
    resumed = [r for r in train_diffusion(cfg, resume=state) if r["kind"] in ("step", "eval")]
    tail = [r for r in full if r["step"] > 2]
    assert [r["loss"] for r in resumed if r["kind"] == "step"] == [r["loss"] for r in tail if r["kind"] == "step"]
    assert resumed[-1]["test_bpd"] == tail[-1]["test_bpd"]


def test_image_config_checks():
    with pytest.raises(ConfigError, match="reference-2d"):
        image_config(variant="reference-2d").validate()
    with pytest.raises(ConfigError, match="U-Net preset"):
        image_config(preset="giant").validate()
    with pytest.raises(ConfigError, match="give a data_path"):
        image_config(data="idx").validate()


def test_image_sweeps_balance_their_workers_and_order_members_by_step_count(tmp_path):
    Ts = [round(0.2 * k, 1) for k in range(1, 11)]
    runs = plan_sweep(image_config(), Ts, [0, 1, 2], tmp_path)
    groups = group_runs(runs, jobs=2)
    assert len(groups) == 2 and sorted(r.name for g in groups for r in g) == sorted(r.name for r in runs)
    for g in groups:  # the members still sampling are the leading ones
        assert [r.config.steps for r in g] == sorted((r.config.steps for r in g), reverse=True)
    work = [sum(run_cost(r.config) for r in g) for g in groups]
    costs = sorted(run_cost(r.config) for r in runs)
    assert abs(work[0] - work[1]) <= costs[0]  # as even as the cheapest run allows
    # The costlier runs (more EM steps) weigh more: each T's three seeds cost the same, T = 2 more than T = 0.2.
    assert run_cost(runs[-1].config) > run_cost(runs[0].config) == run_cost(runs[1].config)
    assert len(group_runs(runs[:1], jobs=2)) == 1


def test_runs_of_different_T_in_one_image_ensemble_get_the_numbers_they_get_alone():
    tiny = {**TINY, "iters": 2, "eval_every": 0}
    configs = [image_config(**{**tiny, "T": T, "seed": s}).validate() for T, s in ((0.05, 0), (0.03, 1), (0.02, 2))]
    together = [r for r in train_diffusion_ensemble(configs) if r["kind"] == "eval"]
    assert [r[MEMBER] for r in together] == [0, 1, 2]
    for record, cfg in zip(together, configs):
        (alone,) = [r for r in train_diffusion(cfg) if r["kind"] == "eval"]
        for key in ("bound", "L", "test_bpd", "dsm_train", "test_kl"):
            assert record[key] == pytest.approx(alone[key], rel=1e-4), key
        np.testing.assert_allclose(record["samples"], alone["samples"], atol=1e-5)
        assert record["frames"].shape == alone["frames"].shape == (cfg.frame_count, 5, 64)
        np.testing.assert_allclose(record["frame_times"], alone["frame_times"], atol=1e-7)


@pytest.mark.slow
def test_cli_image_sweep_reports_bpd(tmp_path, capsys):
    code = main(["sweep", "dm", "--data", "digits", "--m", "8", "--n-test", "6", "--T", "0.02,0.04", "--seeds", "0",
                 "--iters", "2", "--n-gen", "4", "--K", "4", "--jobs", "1", "--out", str(tmp_path / "s"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["bpd_mean"]) == 2 and all(np.isfinite(summary["bpd_mean"]))
    assert summary["preset"] == "small" and set(summary["variants"]) == {"exact", "reference-images"}


def test_image_run_exports_a_sample_grid(tmp_path):
    from core.export.figures import export_figure
    from core.io.recorder import RunRecorder

    cfg = image_config(**{**TINY, "iters": 2}).validate()
    with RunRecorder(tmp_path / "run", cfg.as_dict()) as writer:
        for record in train_diffusion(cfg):
            writer.write(record)
    paths = export_figure(tmp_path / "run", "samples", "png", out=tmp_path / "grid.png", dpi=100)
    assert paths["figure"].stat().st_size > 0
    header, *rows = paths["csv"].read_text().splitlines()
    assert header == "image,pixel,value" and len(rows) == 5 * 64


def test_image_ensembles_are_only_as_large_as_memory_allows(tmp_path, monkeypatch):
    import core.sweep as sweep

    def fits_eight(cfg, concurrent=1):
        if concurrent > 8:
            raise ConfigError(f"{concurrent} runs at once need too much memory")

    monkeypatch.setattr(sweep, "check_diffusion_costs", fits_eight)
    base = image_config()
    assert sweep.members_that_fit(base, jobs=2) == 4 and sweep.members_that_fit(base, jobs=16) == 1
    runs = plan_sweep(base, [round(0.2 * k, 1) for k in range(1, 11)], [0, 1, 2], tmp_path)
    groups = group_runs(runs, jobs=2, max_members=sweep.members_that_fit(base, jobs=2))
    assert len(groups) == 8 and max(map(len, groups)) == 4
    assert sorted(r.name for g in groups for r in g) == sorted(r.name for r in runs)
    monkeypatch.setattr(sweep, "check_diffusion_costs", lambda cfg, concurrent=1: None)
    assert sweep.members_that_fit(base, jobs=2) == sweep.MAX_ENSEMBLE
