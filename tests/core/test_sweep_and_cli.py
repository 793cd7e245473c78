import json
import math

import numpy as np
import pytest

from core.cli import main
from core.errors import ConfigError
from core.grids import parse_float_grid, parse_seeds
from core.io.run_dir import read_run
from core.sweep import group_runs, plan_sweep, run_sweep

TINY = ["--m", "24", "--n-test", "40", "--iters", "6", "--N", "20", "--K", "10"]


def test_grids():
    assert parse_float_grid("0.2:1.8:0.2") == [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
    assert parse_float_grid("0.5,1") == [0.5, 1.0]
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5]
    for bad in ("1:0:0.1", "0:1:0", "a,b", "0.2,0.2"):
        with pytest.raises(ConfigError):
            parse_float_grid(bad)
    with pytest.raises(ConfigError):
        parse_seeds("1,1")


def test_grouping_covers_every_run_once(tiny_config, tmp_path):
    runs = plan_sweep(tiny_config, [0.2, 0.4, 0.6], [0, 1, 2], tmp_path)
    for jobs in (1, 2, 4, 9, 20):
        groups = group_runs(runs, jobs)
        assert [r.name for g in groups for r in g] == [r.name for r in runs]
        assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 1


def test_sweep_summary_in_process_equals_worker_processes(tiny_config, tmp_path):
    cfg = tiny_config.with_(eval_every=0)
    one = [e for e in run_sweep(cfg, [0.3, 1.0], [0, 1], tmp_path / "a", jobs=1)][-1]["summary"]
    two = [e for e in run_sweep(cfg, [0.3, 1.0], [0, 1], tmp_path / "b", jobs=2)][-1]["summary"]
    assert one["bound_mean"] == two["bound_mean"] and one["test_kl_mean"] == two["test_kl_mean"]
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["bound_mean"] == two["bound_mean"]
    run = read_run(tmp_path / "b" / "T1_seed1")
    assert run.config["T"] == 1.0 and run.config["seed"] == 1 and run.records("eval")


def test_cli_train_writes_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "dm", *TINY, "--T", "0.6", "--seed", "0", "--eval-every", "3", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["step"] == 6 and result["variant"] == "exact" and math.isfinite(result["bound"])
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert {line["kind"] for line in lines} == {"start", "step", "eval", "end"}
    evals = [line for line in lines if line["kind"] == "eval"]
    assert [e["step"] for e in evals] == [3, 6]
    for key in ("bound", "test_kl", "test_kl_se", "L", "generator", "encoder_info"):
        assert result[key] == evals[-1][key], key
    run = read_run(out)
    assert run.config["T"] == 0.6 and run.config["m"] == 24 and run.config["iters"] == 6
    assert sorted(run.samples) == ["step_3", "step_6"] and run.samples["step_6"].shape == (1000, 2)
    assert {k: v.shape for k, v in run.weights.items()}["layers.0.weight"] == (128, 3)


