"""Light preview evaluations (the last one in full, with unchanged numbers) and the time estimate's arithmetic."""

import math

import pytest
import torch

from core.cost_estimate import (
    PROBE_PASSES, SAMPLING_OVER_FLOOR, TRAINING_OVER_FLOOR, estimate_diffusion_time,
    format_seconds, matmul_gflops, mlp_flops_per_row,
)
from core.diffusion.ensemble_mlp_kernels import onednn_inference, onednn_training
from core.io.atomic import to_json
from core.records import validate_record
from core.sweep import run_sweep
from core.training.config import DiffusionConfig
from core.training.diffusion import train_diffusion

SMALL = DiffusionConfig(m=32, n_test=40, iters=4, eval_every=2, n_steps=12, n_gen=24, test_kl_draws=3, mc_samples=20,
                        hidden=16, dsm_eval_draws=2, trajectory_frames=0, preview_samples=10)


def evals(cfg):
    return [r for r in train_diffusion(cfg) if r["kind"] == "eval"]


def test_previews_are_light_and_marked_and_the_last_evaluation_is_unchanged():
    full = evals(SMALL)
    previewed = evals(SMALL.with_(preview_evals=True))
    assert [r["preview"] for r in previewed] == [True, False]
    assert [r["preview"] for r in full] == [False, False]
    first = previewed[0]
    assert first["n_gen"] == 10 and first["test_kl_draws"] == 1 and first["samples"].shape == (10, 2)
    assert math.isnan(first["test_kl_se"])
    last, reference = previewed[-1], full[-1]
    assert last["n_gen"] == 24 and last["test_kl_draws"] == 3
    for key in ("bound", "test_kl", "test_kl_se", "L", "dsm_gap"):
        assert last[key] == reference[key], key
    for record in previewed:
        validate_record(to_json({k: v for k, v in record.items() if k not in ("samples", "model_state", "train_state")}))


def test_preview_samples_never_exceed_n_gen():
    cfg = SMALL.with_(preview_evals=True, preview_samples=500)
    assert cfg.eval_sampling(final=False) == (24, 1)
    assert cfg.eval_sampling(final=True) == (24, 3)
    assert SMALL.eval_sampling(final=False) == (24, 3)


def test_a_sweep_summary_records_its_previews(tmp_path):
    base = SMALL.with_(preview_evals=True)
    events = list(run_sweep(base, [0.4, 0.8], [0], tmp_path / "sweep", jobs=1))
    summary = [e for e in events if e["kind"] == "summary"][0]["summary"]
    assert summary["preview_evals"] is True and summary["preview_samples"] == 10 and summary["n_gen"] == 24
    finals = [e for e in events if e["kind"] == "eval" and e["step"] == base.iters]
    assert finals and not any(e["preview"] for e in finals)


def test_the_estimate_counts_the_networks_flops():
    forward, train = mlp_flops_per_row(DiffusionConfig())
    assert forward == 2 * (3 * 128 + 128 * 128 * 2 + 128 * 2)
    assert train == 2 * forward + 2 * (128 * 128 * 2 + 128 * 2)
    cfg = DiffusionConfig(iters=10_000, eval_every=1000)
    est = estimate_diffusion_time(cfg, gflops=1.0)
    assert est.n_evaluations == 11 - 1  # 1000, 2000, ..., 10000
    # the factors of the path this CPU takes (core/kernel_choice.py)
    training_factor = TRAINING_OVER_FLOOR["onednn" if onednn_training(torch.zeros(1)) else "torch"]
    sampling_factor = SAMPLING_OVER_FLOOR["onednn" if onednn_inference(torch.zeros(1)) else "torch"]
    assert est.training_s == pytest.approx(10_000 * 200 * train / 1e9 * training_factor)
    rows = 1000 * 8 + PROBE_PASSES * 200
    assert est.final_evaluation_s == pytest.approx(rows * 1000 * forward / 1e9 * sampling_factor)
    assert est.total_s == pytest.approx(est.training_s + 10 * est.final_evaluation_s)
    previews = estimate_diffusion_time(cfg.with_(preview_evals=True), gflops=1.0)
    assert previews.evaluation_s == pytest.approx((200 + PROBE_PASSES * 200) * 1000 * forward / 1e9 * sampling_factor)
    assert previews.final_evaluation_s == est.final_evaluation_s and "previews" in previews.describe()
    sweep = estimate_diffusion_time(cfg, runs=27, workers=2, gflops=1.0)
    assert sweep.training_s == pytest.approx(14 * est.training_s)


def test_no_estimate_for_images_and_readable_durations():
    assert estimate_diffusion_time(DiffusionConfig(data="digits"), gflops=1.0) is None
    assert [format_seconds(s) for s in (0.42, 12.4, 185, 3600 * 1.5)] == ["0.4 s", "12 s", "3 min 5 s", "1 h 30 min"]
    assert DiffusionConfig(iters=2500, eval_every=1000).evaluation_count == 3
    assert DiffusionConfig(iters=2500, eval_every=0).evaluation_count == 1
    for iters, every in ((2500, 1000), (2000, 1000), (7, 0), (7, 3)):
        cfg = DiffusionConfig(iters=iters, eval_every=every)
        after = [step for step in range(1, iters + 1) if cfg.evaluates_after(step)]
        assert len(after) == cfg.evaluation_count and after[-1] == iters
    assert matmul_gflops("cpu") > 0.1


def test_the_cli_takes_eval_samples_and_full_eval_at_end(tmp_path):
    import json

    from core.cli import main

    out = tmp_path / "run"
    args = ["train", "dm", "--m", "24", "--n-test", "40", "--N", "20", "--K", "10", "--eval-samples", "30",
            "--test-kl-draws", "2", "--iters", "4", "--eval-every", "2", "--full-eval-at-end", "--preview-samples", "12",
            "--out", str(out)]
    assert main(args) == 0
    evals = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    assert [(r["preview"], r["n_gen"], r["test_kl_draws"]) for r in evals] == [(True, 12, 1), (False, 30, 2)]
    assert json.loads((out / "config.json").read_text())["config"]["preview_evals"] is True