def test_cli_sweep_json_has_the_documented_keys(tmp_path, capsys):
    out = tmp_path / "sweep"
    code = main(["sweep", "dm", *TINY, "--T", "0.4:0.8:0.4", "--seeds", "0,1", "--jobs", "1",
                 "--variant", "reference-2d", "--R", "5", "--out", str(out), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("T", "bound_mean", "bound_std", "test_kl_mean", "test_kl_std", "test_kl_se", "terms_mean", "L_mean",
                "T_star_bound", "T_star_test_kl", "T_near_best_test_kl", "variant", "R", "m", "iters", "seeds"):
        assert key in summary, key
    assert summary["T"] == [0.4, 0.8] and summary["variant"] == "reference-2d" and summary["seeds"] == [0, 1]
    assert set(summary["terms_mean"]) == {"score_matching", "encoder_info", "encoder_prior", "generator"}
    assert all(len(v) == 2 for v in summary["terms_mean"].values())
    assert json.loads((out / "summary.json").read_text()) == summary
    # Rebuild the aggregate from the runs' own final evaluations.
    finals = {(T, seed): read_run(out / f"T{T:g}_seed{seed}").records("eval")[-1] for T in (0.4, 0.8) for seed in (0, 1)}
    for i, T in enumerate((0.4, 0.8)):
        bounds = np.array([finals[T, s]["bound"] for s in (0, 1)])
        kls = np.array([finals[T, s]["test_kl"] for s in (0, 1)])
        ses = np.array([finals[T, s]["test_kl_se"] for s in (0, 1)])
        assert summary["bound_mean"][i] == pytest.approx(bounds.mean()) and summary["bound_std"][i] == pytest.approx(bounds.std(ddof=1))
        assert summary["test_kl_mean"][i] == pytest.approx(kls.mean())
        assert summary["test_kl_se"][i] == pytest.approx(math.sqrt((ses**2).sum()) / 2)
        assert finals[T, 0]["test_kl_draws"] == 8 and ses.min() > 0
    assert summary["T_star_bound"] == [0.4, 0.8][int(np.argmin(summary["bound_mean"]))]
    best = int(np.argmin(summary["test_kl_mean"]))
    assert summary["T_star_test_kl"] == [0.4, 0.8][best]
    km, ks = summary["test_kl_mean"], summary["test_kl_se"]
    near = [T for j, T in enumerate((0.4, 0.8)) if km[j] - km[best] <= 2 * math.hypot(ks[j], ks[best])]
    assert summary["T_near_best_test_kl"] == near and summary["T_star_test_kl"] in near


@pytest.mark.parametrize(
    "args,message",
    [(["--T", "0"], "diffusion time T"), (["--T", "-0.5"], "diffusion time T"), (["--N", "0"], "steps N"),
     (["--m", "1"], "training set size"), (["--device", "cuda"], "CUDA is not available")],
)
def test_cli_bad_input_exits_2_with_the_reason(tmp_path, capsys, args, message):
    import torch

    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["train", "dm", *TINY, *args, "--out", str(tmp_path / "x")])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_sweep_bad_grid(tmp_path, capsys):
    assert main(["sweep", "dm", *TINY, "--T", "0:1", "--out", str(tmp_path / "s")]) == 2
    assert "T grid" in capsys.readouterr().err


def test_a_sweep_is_a_directory_of_run_checkpoints_plus_its_summary(tiny_config, tmp_path):
    from core.checkpoint import load_checkpoint

    list(run_sweep(tiny_config.with_(eval_every=0), [0.5, 1.0], [3], tmp_path / "s", jobs=1))
    for name in ("T0.5_seed3", "T1_seed3"):
        ckpt = load_checkpoint(tmp_path / "s" / name / "checkpoint.infogen")
        assert ckpt.step == tiny_config.iters and ckpt.config["seed"] == 3
    assert (tmp_path / "s" / "summary.json").exists()


def test_sweep_progress_goes_on_when_the_member_that_reported_it_fails(tiny_config, tmp_path, diverge_last_member):
    # The last member of the group turns NaN at its third step; progress must still reach the last step.
    import core.sweep as sweep

    diverge_last_member(after=3)
    cfg = tiny_config.with_(iters=8, eval_every=0)
    group = plan_sweep(cfg, [0.4, 0.8], [0], tmp_path / "s")
    (tmp_path / "s").mkdir()
    events = list(sweep.group_events(group))
    errors = [e for e in events if e["kind"] == "error"]
    assert [e["run"] for e in errors] == ["T0.8_seed0"]
    assert max(e["step"] for e in events if e["kind"] == "progress") == 8
    assert [e["run"] for e in events if e["kind"] == "eval"] == ["T0.4_seed0"]


def test_sweep_progress_announces_each_evaluation_before_it_starts(tiny_config, tmp_path, monkeypatch):
    # An evaluation can take minutes with nothing else sent: the step it follows is always sent, marked.
    import core.sweep as sweep

    monkeypatch.setattr(sweep, "PROGRESS_SECONDS", 1e9)  # no throttled progress at all: only the announcements
    cfg = tiny_config.with_(iters=6, eval_every=4)
    group = plan_sweep(cfg, [0.4, 0.8], [0], tmp_path / "s")
    (tmp_path / "s").mkdir()
    events = list(sweep.group_events(group))
    progress = [(e["step"], e["evaluating"]) for e in events if e["kind"] == "progress"]
    assert progress == [(4, True), (6, True)]
    first_eval = next(i for i, e in enumerate(events) if e["kind"] == "eval")
    assert events[first_eval - 1]["kind"] == "progress" and events[first_eval - 1]["step"] == 4
